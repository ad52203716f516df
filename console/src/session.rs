//! Who is looking: the session cookie, read once per request, and the [`Viewer`] (a
//! signed-in person) or [`Visitor`] (anyone, with a language) handlers take.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use domain::Lang;
use store::users::Session;

use crate::clock::Clock;
use crate::error::blocking;
use crate::state::ConsoleState;
use crate::PREFIX;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "fixahead_session";
/// The cookie that carries the sign-in form's CSRF token before there is a session.
pub(crate) const SIGN_IN_COOKIE: &str = "fixahead_sign_in";
/// The language a visitor chose before signing in.
pub(crate) const LANG_COOKIE: &str = "fixahead_lang";

/// A signed-in person, from a valid session. A handler that takes it is for signed-in
/// people only: without a session a GET is redirected to the sign-in page (which
/// comes back here after), anything else is answered with the same redirect.
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    /// The person as the API's services see them (kind `user`).
    pub(crate) principal: api::Principal,
    /// Their session's CSRF token, for the forms of the page.
    pub(crate) csrf: String,
    /// Their time zone and language.
    pub(crate) clock: Clock,
    /// The page they asked for (path and query) when it is a console page shown by a
    /// GET: where the header's language switch brings them back to.
    pub(crate) here: Option<String>,
}

impl Viewer {
    fn from_session(s: Session, here: Option<String>) -> Self {
        Self {
            clock: Clock::new(&s.user.time_zone, s.user.lang),
            csrf: s.csrf,
            principal: api::Principal::from(s.user),
            here,
        }
    }

    /// Their language.
    pub(crate) fn lang(&self) -> Lang {
        self.clock.lang
    }

    /// Refuses unless their role holds `permission` (the API's permission table).
    pub(crate) fn require(&self, permission: api::http::auth::Permission) -> crate::Result<()> {
        if self.principal.may(permission) {
            Ok(())
        } else {
            Err(crate::Error::Forbidden(format!(
                "role {} may not do this (it needs permission {})",
                self.principal.role,
                permission.as_str()
            )))
        }
    }
}

/// Anyone: the signed-in person if there is one, and the language to answer in (the
/// person's, else the visitor's choice, else the browser's `Accept-Language`).
#[derive(Clone, Debug)]
pub(crate) struct Visitor {
    pub(crate) viewer: Option<Viewer>,
    pub(crate) lang: Lang,
}

/// Middleware on every console route: reads the session cookie and puts the
/// [`Viewer`] (when the session is valid) and the [`Visitor`] in the extensions.
pub(crate) async fn load(
    State(state): State<ConsoleState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = cookie_value(request.headers(), SESSION_COOKIE);
    // Inside the nested router the URI has lost its prefix; the original has it.
    let here = (request.method() == Method::GET)
        .then(|| {
            request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or(request.uri(), |o| &o.0)
                .path_and_query()
                .map(|p| p.as_str().to_owned())
        })
        .flatten()
        .filter(|p| crate::sign_in::safe_next(p));
    let viewer = match token {
        Some(token) => {
            let users = state.users.clone();
            match blocking(move || Ok(users.session(&token)?)).await {
                Ok(session) => session.map(|s| Viewer::from_session(s, here)),
                Err(e) => return crate::page::error_page(e, Lang::default()),
            }
        }
        None => None,
    };
    let lang = match &viewer {
        Some(v) => v.lang(),
        None => visitor_lang(request.headers()),
    };
    if let Some(v) = &viewer {
        request.extensions_mut().insert(v.clone());
    }
    // Where the language switch of an error page comes back to: the page asked for.
    let here = (request.method() == Method::GET)
        .then(|| {
            request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or(request.uri(), |o| &o.0)
                .path_and_query()
                .map(|p| p.as_str().to_owned())
        })
        .flatten()
        .filter(|p| crate::sign_in::safe_next(p));
    let framed = viewer.clone();
    request.extensions_mut().insert(Visitor { viewer, lang });
    let response = next.run(request).await;
    match (
        framed,
        response.extensions().get::<crate::page::ErrorShown>(),
    ) {
        (Some(v), Some(shown)) => crate::page::framed_error(&v, shown, here),
        _ => response,
    }
}

/// A visitor's language: their earlier choice (the language cookie), else the
/// browser's `Accept-Language`, else English.
fn visitor_lang(headers: &HeaderMap) -> Lang {
    cookie_value(headers, LANG_COOKIE)
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default()
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/console`, Secure when the
/// console is served over TLS; `max_age` in seconds (`None`: until the browser closes;
/// `Some(0)`: delete it).
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    secure: bool,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut c = Cookie::build((name.to_owned(), value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(PREFIX)
        .secure(secure);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age));
    }
    HeaderValue::from_str(&c.build().to_string())
        .expect("cookie names and values are visible ASCII")
}

/// Where a request without a session goes: the sign-in page, which comes back to a
/// page GET afterwards.
fn to_sign_in(parts: &Parts) -> Response {
    // Inside the nested router the URI has lost its prefix; the original has it.
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    let back = (parts.method == Method::GET)
        .then(|| uri.path_and_query().map(|p| p.as_str().to_owned()))
        .flatten()
        .filter(|p| crate::sign_in::safe_next(p));
    let target = match back.and_then(|p| serde_urlencoded::to_string([("next", p)]).ok()) {
        Some(query) => format!("{PREFIX}/sign-in?{query}"),
        None => format!("{PREFIX}/sign-in"),
    };
    Redirect::to(&target).into_response()
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .ok_or_else(|| to_sign_in(parts))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Visitor>()
            .cloned()
            .unwrap_or(Visitor {
                viewer: None,
                lang: visitor_lang(&parts.headers),
            }))
    }
}
