//! The admin pages: people, API keys, webhooks, dead letters and the audit log.
//!
//! Admins only. The area is gated on `manage_keys` (the permission only admins hold,
//! and the one the navigation shows "Admin" for); each page also requires the
//! permission the JSON API asks for the same data (`read_audit`, `manage_webhooks`,
//! `read_dead_letters`), so a page never shows what the API would refuse. Planners
//! hold `read_dead_letters` through the API, but the console keeps dead letters with
//! the rest of the system's plumbing, under Admin.
//!
//! Every action is a POST with the session's CSRF token, goes through the same store
//! calls as `fixahead users` and the API's keys endpoints, and is written to the audit
//! log under the person's name; so is a refused attempt (403), as the API does.
//! Generated passwords and keys appear once, in the answer to the POST that made them
//! (never in a URL, a log line or the audit log); pages are `Cache-Control: no-store`.

pub(crate) mod audit;
pub(crate) mod dead_letters;
pub(crate) mod keys;
pub(crate) mod users;
pub(crate) mod webhooks;

use api::http::auth::Permission;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use domain::Lang;
use serde::de::DeserializeOwned;

use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{error_page, fail, render, render_with, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::{Error, PREFIX};

/// The words of the admin pages.
pub(crate) struct Texts {
    pub(crate) title: &'static str,
    pub(crate) intro: &'static str,
    pub(crate) admins_only: &'static str,
    pub(crate) users: &'static str,
    pub(crate) users_help: &'static str,
    pub(crate) keys: &'static str,
    pub(crate) keys_help: &'static str,
    pub(crate) webhooks: &'static str,
    pub(crate) webhooks_help: &'static str,
    pub(crate) dead_letters: &'static str,
    pub(crate) dead_letters_help: &'static str,
    pub(crate) audit: &'static str,
    pub(crate) audit_help: &'static str,
    pub(crate) open: &'static str,
    pub(crate) newest: &'static str,
    pub(crate) older: &'static str,
    /// `{n}` and `{total}` are replaced.
    pub(crate) page_of: &'static str,
    pub(crate) bad_page: &'static str,
    pub(crate) bad_cursor: &'static str,
    pub(crate) bad_id: &'static str,
    pub(crate) bad_query: &'static str,
    pub(crate) shown_once: &'static str,
    pub(crate) copy_now: &'static str,
    pub(crate) nothing: &'static str,
    pub(crate) created: &'static str,
    pub(crate) time: &'static str,
    pub(crate) status: &'static str,
    pub(crate) name: &'static str,
    pub(crate) role: &'static str,
    pub(crate) actions: &'static str,
    pub(crate) count_users: &'static str,
    pub(crate) count_keys: &'static str,
    pub(crate) count_webhooks: &'static str,
    pub(crate) count_dead_letters: &'static str,
    pub(crate) last_audit: &'static str,
    pub(crate) not_kept: &'static str,
}

pub(crate) const EN: Texts = Texts {
    title: "Admin",
    intro: "People and keys that reach fixahead, where its events go, what it refused, and who did what.",
    admins_only: "Only admins may open the admin pages.",
    users: "People",
    users_help: "Accounts that sign in to this console: add, disable and enable them, reset a password.",
    keys: "API keys",
    keys_help: "Keys of systems that call the HTTP API: create one (shown once) or revoke it.",
    webhooks: "Webhooks",
    webhooks_help: "Where ticket events are pushed, and how each delivery went.",
    dead_letters: "Dead letters",
    dead_letters_help: "Messages from devices that fixahead refused, by reason.",
    audit: "Audit log",
    audit_help: "Every change made through the API or this console, and every refusal, with who made it.",
    open: "Open",
    newest: "Newest",
    older: "Older",
    page_of: "Page {n} of {total}",
    bad_page: "The page number must be a whole number from 1.",
    bad_cursor: "The position in the list (before) must be a whole number.",
    bad_id: "The address does not name a valid id.",
    bad_query: "The address has a parameter that does not fit",
    shown_once: "Shown only now",
    copy_now: "Copy it now: fixahead keeps only its hash and cannot show it again. Leaving this page loses it.",
    nothing: "Nothing here yet.",
    created: "Created",
    time: "Time",
    status: "Status",
    name: "Name",
    role: "Role",
    actions: "Actions",
    count_users: "accounts",
    count_keys: "valid keys",
    count_webhooks: "active webhooks",
    count_dead_letters: "dead letters",
    last_audit: "latest entry",
    not_kept: "This server keeps no API keys or audit log.",
};

pub(crate) const ZH: Texts = Texts {
    title: "管理",
    intro: "可访问 fixahead 的人员与密钥、事件推送去向、被拒绝的设备消息，以及操作审计记录。",
    admins_only: "只有管理员可以打开管理页面。",
    users: "用户",
    users_help: "登录本控制台的账户：新增、停用、启用账户，重置密码。",
    keys: "API 密钥",
    keys_help: "调用 HTTP API 的外部系统所用的密钥：创建（仅显示一次）或吊销。",
    webhooks: "Webhook",
    webhooks_help: "工单事件推送到哪里，以及每次推送的结果。",
    dead_letters: "死信消息",
    dead_letters_help: "被 fixahead 拒收的设备消息，按原因分类。",
    audit: "审计日志",
    audit_help: "通过 API 或本控制台进行的每一次变更和每一次被拒操作，以及操作人。",
    open: "打开",
    newest: "最新",
    older: "更早",
    page_of: "第 {n} 页，共 {total} 页",
    bad_page: "页码必须是从 1 开始的整数。",
    bad_cursor: "列表位置参数（before）必须是整数。",
    bad_id: "地址中的编号无效。",
    bad_query: "地址中有参数格式不正确",
    shown_once: "仅显示这一次",
    copy_now: "请立即复制：fixahead 只保存其哈希值，无法再次显示。离开此页面后将无法找回。",
    nothing: "暂无内容。",
    created: "创建时间",
    time: "时间",
    status: "状态",
    name: "名称",
    role: "角色",
    actions: "操作",
    count_users: "个账户",
    count_keys: "个有效密钥",
    count_webhooks: "个 Webhook",
    count_dead_letters: "条死信消息",
    last_audit: "最近一条",
    not_kept: "此服务器不保存 API 密钥和审计日志。",
};

/// The admin words of `lang`.
pub(crate) fn texts(lang: Lang) -> &'static Texts {
    pick(lang, &EN, &ZH)
}

