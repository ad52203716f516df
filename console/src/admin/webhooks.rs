//! `/console/admin/webhooks`: the registered webhooks (at most 100, all on one page)
//! and, for the one chosen with `?webhook=ID`, its deliveries newest first with every
//! attempt, a page at a time (`before`, the cursor of `GET
//! /api/v1/webhooks/{id}/deliveries`). Read through `AppState::webhooks()`, as the API
//! does; registering and removing webhooks stays with the integrations (over the API).

use api::http::auth::Permission;
use api::webhooks::{Delivery, DeliveryStatus};
use askama::Template;
use axum::extract::{RawQuery, State};
use serde::Deserialize;

use super::{cursor, gate, href, parse_query, path_id, Pager};
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::Error;

/// Deliveries per page.
pub(crate) const PAGE_SIZE: usize = 20;

pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    none_served: &'static str,
    id: &'static str,
    url: &'static str,
    events: &'static str,
    description: &'static str,
    created_by: &'static str,
    deliveries: &'static str,
    deliveries_of: &'static str,
    event: &'static str,
    attempts: &'static str,
    next_attempt: &'static str,
    ended: &'static str,
    last_error: &'static str,
    attempt_log: &'static str,
    duration: &'static str,
    http_status: &'static str,
    error: &'static str,
    no_answer: &'static str,
    pending: &'static str,
    delivered: &'static str,
    failed: &'static str,
    cancelled: &'static str,
    no_such_webhook: &'static str,
    removed: &'static str,
}

const EN: Texts = Texts {
    title: "Webhooks",
    intro: "Ticket events are pushed to these addresses, at least once each, retried with a growing pause until the receiver answers 2xx. Integrations register them over the API.",
    none_served: "This server does not deliver webhooks.",
    id: "Id",
    url: "Address",
    events: "Events",
    description: "Description",
    created_by: "Registered by",
    deliveries: "Deliveries",
    deliveries_of: "Deliveries of webhook",
    event: "Event",
    attempts: "Attempts",
    next_attempt: "Next attempt",
    ended: "Ended",
    last_error: "Last error",
    attempt_log: "Every attempt",
    duration: "Took",
    http_status: "HTTP status",
    error: "Error",
    no_answer: "no answer",
    pending: "pending",
    delivered: "delivered",
    failed: "failed",
    cancelled: "cancelled",
    no_such_webhook: "There is no such webhook.",
    removed: "removed",
};

const ZH: Texts = Texts {
    title: "Webhook",
    intro: "工单事件会推送到以下地址，每个事件至少送达一次；接收方未返回 2xx 时将按逐渐拉长的间隔重试。外部系统通过 API 注册 Webhook。",
    none_served: "此服务器不推送 Webhook。",
    id: "编号",
    url: "地址",
    events: "事件",
    description: "说明",
    created_by: "注册者",
    deliveries: "推送记录",
    deliveries_of: "Webhook 推送记录：",
    event: "事件",
    attempts: "尝试次数",
    next_attempt: "下次尝试",
    ended: "结束时间",
    last_error: "最近错误",
    attempt_log: "全部尝试",
    duration: "耗时",
    http_status: "HTTP 状态码",
    error: "错误",
    no_answer: "无响应",
    pending: "待推送",
    delivered: "已送达",
    failed: "失败",
    cancelled: "已取消",
    no_such_webhook: "没有此 Webhook。",
    removed: "已删除",
};

