//! Signing in and out.
//!
//! The sign-in form has no session to carry a CSRF token, so it uses a double-submit
//! token instead: the form's `csrf` field must equal the `fixahead_sign_in` cookie set
//! with the form (SameSite=Strict, so another site can neither read nor send it).
//! Every outcome (signed in, refused, throttled, disabled) is written to the audit log
//! with the login and the client's address.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use domain::Lang;
use serde::Deserialize;
use store::access::{AuditRecord, PrincipalKind};
use store::users::SignIn;

use crate::csrf::{token_matches, CsrfForm};
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{error_page, render_with, Chrome};
use crate::session::{
    cookie_value, set_cookie, Visitor, LANG_COOKIE, SESSION_COOKIE, SIGN_IN_COOKIE,
};
use crate::state::ConsoleState;
use crate::PREFIX;

struct Texts {
    title: &'static str,
    login: &'static str,
    password: &'static str,
    submit: &'static str,
    refused: &'static str,
    throttled: &'static str,
    disabled: &'static str,
    expired: &'static str,
    signed_out: &'static str,
    help: &'static str,
}

const EN: Texts = Texts {
    title: "Sign in",
    login: "Login",
    password: "Password",
    submit: "Sign in",
    refused: "The login or the password is wrong.",
    throttled: "Too many failed sign-ins. Try again after",
    disabled: "This account is disabled. Ask an administrator.",
    expired: "The form had expired. Please sign in again.",
    signed_out: "You have signed out.",
    help: "Accounts are made by an administrator (fixahead users add).",
};

const ZH: Texts = Texts {
    title: "登录",
    login: "用户名",
    password: "密码",
    submit: "登录",
    refused: "用户名或密码错误。",
    throttled: "登录失败次数过多，请在以下时间后重试：",
    disabled: "此账户已停用，请联系管理员。",
    expired: "表单已过期，请重新登录。",
    signed_out: "您已退出登录。",
    help: "账户由管理员创建（fixahead users add）。",
};

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    t: &'static Texts,
    csrf: String,
    next: String,
    login: String,
    message: Option<String>,
}

/// Whether `next` is a console path to come back to after signing in (never another
/// site: `//host`, `/\host` and absolute URLs are refused).
pub(crate) fn safe_next(next: &str) -> bool {
    (next == PREFIX || next.starts_with(&format!("{PREFIX}/")))
        && !next.contains('\\')
        && !next.contains("//")
        && !next.chars().any(char::is_control)
        && !next.starts_with(&format!("{PREFIX}/sign-"))
}

fn next_or_home(next: &str) -> String {
    if safe_next(next) {
        next.to_owned()
    } else {
        format!("{PREFIX}/")
    }
}

/// The client's address: the TCP peer (a proxy in front of fixahead is the peer; the
/// sign-in limits per address then count the proxy: docs/operations.md).
pub(crate) struct ClientAddr(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
        ))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct FormQuery {
    #[serde(default)]
    next: String,
    lang: Option<String>,
    #[serde(default)]
    signed_out: bool,
}

/// `GET /console/sign-in`: the form (or, signed in already, where `next` points).
pub(crate) async fn form(
    axum::extract::State(state): axum::extract::State<ConsoleState>,
    visitor: Visitor,
    Query(q): Query<FormQuery>,
) -> Response {
    if visitor.viewer.is_some() {
        return Redirect::to(&next_or_home(&q.next)).into_response();
    }
    let chosen = q.lang.as_deref().and_then(|l| l.parse::<Lang>().ok());
    let lang = chosen.unwrap_or(visitor.lang);
    let t = pick(lang, &EN, &ZH);
    let message = q.signed_out.then(|| t.signed_out.to_owned());
    sign_in_page(
        &state,
        lang,
        StatusCode::OK,
        &q.next,
        "",
        message,
        chosen.is_some(),
    )
}

