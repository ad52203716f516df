//! What every page has: the frame around it ([`Chrome`]: navigation by role, the
//! person, the language switch), rendering with the right headers, and error pages.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use domain::Lang;

use crate::i18n::{self, Common};
use crate::session::{Viewer, Visitor};
use crate::{assets, Error, PREFIX};

/// One entry of the navigation.
#[derive(Debug)]
pub(crate) struct NavItem {
    pub(crate) href: String,
    pub(crate) label: &'static str,
    pub(crate) current: bool,
}

/// The frame of a page: what `base.html` needs.
#[derive(Debug)]
pub(crate) struct Chrome {
    pub(crate) lang: Lang,
    pub(crate) t: &'static Common,
    pub(crate) title: String,
    /// The signed-in person's display name, or none on the sign-in page.
    pub(crate) person: Option<String>,
    pub(crate) role: &'static str,
    pub(crate) nav: Vec<NavItem>,
    pub(crate) csrf: String,
    /// Where the language switch comes back to: the page itself (path and query) when
    /// it was asked for with a GET, else its navigation entry.
    pub(crate) here: String,
    pub(crate) css: String,
    pub(crate) js: String,
    pub(crate) prefix: &'static str,
}

impl Chrome {
    /// The frame of a signed-in person's page titled `title`, with the navigation
    /// entry `current` (a path under [`PREFIX`], e.g. `/`) marked.
    pub(crate) fn new(viewer: &Viewer, title: impl Into<String>, current: &str) -> Self {
        use api::http::auth::Permission as P;
        let lang = viewer.lang();
        let t = i18n::common(lang);
        let p = &viewer.principal;
        let mut nav = Vec::new();
        let mut add = |path: &str, label: &'static str| {
            nav.push(NavItem {
                href: format!("{PREFIX}{path}"),
                label,
                current: path == current,
            })
        };
        if p.may(P::ReadTickets) {
            add("/", t.nav_queue);
        }
        if p.restricted_to_assigned() {
            add("/my-day", t.nav_my_day);
        }
        if p.may(P::ReportProblems) {
            add("/report", t.nav_report);
        }
        if p.may(P::ReadTickets) {
            add("/alerts", t.nav_alerts);
        }
        if p.may(P::ReadFleet) {
            add("/fleet", t.nav_fleet);
        }
        if p.may(P::ReadModels) {
            add("/models", t.nav_models);
        }
        if p.may(P::ManageEngineers) {
            add("/engineers", t.nav_engineers);
        }
        if p.may(P::ReadKpis) {
            add("/kpis", t.nav_kpis);
        }
        if p.may(P::ManageKeys) {
            add("/admin", t.nav_admin);
        }
        add("/account", t.nav_account);
        Self {
            lang,
            t,
            title: title.into(),
            person: Some(p.display_name.clone()),
            role: t.role(p.role),
            nav,
            csrf: viewer.csrf.clone(),
            here: viewer
                .here
                .clone()
                .unwrap_or_else(|| format!("{PREFIX}{current}")),
            css: assets::css_url(),
            js: assets::js_url(),
            prefix: PREFIX,
        }
    }

    /// The frame of a page for anyone (sign-in, errors without a session).
    pub(crate) fn anonymous(lang: Lang, title: impl Into<String>) -> Self {
        Self {
            lang,
            t: i18n::common(lang),
            title: title.into(),
            person: None,
            role: "",
            nav: Vec::new(),
            csrf: String::new(),
            here: format!("{PREFIX}/sign-in"),
            css: assets::css_url(),
            js: assets::js_url(),
            prefix: PREFIX,
        }
    }
}

/// Renders `page` as an HTML response with `status`.
pub(crate) fn render_with(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Could not render a console page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Renders `page` as a 200 HTML response.
pub(crate) fn render(page: &impl Template) -> Response {
    render_with(StatusCode::OK, page)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: &'static str,
    message: Option<String>,
}

/// What an error page says, kept on its response: the session layer frames the page
/// for a signed-in person ([`framed_error`]), with their navigation.
#[derive(Clone, Debug)]
pub(crate) struct ErrorShown {
    status: StatusCode,
    message: Option<String>,
}

fn error_heading(t: &Common, status: StatusCode) -> &'static str {
    match status {
        StatusCode::FORBIDDEN => t.error_forbidden,
        StatusCode::NOT_FOUND => t.error_not_found,
        StatusCode::CONFLICT => t.error_conflict,
        s if s.is_client_error() => t.error_bad_request,
        _ => t.error_title,
    }
}

/// An error as a page in `lang`: the status, a heading, and the message when it is
/// the person's to read (a server error's detail goes to the log only).
pub(crate) fn error_page(e: Error, lang: Lang) -> Response {
    let t = i18n::common(lang);
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, "Console request failed");
    }
    let heading = error_heading(t, status);
    let message = e
        .public_message()
        .or_else(|| Some(t.error_server.to_owned()));
    let mut response = render_with(
        status,
        &ErrorPage {
            chrome: Chrome::anonymous(lang, heading),
            heading,
            message: message.clone(),
        },
    );
    response
        .extensions_mut()
        .insert(ErrorShown { status, message });
    response
}

/// The error page `shown` again in the frame of `viewer`'s pages (navigation, their
/// name, the language switch coming back to `here`), so that a person who meets a
/// refusal or a missing page can go on with the mouse.
pub(crate) fn framed_error(viewer: &Viewer, shown: &ErrorShown, here: Option<String>) -> Response {
    let heading = error_heading(i18n::common(viewer.lang()), shown.status);
    let mut chrome = Chrome::new(viewer, heading, "");
    chrome.here = here.unwrap_or_else(|| format!("{PREFIX}/"));
    render_with(
        shown.status,
        &ErrorPage {
            chrome,
            heading,
            message: shown.message.clone(),
        },
    )
}

/// A handler's result: a response, or an error page in the person's language.
pub(crate) type PageResult = std::result::Result<Response, Response>;

/// Turns a console error into its page, in `lang`.
pub(crate) fn fail(lang: Lang) -> impl Fn(Error) -> Response {
    move |e| error_page(e, lang)
}

/// Unknown console paths: a 404 page.
pub(crate) async fn not_found(visitor: Visitor) -> Response {
    error_page(
        Error::NotFound("there is no such page".into()),
        visitor.lang,
    )
}

/// Headers on every console response: no caching of pages (they show live data and
/// carry CSRF tokens), no framing, no sniffing, scripts and styles only from this
/// origin.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CACHE_CONTROL, "no-store");
    response
}
