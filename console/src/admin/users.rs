//! `/console/admin/users`: the people who sign in, a page at a time; adding one (the
//! generated password is shown once, in the answer), disabling and enabling, and
//! resetting a password. The same store calls and rules as `fixahead users`.
//!
//! Two rules the command line does not have, because it is the way back in: an admin
//! cannot disable their own account here (it would end the session they are acting
//! in; another admin can), nor the last enabled admin (nobody could manage people from
//! the console any more). An admin resets their own password on their account page,
//! which asks for the current one.

use api::http::auth::Permission;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::{Lang, Role};
use serde::Deserialize;
use store::users::{self as accounts, NewUser, UserInfo};

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

/// Accounts per page.
pub(crate) const PAGE_SIZE: u64 = 25;

/// Time zones offered first in the form (any IANA name may be typed).
const ZONES: [&str; 8] = [
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "UTC",
];

pub(crate) struct Texts {
    title: &'static str,
    login: &'static str,
    display_name: &'static str,
    display_name_help: &'static str,
    role: &'static str,
    language: &'static str,
    time_zone: &'static str,
    state: &'static str,
    enabled: &'static str,
    disabled_since: &'static str,
    you: &'static str,
    add: &'static str,
    add_submit: &'static str,
    disable: &'static str,
    enable: &'static str,
    reset: &'static str,
    confirm_disable: &'static str,
    confirm_reset: &'static str,
    added_heading: &'static str,
    added_explain: &'static str,
    reset_heading: &'static str,
    reset_explain: &'static str,
    back_to_users: &'static str,
    done_disabled: &'static str,
    done_enabled: &'static str,
    bad_login: &'static str,
    bad_display_name: &'static str,
    bad_role: &'static str,
    bad_lang: &'static str,
    bad_time_zone: &'static str,
    login_taken: &'static str,
    not_yourself: &'static str,
    not_your_password: &'static str,
    last_admin: &'static str,
    no_such_user: &'static str,
}

const EN: Texts = Texts {
    title: "People",
    login: "Login",
    display_name: "Name",
    display_name_help: "As pages and ticket logs show it; the login when empty.",
    role: "Role",
    language: "Language",
    time_zone: "Time zone",
    state: "State",
    enabled: "enabled",
    disabled_since: "disabled since",
    you: "you",
    add: "Add a person",
    add_submit: "Add and show the password",
    disable: "Disable",
    enable: "Enable",
    reset: "Reset password",
    confirm_disable: "Disable this account? Their sessions end at once.",
    confirm_reset: "Give this account a new password? The old one stops working and their sessions end.",
    added_heading: "Account added",
    added_explain: "Give this password to the person (in person or by a channel only they read). They sign in with their login and can change it on their account page.",
    reset_heading: "Password reset",
    reset_explain: "The old password no longer works and their sessions have ended. Give them this one.",
    back_to_users: "Back to people",
    done_disabled: "Disabled: their sessions have ended and they cannot sign in.",
    done_enabled: "Enabled: they can sign in again.",
    bad_login: "The login must have 1 to 64 of a-z, 0-9, '.', '_', '-' and start with a letter or digit.",
    bad_display_name: "The name must have at most 100 characters and no control characters.",
    bad_role: "Choose a role: admin, planner or engineer.",
    bad_lang: "Choose a language: en or zh.",
    bad_time_zone: "Unknown time zone: use an IANA name such as Asia/Shanghai or UTC.",
    login_taken: "There is already an account with this login.",
    not_yourself: "You cannot disable your own account; another admin can.",
    not_your_password: "Change your own password on your account page.",
    last_admin: "This is the last enabled admin: enable or add another admin first, or nobody could manage people here.",
    no_such_user: "There is no such account.",
};

