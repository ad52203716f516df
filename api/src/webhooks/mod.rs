//! Webhooks: events pushed to other systems over HTTP, at least once.
//!
//! A webhook is a URL, a secret and the event types it wants (`ticket.opened`,
//! `ticket.updated`, `ticket.sla_breached`, `ticket.step_overdue`,
//! `ticket.callback_opened`, `ticket.callback_overdue`, `prediction.flagged`,
//! `fleet.batch_alarm`). [`WebhookService`]
//! keeps registrations and the delivery outbox in the ticket store's file
//! (`tickets.db`, tables in `store::tickets`); [`run`] is the dispatcher task that fills the
//! outbox from the events table and sends it.
//!
//! **Architecture invariant 9 "webhooks are at least once":** a delivery is created in
//! the same transaction that moves the webhook's cursor past its event, and is marked
//! `delivered` only after the receiver answered 2xx. So every event a webhook
//! subscribes to is delivered at least once, across crashes and restarts: a crash
//! between sending and recording sends it again. Receivers deduplicate by the event id (header `X-Fixahead-Event-Id`).
//!
//! Each request is a `POST` of the event as JSON (the same object as the `data` of
//! `GET /api/v1/events`) with headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Fixahead-Event-Id` | the event id (the SSE id) |
//! | `X-Fixahead-Event-Type` | e.g. `ticket.opened` |
//! | `X-Fixahead-Delivery-Id` | the delivery (one per webhook and event) |
//! | `X-Fixahead-Signature` | `sha256=` and the lowercase hex HMAC-SHA256 of the body under the webhook's secret |
//!
//! Any 2xx answer within the timeout is a success. Anything else (another status, a
//! redirect — not followed —, a timeout, a refused connection) is a failed attempt,
//! retried after a backoff that doubles from `initial_backoff` up to `max_backoff`
//! (with ±20 % jitter, so many deliveries failing together do not retry in lockstep)
//! until `max_attempts`, when the delivery is `failed`.

mod dispatch;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use domain::Timestamp;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use store::tickets::TicketDb;
pub use store::tickets::{Attempt, Delivery, DeliveryStatus, DueDelivery, Webhook};

use crate::tickets::{
    self, ConfigDuration, EVENT_CALLBACK_OPENED, EVENT_CALLBACK_OVERDUE, EVENT_ESCALATED,
    EVENT_FLAGGED, EVENT_OPENED, EVENT_SLA_BREACHED, EVENT_STEP_OVERDUE, EVENT_UPDATED,
};
use crate::{Error, Result};

pub use dispatch::run;

/// Event types a webhook may subscribe to.
pub const EVENT_TYPES: [&str; 8] = [
    EVENT_OPENED,
    EVENT_UPDATED,
    EVENT_SLA_BREACHED,
    EVENT_FLAGGED,
    EVENT_ESCALATED,
    EVENT_STEP_OVERDUE,
    EVENT_CALLBACK_OPENED,
    EVENT_CALLBACK_OVERDUE,
];

/// Shortest secret accepted, in characters.
pub const MIN_SECRET_CHARS: usize = 16;
/// Longest secret accepted, in characters.
pub const MAX_SECRET_CHARS: usize = 256;
/// Longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// Most webhooks registered at once.
pub const MAX_WEBHOOKS: usize = 100;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "x-fixahead-signature";

/// How webhook deliveries are sent and retried. Embeddable in the TOML config as
/// `[webhooks]`; every field is optional and unknown keys are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Attempts per delivery before it is `failed` (default 20: with the default
    /// backoff, retries span about 13 hours).
    pub max_attempts: u32,
    /// Wait after the first failed attempt (default `5s`); it doubles per attempt.
    pub initial_backoff: ConfigDuration,
    /// Longest wait between attempts (default `1h`).
    pub max_backoff: ConfigDuration,
    /// Time a receiver has to answer (default `10s`).
    pub timeout: ConfigDuration,
    /// Requests in flight at once (default 8).
    pub concurrency: usize,
    /// How long finished deliveries and their attempts are kept (default `30d`).
    pub retention: ConfigDuration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            max_attempts: 20,
            initial_backoff: ConfigDuration::from_millis(5_000),
            max_backoff: ConfigDuration::from_hours(1),
            timeout: ConfigDuration::from_millis(10_000),
            concurrency: 8,
            retention: ConfigDuration::from_hours(30 * 24),
        }
    }
}