impl Texts {
    fn status(&self, s: DeliveryStatus) -> (&'static str, &'static str) {
        match s {
            DeliveryStatus::Pending => (self.pending, "important"),
            DeliveryStatus::Delivered => (self.delivered, "ok"),
            DeliveryStatus::Failed => (self.failed, "bad"),
            DeliveryStatus::Cancelled => (self.cancelled, "normal"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct HookRow {
    id: i64,
    url: String,
    events: String,
    description: String,
    created: String,
    created_by: String,
    href: String,
    chosen: bool,
}

#[derive(Debug)]
pub(crate) struct AttemptRow {
    at: String,
    duration: String,
    http_status: Option<u16>,
    error: Option<String>,
}

#[derive(Debug)]
pub(crate) struct DeliveryRow {
    id: i64,
    event_id: i64,
    event_type: String,
    status: &'static str,
    class: &'static str,
    attempts: u32,
    created: String,
    next_attempt: Option<String>,
    ended: Option<String>,
    last_error: Option<String>,
    log: Vec<AttemptRow>,
}

/// The chosen webhook and a page of its deliveries.
#[derive(Debug)]
pub(crate) struct Chosen {
    id: i64,
    url: String,
    removed: bool,
    deliveries: Vec<DeliveryRow>,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "admin_webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    a: &'static super::Texts,
    t: &'static Texts,
    served: bool,
    hooks: Vec<HookRow>,
    chosen: Option<Chosen>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WebhooksQuery {
    webhook: Option<String>,
    before: Option<String>,
}

/// `GET /console/admin/webhooks?webhook=ID&before=CURSOR`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let a = super::texts(lang);
    gate(&viewer, Permission::ManageWebhooks).map_err(fail(lang))?;
    let q: WebhooksQuery = parse_query(raw.as_deref(), lang).map_err(fail(lang))?;
    let chosen_id = match q.webhook.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(path_id(s, lang).map_err(fail(lang))?),
    };
    let before = cursor(q.before.as_deref(), lang).map_err(fail(lang))?;
    let chrome = super::chrome(&viewer, t.title, "/admin/webhooks");
    let Some(service) = state.api.webhooks().cloned() else {
        return Ok(render(&WebhooksPage {
            chrome,
            a,
            t,
            served: false,
            hooks: Vec::new(),
            chosen: None,
        }));
    };
    let (hooks, chosen) = blocking(move || {
        let hooks = service.list()?;
        let chosen = match chosen_id {
            Some(id) => {
                let hook = service
                    .get(id)?
                    .ok_or_else(|| Error::NotFound(t.no_such_webhook.into()))?;
                let deliveries = service.deliveries(id, before, PAGE_SIZE + 1)?;
                Some((hook, deliveries))
            }
            None => None,
        };
        Ok((hooks, chosen))
    })
    .await
    .map_err(fail(lang))?;
    let clock = &viewer.clock;
    let hooks = hooks
        .into_iter()
        .map(|w| HookRow {
            href: href("/admin/webhooks", &[("webhook", Some(w.id.to_string()))]),
            chosen: Some(w.id) == chosen_id,
            id: w.id,
            url: w.url,
            events: w.event_types.join(", "),
            description: w.description,
            created: clock.at(w.created_at),
            created_by: w.created_by,
        })
        .collect();
    let chosen = chosen.map(|(hook, mut deliveries): (_, Vec<Delivery>)| {
        let next = if deliveries.len() > PAGE_SIZE {
            deliveries.truncate(PAGE_SIZE);
            deliveries.last().map(|d| d.id)
        } else {
            None
        };
        let id = hook.id;
        Chosen {
            id,
            url: hook.url,
            removed: hook.deleted_at.is_some(),
            pager: Pager::cursor(before.is_none(), next, lang, |b| {
                href(
                    "/admin/webhooks",
                    &[
                        ("webhook", Some(id.to_string())),
                        ("before", b.map(|b| b.to_string())),
                    ],
                )
            }),
            deliveries: deliveries
                .into_iter()
                .map(|d| {
                    let (status, class) = t.status(d.status);
                    DeliveryRow {
                        id: d.id,
                        event_id: d.event_id,
                        event_type: d.event_type,
                        status,
                        class,
                        attempts: d.attempts,
                        created: clock.at(d.created_at),
                        next_attempt: d.next_attempt_at.map(|at| clock.at(at)),
                        ended: d.ended_at.map(|at| clock.at(at)),
                        last_error: d.last_error,
                        log: d
                            .attempt_log
                            .into_iter()
                            .map(|x| AttemptRow {
                                at: clock.at(x.at),
                                duration: format!("{} ms", clock.number(x.duration_ms as f64, 0)),
                                http_status: x.http_status,
                                error: x.error,
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    });
    Ok(render(&WebhooksPage {
        chrome,
        a,
        t,
        served: true,
        hooks,
        chosen,
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::testing::{Fixture, HOSTILE};

    #[tokio::test]
    async fn webhooks_and_their_deliveries_are_listed_and_paged() {
        let (f, service) = Fixture::new().with_webhooks();
        let hook = service
            .create(
                api::webhooks::NewWebhook {
                    url: "https://dispatch.example.com/hooks".into(),
                    secret: "0123456789abcdef0123".into(),
                    event_types: vec!["ticket.opened".into(), "ticket.updated".into()],
                    description: HOSTILE.into(),
                },
                "integration (key 1)",
            )
            .unwrap();
        let admin = f.sign_in("admin");
        let a = f.get("/console/admin/webhooks", Some(&admin)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(a.body.contains("https://dispatch.example.com/hooks"));
        assert!(
            !a.body.contains("<script>alert"),
            "the description is escaped"
        );
        // Events after the registration become deliveries.
        for (device, component) in [
            ("wm-1", "drain_pump"),
            ("wm-1", "heater"),
            ("wm-2", "drain_pump"),
        ] {
            let id = f.ticket_id(device, component);
            f.tickets
                .add_note(id, "a note for the webhook", "planner")
                .unwrap();
        }
        for i in 0..25 {
            f.tickets
                .add_note(
                    f.ticket_id("wm-1", "heater"),
                    &format!("note {i}"),
                    "planner",
                )
                .unwrap();
        }
        let queued = service.enqueue().unwrap();
        assert!(queued > PAGE_SIZE, "{queued}");
        let path = format!("/console/admin/webhooks?webhook={}", hook.id);
        let one = f.get(&path, Some(&admin)).await;
        assert_eq!(one.status, StatusCode::OK, "{}", one.body);
        assert!(one.body.contains("ticket.updated"));
        assert!(one.body.contains(EN.pending));
        let marker = crate::admin::esc(&format!("webhooks?webhook={}&before=", hook.id));
        let at = one.body.find(&marker).expect("a link to older deliveries") + marker.len();
        let before: String = one.body[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let older = format!("{path}&before={before}");
        let two = f.get(&older, Some(&admin)).await;
        assert_eq!(two.status, StatusCode::OK, "{older}: {}", two.body);
        assert!(two.body.contains(EN.pending));

        for (bad, status) in [
            ("/console/admin/webhooks?webhook=x", StatusCode::BAD_REQUEST),
            (
                "/console/admin/webhooks?webhook=1&before=y",
                StatusCode::BAD_REQUEST,
            ),
            ("/console/admin/webhooks?webhook=999", StatusCode::NOT_FOUND),
        ] {
            assert_eq!(f.get(bad, Some(&admin)).await.status, status, "{bad}");
        }
        f.users
            .set_preferences(admin.user_id, domain::Lang::Zh, "UTC")
            .unwrap();
        let zh = f.get(&path, Some(&admin)).await;
        assert!(zh.body.contains("推送记录") && zh.body.contains("待推送"));
    }

    #[tokio::test]
    async fn without_webhooks_the_page_says_so() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let a = f.get("/console/admin/webhooks", Some(&admin)).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.body.contains(EN.none_served));
    }
}