const ZH: Texts = Texts {
    title: "用户",
    login: "用户名",
    display_name: "姓名",
    display_name_help: "页面和工单记录中显示的名字；留空则使用用户名。",
    role: "角色",
    language: "语言",
    time_zone: "时区",
    state: "状态",
    enabled: "已启用",
    disabled_since: "停用于",
    you: "本人",
    add: "新增用户",
    add_submit: "新增并显示密码",
    disable: "停用",
    enable: "启用",
    reset: "重置密码",
    confirm_disable: "确定停用此账户？其所有登录将立即失效。",
    confirm_reset: "确定为此账户生成新密码？旧密码将失效，其所有登录将结束。",
    added_heading: "账户已创建",
    added_explain: "请将此密码交给本人（当面或通过仅本人可见的渠道）。本人用用户名登录后，可在“我的账户”页面修改密码。",
    reset_heading: "密码已重置",
    reset_explain: "旧密码已失效，其所有登录已结束。请将新密码交给本人。",
    back_to_users: "返回用户列表",
    done_disabled: "已停用：其登录已结束，无法再登录。",
    done_enabled: "已启用：可以重新登录。",
    bad_login: "用户名须为 1 至 64 个字符，只能包含 a-z、0-9、“.”、“_”、“-”，并以字母或数字开头。",
    bad_display_name: "姓名最多 100 个字符，且不能包含控制字符。",
    bad_role: "请选择角色：管理员、服务计划员或工程师。",
    bad_lang: "请选择语言：en 或 zh。",
    bad_time_zone: "未知时区：请使用 IANA 时区名称，例如 Asia/Shanghai 或 UTC。",
    login_taken: "该用户名已被使用。",
    not_yourself: "不能停用自己的账户，请由其他管理员操作。",
    not_your_password: "请在“我的账户”页面修改您自己的密码。",
    last_admin: "这是最后一个启用的管理员：请先启用或新增另一名管理员，否则将无人能在此管理用户。",
    no_such_user: "没有此账户。",
};

/// A row of the list.
#[derive(Debug)]
pub(crate) struct Row {
    id: i64,
    login: String,
    display_name: String,
    role: &'static str,
    lang: &'static str,
    time_zone: String,
    created: String,
    disabled: Option<String>,
    is_you: bool,
}

/// What the add form holds (kept after an error).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    time_zone: String,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    a: &'static super::Texts,
    t: &'static Texts,
    rows: Vec<Row>,
    pager: Pager,
    page: u64,
    form: AddForm,
    roles: Vec<(&'static str, &'static str)>,
    zones: &'static [&'static str],
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<String>,
    done: Option<String>,
    login: Option<String>,
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "English",
        Lang::Zh => "简体中文",
    }
}

/// The users page at `page`, with a notice, an error and the add form's values.
async fn users_page(
    state: &ConsoleState,
    viewer: &Viewer,
    page: u64,
    form: AddForm,
    notice: Option<String>,
    error: Option<String>,
) -> crate::Result<UsersPage> {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let a = super::texts(lang);
    let users = state.users.clone();
    let offset = (page - 1).saturating_mul(PAGE_SIZE);
    let (list, total) = blocking(move || Ok(users.page(offset, PAGE_SIZE)?)).await?;
    let chrome = super::chrome(viewer, t.title, "/admin/users");
    let clock = &viewer.clock;
    let rows = list
        .into_iter()
        .map(|u: UserInfo| Row {
            is_you: u.id == viewer.principal.key_id,
            id: u.id,
            role: chrome.t.role(u.role),
            lang: lang_name(u.lang),
            created: clock.at(u.created_at),
            disabled: u.disabled_at.map(|at| clock.at(at)),
            login: u.login,
            display_name: u.display_name,
            time_zone: u.time_zone,
        })
        .collect();
    let pager = Pager::numbered(page, PAGE_SIZE, total, lang, |n| {
        href("/admin/users", &[("page", Some(n.to_string()))])
    });
    let roles = [Role::Planner, Role::Engineer, Role::Admin]
        .into_iter()
        .map(|r| (r.as_str(), chrome.t.role(r)))
        .collect();
    Ok(UsersPage {
        chrome,
        a,
        t,
        rows,
        pager,
        page,
        form,
        roles,
        zones: &ZONES,
        notice,
        error,
    })
}