impl WebhookConfig {
    /// Checks ranges: at least one attempt, positive durations, backoff bounds in order.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("webhooks: {m}")));
        if !(1..=1000).contains(&self.max_attempts) {
            return bad(format!(
                "max_attempts must be 1-1000, got {}",
                self.max_attempts
            ));
        }
        if !(1..=256).contains(&self.concurrency) {
            return bad(format!(
                "concurrency must be 1-256, got {}",
                self.concurrency
            ));
        }
        for (name, d) in [
            ("initial_backoff", self.initial_backoff),
            ("max_backoff", self.max_backoff),
            ("timeout", self.timeout),
            ("retention", self.retention),
        ] {
            if d.millis() <= 0 {
                return bad(format!("{name} must be positive, got {d}"));
            }
        }
        if self.max_backoff < self.initial_backoff {
            return bad(format!(
                "max_backoff ({}) is shorter than initial_backoff ({})",
                self.max_backoff, self.initial_backoff
            ));
        }
        Ok(())
    }

    /// The wait after the `attempt`-th failed attempt (1-based), without jitter.
    pub fn backoff_ms(&self, attempt: u32) -> i64 {
        let doublings = attempt.saturating_sub(1).min(40);
        self.initial_backoff
            .millis()
            .saturating_mul(1_i64 << doublings)
            .min(self.max_backoff.millis())
    }
}

/// A webhook to register.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewWebhook {
    /// `http://` or `https://` URL with a host.
    pub url: String,
    /// The HMAC key, [`MIN_SECRET_CHARS`]-[`MAX_SECRET_CHARS`] characters.
    pub secret: String,
    /// Non-empty, from [`EVENT_TYPES`].
    pub event_types: Vec<String>,
    /// Free text, at most [`MAX_DESCRIPTION_CHARS`].
    pub description: String,
}

/// Counters since start, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WebhookStats {
    /// Deliveries a receiver accepted.
    pub delivered: u64,
    /// Attempts that failed (each retry counts).
    pub attempt_failures: u64,
    /// Deliveries given up after `max_attempts`.
    pub failed: u64,
}

/// The signature of `body` under `secret`: `sha256=` and the lowercase hex HMAC-SHA256.
///
/// ```
/// let sig = api::webhooks::signature("It's a Secret to Everybody", b"Hello, World!");
/// assert_eq!(sig, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
/// ```
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Registrations and the delivery outbox. A cheap, clonable, blocking handle over the
/// ticket store's file; call it from `spawn_blocking` in async code.
/// One process dispatches per file (the `run` process).
#[derive(Clone)]
pub struct WebhookService {
    inner: Arc<Inner>,
}