/// Refuses unless `viewer` is an admin (holds `manage_keys`) and holds `permission`
/// (the one the API asks for the same thing).
pub(crate) fn gate(viewer: &Viewer, permission: Permission) -> crate::Result<()> {
    let t = texts(viewer.lang());
    if viewer.principal.may(Permission::ManageKeys) && viewer.principal.may(permission) {
        Ok(())
    } else {
        Err(Error::Forbidden(t.admins_only.into()))
    }
}

/// The frame of an admin page at `path` (under the console): "Admin" marked in the
/// navigation, the language switch coming back to `path`.
pub(crate) fn chrome(viewer: &Viewer, title: &str, path: &str) -> Chrome {
    let mut chrome = Chrome::new(viewer, title, "/admin");
    chrome.here = format!("{PREFIX}{path}");
    chrome
}

/// Writes the audit record of an admin action (a POST to `path`) under the person's
/// name.
pub(crate) async fn audit_action(
    state: &ConsoleState,
    viewer: &Viewer,
    path: &str,
    status: StatusCode,
    summary: String,
) {
    crate::sign_in::audit(
        state,
        viewer
            .principal
            .audit_record("POST", path, status.as_u16(), summary),
    )
    .await;
}

/// [`gate`] for a POST: a refusal is audited (as the API audits its 403s) and
/// answered with the 403 page.
pub(crate) async fn gate_post(
    state: &ConsoleState,
    viewer: &Viewer,
    permission: Permission,
    path: &str,
) -> Result<(), Response> {
    match gate(viewer, permission) {
        Ok(()) => Ok(()),
        Err(e) => {
            audit_action(
                state,
                viewer,
                path,
                StatusCode::FORBIDDEN,
                format!("refused: {e}"),
            )
            .await;
            Err(error_page(e, viewer.lang()))
        }
    }
}

/// Parses a page's query string into `T`; a value that does not fit is a 400 in the
/// person's language.
pub(crate) fn parse_query<T: DeserializeOwned>(raw: Option<&str>, lang: Lang) -> crate::Result<T> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| Error::BadRequest(format!("{}: {e}", texts(lang).bad_query)))
}

/// A 1-based page number from `?page=` (1 when absent).
pub(crate) fn page_number(raw: Option<&str>, lang: Lang) -> crate::Result<u64> {
    match raw.map(str::trim) {
        None | Some("") => Ok(1),
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| Error::BadRequest(texts(lang).bad_page.into())),
    }
}

/// A cursor from `?before=` (none when absent).
pub(crate) fn cursor(raw: Option<&str>, lang: Lang) -> crate::Result<Option<i64>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| Error::BadRequest(texts(lang).bad_cursor.into())),
    }
}

/// An id from a path segment.
pub(crate) fn path_id(raw: &str, lang: Lang) -> crate::Result<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::BadRequest(texts(lang).bad_id.into()))
}

/// One link of a [`Pager`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PageLink {
    pub(crate) href: String,
    pub(crate) label: &'static str,
    /// `prev`, `next` or empty.
    pub(crate) rel: &'static str,
}

