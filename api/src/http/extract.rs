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