struct Inner {
    db: TicketDb,
    config: WebhookConfig,
    clock: tickets::Clock,
    delivered: AtomicU64,
    attempt_failures: AtomicU64,
    failed: AtomicU64,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Checks a registration; the error names the field.
fn validate(w: &NewWebhook) -> Result<()> {
    let url = w.url.trim();
    if url.len() > MAX_URL_BYTES {
        return Err(Error::invalid(format!(
            "url: longer than {MAX_URL_BYTES} bytes"
        )));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| Error::invalid("url: must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('@') {
        return Err(Error::invalid(
            "url: needs a host, without spaces or user information",
        ));
    }
    if url.chars().any(char::is_control) || url.contains(' ') {
        return Err(Error::invalid(
            "url: must not contain spaces or control characters",
        ));
    }
    let n = w.secret.chars().count();
    if !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&n) {
        return Err(Error::invalid(format!(
            "secret: must be {MIN_SECRET_CHARS}-{MAX_SECRET_CHARS} characters, got {n}"
        )));
    }
    if w.event_types.is_empty() {
        return Err(Error::invalid(
            "event_types: must name at least one event type",
        ));
    }
    for (i, t) in w.event_types.iter().enumerate() {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(Error::invalid(format!(
                "event_types[{i}]: unknown event type {t:?}; known: {}",
                EVENT_TYPES.join(", ")
            )));
        }
    }
    if w.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(format!(
            "description: longer than {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(())
}

/// Deliveries queued per webhook per enqueue pass, and due ones sent per pass.
const PAGE: usize = 256;

impl WebhookService {
    /// Opens the webhook tables in the ticket store at `path` (creating them if needed).
    /// Open the [`tickets::TicketService`] on the same file first: it creates the
    /// events table.
    pub fn open(path: &Path, config: WebhookConfig) -> Result<Self> {
        Self::open_with_clock(
            path,
            config,
            Arc::new(|| Timestamp::from(chrono::Utc::now())),
        )
    }

    /// Like [`WebhookService::open`], with an injected clock.
    pub fn open_with_clock(
        path: &Path,
        config: WebhookConfig,
        clock: tickets::Clock,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                db: TicketDb::open(path)?,
                config,
                clock,
                delivered: AtomicU64::new(0),
                attempt_failures: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &WebhookConfig {
        &self.inner.config
    }

    /// "Now" by the service's clock.
    pub(crate) fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    /// Registers a webhook; it receives the events committed after this call.
    /// [`Error::Invalid`] (naming the field) for a bad URL, secret, event type or
    /// description; [`Error::Conflict`] beyond [`MAX_WEBHOOKS`].
    pub fn create(&self, new: NewWebhook, created_by: &str) -> Result<Webhook> {
        validate(&new)?;
        let mut types: Vec<String> = Vec::new();
        for t in new.event_types {
            if !types.contains(&t) {
                types.push(t);
            }
        }
        let now = self.now();
        self.inner.db.write(|tx| {
            if tx.list_webhooks()?.len() >= MAX_WEBHOOKS {
                return Err(Error::Conflict(format!(
                    "at most {MAX_WEBHOOKS} webhooks; remove one first"
                )));
            }
            let id = tx.insert_webhook(
                new.url.trim(),
                &new.secret,
                &types,
                &new.description,
                now,
                created_by,
            )?;
            tx.get_webhook(id)?
                .ok_or_else(|| Error::Corrupt(format!("webhook {id} vanished in its transaction")))
        })
    }

    /// Active webhooks, oldest first.
    pub fn list(&self) -> Result<Vec<Webhook>> {
        Ok(self.inner.db.read(|t| t.list_webhooks())?)
    }

    /// One webhook (a removed one too).
    pub fn get(&self, id: i64) -> Result<Option<Webhook>> {
        Ok(self.inner.db.read(|t| t.get_webhook(id))?)
    }

    /// Removes a webhook: no new deliveries, pending ones cancelled. `false` if there is
    /// no such active webhook.
    pub fn delete(&self, id: i64) -> Result<bool> {
        let now = self.now();
        Ok(self.inner.db.write(|tx| tx.delete_webhook(id, now))?)
    }

    /// A webhook's deliveries, newest first, with their attempts.
    pub fn deliveries(
        &self,
        webhook_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        Ok(self
            .inner
            .db
            .read(|t| t.deliveries(webhook_id, before, limit))?)
    }

    /// Turns events committed since each webhook's cursor into pending deliveries (one
    /// transaction per webhook and page); returns how many were queued.
    pub fn enqueue(&self) -> Result<usize> {
        let now = self.now();
        let mut queued = 0;
        let db = &self.inner.db;
        for w in db.read(|t| t.list_webhooks())? {
            let mut cursor = w.last_event_id;
            loop {
                let page = db.write(|tx| {
                    let events = tx.events_after(cursor, PAGE)?;
                    let Some(last) = events.last().map(|e| e.id) else {
                        return Ok::<_, store::Error>(None);
                    };
                    for e in events.iter().filter(|e| w.event_types.contains(&e.kind)) {
                        let body = serde_json::to_string(e)?;
                        tx.insert_delivery(w.id, e.id, &e.kind, &body, now)?;
                        queued += 1;
                    }
                    tx.set_cursor(w.id, last)?;
                    Ok(Some((last, events.len())))
                })?;
                let Some((last, read)) = page else {
                    break;
                };
                cursor = last;
                if read < PAGE {
                    break;
                }
            }
        }
        Ok(queued)
    }

    /// Pending deliveries due now, longest-waiting first.
    pub(crate) fn due(&self, limit: usize) -> Result<Vec<DueDelivery>> {
        let now = self.now();
        Ok(self.inner.db.read(|t| t.due_deliveries(now, limit))?)
    }

    /// When the next pending delivery is due.
    pub(crate) fn next_due(&self) -> Result<Option<Timestamp>> {
        Ok(self.inner.db.read(|t| t.next_due())?)
    }

    /// Records an attempt at `d`: delivered on success; otherwise pending with the
    /// next attempt after the backoff, or failed after the last attempt.
    pub(crate) fn record_attempt(
        &self,
        d: &DueDelivery,
        attempt: &Attempt,
    ) -> Result<DeliveryStatus> {
        let made = d.attempts.saturating_add(1);
        let (status, next) = if attempt.error.is_none() {
            (DeliveryStatus::Delivered, None)
        } else if made >= self.inner.config.max_attempts {
            (DeliveryStatus::Failed, None)
        } else {
            let base = self.inner.config.backoff_ms(made);
            let jitter = rand::random::<f64>() * 0.4 - 0.2;
            let wait = (base as f64 * (1.0 + jitter)).round() as i64;
            (
                DeliveryStatus::Pending,
                Some(Timestamp(
                    attempt
                        .at
                        .millis()
                        .saturating_add(attempt.duration_ms)
                        .saturating_add(wait.max(1)),
                )),
            )
        };
        self.inner
            .db
            .write(|tx| tx.record_attempt(d.id, attempt, status, next))?;
        let counter = match status {
            DeliveryStatus::Delivered => &self.inner.delivered,
            _ => &self.inner.attempt_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if status == DeliveryStatus::Failed {
            self.inner.failed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(status)
    }

    /// Deletes finished deliveries older than the retention; returns how many.
    pub fn prune(&self) -> Result<usize> {
        let cutoff = Timestamp(
            self.now()
                .millis()
                .saturating_sub(self.inner.config.retention.millis()),
        );
        Ok(self
            .inner
            .db
            .write(|tx| tx.delete_finished_before(cutoff))?)
    }

    /// Counters since start.
    pub fn stats(&self) -> WebhookStats {
        WebhookStats {
            delivered: self.inner.delivered.load(Ordering::Relaxed),
            attempt_failures: self.inner.attempt_failures.load(Ordering::Relaxed),
            failed: self.inner.failed.load(Ordering::Relaxed),
        }
    }

    /// Deliveries waiting for an attempt.
    pub fn pending(&self) -> Result<u64> {
        Ok(self.inner.db.read(|t| t.count_pending())?)
    }
}

#[cfg(test)]
mod tests;