/// Links between the pages of a list, and where this page is (`Page 2 of 7`) when
/// the total is known.
#[derive(Debug, Default)]
pub(crate) struct Pager {
    pub(crate) links: Vec<PageLink>,
    pub(crate) position: Option<String>,
}

impl Pager {
    /// Numbered pages of `size` over `total` items at `page` (1-based); `href` makes
    /// a page's link.
    pub(crate) fn numbered(
        page: u64,
        size: u64,
        total: u64,
        lang: Lang,
        href: impl Fn(u64) -> String,
    ) -> Self {
        let t = texts(lang);
        let common = crate::i18n::common(lang);
        let pages = total.div_ceil(size.max(1)).max(1);
        let mut links = Vec::new();
        if page > 1 {
            links.push(PageLink {
                href: href(page.min(pages + 1) - 1),
                label: common.previous_page,
                rel: "prev",
            });
        }
        if page < pages {
            links.push(PageLink {
                href: href(page + 1),
                label: common.next_page,
                rel: "next",
            });
        }
        Pager {
            links,
            position: Some(
                t.page_of
                    .replace("{n}", &page.to_string())
                    .replace("{total}", &pages.to_string()),
            ),
        }
    }

    /// Cursor pages, newest first: back to the newest when this page is not the
    /// first, on to older ones from `next`.
    pub(crate) fn cursor(
        first: bool,
        next: Option<i64>,
        lang: Lang,
        href: impl Fn(Option<i64>) -> String,
    ) -> Self {
        let t = texts(lang);
        let mut links = Vec::new();
        if !first {
            links.push(PageLink {
                href: href(None),
                label: t.newest,
                rel: "",
            });
        }
        if let Some(n) = next {
            links.push(PageLink {
                href: href(Some(n)),
                label: t.older,
                rel: "next",
            });
        }
        Pager {
            links,
            position: None,
        }
    }
}

/// A URL under the console with a query of `pairs` (those with a value).
pub(crate) fn href(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
        .collect();
    let query = serde_urlencoded::to_string(kept).unwrap_or_default();
    if query.is_empty() {
        format!("{PREFIX}{path}")
    } else {
        format!("{PREFIX}{path}?{query}")
    }
}

/// The page that shows a generated secret (a password or an API key) once.
#[derive(Template)]
#[template(path = "admin_secret.html")]
pub(crate) struct SecretPage {
    pub(crate) chrome: Chrome,
    pub(crate) t: &'static Texts,
    pub(crate) heading: String,
    pub(crate) explain: String,
    pub(crate) secret: String,
    pub(crate) back: String,
    pub(crate) back_label: &'static str,
}

