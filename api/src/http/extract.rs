//! Extractors whose rejections use the API's JSON error format.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Error;

/// Like [`axum::extract::Query`], but a malformed or unknown parameter (with
/// `#[serde(deny_unknown_fields)]` on `T`) is a 400 [`Error::BadRequest`].
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(v)| Self(v))
            .map_err(|e| Error::BadRequest(e.body_text()))
    }
}

/// Like [`axum::extract::Path`], with rejections in the API's error format.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(e) if e.status().is_client_error() => Err(Error::BadRequest(e.body_text())),
            Err(e) => Err(Error::Task(format!("path extraction: {}", e.body_text()))),
        }
    }
}

/// A JSON request body deserialized into `T` (use `#[serde(deny_unknown_fields)]`).
///
/// * not `Content-Type: application/json`: 415 is not used; a 400 says what to send;
/// * a body over the limit (`RequestBodyLimitLayer`): 413;
/// * malformed JSON: 400, with the line and column;
/// * valid JSON that does not fit `T` (missing, unknown, mistyped or out-of-range
///   field): 422 [`Error::Invalid`] with the field's path.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !json {
            return Err(Error::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge(e.body_text())
                } else {
                    Error::BadRequest(e.body_text())
                }
            })?;
        parse_json(&bytes).map(Self)
    }
}

/// Deserializes a JSON body, naming the field that does not fit.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(Error::BadRequest(format!("malformed JSON body: {e}"))),
        },
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = inner.to_string();
                    // serde names unknown and missing fields in the message, with the path
                    // of the object that holds them.
                    let named = message
                        .strip_prefix("unknown field `")
                        .or_else(|| message.strip_prefix("missing field `"))
                        .and_then(|rest| rest.split('`').next());
                    let field = match (named, path.as_str()) {
                        // An unknown field's path already ends with it.
                        (Some(name), p) if p == name || p.ends_with(&format!(".{name}")) => {
                            Some(p.to_owned())
                        }
                        (Some(name), "." | "") => Some(name.to_owned()),
                        (Some(name), parent) => Some(format!("{parent}.{name}")),
                        (None, "." | "") => None,
                        (None, p) => Some(p.to_owned()),
                    };
                    let message = match &field {
                        Some(f) => format!("field {f}: {message}"),
                        None => message,
                    };
                    Err(Error::Invalid { field, message })
                }
                _ => Err(Error::BadRequest(format!("malformed JSON body: {inner}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    fn field(text: &str) -> (bool, Option<String>) {
        match parse_json::<Body>(text.as_bytes()) {
            Err(Error::Invalid { field, .. }) => (true, field),
            Err(Error::BadRequest(_)) => (false, None),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        assert_eq!(field(r#"{"name": 1}"#), (true, Some("name".into())));
        assert_eq!(field(r#"{"name": "a", "x": 1}"#), (true, Some("x".into())));
        assert_eq!(field(r#"{}"#), (true, Some("name".into())));
        assert_eq!(
            field(r#"{"name": "a", "inner": {"n": 300}}"#),
            (true, Some("inner.n".into()))
        );
        assert_eq!(
            field(r#"{"name": "a", "inner": {"m": 1}}"#),
            (true, Some("inner.m".into()))
        );
        assert_eq!(field(r#"{"name": "#), (false, None));
        assert_eq!(field(r#"{"name": "a"} trailing"#), (false, None));
        assert_eq!(field(""), (false, None));
        assert!(parse_json::<Body>(br#"{"name": "a"}"#).is_ok());
    }
}