fn sign_in_page(
    state: &ConsoleState,
    lang: Lang,
    status: StatusCode,
    next: &str,
    login: &str,
    message: Option<String>,
    remember_lang: bool,
) -> Response {
    let t = pick(lang, &EN, &ZH);
    let token = store::access::generate_key();
    let secure = state.settings.secure_cookies;
    let mut response = render_with(
        status,
        &SignInPage {
            chrome: Chrome::anonymous(lang, t.title),
            t,
            csrf: token.clone(),
            next: if safe_next(next) {
                next.to_owned()
            } else {
                String::new()
            },
            login: login.to_owned(),
            message,
        },
    );
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &token, secure, Some(3600)),
    );
    if remember_lang {
        headers.append(
            header::SET_COOKIE,
            set_cookie(LANG_COOKIE, lang.as_str(), secure, Some(365 * 86_400)),
        );
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// `POST /console/sign-in`.
pub(crate) async fn submit(
    axum::extract::State(state): axum::extract::State<ConsoleState>,
    visitor: Visitor,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let lang = visitor.lang;
    let t = pick(lang, &EN, &ZH);
    let expected = cookie_value(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !token_matches(&form.csrf, &expected) {
        return sign_in_page(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            &form.next,
            &form.login,
            Some(t.expired.into()),
            false,
        );
    }
    let users = state.users.clone();
    let (login, password, addr) = (form.login.clone(), form.password, address.clone());
    let outcome = match blocking(move || Ok(users.sign_in(&login, &password, &addr)?)).await {
        Ok(o) => o,
        Err(e) => return error_page(e, lang),
    };
    let login = form.login.chars().take(100).collect::<String>();
    match outcome {
        SignIn::Accepted(user) => {
            let users = state.users.clone();
            let (u, addr) = (user.clone(), address.clone());
            let started = match blocking(move || Ok(users.start_session(&u, &addr)?)).await {
                Ok(s) => s,
                Err(e) => return error_page(e, lang),
            };
            let principal = api::Principal::from(user);
            audit(
                &state,
                principal.audit_record(
                    "POST",
                    &format!("{PREFIX}/sign-in"),
                    303,
                    format!("signed in from {address}"),
                ),
            )
            .await;
            let mut response = Redirect::to(&next_or_home(&form.next)).into_response();
            let secure = state.settings.secure_cookies;
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &started.token, secure, None),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(SIGN_IN_COOKIE, "", secure, Some(0)),
            );
            response
        }
        refused => {
            let (status, message, why) = match &refused {
                SignIn::Throttled { until } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "{} {}",
                        t.throttled,
                        crate::clock::Clock::new("UTC", lang).at_zone(*until)
                    ),
                    "throttled",
                ),
                SignIn::Disabled => (
                    StatusCode::FORBIDDEN,
                    t.disabled.to_owned(),
                    "account disabled",
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    t.refused.to_owned(),
                    "wrong login or password",
                ),
            };
            let account = {
                let users = state.users.clone();
                let login = login.clone();
                blocking(move || Ok(users.by_login(&login)?))
                    .await
                    .ok()
                    .flatten()
            };
            audit(
                &state,
                AuditRecord {
                    principal: PrincipalKind::User,
                    key_id: account.as_ref().map_or(0, |a| a.id),
                    key_name: account.as_ref().map_or_else(
                        || login.clone(),
                        |a| format!("{} ({})", a.display_name, a.login),
                    ),
                    role: account.as_ref().map(|a| a.role),
                    method: "POST".into(),
                    path: format!("{PREFIX}/sign-in"),
                    status: status.as_u16(),
                    summary: format!("sign-in refused ({why}) for login {login:?} from {address}"),
                },
            )
            .await;
            sign_in_page(
                &state,
                lang,
                status,
                &form.next,
                &login,
                Some(message),
                false,
            )
        }
    }
}

/// Writes an audit record; a failure is logged and counted like the API's.
pub(crate) async fn audit(state: &ConsoleState, record: AuditRecord) {
    let Some(access) = state.api.access().cloned() else {
        return;
    };
    if let Err(e) = blocking(move || Ok(access.audit(&record)?)).await {
        tracing::error!(error = %e, "Could not write an audit record");
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignOutForm {}

/// `POST /console/sign-out`.
pub(crate) async fn sign_out(
    axum::extract::State(state): axum::extract::State<ConsoleState>,
    headers: HeaderMap,
    CsrfForm { viewer, .. }: CsrfForm<SignOutForm>,
) -> Response {
    if let Some(token) = cookie_value(&headers, SESSION_COOKIE) {
        let users = state.users.clone();
        if let Err(e) = blocking(move || Ok(users.end_session(&token)?)).await {
            return error_page(e, viewer.lang());
        }
    }
    audit(
        &state,
        viewer.principal.audit_record(
            "POST",
            &format!("{PREFIX}/sign-out"),
            303,
            "signed out".into(),
        ),
    )
    .await;
    let mut response = Redirect::to(&format!("{PREFIX}/sign-in?signed_out=true")).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", state.settings.secure_cookies, Some(0)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_signing_in() {
        for ok in ["/console", "/console/", "/console/tickets/7?tab=log"] {
            assert!(safe_next(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "//evil.example/console/",
            "/console//evil",
            "https://evil.example/console/",
            "/console/\\evil",
            "/consolex",
            "/console/sign-in",
            "/console/x\n",
        ] {
            assert!(!safe_next(bad), "{bad:?}");
        }
    }
}
