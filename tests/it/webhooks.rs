//! Webhooks end to end, to a real HTTP receiver on a local port: deliveries are signed
//! (HMAC-SHA256 of the body, checked here with the hmac crate, not with fixahead's own
//! code), a receiver that fails at first gets the event on retry, and events committed
//! while the receiver is down and fixahead is killed arrive after the restart.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::harness::{free_port, metric, raised_fault, wait_for, Publisher, Server, ADMIN_KEY};

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;
const SECRET: &str = "whsec-0123456789-abcdef";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    event_id: i64,
    event_type: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

/// A local HTTP receiver that answers 500 to its first `fail_first` requests and 204
/// after, recording everything.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    fail_first: usize,
}

impl Receiver {
    fn new(fail_first: usize) -> Self {
        Self {
            got: Arc::default(),
            fail_first,
        }
    }

    /// Serves on `addr` until the returned handle is aborted.
    async fn serve(&self, addr: SocketAddr) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let mut got = me.got.lock().unwrap();
                    let status = if got.len() < me.fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    };
                    got.push(Received {
                        event_id: header("x-fixahead-event-id").parse().unwrap_or(-1),
                        event_type: header("x-fixahead-event-type"),
                        signature: header("x-fixahead-signature"),
                        body: body.to_vec(),
                        answered: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        })
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Event ids answered 2xx.
    fn delivered(&self) -> BTreeSet<i64> {
        self.received()
            .iter()
            .filter(|r| r.answered < 300)
            .map(|r| r.event_id)
            .collect()
    }
}

fn fault(seq: u64, code: &str) -> String {
    raised_fault(seq, T0 + seq as i64 * 1000, code)
}

/// The HMAC-SHA256 of `body` under [`SECRET`], as the header carries it.
fn expected_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Opens a reactive ticket for `device` with a critical fault code (E23).
async fn open_ticket(server: &Server, device: &str) -> i64 {
    let mut p = Publisher::connect(server.mqtt_port, device).await;
    p.publish(&format!("fixahead/v1/{device}/fault"), fault(1, "E23"))
        .await;
    p.flush().await;
    let path = format!("/api/v1/tickets?device_id={device}");
    wait_for(Duration::from_secs(30), "the reactive ticket", || async {
        server.get(&path).await.1["tickets"][0]["id"].is_i64()
    })
    .await;
    server.get(&path).await.1["tickets"][0]["id"]
        .as_i64()
        .unwrap_or_default()
}

async fn transition(server: &Server, ticket: i64, to: &str) {
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{ticket}/transitions"),
            Some(ADMIN_KEY),
            Some(&json!({"to": to, "note": "webhook test"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn deliveries(server: &Server, webhook: i64) -> Vec<Value> {
    let (status, body) = server
        .get(&format!("/api/v1/webhooks/{webhook}/deliveries"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Every event id of these types in the events table (through `GET /api/v1/events`).
async fn event_ids(server: &Server, types: &[&str], expected: usize) -> BTreeSet<i64> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut stream = tokio::net::TcpStream::connect(server.http).await.unwrap();
    stream
        .write_all(
            format!("GET /api/v1/events?after=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut lines = BufReader::new(stream).lines();
    let mut ids = BTreeSet::new();
    let mut id = None;
    let read = async {
        while ids.len() < expected {
            let line = lines.next_line().await.unwrap().expect("stream open");
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse::<i64>().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                if types.contains(&v.trim()) {
                    ids.insert(id.unwrap());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the events within 30 s");
    ids
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_not_lost_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("fixahead.toml");
    // Quick retries so the test does not wait minutes.
    std::fs::write(
        &config,
        "[webhooks]\ninitial_backoff = \"100ms\"\nmax_backoff = \"400ms\"\ntimeout = \"2s\"\n",
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mqtt_port = free_port();
    let mut server = Server::start_with(&data, None, mqtt_port, &args).await;

    // A receiver that fails its first two requests.
    let receiver = Receiver::new(2);
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let running = receiver.serve(addr).await;

    // Registration: validated, secret never echoed; integration keys may register.
    let (status, refused) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/webhooks",
            Some(ADMIN_KEY),
            Some(&json!({"url": format!("http://{addr}/hook"), "secret": "short", "event_types": ["ticket.opened"]})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "secret");
    let (status, key) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/keys",
            Some(ADMIN_KEY),
            Some(&json!({"role": "integration", "name": "dispatch system"})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let integration = key["key"].as_str().unwrap().to_owned();
    let (status, hook) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/webhooks",
            Some(&integration),
            Some(&json!({
                "url": format!("http://{addr}/hook"),
                "secret": SECRET,
                "event_types": ["ticket.opened", "ticket.updated"],
                "description": "dispatch"
            })),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    assert!(
        !hook.to_string().contains(SECRET),
        "the secret is never shown: {hook}"
    );
    let webhook = hook["id"].as_i64().unwrap();

    // A ticket opens: the receiver fails twice, then gets it.
    let ticket = open_ticket(&server, "wm-hook1").await;
    wait_for(
        Duration::from_secs(30),
        "the opened event delivered",
        || async { receiver.received().iter().any(|r| r.answered == 204) },
    )
    .await;
    let got = receiver.received();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>()[..3],
        [500, 500, 204],
        "{got:?}"
    );
    let first = &got[0];
    assert!(got[..3]
        .iter()
        .all(|r| r.event_id == first.event_id && r.body == first.body));
    assert_eq!(first.event_type, "ticket.opened");
    assert_eq!(first.signature, expected_signature(&first.body));
    let body: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["id"], first.event_id);
    assert_eq!(body["type"], "ticket.opened");
    assert_eq!(body["ticket_id"], ticket);
    assert_eq!(body["data"]["ticket"]["device_id"], "wm-hook1");

    let listed = deliveries(&server, webhook).await;
    let opened = listed
        .iter()
        .find(|d| d["event_id"] == first.event_id)
        .expect("the delivery is listed");
    assert_eq!(opened["status"], "delivered");
    assert_eq!(opened["attempts"], 3);
    let statuses: Vec<&Value> = opened["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["http_status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(204)]);

    // The receiver goes away; changes keep happening; fixahead is killed while the
    // deliveries wait for their retry.
    running.abort();
    let _ = running.await;
    transition(&server, ticket, "acknowledged").await;
    transition(&server, ticket, "scheduled").await;
    let second = open_ticket(&server, "wm-hook2").await;
    wait_for(
        Duration::from_secs(30),
        "failed attempts while the receiver is down",
        || async {
            let pending = deliveries(&server, webhook).await;
            pending
                .iter()
                .filter(|d| d["status"] == "pending" && d["attempts"].as_u64() >= Some(1))
                .count()
                >= 3
        },
    )
    .await;
    assert!(metric(&server, "fixahead_webhook_failures_total").await >= 5.0);
    server.kill();

    // Back up: the receiver first, then fixahead on the same data.
    let running = receiver.serve(addr).await;
    let server = Server::start_with(&data, None, mqtt_port, &args).await;
    transition(&server, second, "acknowledged").await;
    let want = event_ids(&server, &["ticket.opened", "ticket.updated"], 5).await;
    assert!(want.len() >= 5, "{want:?}");
    wait_for(Duration::from_secs(30), "every event delivered", || async {
        receiver.delivered().is_superset(&want)
    })
    .await;
    for r in receiver.received() {
        assert_eq!(r.signature, expected_signature(&r.body), "{r:?}");
    }
    assert!(metric(&server, "fixahead_webhook_deliveries_total").await >= 1.0);
    running.abort();
}
