//! `/console/admin/keys`: the API keys of integrations. Listing, creating (the key is
//! shown once, in the answer) and revoking go through the same `AccessStore` calls as
//! `POST`/`GET /api/v1/keys` and `DELETE /api/v1/keys/{id}`, with the same audit
//! summaries. Keys are few (one per integration), so the list is read whole and shown
//! a page at a time, newest first.

use api::http::auth::Permission;
use api::AccessStore;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::Role;
use serde::Deserialize;

use super::{
    audit_action, gate, gate_post, href, page_number, parse_query, path_id, render_status, Pager,
    SecretPage,
};
use crate::csrf::CsrfForm;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{error_page, fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::{Error, PREFIX};

/// Keys per page.
pub(crate) const PAGE_SIZE: usize = 25;

pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    id: &'static str,
    valid: &'static str,
    revoked_since: &'static str,
    create: &'static str,
    create_submit: &'static str,
    name_help: &'static str,
    revoke: &'static str,
    confirm_revoke: &'static str,
    created_heading: &'static str,
    created_explain: &'static str,
    back_to_keys: &'static str,
    done_revoked: &'static str,
    bad_name: &'static str,
    bad_role: &'static str,
    last_admin_key: &'static str,
    no_such_key: &'static str,
}

const EN: Texts = Texts {
    title: "API keys",
    intro: "A system calls the HTTP API with a key: Authorization: Bearer <key>. Its role decides what it may do, as for people; integration is for systems that read and receive events.",
    id: "Id",
    valid: "valid",
    revoked_since: "revoked",
    create: "Create a key",
    create_submit: "Create and show the key",
    name_help: "Who or what holds it, such as \"dispatch system\" (1 to 100 characters).",
    revoke: "Revoke",
    confirm_revoke: "Revoke this key? Every request with it is refused from now on.",
    created_heading: "Key created",
    created_explain: "Put this key into the system that calls the API. Requests send it as Authorization: Bearer <key>.",
    back_to_keys: "Back to API keys",
    done_revoked: "Revoked: requests with this key are refused from now on.",
    bad_name: "The name must have 1 to 100 characters and no control characters.",
    bad_role: "Choose a role: admin, planner, engineer or integration.",
    last_admin_key: "This is the last valid admin key: create another admin key before revoking it, or nobody could manage keys over the API.",
    no_such_key: "There is no valid key with this id (it may be revoked already).",
};

const ZH: Texts = Texts {
    title: "API 密钥",
    intro: "外部系统调用 HTTP API 时需携带密钥：Authorization: Bearer <密钥>。密钥的角色决定其权限，与用户相同；“系统集成”角色供读取数据和接收事件的系统使用。",
    id: "编号",
    valid: "有效",
    revoked_since: "已吊销",
    create: "创建密钥",
    create_submit: "创建并显示密钥",
    name_help: "持有者或用途，例如“派工系统”（1 至 100 个字符）。",
    revoke: "吊销",
    confirm_revoke: "确定吊销此密钥？此后使用该密钥的请求都将被拒绝。",
    created_heading: "密钥已创建",
    created_explain: "请将此密钥配置到调用 API 的系统中，请求时以 Authorization: Bearer <密钥> 发送。",
    back_to_keys: "返回 API 密钥",
    done_revoked: "已吊销：此后使用该密钥的请求都将被拒绝。",
    bad_name: "名称须为 1 至 100 个字符，且不能包含控制字符。",
    bad_role: "请选择角色：管理员、服务计划员、工程师或系统集成。",
    last_admin_key: "这是最后一个有效的管理员密钥：请先创建另一个管理员密钥再吊销，否则将无法通过 API 管理密钥。",
    no_such_key: "没有此编号的有效密钥（可能已被吊销）。",
};

