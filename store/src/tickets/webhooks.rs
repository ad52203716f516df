//! The webhook tables of `tickets.db`, so that reading events and enqueuing their
//! deliveries is one transaction over one file:
//!
//! * `webhooks`: one row per registration. `cursor` is the id of the newest event
//!   already turned into deliveries for it (set to the newest event at registration:
//!   a webhook receives what happens after it was created). `deleted_at` marks a
//!   removed webhook; its row stays so its deliveries can still be listed.
//! * `webhook_deliveries`: the outbox. One row per (webhook, event), unique, holding
//!   the exact body to send, its state (`pending`, `delivered`, `failed` after the last
//!   attempt, `cancelled` when the webhook was removed), the attempt count and when the
//!   next attempt is due.
//! * `webhook_attempts`: every attempt (time, duration, HTTP status or error).

use domain::Timestamp;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::Tables;
use crate::{Error, Result};

/// A registered webhook (never its secret).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Webhook {
    /// Its id.
    pub id: i64,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it receives.
    pub event_types: Vec<String>,
    /// Free text.
    pub description: String,
    /// When it was registered.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// The name of the API key that registered it.
    pub created_by: String,
    /// The newest event already queued for it.
    pub last_event_id: i64,
    /// When it was removed (`null` while active).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted_at: Option<Timestamp>,
}

/// State of a delivery.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
    /// The webhook was removed first.
    Cancelled,
}

impl DeliveryStatus {
    /// Stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Delivered,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One attempt to deliver.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    /// When it started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// How long it took.
    pub duration_ms: i64,
    /// The receiver's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// What went wrong (`null` on success).
    pub error: Option<String>,
}

/// A delivery of one event to one webhook, with its attempts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delivery {
    /// Its id (header `X-Fixahead-Delivery-Id`).
    pub id: i64,
    /// The event (header `X-Fixahead-Event-Id`).
    pub event_id: i64,
    /// The event's type.
    pub event_type: String,
    /// Its state.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When it was queued.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When the next attempt is due (pending only).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub next_attempt_at: Option<Timestamp>,
    /// When it was delivered, failed for good or cancelled.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Timestamp>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    #[serde(rename = "attempt_log")]
    pub attempt_log: Vec<Attempt>,
}

/// A delivery due to be sent, with what sending needs.
#[derive(Clone, Debug, PartialEq)]
pub struct DueDelivery {
    /// The delivery.
    pub id: i64,
    /// Its webhook.
    pub webhook_id: i64,
    /// The event.
    pub event_id: i64,
    /// The event's type.
    pub event_type: String,
    /// The exact body to send.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Where to send it.
    pub url: String,
    /// The webhook's HMAC key.
    pub secret: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("webhooks: {what}: {e}"))
}

const WEBHOOK_COLUMNS: &str =
    "id, url, event_types, description, created_at, created_by, cursor, deleted_at";

fn webhook_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Webhook, String)> {
    Ok((
        Webhook {
            id: r.get(0)?,
            url: r.get(1)?,
            event_types: Vec::new(),
            description: r.get(3)?,
            created_at: Timestamp(r.get(4)?),
            created_by: r.get(5)?,
            last_event_id: r.get(6)?,
            deleted_at: r.get::<_, Option<i64>>(7)?.map(Timestamp),
        },
        r.get(2)?,
    ))
}

fn into_webhook((mut w, types): (Webhook, String)) -> Result<Webhook> {
    w.event_types = serde_json::from_str(&types).map_err(|e| corrupt("event_types", e))?;
    Ok(w)
}

