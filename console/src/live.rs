//! `GET /console/events`: the ticket events as server-sent events for a signed-in
//! person, so open pages (the queue) update without a reload.
//!
//! The same stream as `GET /api/v1/events` ([`api::http::event_stream`]: the events
//! table, resumable with `Last-Event-ID`, ending when the process closes its streams),
//! behind the session instead of an API key, and behind the same permission
//! (`read_events`): planners and admins follow it; engineers, who may not follow the
//! API's stream either, get a 403 and their pages stay as loaded (with a refresh
//! link).

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::page::{fail, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::Error;

/// `GET /console/events`.
pub(crate) async fn events(
    axum::extract::State(state): axum::extract::State<ConsoleState>,
    viewer: Viewer,
    headers: HeaderMap,
) -> PageResult {
    let lang = viewer.lang();
    viewer
        .require(api::http::auth::Permission::ReadEvents)
        .map_err(fail(lang))?;
    let after = api::http::last_event_id(&headers).map_err(|e| fail(lang)(Error::Api(e)))?;
    let stream: Response = api::http::event_stream(&state.api, after).into_response();
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::{Body, HttpBody as _};
    use axum::http::{header, Request, StatusCode};
    use tower::ServiceExt;

    use crate::session::SESSION_COOKIE;
    use crate::testing::{Fixture, Person};

    /// Opens the stream as `who` (with `Last-Event-ID` when given).
    async fn open(f: &Fixture, who: &Person, last: Option<&str>) -> axum::response::Response {
        let mut request = Request::builder()
            .uri("/console/events")
            .header(header::COOKIE, format!("{SESSION_COOKIE}={}", who.token));
        if let Some(id) = last {
            request = request.header("last-event-id", id);
        }
        f.router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    /// Reads the stream until `needle` arrives (or fails after 5 s).
    async fn read_until(body: &mut Body, needle: &str) -> String {
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !text.contains(needle) {
            let frame = tokio::time::timeout_at(
                deadline,
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)),
            )
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within 5 s; got {text:?}"));
            let Some(frame) = frame else {
                panic!("the stream ended before {needle:?}; got {text:?}");
            };
            if let Ok(data) = frame.unwrap().into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
        text
    }

    #[tokio::test]
    async fn the_stream_needs_a_session_and_the_events_permission() {
        let f = Fixture::new();
        let a = f.get("/console/events", None).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER);
        assert!(a.location().starts_with("/console/sign-in"));
        let engineer = f.sign_in("engineer");
        let refused = open(&f, &engineer, None).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let planner = f.sign_in("planner");
        let bad = open(&f, &planner, Some("yesterday")).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_ticket_change_arrives_on_the_stream_and_closing_ends_it() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let response = open(&f, &planner, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream")));
        let mut body = response.into_body();
        let id = f.ticket_id("wm-2", "drain_pump");
        let tickets = f.tickets.clone();
        tokio::task::spawn_blocking(move || {
            tickets.add_note(id, "checked from the console test", "Planner (planner)")
        })
        .await
        .unwrap()
        .unwrap();
        let text = read_until(&mut body, "checked from the console test").await;
        assert!(text.contains("event: ticket.updated"), "{text}");
        f.api.close_streams();
        let end = tokio::time::timeout(
            Duration::from_secs(5),
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)),
        )
        .await
        .expect("the stream ends when streams close");
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn last_event_id_replays_what_was_missed() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        // The fixture's tickets opened with events 1..; resume after the first.
        let response = open(&f, &planner, Some("1")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let text = read_until(&mut body, "event: ticket.opened").await;
        assert!(!text.contains("id: 1\n"), "{text}");
        f.api.close_streams();
    }
}