#[derive(Debug)]
pub(crate) struct Row {
    id: i64,
    name: String,
    role: &'static str,
    created: String,
    revoked: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

#[derive(Template)]
#[template(path = "admin_keys.html")]
struct KeysPage {
    chrome: Chrome,
    a: &'static super::Texts,
    t: &'static Texts,
    rows: Vec<Row>,
    pager: Pager,
    page: u64,
    form: CreateForm,
    roles: Vec<(&'static str, &'static str)>,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<String>,
    done: Option<String>,
}

fn store(state: &ConsoleState, lang: domain::Lang) -> crate::Result<AccessStore> {
    state
        .api
        .access()
        .cloned()
        .ok_or_else(|| Error::NotFound(super::texts(lang).not_kept.into()))
}

async fn keys_page(
    state: &ConsoleState,
    viewer: &Viewer,
    page: u64,
    form: CreateForm,
    notice: Option<&'static str>,
    error: Option<String>,
) -> crate::Result<KeysPage> {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let access = store(state, lang)?;
    let mut keys = blocking(move || Ok(access.list()?)).await?;
    keys.reverse();
    let total = keys.len() as u64;
    let skip = usize::try_from((page - 1).saturating_mul(PAGE_SIZE as u64)).unwrap_or(usize::MAX);
    let chrome = super::chrome(viewer, t.title, "/admin/keys");
    let clock = &viewer.clock;
    let rows = keys
        .into_iter()
        .skip(skip)
        .take(PAGE_SIZE)
        .map(|k| Row {
            id: k.id,
            role: chrome.t.role(k.role),
            created: clock.at(k.created_at),
            revoked: k.revoked_at.map(|at| clock.at(at)),
            name: k.name,
        })
        .collect();
    let pager = Pager::numbered(page, PAGE_SIZE as u64, total, lang, |n| {
        href("/admin/keys", &[("page", Some(n.to_string()))])
    });
    let roles = [
        Role::Integration,
        Role::Planner,
        Role::Engineer,
        Role::Admin,
    ]
    .into_iter()
    .map(|r| (r.as_str(), chrome.t.role(r)))
    .collect();
    Ok(KeysPage {
        chrome,
        a: super::texts(lang),
        t,
        rows,
        pager,
        page,
        form,
        roles,
        notice,
        error,
    })
}

/// `GET /console/admin/keys?page=N`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    gate(&viewer, Permission::ManageKeys).map_err(fail(lang))?;
    let q: ListQuery = parse_query(raw.as_deref(), lang).map_err(fail(lang))?;
    let page = page_number(q.page.as_deref(), lang).map_err(fail(lang))?;
    let notice = (q.done.as_deref() == Some("revoked")).then_some(t.done_revoked);
    let form = CreateForm {
        role: Role::Integration.as_str().to_owned(),
        ..CreateForm::default()
    };
    let page = keys_page(&state, &viewer, page, form, notice, None)
        .await
        .map_err(fail(lang))?;
    Ok(render(&page))
}

async fn refused(
    state: &ConsoleState,
    viewer: &Viewer,
    status: StatusCode,
    form: CreateForm,
    error: &str,
) -> Response {
    match keys_page(state, viewer, 1, form, None, Some(error.to_owned())).await {
        Ok(page) => render_status(status, &page),
        Err(e) => error_page(e, viewer.lang()),
    }
}

