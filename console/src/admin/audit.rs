//! `/console/admin/audit`: the audit log newest first, a page at a time (`?before=`,
//! the cursor of `GET /api/v1/audit`): who (a key or a person, and their role), what
//! (method, path, status, summary) and when, in the reader's time zone.

use api::http::auth::Permission;
use askama::Template;
use axum::extract::{RawQuery, State};
use serde::Deserialize;
use store::access::PrincipalKind;

use super::{cursor, gate, href, parse_query, Pager};
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::Error;

/// Records per page.
pub(crate) const PAGE_SIZE: usize = 50;

pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    who: &'static str,
    request: &'static str,
    summary: &'static str,
    key: &'static str,
    person: &'static str,
    unknown_role: &'static str,
}

const EN: Texts = Texts {
    title: "Audit log",
    intro: "Every change made through the API or this console, every refused attempt and every sign-in, newest first.",
    who: "Who",
    request: "Request",
    summary: "What happened",
    key: "API key",
    person: "person",
    unknown_role: "no such account",
};

const ZH: Texts = Texts {
    title: "审计日志",
    intro: "通过 API 或本控制台进行的每一次变更、每一次被拒操作和每一次登录，按时间倒序排列。",
    who: "操作人",
    request: "请求",
    summary: "内容",
    key: "API 密钥",
    person: "用户",
    unknown_role: "无此账户",
};

#[derive(Debug)]
pub(crate) struct Row {
    id: i64,
    at: String,
    iso: String,
    kind: &'static str,
    actor: String,
    role: &'static str,
    method: String,
    path: String,
    status: u16,
    class: &'static str,
    summary: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    chrome: Chrome,
    a: &'static super::Texts,
    t: &'static Texts,
    rows: Vec<Row>,
    pager: Pager,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    before: Option<String>,
}

/// `GET /console/admin/audit?before=CURSOR`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let a = super::texts(lang);
    gate(&viewer, Permission::ReadAudit).map_err(fail(lang))?;
    let q: AuditQuery = parse_query(raw.as_deref(), lang).map_err(fail(lang))?;
    let before = cursor(q.before.as_deref(), lang).map_err(fail(lang))?;
    let access = state
        .api
        .access()
        .cloned()
        .ok_or_else(|| fail(lang)(Error::NotFound(a.not_kept.into())))?;
    let mut entries = blocking(move || Ok(access.audit_log(before, PAGE_SIZE + 1)?))
        .await
        .map_err(fail(lang))?;
    let next = if entries.len() > PAGE_SIZE {
        entries.truncate(PAGE_SIZE);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    let chrome = super::chrome(&viewer, t.title, "/admin/audit");
    let clock = &viewer.clock;
    let rows = entries
        .into_iter()
        .map(|e| {
            let r = e.record;
            Row {
                id: e.id,
                at: clock.at(e.at),
                iso: clock.iso(e.at),
                kind: match r.principal {
                    PrincipalKind::Key => t.key,
                    PrincipalKind::User => t.person,
                },
                actor: r.key_name,
                role: r.role.map_or(t.unknown_role, |role| chrome.t.role(role)),
                class: match r.status {
                    200..=399 => "ok",
                    403 => "bad",
                    _ => "important",
                },
                method: r.method,
                path: r.path,
                status: r.status,
                summary: r.summary,
            }
        })
        .collect();
    let pager = Pager::cursor(before.is_none(), next, lang, |b| {
        href("/admin/audit", &[("before", b.map(|b| b.to_string()))])
    });
    Ok(render(&AuditPage {
        chrome,
        a,
        t,
        rows,
        pager,
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use store::access::AuditRecord;

    use super::*;
    use crate::testing::{Fixture, HOSTILE};

    #[tokio::test]
    async fn the_audit_log_is_paged_escaped_and_in_the_readers_zone() {
        let f = Fixture::new();
        let access = f.api.access().unwrap();
        for i in 0..60 {
            access
                .audit(&AuditRecord {
                    principal: PrincipalKind::Key,
                    key_id: 7,
                    key_name: format!("dispatch-{i}"),
                    role: Some(domain::Role::Integration),
                    method: "POST".into(),
                    path: "/api/v1/webhooks".into(),
                    status: 201,
                    summary: if i == 59 {
                        HOSTILE.into()
                    } else {
                        format!("registered webhook {i}")
                    },
                })
                .unwrap();
        }
        let admin = f.sign_in("admin");
        let one = f.get("/console/admin/audit", Some(&admin)).await;
        assert_eq!(one.status, StatusCode::OK, "{}", one.body);
        assert!(!one.body.contains("<script>alert"), "the summary is text");
        assert!(one.body.contains(&crate::admin::esc("<script>")));
        assert!(one.body.contains("dispatch-58") && !one.body.contains("dispatch-5<"));
        assert!(one.body.contains(EN.key) && one.body.contains("Integration"));
        let marker = "audit?before=";
        let at = one.body.find(marker).expect("a link to older records") + marker.len();
        let before: String = one.body[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let two = f
            .get(
                &format!("/console/admin/audit?before={before}"),
                Some(&admin),
            )
            .await;
        assert_eq!(two.status, StatusCode::OK);
        assert!(two.body.contains("dispatch-0<") || two.body.contains("dispatch-0 "));
        assert!(!two.body.contains("dispatch-58"));
        assert!(two.body.contains(super::super::EN.newest));
        let bad = f
            .get("/console/admin/audit?before=soon", Some(&admin))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains(super::super::EN.bad_cursor));

        f.users
            .set_preferences(admin.user_id, domain::Lang::Zh, "Asia/Shanghai")
            .unwrap();
        let zh = f.get("/console/admin/audit", Some(&admin)).await;
        assert!(zh.body.contains("操作人") && zh.body.contains("系统集成"));
    }

    #[tokio::test]
    async fn console_actions_appear_with_the_persons_name() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let engineer = f.sign_in("engineer");
        f.post(
            &format!("/console/admin/users/{}/disable", engineer.user_id),
            &admin,
            &[],
        )
        .await;
        let page = f.get("/console/admin/audit", Some(&admin)).await;
        assert!(
            page.body.contains("disabled user engineer (engineer)"),
            "{}",
            page.body
        );
        assert!(page.body.contains("admin (admin)"));
        assert!(page.body.contains(EN.person));
    }
}
