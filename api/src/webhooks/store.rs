//! The webhook tables, in the ticket store's file (`tickets.db`), so that reading
//! events and enqueuing their deliveries is one transaction over one file:
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
//!
//! Plain SQL over a connection or transaction; the rules live in [`super`].

use domain::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use super::{Attempt, Delivery, DeliveryStatus, DueDelivery, Webhook};
use crate::{Error, Result};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    event_types TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    cursor      INTEGER NOT NULL,
    deleted_at  INTEGER
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id),
    event_id        INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER,
    ended_at        INTEGER,
    last_error      TEXT,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    at          INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    http_status INTEGER,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);
"#;

/// Creates the tables if they do not exist (idempotent).
pub(crate) fn create_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    Ok(())
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

/// Inserts a webhook whose cursor is the newest event; returns its id.
pub(crate) fn insert_webhook(
    conn: &Connection,
    url: &str,
    secret: &str,
    event_types: &[String],
    description: &str,
    created_at: Timestamp,
    created_by: &str,
) -> Result<i64> {
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
pub(crate) fn get_webhook(conn: &Connection, id: i64) -> Result<Option<Webhook>> {
    conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"
    ))?
    .query_row(params![id], webhook_row)
    .optional()?
    .map(into_webhook)
    .transpose()
}

/// Every webhook not removed, oldest first.
pub(crate) fn list_webhooks(conn: &Connection) -> Result<Vec<Webhook>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE deleted_at IS NULL ORDER BY id"
    ))?;
    let rows = st.query_map([], webhook_row)?;
    rows.map(|r| into_webhook(r?)).collect()
}

/// Marks a webhook removed and cancels its pending deliveries. `false` if there is no
/// such (active) webhook.
pub(crate) fn delete_webhook(conn: &Connection, id: i64, now: Timestamp) -> Result<bool> {
    let n = conn
        .prepare_cached("UPDATE webhooks SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")?
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
pub(crate) fn set_cursor(conn: &Connection, id: i64, event_id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE webhooks SET cursor = ?2 WHERE id = ?1")?
        .execute(params![id, event_id])?;
    Ok(())
}

/// Adds a pending delivery due now; a second one for the same (webhook, event) is
/// ignored.
pub(crate) fn insert_delivery(
    conn: &Connection,
    webhook_id: i64,
    event_id: i64,
    event_type: &str,
    body: &str,
    now: Timestamp,
) -> Result<()> {
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
pub(crate) fn due_deliveries(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<DueDelivery>> {
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
pub(crate) fn next_due(conn: &Connection) -> Result<Option<Timestamp>> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'",
        )?
        .query_row([], |r| r.get::<_, Option<i64>>(0))?
        .map(Timestamp))
}

/// Records an attempt and the delivery's new state.
pub(crate) fn record_attempt(
    conn: &Connection,
    delivery_id: i64,
    attempt: &Attempt,
    status: DeliveryStatus,
    next_attempt_at: Option<Timestamp>,
) -> Result<()> {
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
pub(crate) fn deliveries(
    conn: &Connection,
    webhook_id: i64,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<Delivery>> {
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
        d.attempt_log = attempts(conn, d.id)?;
        out.push(d);
    }
    Ok(out)
}

fn attempts(conn: &Connection, delivery_id: i64) -> Result<Vec<Attempt>> {
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

/// Deletes finished deliveries (and their attempts) that ended before `before`;
/// returns how many deliveries.
pub(crate) fn delete_finished_before(conn: &Connection, before: Timestamp) -> Result<usize> {
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
pub(crate) fn count_pending(conn: &Connection) -> Result<u64> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")?
        .query_row([], |r| r.get::<_, i64>(0))?
        .try_into()
        .unwrap_or(0))
}