/// `POST /console/admin/keys`: creates a key and shows it once.
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    CsrfForm { viewer, form }: CsrfForm<CreateForm>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let path = format!("{PREFIX}/admin/keys");
    gate_post(&state, &viewer, Permission::ManageKeys, &path).await?;
    let name = form.name.trim().to_owned();
    if api::access::check_name(&name).is_err() {
        return Ok(refused(&state, &viewer, StatusCode::BAD_REQUEST, form, t.bad_name).await);
    }
    let Ok(role) = form.role.parse::<Role>() else {
        return Ok(refused(&state, &viewer, StatusCode::BAD_REQUEST, form, t.bad_role).await);
    };
    let access = store(&state, lang).map_err(fail(lang))?;
    let (key, info) = blocking(move || Ok(access.create(role, &name)?))
        .await
        .map_err(fail(lang))?;
    // The API's words, so that the audit log reads the same whichever way a key came.
    audit_action(
        &state,
        &viewer,
        &path,
        StatusCode::OK,
        format!("created key {} ({}, {:?})", info.id, info.role, info.name),
    )
    .await;
    tracing::info!(key_id = info.id, role = %info.role, "Created an API key in the console");
    let chrome = super::chrome(&viewer, t.created_heading, "/admin/keys");
    let role = chrome.t.role(info.role);
    Ok(render(&SecretPage {
        chrome,
        t: super::texts(lang),
        heading: format!("{}: {} ({role})", t.created_heading, info.name),
        explain: t.created_explain.to_owned(),
        secret: key,
        back: format!("{PREFIX}/admin/keys"),
        back_label: t.back_to_keys,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    page: Option<String>,
}

/// `POST /console/admin/keys/{id}/revoke`.
pub(crate) async fn revoke(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    CsrfForm { viewer, form }: CsrfForm<RevokeForm>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let path = format!("{PREFIX}/admin/keys/{raw}/revoke");
    gate_post(&state, &viewer, Permission::ManageKeys, &path).await?;
    let id = path_id(&raw, lang).map_err(fail(lang))?;
    let access = store(&state, lang).map_err(fail(lang))?;
    let info = match blocking(move || Ok(access.revoke(id)?)).await {
        Ok(info) => info,
        Err(Error::Store(store::Error::Conflict(_))) => {
            return Ok(refused(
                &state,
                &viewer,
                StatusCode::CONFLICT,
                CreateForm::default(),
                t.last_admin_key,
            )
            .await)
        }
        Err(Error::Store(store::Error::NotFound(_))) => {
            return Err(fail(lang)(Error::NotFound(t.no_such_key.into())))
        }
        Err(e) => return Err(fail(lang)(e)),
    };
    audit_action(
        &state,
        &viewer,
        &path,
        StatusCode::SEE_OTHER,
        format!("revoked key {} ({}, {:?})", info.id, info.role, info.name),
    )
    .await;
    let page = form.page.filter(|p| p.parse::<u64>().is_ok_and(|n| n >= 1));
    Ok(Redirect::to(&href(
        "/admin/keys",
        &[("page", page), ("done", Some("revoked".into()))],
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::testing::{Fixture, HOSTILE};

    fn secret(body: &str) -> String {
        let start = body.find("class=\"secret\"").expect("a secret on the page");
        let rest = &body[start..];
        let open = rest.find('>').unwrap() + 1;
        let close = rest[open..].find('<').unwrap();
        rest[open..open + close].to_owned()
    }

    #[tokio::test]
    async fn a_created_key_works_once_shown_and_stops_when_revoked() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let a = f
            .post(
                "/console/admin/keys",
                &admin,
                &[("name", HOSTILE), ("role", "integration")],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let key = secret(&a.body);
        assert!(key.starts_with(api::access::KEY_PREFIX), "{key}");
        assert!(!a.body.contains("<script>alert"));
        let access = f.api.access().unwrap();
        let info = access
            .authenticate(&key)
            .unwrap()
            .expect("the key is valid");
        assert_eq!(info.role, Role::Integration);
        let list = f.get("/console/admin/keys", Some(&admin)).await;
        assert!(
            list.body.contains(&crate::admin::esc("<script>")),
            "the name, escaped"
        );
        assert!(!list.body.contains(&key), "the key is never listed");

        let r = f
            .post(
                &format!("/console/admin/keys/{}/revoke", info.id),
                &admin,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location(), "/console/admin/keys?done=revoked");
        assert!(access.authenticate(&key).unwrap().is_none(), "revoked");
        let again = f
            .post(
                &format!("/console/admin/keys/{}/revoke", info.id),
                &admin,
                &[],
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        let audit: Vec<String> = access
            .audit_log(None, 50)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} | {}", e.record.key_name, e.record.summary))
            .collect();
        let created = format!("admin (admin) | created key {} (integration, ", info.id);
        let revoked = format!("admin (admin) | revoked key {} (integration, ", info.id);
        assert!(audit.iter().any(|s| s.starts_with(&created)), "{audit:?}");
        assert!(audit.iter().any(|s| s.starts_with(&revoked)), "{audit:?}");
        assert!(!audit.iter().any(|s| s.contains(&key)));
    }

    #[tokio::test]
    async fn the_last_admin_key_stays_and_bad_input_is_a_400() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let access = f.api.access().unwrap();
        let (_, only) = access.create(Role::Admin, "bootstrap").unwrap();
        let r = f
            .post(
                &format!("/console/admin/keys/{}/revoke", only.id),
                &admin,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.body.contains(&crate::admin::esc(EN.last_admin_key)));
        assert!(access
            .list()
            .unwrap()
            .iter()
            .any(|k| k.id == only.id && k.revoked_at.is_none()));
        for (fields, message) in [
            (vec![("name", ""), ("role", "planner")], EN.bad_name),
            (vec![("name", "x\u{1}"), ("role", "planner")], EN.bad_name),
            (vec![("name", "desk"), ("role", "owner")], EN.bad_role),
        ] {
            let before = access.list().unwrap().len();
            let a = f.post("/console/admin/keys", &admin, &fields).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{fields:?}");
            assert!(a.body.contains(&crate::admin::esc(message)));
            assert_eq!(access.list().unwrap().len(), before, "no key made");
        }
        let bad = f.post("/console/admin/keys/x/revoke", &admin, &[]).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn keys_come_a_page_at_a_time_newest_first_in_both_languages() {
        let f = Fixture::new();
        let access = f.api.access().unwrap();
        for i in 0..30 {
            access
                .create(Role::Integration, &format!("key-{i:02}"))
                .unwrap();
        }
        let admin = f.sign_in("admin");
        let one = f.get("/console/admin/keys", Some(&admin)).await;
        assert!(
            one.body.contains("key-29") && !one.body.contains("key-04"),
            "newest first"
        );
        assert!(one.body.contains("href=\"/console/admin/keys?page=2\""));
        let two = f.get("/console/admin/keys?page=2", Some(&admin)).await;
        assert!(two.body.contains("key-00") && !two.body.contains("key-29"));
        f.users
            .set_preferences(admin.user_id, domain::Lang::Zh, "UTC")
            .unwrap();
        let zh = f.get("/console/admin/keys", Some(&admin)).await;
        for label in ["创建密钥", "吊销", "系统集成", "有效"] {
            assert!(zh.body.contains(label), "{label}");
        }
    }
}
