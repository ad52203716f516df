//! The people and the admin's data of `bench console`: accounts (the benchmark's
//! admin, planner and engineer, and the engineers tickets go to), their sessions,
//! API keys, an audit log and webhooks.

use std::path::Path;

use domain::{Lang, Role};
use store::access::{AuditRecord, PrincipalKind};
use store::users::{NewUser, UserStore};

use super::tickets::{engineer, ENGINEERS};
use crate::Result;

/// The benchmark's people: who requests the pages.
pub(super) const ADMIN: &str = "bench.admin";
pub(super) const PLANNER: &str = "bench.planner";
pub(super) const ENGINEER: &str = "bench.engineer";

/// The session cookies of the people who request pages.
pub(super) struct Sessions {
    pub(super) admin: String,
    pub(super) planner: String,
    pub(super) engineer: String,
}

/// Adds the accounts and starts a session for each of the benchmark's people.
pub(super) fn accounts(users: &UserStore) -> Result<Sessions> {
    let people = [
        (ADMIN, "Bench Admin", Role::Admin, Lang::En),
        (PLANNER, "Li Wei 李伟", Role::Planner, Lang::En),
        (ENGINEER, "王芳 Wang Fang", Role::Engineer, Lang::Zh),
    ];
    let mut tokens = Vec::new();
    for (login, display_name, role, lang) in people {
        let (_, user) = users.add(&NewUser {
            login,
            display_name,
            role,
            lang,
            time_zone: "Asia/Shanghai",
        })?;
        tokens.push(users.start_session(&user, "127.0.0.1")?.token);
    }
    for k in 0..ENGINEERS {
        let login = engineer(k);
        users.add(&NewUser {
            login: &login,
            display_name: "",
            role: Role::Engineer,
            lang: if k % 3 == 0 { Lang::Zh } else { Lang::En },
            time_zone: "Asia/Shanghai",
        })?;
    }
    let mut tokens = tokens.into_iter();
    let mut next = || tokens.next().unwrap_or_default();
    Ok(Sessions {
        admin: next(),
        planner: next(),
        engineer: next(),
    })
}

/// `keys` API keys and `audit` audit records (requests of the keys and sign-ins of
/// the people, as `fixahead run` writes them).
pub(super) fn access_data(access: &api::AccessStore, keys: usize, audit: usize) -> Result<()> {
    let roles = [
        Role::Integration,
        Role::Planner,
        Role::Engineer,
        Role::Admin,
    ];
    let mut made = Vec::new();
    for k in 0..keys {
        let role = roles[k % roles.len()];
        let (_, info) = access.create(role, &format!("integration {k}"))?;
        made.push(info);
    }
    let paths = [
        ("GET", "/api/v1/tickets", 200, ""),
        (
            "POST",
            "/api/v1/tickets/17/transitions",
            200,
            "ticket 17 acknowledged",
        ),
        (
            "POST",
            "/api/v1/tickets/17/assignment",
            200,
            "ticket 17 assigned",
        ),
        ("GET", "/api/v1/devices/washer-000010", 404, ""),
        ("POST", "/console/sign-in", 303, "signed in from 10.0.0.7"),
        (
            "POST",
            "/console/sign-in",
            401,
            "sign-in refused (wrong login or password)",
        ),
    ];
    for k in 0..audit {
        let (method, path, status, summary) = paths[k % paths.len()];
        let key = made.get(k % made.len().max(1));
        access.audit(&AuditRecord {
            principal: if path.starts_with("/console") {
                PrincipalKind::User
            } else {
                PrincipalKind::Key
            },
            key_id: key.map_or(0, |i| i.id),
            key_name: key.map_or_else(|| "bench".to_owned(), |i| i.name.clone()),
            role: key.map(|i| i.role),
            method: method.into(),
            path: path.into(),
            status,
            summary: summary.into(),
        })?;
    }
    Ok(())
}

/// Webhooks for opened tickets and SLA breaches (their deliveries are queued from the
/// ticket events once the tickets are written: [`api::WebhookService::enqueue`]).
pub(super) fn webhooks(dir: &Path, n: usize) -> Result<api::WebhookService> {
    let service =
        api::WebhookService::open(&dir.join("tickets.db"), api::WebhookConfig::default())?;
    for k in 0..n {
        service.create(
            api::webhooks::NewWebhook {
                url: format!("https://crm-{k}.example.com/fixahead"),
                secret: format!("bench-webhook-secret-{k:04}-0123456789abcdef"),
                event_types: vec![
                    api::tickets::EVENT_OPENED.into(),
                    api::tickets::EVENT_SLA_BREACHED.into(),
                ],
                description: format!("CRM {k}"),
            },
            "bench.admin (bench.admin)",
        )?;
    }
    Ok(service)
}