/// `GET /console/admin/users?page=N`.
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
    let who = q
        .login
        .filter(|l| accounts::check_login(l).is_ok())
        .map(|l| format!("{l}: "))
        .unwrap_or_default();
    let notice = match q.done.as_deref() {
        Some("disabled") => Some(format!("{who}{}", t.done_disabled)),
        Some("enabled") => Some(format!("{who}{}", t.done_enabled)),
        _ => None,
    };
    let form = AddForm {
        lang: lang.as_str().to_owned(),
        time_zone: viewer.clock.tz.name().to_owned(),
        role: Role::Planner.as_str().to_owned(),
        ..AddForm::default()
    };
    let page = users_page(&state, &viewer, page, form, notice, None)
        .await
        .map_err(fail(lang))?;
    Ok(render(&page))
}

/// The form's account, or the message that says what does not fit.
fn check(form: &AddForm, t: &Texts) -> Result<(Role, Lang), &'static str> {
    accounts::check_login(form.login.trim()).map_err(|_| t.bad_login)?;
    let name = form.display_name.trim();
    if !name.is_empty() {
        accounts::check_display_name(name).map_err(|_| t.bad_display_name)?;
    }
    let role: Role = form.role.parse().map_err(|_| t.bad_role)?;
    accounts::check_role(role).map_err(|_| t.bad_role)?;
    let lang: Lang = form.lang.parse().map_err(|_| t.bad_lang)?;
    accounts::check_time_zone(form.time_zone.trim()).map_err(|_| t.bad_time_zone)?;
    Ok((role, lang))
}

/// The users page answering a form with `status` and `error` (nothing changed).
async fn refused(
    state: &ConsoleState,
    viewer: &Viewer,
    status: StatusCode,
    form: AddForm,
    error: &str,
) -> Response {
    let lang = viewer.lang();
    match users_page(state, viewer, 1, form, None, Some(error.to_owned())).await {
        Ok(page) => render_status(status, &page),
        Err(e) => error_page(e, lang),
    }
}