/// One section on the overview.
#[derive(Debug)]
pub(crate) struct Section {
    pub(crate) href: String,
    pub(crate) title: &'static str,
    pub(crate) help: &'static str,
    pub(crate) figure: Option<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct OverviewPage {
    chrome: Chrome,
    t: &'static Texts,
    sections: Vec<Section>,
}

/// `GET /console/admin`: the sections, each with a figure.
pub(crate) async fn overview(State(state): State<ConsoleState>, viewer: Viewer) -> PageResult {
    let lang = viewer.lang();
    let t = texts(lang);
    gate(&viewer, Permission::ManageKeys).map_err(fail(lang))?;
    let api = state.api.clone();
    let users = state.users.clone();
    let (accounts, keys, hooks, dead, last) = blocking(move || {
        let (_, accounts) = users.page(0, 0)?;
        let (keys, last) = match api.access() {
            Some(a) => (
                Some(a.list()?.iter().filter(|k| k.revoked_at.is_none()).count()),
                a.audit_log(None, 1)?.into_iter().next().map(|e| e.at),
            ),
            None => (None, None),
        };
        let hooks = match api.webhooks() {
            Some(w) => Some(w.list()?.len()),
            None => None,
        };
        let dead = api.store().dead_letter_reasons(0)?.total;
        Ok((accounts, keys, hooks, dead, last))
    })
    .await
    .map_err(fail(lang))?;
    let clock = &viewer.clock;
    let n = |x: u64, unit: &str| format!("{} {unit}", clock.number(x as f64, 0));
    let sections = vec![
        Section {
            href: format!("{PREFIX}/admin/users"),
            title: t.users,
            help: t.users_help,
            figure: Some(n(accounts, t.count_users)),
        },
        Section {
            href: format!("{PREFIX}/admin/keys"),
            title: t.keys,
            help: t.keys_help,
            figure: keys.map(|k| n(k as u64, t.count_keys)),
        },
        Section {
            href: format!("{PREFIX}/admin/webhooks"),
            title: t.webhooks,
            help: t.webhooks_help,
            figure: hooks.map(|h| n(h as u64, t.count_webhooks)),
        },
        Section {
            href: format!("{PREFIX}/admin/dead-letters"),
            title: t.dead_letters,
            help: t.dead_letters_help,
            figure: Some(n(dead, t.count_dead_letters)),
        },
        Section {
            href: format!("{PREFIX}/admin/audit"),
            title: t.audit,
            help: t.audit_help,
            figure: last.map(|at| format!("{} {}", t.last_audit, clock.at(at))),
        },
    ];
    Ok(render(&OverviewPage {
        chrome: Chrome::new(&viewer, t.title, "/admin"),
        t,
        sections,
    }))
}

/// Renders `page` with `status` (a form answered with its error).
pub(crate) fn render_status(status: StatusCode, page: &impl Template) -> Response {
    render_with(status, page)
}

/// `text` as askama writes it into a page (for tests that look for it).
#[cfg(test)]
pub(crate) fn esc(text: &str) -> String {
    askama::filters::escape(text, askama::filters::Html)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::testing::Fixture;

    /// Every admin page, for the permission walk.
    pub(crate) const PAGES: [&str; 6] = [
        "/console/admin",
        "/console/admin/users",
        "/console/admin/keys",
        "/console/admin/webhooks",
        "/console/admin/dead-letters",
        "/console/admin/audit",
    ];

    #[tokio::test]
    async fn admin_pages_are_for_admins_only() {
        let f = Fixture::new();
        for (login, status) in [
            ("admin", StatusCode::OK),
            ("planner", StatusCode::FORBIDDEN),
            ("engineer", StatusCode::FORBIDDEN),
            ("engineer2", StatusCode::FORBIDDEN),
        ] {
            let p = f.sign_in(login);
            for path in PAGES {
                let a = f.get(path, Some(&p)).await;
                assert_eq!(a.status, status, "{login} {path}: {}", a.body);
                assert!(a.body.contains("<html"), "an HTML page");
            }
        }
        let zh = f.sign_in("engineer2");
        let refused = f.get("/console/admin/users", Some(&zh)).await;
        assert!(refused.body.contains(ZH.admins_only), "{}", refused.body);
        for path in PAGES {
            let a = f.get(path, None).await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{path} without a session");
        }
    }

    #[tokio::test]
    async fn the_overview_links_every_section_and_speaks_chinese() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let a = f.get("/console/admin", Some(&admin)).await;
        for path in &PAGES[1..] {
            assert!(a.body.contains(&format!("href=\"{path}\"")), "{path}");
        }
        assert!(a.body.contains("4 accounts"), "{}", a.body);
        f.users
            .set_preferences(admin.user_id, Lang::Zh, "Asia/Shanghai")
            .unwrap();
        let zh = f.get("/console/admin", Some(&admin)).await;
        for label in ["用户", "API 密钥", "死信消息", "审计日志"] {
            assert!(zh.body.contains(label), "{label}");
        }
    }

    #[test]
    fn pagers_link_where_there_is_somewhere_to_go() {
        let hrefs = |p: &Pager| p.links.iter().map(|l| l.href.clone()).collect::<Vec<_>>();
        let p = Pager::numbered(1, 25, 60, Lang::En, |n| format!("/p{n}"));
        assert_eq!(hrefs(&p), vec!["/p2"]);
        assert_eq!(p.position.as_deref(), Some("Page 1 of 3"));
        let p = Pager::numbered(3, 25, 60, Lang::En, |n| format!("/p{n}"));
        assert_eq!(hrefs(&p), vec!["/p2"]);
        let p = Pager::numbered(9, 25, 60, Lang::Zh, |n| format!("/p{n}"));
        assert_eq!(
            hrefs(&p),
            vec!["/p3"],
            "past the end: back to the last page"
        );
        assert_eq!(p.position.as_deref(), Some("第 9 页，共 3 页"));
        assert!(Pager::numbered(1, 25, 0, Lang::En, |n| format!("{n}"))
            .links
            .is_empty());
        let c = Pager::cursor(true, Some(7), Lang::En, |b| format!("{b:?}"));
        assert_eq!(hrefs(&c), vec!["Some(7)"]);
        let c = Pager::cursor(false, None, Lang::En, |b| format!("{b:?}"));
        assert_eq!(hrefs(&c), vec!["None"]);
        assert_eq!(
            page_number(Some("0"), Lang::En).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            page_number(Some("x"), Lang::En).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(page_number(None, Lang::En).unwrap(), 1);
        assert!(cursor(Some("-1"), Lang::En).is_err());
        assert_eq!(cursor(Some("12"), Lang::En).unwrap(), Some(12));
        assert_eq!(
            href("/admin/audit", &[("before", Some("5".into())), ("x", None)]),
            "/console/admin/audit?before=5"
        );
    }
}
