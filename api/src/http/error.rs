//! The one place where errors become HTTP responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::Error;

/// The JSON error body.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The JSON error body, as documented in the OpenAPI document.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The `error` member of [`ErrorBody`].
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `conflict`, `payload_too_large`, `unprocessable`, `unavailable` or `internal`.
    code: String,
    /// What went wrong, for a person.
    message: String,
    /// The offending field of a request body (422, and 400 when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl Error {
    /// The status this error answers with: the same mapping [`IntoResponse`] uses,
    /// for callers that render errors their own way (the console's pages).
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::Transition { .. } => StatusCode::CONFLICT,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Store(e) if e.is_busy() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let busy = match &self {
            Error::Store(e) => e.is_busy(),
            _ => false,
        };
        match self {
            Error::BadRequest(m) => error_response(StatusCode::BAD_REQUEST, "bad_request", &m),
            Error::NotFound(m) => error_response(StatusCode::NOT_FOUND, "not_found", &m),
            Error::Conflict(m) => error_response(StatusCode::CONFLICT, "conflict", &m),
            Error::Transition { message, allowed } => (
                StatusCode::CONFLICT,
                Json(
                    json!({"error": {"code": "conflict", "message": message, "allowed": allowed}}),
                ),
            )
                .into_response(),
            Error::Unauthorized(m) => {
                let mut r = error_response(StatusCode::UNAUTHORIZED, "unauthorized", &m);
                r.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                r
            }
            Error::Forbidden(m) => error_response(StatusCode::FORBIDDEN, "forbidden", &m),
            Error::PayloadTooLarge(m) => {
                error_response(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &m)
            }
            Error::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(
                    json!({"error": {"code": "unprocessable", "message": message, "field": field}}),
                ),
            )
                .into_response(),
            e if busy => {
                tracing::warn!(error = %e, "Store busy");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is busy; retry later",
                )
            }
            e => {
                tracing::error!(error = %e, "Request failed");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

/// Gives the plain-text 413 of `RequestBodyLimitLayer` the JSON error body.
pub(crate) async fn json_payload_too_large(response: Response) -> Response {
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !json {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the limit ([http] max_body_bytes)",
        );
    }
    response
}

/// Fallback for unknown routes.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Error {
    Error::NotFound(format!("no route for {}", uri.path()))
}

/// Fallback for known routes with an unsupported method.
pub(crate) async fn method_not_allowed(method: axum::http::Method) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("method {method} is not allowed here"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: Error) -> (StatusCode, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn server_errors_hide_their_detail() {
        let (status, b) = body(Error::Corrupt("secret path /var/x".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(b["error"]["code"], "internal");
        assert!(!b.to_string().contains("secret"));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let (status, b) = body(Error::from(store::Error::from(busy))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b["error"]["code"], "unavailable");
        let (status, b) = body(Error::Conflict("already closed".into())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(b["error"]["message"], "already closed");
    }
}