/// `POST /console/admin/users`: adds an account and shows its password once.
pub(crate) async fn add(
    State(state): State<ConsoleState>,
    CsrfForm { viewer, form }: CsrfForm<AddForm>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let path = format!("{PREFIX}/admin/users");
    gate_post(&state, &viewer, Permission::ManageKeys, &path).await?;
    let (role, user_lang) = match check(&form, t) {
        Ok(v) => v,
        Err(message) => {
            return Ok(refused(&state, &viewer, StatusCode::BAD_REQUEST, form, message).await)
        }
    };
    let users = state.users.clone();
    let login = form.login.trim().to_owned();
    let display_name = form.display_name.trim().to_owned();
    let tz = form.time_zone.trim().to_owned();
    let added = blocking(move || {
        Ok(users.add(&NewUser {
            login: &login,
            display_name: &display_name,
            role,
            lang: user_lang,
            time_zone: &tz,
        })?)
    })
    .await;
    let (password, user) = match added {
        Ok(v) => v,
        Err(Error::Store(store::Error::Conflict(_))) => {
            return Ok(refused(&state, &viewer, StatusCode::CONFLICT, form, t.login_taken).await)
        }
        Err(Error::Store(store::Error::Invalid(m))) => {
            return Ok(refused(&state, &viewer, StatusCode::BAD_REQUEST, form, &m).await)
        }
        Err(e) => return Err(fail(lang)(e)),
    };
    audit_action(
        &state,
        &viewer,
        &path,
        StatusCode::OK,
        format!(
            "added user {} ({}, {:?}, {}, {})",
            user.login, user.role, user.display_name, user.lang, user.time_zone
        ),
    )
    .await;
    tracing::info!(user_id = user.id, role = %user.role, "Added a console account");
    let a = super::texts(lang);
    Ok(render(&SecretPage {
        chrome: super::chrome(&viewer, t.added_heading, "/admin/users"),
        t: a,
        heading: format!(
            "{}: {} ({})",
            t.added_heading, user.login, user.display_name
        ),
        explain: t.added_explain.to_owned(),
        secret: password,
        back: format!("{PREFIX}/admin/users"),
        back_label: t.back_to_users,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    /// The list page to come back to.
    #[serde(default)]
    page: Option<String>,
}

/// The account of `raw` (a path segment), or a 400/404 page.
async fn target(state: &ConsoleState, viewer: &Viewer, raw: &str) -> Result<UserInfo, Response> {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let id = path_id(raw, lang).map_err(fail(lang))?;
    let users = state.users.clone();
    blocking(move || Ok(users.get(id)?))
        .await
        .map_err(fail(lang))?
        .ok_or_else(|| fail(lang)(Error::NotFound(t.no_such_user.into())))
}

fn back_to_list(page: Option<&str>, done: &str, login: &str) -> Response {
    let page = page.filter(|p| p.parse::<u64>().is_ok_and(|n| n >= 1));
    Redirect::to(&href(
        "/admin/users",
        &[
            ("page", page.map(str::to_owned)),
            ("done", Some(done.to_owned())),
            ("login", Some(login.to_owned())),
        ],
    ))
    .into_response()
}

/// `POST /console/admin/users/{id}/disable`: ends their sessions; not oneself, not the
/// last enabled admin.
pub(crate) async fn disable(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    CsrfForm { viewer, form }: CsrfForm<ActionForm>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let path = format!("{PREFIX}/admin/users/{raw}/disable");
    gate_post(&state, &viewer, Permission::ManageKeys, &path).await?;
    let user = target(&state, &viewer, &raw).await?;
    if user.id == viewer.principal.key_id {
        return Ok(refused(
            &state,
            &viewer,
            StatusCode::CONFLICT,
            AddForm::default(),
            t.not_yourself,
        )
        .await);
    }
    let users = state.users.clone();
    let id = user.id;
    match blocking(move || Ok(users.disable_unless_last_admin(id)?)).await {
        Ok(_) => {}
        Err(Error::Store(store::Error::Conflict(_))) => {
            return Ok(refused(
                &state,
                &viewer,
                StatusCode::CONFLICT,
                AddForm::default(),
                t.last_admin,
            )
            .await)
        }
        Err(e) => return Err(fail(lang)(e)),
    }
    audit_action(
        &state,
        &viewer,
        &path,
        StatusCode::SEE_OTHER,
        format!("disabled user {} ({})", user.login, user.role),
    )
    .await;
    Ok(back_to_list(form.page.as_deref(), "disabled", &user.login))
}

/// `POST /console/admin/users/{id}/enable`.
pub(crate) async fn enable(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    CsrfForm { viewer, form }: CsrfForm<ActionForm>,
) -> PageResult {
    let lang = viewer.lang();
    let path = format!("{PREFIX}/admin/users/{raw}/enable");
    gate_post(&state, &viewer, Permission::ManageKeys, &path).await?;
    let user = target(&state, &viewer, &raw).await?;
    let users = state.users.clone();
    let id = user.id;
    blocking(move || Ok(users.set_disabled(id, false)?))
        .await
        .map_err(fail(lang))?;
    audit_action(
        &state,
        &viewer,
        &path,
        StatusCode::SEE_OTHER,
        format!("enabled user {} ({})", user.login, user.role),
    )
    .await;
    Ok(back_to_list(form.page.as_deref(), "enabled", &user.login))
}

/// `POST /console/admin/users/{id}/reset-password`: a new generated password, shown
/// once; their sessions end.
pub(crate) async fn reset_password(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    CsrfForm { viewer, .. }: CsrfForm<ActionForm>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let path = format!("{PREFIX}/admin/users/{raw}/reset-password");
    gate_post(&state, &viewer, Permission::ManageKeys, &path).await?;
    let user = target(&state, &viewer, &raw).await?;
    if user.id == viewer.principal.key_id {
        return Ok(refused(
            &state,
            &viewer,
            StatusCode::CONFLICT,
            AddForm::default(),
            t.not_your_password,
        )
        .await);
    }
    let users = state.users.clone();
    let id = user.id;
    let (password, user) = blocking(move || Ok(users.reset_password(id)?))
        .await
        .map_err(fail(lang))?;
    audit_action(
        &state,
        &viewer,
        &path,
        StatusCode::OK,
        format!("reset the password of {} ({})", user.login, user.role),
    )
    .await;
    Ok(render(&SecretPage {
        chrome: super::chrome(&viewer, t.reset_heading, "/admin/users"),
        t: super::texts(lang),
        heading: format!(
            "{}: {} ({})",
            t.reset_heading, user.login, user.display_name
        ),
        explain: t.reset_explain.to_owned(),
        secret: password,
        back: format!("{PREFIX}/admin/users"),
        back_label: t.back_to_users,
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use store::users::SignIn;

    use super::*;
    use crate::testing::{Fixture, HOSTILE};

    /// The password a secret page shows.
    fn secret(body: &str) -> String {
        let start = body.find("class=\"secret\"").expect("a secret on the page");
        let rest = &body[start..];
        let open = rest.find('>').unwrap() + 1;
        let close = rest[open..].find('<').unwrap();
        rest[open..open + close].to_owned()
    }

    async fn audit_summaries(f: &Fixture) -> Vec<String> {
        f.api
            .access()
            .unwrap()
            .audit_log(None, 100)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} | {}", e.record.key_name, e.record.summary))
            .collect()
    }

    #[tokio::test]
    async fn an_added_person_signs_in_with_the_password_shown_once() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let a = f
            .post(
                "/console/admin/users",
                &admin,
                &[
                    ("login", "li.wei"),
                    ("display_name", HOSTILE),
                    ("role", "planner"),
                    ("lang", "zh"),
                    ("time_zone", "Asia/Shanghai"),
                ],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(
            a.location().is_empty(),
            "the password is in the answer, not a URL"
        );
        let password = secret(&a.body);
        assert_eq!(password.len(), 19);
        assert!(
            !a.body.contains("<script>alert"),
            "the hostile name is escaped"
        );
        assert!(a.body.contains(&crate::admin::esc("<script>")));
        assert_eq!(
            a.headers.get("cache-control").unwrap(),
            "no-store",
            "never cached"
        );
        assert!(matches!(
            f.users.sign_in("li.wei", &password, "127.0.0.1").unwrap(),
            SignIn::Accepted(_)
        ));
        let summaries = audit_summaries(&f).await;
        assert!(
            summaries
                .iter()
                .any(|s| s.starts_with("admin (admin) | added user li.wei (planner")),
            "{summaries:?}"
        );
        assert!(
            !summaries.iter().any(|s| s.contains(&password)),
            "the password is never audited"
        );
        // The list shows the name as text.
        let list = f.get("/console/admin/users", Some(&admin)).await;
        assert!(list.body.contains("li.wei"));
        assert!(!list.body.contains("<script>alert"));
        // The same login again is a conflict, and nothing changes.
        let again = f
            .post(
                "/console/admin/users",
                &admin,
                &[
                    ("login", "li.wei"),
                    ("display_name", ""),
                    ("role", "engineer"),
                    ("lang", "en"),
                    ("time_zone", "UTC"),
                ],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.body.contains(&crate::admin::esc(EN.login_taken)));
        let user = f.users.by_login("li.wei").unwrap().unwrap();
        assert_eq!(user.role, Role::Planner);
    }

    #[tokio::test]
    async fn bad_input_is_a_clear_400_and_changes_nothing() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        for (field, value, message) in [
            ("login", "Li Wei", EN.bad_login),
            ("login", "", EN.bad_login),
            ("role", "integration", EN.bad_role),
            ("role", "king", EN.bad_role),
            ("lang", "fr", EN.bad_lang),
            ("time_zone", "Mars/Olympus", EN.bad_time_zone),
            ("display_name", "a\u{7}b", EN.bad_display_name),
        ] {
            let mut fields = vec![
                ("login", "new.person"),
                ("display_name", "New Person"),
                ("role", "planner"),
                ("lang", "en"),
                ("time_zone", "UTC"),
            ];
            for f in &mut fields {
                if f.0 == field {
                    f.1 = value;
                }
            }
            let a = f.post("/console/admin/users", &admin, &fields).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{field}={value:?}");
            assert!(
                a.body.contains(&crate::admin::esc(message)),
                "{field}: {}",
                a.body
            );
            assert!(f.users.by_login("new.person").unwrap().is_none());
        }
        // The form keeps what was typed.
        let a = f
            .post(
                "/console/admin/users",
                &admin,
                &[
                    ("login", "keep.me"),
                    ("role", "planner"),
                    ("lang", "en"),
                    ("time_zone", "Nowhere"),
                ],
            )
            .await;
        assert!(a.body.contains("value=\"keep.me\""), "{}", a.body);
        // Bad pages and ids.
        for path in ["/console/admin/users?page=0", "/console/admin/users?page=x"] {
            assert_eq!(
                f.get(path, Some(&admin)).await.status,
                StatusCode::BAD_REQUEST
            );
        }
        let bad = f
            .post("/console/admin/users/abc/disable", &admin, &[])
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let none = f
            .post("/console/admin/users/9999/disable", &admin, &[])
            .await;
        assert_eq!(none.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_disabled_persons_session_ends_and_enable_lets_them_back() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let planner = f.sign_in("planner");
        assert_eq!(
            f.get("/console/account", Some(&planner)).await.status,
            StatusCode::OK
        );
        let id = planner.user_id.to_string();
        let a = f
            .post(
                &format!("/console/admin/users/{id}/disable"),
                &admin,
                &[("page", "1")],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        assert!(a
            .location()
            .starts_with("/console/admin/users?page=1&done=disabled"));
        let after = f.get("/console/account", Some(&planner)).await;
        assert_eq!(after.status, StatusCode::SEE_OTHER, "their session ended");
        let list = f.get(a.location(), Some(&admin)).await;
        assert!(
            list.body.contains(&crate::admin::esc(EN.done_disabled)),
            "{}",
            list.body
        );
        assert!(matches!(
            f.users
                .sign_in("planner", &f.passwords["planner"], "127.0.0.1")
                .unwrap(),
            SignIn::Disabled
        ));
        let a = f
            .post(&format!("/console/admin/users/{id}/enable"), &admin, &[])
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER);
        assert!(matches!(
            f.users
                .sign_in("planner", &f.passwords["planner"], "127.0.0.1")
                .unwrap(),
            SignIn::Accepted(_)
        ));
        let summaries = audit_summaries(&f).await;
        assert!(summaries
            .iter()
            .any(|s| s.ends_with("disabled user planner (planner)")));
        assert!(summaries
            .iter()
            .any(|s| s.ends_with("enabled user planner (planner)")));
    }

    #[tokio::test]
    async fn an_admin_keeps_themselves_and_the_last_admin() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let me = f
            .post(
                &format!("/console/admin/users/{}/disable", admin.user_id),
                &admin,
                &[],
            )
            .await;
        assert_eq!(me.status, StatusCode::CONFLICT);
        assert!(me.body.contains(&crate::admin::esc(EN.not_yourself)));
        assert_eq!(
            f.get("/console/admin", Some(&admin)).await.status,
            StatusCode::OK
        );
        let reset_me = f
            .post(
                &format!("/console/admin/users/{}/reset-password", admin.user_id),
                &admin,
                &[],
            )
            .await;
        assert_eq!(reset_me.status, StatusCode::CONFLICT);
        // Another admin may disable this one: the one acting is still an enabled admin.
        // (So the last enabled admin can only go by a race of two admins disabling each
        // other; the store refuses the second in one statement, tested in store.)
        f.users
            .add(&NewUser {
                login: "boss2",
                display_name: "",
                role: Role::Admin,
                lang: Lang::En,
                time_zone: "UTC",
            })
            .unwrap();
        let boss2 = f.sign_in("boss2");
        let a = f
            .post(
                &format!("/console/admin/users/{}/disable", admin.user_id),
                &boss2,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        assert_eq!(
            f.get("/console/admin", Some(&admin)).await.status,
            StatusCode::SEE_OTHER,
            "the disabled admin's session ended"
        );
    }

    #[tokio::test]
    async fn a_reset_password_is_shown_once_and_ends_their_sessions() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let engineer = f.sign_in("engineer");
        let a = f
            .post(
                &format!("/console/admin/users/{}/reset-password", engineer.user_id),
                &admin,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let password = secret(&a.body);
        assert_eq!(
            f.get("/console/account", Some(&engineer)).await.status,
            StatusCode::SEE_OTHER
        );
        assert!(matches!(
            f.users.sign_in("engineer", &password, "127.0.0.1").unwrap(),
            SignIn::Accepted(_)
        ));
        assert!(!audit_summaries(&f)
            .await
            .iter()
            .any(|s| s.contains(&password)));
    }

    #[tokio::test]
    async fn people_come_a_page_at_a_time() {
        let f = Fixture::new();
        for i in 0..30 {
            f.users
                .add(&NewUser {
                    login: &format!("p{i:02}"),
                    display_name: "",
                    role: Role::Engineer,
                    lang: Lang::En,
                    time_zone: "UTC",
                })
                .unwrap();
        }
        let admin = f.sign_in("admin");
        let one = f.get("/console/admin/users", Some(&admin)).await;
        assert!(one.body.contains("Page 1 of 2"), "{}", one.body);
        assert!(one.body.contains("href=\"/console/admin/users?page=2\""));
        let two = f.get("/console/admin/users?page=2", Some(&admin)).await;
        assert_eq!(two.status, StatusCode::OK);
        assert!(two.body.contains("p29"));
        assert!(!two.body.contains(">p00<"));
        assert!(two.body.contains("Page 2 of 2"));
    }

    #[tokio::test]
    async fn planners_cannot_act_and_the_attempt_is_audited() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let engineer = f.sign_in("engineer");
        let a = f
            .post(
                &format!("/console/admin/users/{}/disable", engineer.user_id),
                &planner,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert!(f
            .users
            .get(engineer.user_id)
            .unwrap()
            .unwrap()
            .disabled_at
            .is_none());
        let summaries = audit_summaries(&f).await;
        assert!(
            summaries
                .iter()
                .any(|s| s.starts_with("planner (planner) | refused")),
            "{summaries:?}"
        );
    }

    #[tokio::test]
    async fn a_chinese_admin_reads_chinese() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        f.users
            .set_preferences(admin.user_id, Lang::Zh, "Asia/Shanghai")
            .unwrap();
        let a = f.get("/console/admin/users", Some(&admin)).await;
        for label in [
            "新增用户",
            "停用",
            "重置密码",
            "服务计划员",
            "第 1 页，共 1 页",
        ] {
            assert!(a.body.contains(label), "{label}");
        }
        let bad = f
            .post(
                "/console/admin/users",
                &admin,
                &[
                    ("login", "X"),
                    ("role", "planner"),
                    ("lang", "zh"),
                    ("time_zone", "UTC"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains(&crate::admin::esc(ZH.bad_login)));
    }
}