impl Tables<'_> {
    /// Inserts a webhook whose cursor is the newest event; returns its id.
    pub fn insert_webhook(
        &self,
        url: &str,
        secret: &str,
        event_types: &[String],
        description: &str,
        created_at: Timestamp,
        created_by: &str,
    ) -> Result<i64> {
        let conn = self.conn;
        let types = serde_json::to_string(event_types)?;
        Ok(conn
            .prepare_cached(
                "INSERT INTO webhooks (url, secret, event_types, description, created_at, created_by, cursor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT COALESCE(MAX(id), 0) FROM events))
                 RETURNING id",
            )?
            .query_row(
                params![url, secret, types, description, created_at.millis(), created_by],
                |r| r.get(0),
            )?)
    }

    /// One webhook, removed ones too.
    pub fn get_webhook(&self, id: i64) -> Result<Option<Webhook>> {
        let conn = self.conn;
        conn.prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"
        ))?
        .query_row(params![id], webhook_row)
        .optional()?
        .map(into_webhook)
        .transpose()
    }

    /// Every webhook not removed, oldest first.
    pub fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        let conn = self.conn;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE deleted_at IS NULL ORDER BY id"
        ))?;
        let rows = st.query_map([], webhook_row)?;
        rows.map(|r| into_webhook(r?)).collect()
    }

    /// Marks a webhook removed and cancels its pending deliveries. `false` if there is no
    /// such (active) webhook.
    pub fn delete_webhook(&self, id: i64, now: Timestamp) -> Result<bool> {
        let conn = self.conn;
        let n = conn
            .prepare_cached(
                "UPDATE webhooks SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
            )?
            .execute(params![id, now.millis()])?;
        if n == 0 {
            return Ok(false);
        }
        conn.prepare_cached(
            "UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL, ended_at = ?2
             WHERE webhook_id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, now.millis()])?;
        Ok(true)
    }

    /// Moves a webhook's cursor to `event_id`.
    pub fn set_cursor(&self, id: i64, event_id: i64) -> Result<()> {
        let conn = self.conn;
        conn.prepare_cached("UPDATE webhooks SET cursor = ?2 WHERE id = ?1")?
            .execute(params![id, event_id])?;
        Ok(())
    }

    /// Adds a pending delivery due now; a second one for the same (webhook, event) is
    /// ignored.
    pub fn insert_delivery(
        &self,
        webhook_id: i64,
        event_id: i64,
        event_type: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<()> {
        let conn = self.conn;
        conn.prepare_cached(
            "INSERT OR IGNORE INTO webhook_deliveries
                 (webhook_id, event_id, event_type, body, status, attempts, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
        )?
        .execute(params![
            webhook_id,
            event_id,
            event_type,
            body,
            now.millis()
        ])?;
        Ok(())
    }

    /// Pending deliveries due at `now`, the longest-waiting first, at most `limit`.
    pub fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<DueDelivery>> {
        let conn = self.conn;
        let mut st = conn.prepare_cached(
            "SELECT d.id, d.webhook_id, d.event_id, d.event_type, d.body, d.attempts, w.url, w.secret
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
             ORDER BY d.next_attempt_at, d.id LIMIT ?2",
        )?;
        let rows = st.query_map(
            params![now.millis(), i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(DueDelivery {
                    id: r.get(0)?,
                    webhook_id: r.get(1)?,
                    event_id: r.get(2)?,
                    event_type: r.get(3)?,
                    body: r.get(4)?,
                    attempts: r.get(5)?,
                    url: r.get(6)?,
                    secret: r.get(7)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When the next pending delivery is due, if any.
    pub fn next_due(&self) -> Result<Option<Timestamp>> {
        let conn = self.conn;
        Ok(conn
            .prepare_cached(
                "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'",
            )?
            .query_row([], |r| r.get::<_, Option<i64>>(0))?
            .map(Timestamp))
    }

    /// Records an attempt and the delivery's new state.
    pub fn record_attempt(
        &self,
        delivery_id: i64,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Option<Timestamp>,
    ) -> Result<()> {
        let conn = self.conn;
        conn.prepare_cached(
            "INSERT INTO webhook_attempts (delivery_id, at, duration_ms, http_status, error)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            delivery_id,
            attempt.at.millis(),
            attempt.duration_ms,
            attempt.http_status,
            attempt.error
        ])?;
        let ended = (status != DeliveryStatus::Pending).then_some(attempt.at.millis());
        // Only a pending delivery changes: one cancelled meanwhile stays cancelled.
        conn.prepare_cached(
            "UPDATE webhook_deliveries
             SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3, ended_at = ?4, last_error = ?5
             WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![
            delivery_id,
            status.as_str(),
            next_attempt_at.map(Timestamp::millis),
            ended,
            attempt.error
        ])?;
        Ok(())
    }

    /// A webhook's deliveries, newest first, with their attempts; only those with an id
    /// below `before` when given.
    pub fn deliveries(
        &self,
        webhook_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let conn = self.conn;
        let mut st = conn.prepare_cached(
            "SELECT id, event_id, event_type, status, attempts, created_at, next_attempt_at, ended_at, last_error
             FROM webhook_deliveries WHERE webhook_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = st.query_map(
            params![
                webhook_id,
                before.unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    Delivery {
                        id: r.get(0)?,
                        event_id: r.get(1)?,
                        event_type: r.get(2)?,
                        status: DeliveryStatus::Pending,
                        attempts: r.get(4)?,
                        created_at: Timestamp(r.get(5)?),
                        next_attempt_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
                        ended_at: r.get::<_, Option<i64>>(7)?.map(Timestamp),
                        last_error: r.get(8)?,
                        attempt_log: Vec::new(),
                    },
                    r.get::<_, String>(3)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (mut d, status) = row?;
            d.status = DeliveryStatus::parse(&status)
                .ok_or_else(|| corrupt("delivery status", format!("unknown {status:?}")))?;
            d.attempt_log = self.attempts(d.id)?;
            out.push(d);
        }
        Ok(out)
    }

    fn attempts(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        let conn = self.conn;
        let mut st = conn.prepare_cached(
            "SELECT at, duration_ms, http_status, error FROM webhook_attempts
             WHERE delivery_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![delivery_id], |r| {
            Ok(Attempt {
                at: Timestamp(r.get(0)?),
                duration_ms: r.get(1)?,
                http_status: r.get(2)?,
                error: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// returns how many deliveries.
    pub fn delete_finished_before(&self, before: Timestamp) -> Result<usize> {
        let conn = self.conn;
        conn.prepare_cached(
            "DELETE FROM webhook_attempts WHERE delivery_id IN
                (SELECT id FROM webhook_deliveries WHERE status != 'pending' AND ended_at < ?1)",
        )?
        .execute(params![before.millis()])?;
        Ok(conn
            .prepare_cached(
                "DELETE FROM webhook_deliveries WHERE status != 'pending' AND ended_at < ?1",
            )?
            .execute(params![before.millis()])?)
    }

    /// Pending deliveries (for the gauge).
    pub fn count_pending(&self) -> Result<u64> {
        let conn = self.conn;
        Ok(conn
            .prepare_cached("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")?
            .query_row([], |r| r.get::<_, i64>(0))?
            .try_into()
            .unwrap_or(0))
    }
}
