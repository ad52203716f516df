//! A person's own account: language, time zone and password.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use domain::Lang;
use serde::Deserialize;

use crate::csrf::CsrfForm;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::{set_cookie, Viewer, SESSION_COOKIE};
use crate::sign_in::{audit, ClientAddr};
use crate::state::ConsoleState;
use crate::{Error, PREFIX};

pub(crate) struct Texts {
    title: &'static str,
    profile: &'static str,
    login: &'static str,
    display_name: &'static str,
    role: &'static str,
    preferences: &'static str,
    language: &'static str,
    time_zone: &'static str,
    time_zone_help: &'static str,
    password: &'static str,
    current_password: &'static str,
    new_password: &'static str,
    repeat_password: &'static str,
    password_help: &'static str,
    change_password: &'static str,
    saved: &'static str,
    password_changed: &'static str,
    passwords_differ: &'static str,
}

const EN: Texts = Texts {
    title: "Your account",
    profile: "Profile",
    login: "Login",
    display_name: "Name",
    role: "Role",
    preferences: "Language and time zone",
    language: "Language",
    time_zone: "Time zone",
    time_zone_help:
        "An IANA name such as Asia/Shanghai or Europe/Berlin; times on every page are shown in it.",
    password: "Password",
    current_password: "Current password",
    new_password: "New password",
    repeat_password: "New password again",
    password_help: "At least 12 characters. Your other sessions end when it changes.",
    change_password: "Change password",
    saved: "Saved.",
    password_changed: "Your password has been changed; your other sessions have ended.",
    passwords_differ: "The two new passwords differ.",
};

const ZH: Texts = Texts {
    title: "我的账户",
    profile: "个人信息",
    login: "用户名",
    display_name: "姓名",
    role: "角色",
    preferences: "语言和时区",
    language: "语言",
    time_zone: "时区",
    time_zone_help: "IANA 时区名称，例如 Asia/Shanghai；所有页面上的时间均按此时区显示。",
    password: "密码",
    current_password: "当前密码",
    new_password: "新密码",
    repeat_password: "再次输入新密码",
    password_help: "至少 12 个字符。修改后，您在其他设备上的登录将失效。",
    change_password: "修改密码",
    saved: "已保存。",
    password_changed: "密码已修改，其他设备上的登录已失效。",
    passwords_differ: "两次输入的新密码不一致。",
};

/// Time zones offered first in the form (any IANA name may be typed).
const COMMON_ZONES: [&str; 8] = [
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "UTC",
];

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    t: &'static Texts,
    login: String,
    display_name: String,
    role: &'static str,
    lang: Lang,
    time_zone: String,
    zones: &'static [&'static str],
    message: Option<&'static str>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AccountQuery {
    saved: Option<String>,
}

/// `GET /console/account`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(q): Query<AccountQuery>,
) -> PageResult {
    let t = pick(viewer.lang(), &EN, &ZH);
    let message = match q.saved.as_deref() {
        Some("password") => Some(t.password_changed),
        Some(_) => Some(t.saved),
        None => None,
    };
    account_page(&state, &viewer, message, None).await
}

async fn account_page(
    state: &ConsoleState,
    viewer: &Viewer,
    message: Option<&'static str>,
    error: Option<String>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let users = state.users.clone();
    let id = viewer.principal.key_id;
    let user = blocking(move || Ok(users.get(id)?))
        .await
        .map_err(fail(lang))?
        .ok_or_else(|| fail(lang)(Error::NotFound("your account no longer exists".into())))?;
    let chrome = Chrome::new(viewer, t.title, "/account");
    let role = chrome.t.role(user.role);
    Ok(render(&AccountPage {
        chrome,
        t,
        login: user.login,
        display_name: user.display_name,
        role,
        lang: user.lang,
        time_zone: user.time_zone,
        zones: &COMMON_ZONES,
        message,
        error,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PreferencesForm {
    lang: String,
    time_zone: String,
}

/// `POST /console/account/preferences`: language and time zone.
pub(crate) async fn preferences(
    State(state): State<ConsoleState>,
    CsrfForm { viewer, form }: CsrfForm<PreferencesForm>,
) -> PageResult {
    let lang = viewer.lang();
    let new_lang: Lang = form
        .lang
        .parse()
        .map_err(|e: domain::DomainError| fail(lang)(Error::BadRequest(e.to_string())))?;
    let users = state.users.clone();
    let id = viewer.principal.key_id;
    let tz = form.time_zone.trim().to_owned();
    match blocking(move || Ok(users.set_preferences(id, new_lang, &tz)?)).await {
        Ok(user) => {
            audit(
                &state,
                viewer.principal.audit_record(
                    "POST",
                    &format!("{PREFIX}/account/preferences"),
                    303,
                    format!("language {}, time zone {}", user.lang, user.time_zone),
                ),
            )
            .await;
            Ok(Redirect::to(&format!("{PREFIX}/account?saved=preferences")).into_response())
        }
        Err(Error::Store(store::Error::Invalid(m))) => {
            account_page(&state, &viewer, None, Some(m)).await
        }
        Err(e) => Err(fail(lang)(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LanguageForm {
    lang: String,
    #[serde(default)]
    back: String,
}

/// `POST /console/account/language`: the language switch in every page's header;
/// comes back to the page it was on.
pub(crate) async fn language(
    State(state): State<ConsoleState>,
    CsrfForm { viewer, form }: CsrfForm<LanguageForm>,
) -> PageResult {
    let lang = viewer.lang();
    let new_lang: Lang = form
        .lang
        .parse()
        .map_err(|e: domain::DomainError| fail(lang)(Error::BadRequest(e.to_string())))?;
    let users = state.users.clone();
    let id = viewer.principal.key_id;
    let tz = viewer.clock.tz.name().to_owned();
    blocking(move || Ok(users.set_preferences(id, new_lang, &tz)?))
        .await
        .map_err(fail(lang))?;
    let back = if crate::sign_in::safe_next(&form.back) {
        form.back
    } else {
        format!("{PREFIX}/")
    };
    Ok(Redirect::to(&back).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

/// `POST /console/account/password`: a new password, after the current one. Every
/// session of the person ends; this browser gets a new one.
pub(crate) async fn password(
    State(state): State<ConsoleState>,
    ClientAddr(address): ClientAddr,
    CsrfForm { viewer, form }: CsrfForm<PasswordForm>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    if form.new != form.repeat {
        return account_page(&state, &viewer, None, Some(t.passwords_differ.into())).await;
    }
    let users = state.users.clone();
    let id = viewer.principal.key_id;
    let changed = blocking(move || {
        let user = users.change_password(id, &form.current, &form.new)?;
        Ok(users.start_session(&user, &address)?)
    })
    .await;
    match changed {
        Ok(started) => {
            audit(
                &state,
                viewer.principal.audit_record(
                    "POST",
                    &format!("{PREFIX}/account/password"),
                    303,
                    "changed their password".into(),
                ),
            )
            .await;
            let mut response =
                Redirect::to(&format!("{PREFIX}/account?saved=password")).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    &started.token,
                    state.settings.secure_cookies,
                    None,
                ),
            );
            Ok(response)
        }
        Err(Error::Store(store::Error::Invalid(m))) => {
            account_page(&state, &viewer, None, Some(m)).await
        }
        Err(e) => Err(fail(lang)(e)),
    }
}
