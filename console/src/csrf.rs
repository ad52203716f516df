//! Forms that change state: [`CsrfForm`] reads an `application/x-www-form-urlencoded`
//! body and refuses it unless its `csrf` field is the session's token.
//!
//! The session cookie is already SameSite=Strict, so another site's form does not
//! carry it; the token is the second lock (older browsers, a same-site subdomain) and
//! makes a replayed or stale form fail visibly. Every state-changing console route
//! takes a `CsrfForm`, and a test walks the routes with a missing and a wrong token.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;

use crate::session::Viewer;
use crate::Error;

/// The largest form body the console reads (a note or an outcome; 64 KiB).
pub(crate) const MAX_FORM_BYTES: usize = 64 * 1024;

/// A form of a signed-in person with the right CSRF token, and the person.
#[derive(Debug)]
pub(crate) struct CsrfForm<T> {
    pub(crate) viewer: Viewer,
    pub(crate) form: T,
}

/// Whether `sent` is `expected` (in constant time: the token is a secret).
pub(crate) fn token_matches(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

/// The value of field `name` in a urlencoded body.
pub(crate) fn field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let viewer = match <Viewer as axum::extract::FromRequestParts<S>>::from_request_parts(
            &mut parts, state,
        )
        .await
        {
            Ok(v) => v,
            Err(redirect) => return Err(redirect),
        };
        let lang = viewer.lang();
        let fail = |e: Error| crate::page::error_page(e, lang);
        let req = Request::from_parts(parts, body);
        let bytes = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return Err(fail(Error::BadRequest(format!(
                    "the form is larger than {} KiB",
                    MAX_FORM_BYTES / 1024
                ))))
            }
        };
        let sent = field(&bytes, "csrf").unwrap_or_default();
        if !token_matches(&sent, &viewer.csrf) {
            return Err(fail(Error::Csrf));
        }
        let form = parse::<T>(&bytes).map_err(fail)?;
        Ok(CsrfForm { viewer, form })
    }
}

/// Parses a urlencoded body into `T` (its extra fields, such as `csrf`, are ignored
/// unless `T` refuses unknown fields).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Error> {
    serde_urlencoded::from_bytes(bytes)
        .map_err(|e| Error::BadRequest(format!("the form does not fit: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves_and_never_empty() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("", ""));
        assert!(!token_matches("abc", ""));
    }

    #[test]
    fn a_field_is_found_in_any_order_and_decoded() {
        let body = b"note=a%20%3Cb%3E&csrf=t%2B1";
        assert_eq!(field(body, "csrf").as_deref(), Some("t+1"));
        assert_eq!(field(body, "note").as_deref(), Some("a <b>"));
        assert_eq!(field(body, "x"), None);
        assert_eq!(field(b"\xff\xfe=%%", "csrf"), None);
    }
}
