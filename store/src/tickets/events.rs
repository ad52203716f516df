//! The `events` table: what `GET /api/v1/events` streams and webhooks deliver,
//! written in the same transaction as the change it reports.

use domain::Timestamp;
use rusqlite::params;
use serde::Serialize;

use super::ticket::corrupt;
use super::Tables;
use crate::Result;

/// One stored event (`GET /api/v1/events`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRecord {
    /// Its id: increasing, never reused; the SSE `id`.
    pub id: i64,
    /// When it happened (wall clock).
    pub at: Timestamp,
    /// `ticket.opened`, `ticket.updated`, `ticket.sla_breached` or
    /// `prediction.flagged`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The ticket, for ticket events.
    pub ticket_id: Option<i64>,
    /// The device.
    pub device_id: Option<String>,
    /// The event's data.
    pub data: serde_json::Value,
}

impl Tables<'_> {
    /// Appends an event; returns its id.
    pub fn insert_event(
        &self,
        at: Timestamp,
        kind: &str,
        ticket_id: Option<i64>,
        device_id: Option<&str>,
        data: &serde_json::Value,
    ) -> Result<i64> {
        let conn = self.conn;
        let id = conn
            .prepare_cached(
                "INSERT INTO events (at, type, ticket_id, device_id, data) VALUES (?1, ?2, ?3, ?4, ?5)
                 RETURNING id",
            )?
            .query_row(
                params![at.millis(), kind, ticket_id, device_id, data.to_string()],
                |r| r.get(0),
            )?;
        Ok(id)
    }

    /// Events with an id above `after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventRecord>> {
        let conn = self.conn;
        let mut st = conn.prepare_cached(
            "SELECT id, at, type, ticket_id, device_id, data FROM events WHERE id > ?1
             ORDER BY id LIMIT ?2",
        )?;
        let rows = st.query_map(
            params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            },
        )?;
        rows.map(|row| {
            let (id, at, kind, ticket_id, device_id, data) = row?;
            Ok(EventRecord {
                id,
                at: Timestamp(at),
                kind,
                ticket_id,
                device_id,
                data: serde_json::from_str(&data).map_err(|e| corrupt("events.data", e))?,
            })
        })
        .collect()
    }

    /// The id of the newest event, 0 when there is none.
    pub fn last_event_id(&self) -> Result<i64> {
        let conn = self.conn;
        Ok(conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
            .query_row([], |r| r.get(0))?)
    }

    /// Deletes events older than `before`; returns how many.
    pub fn delete_events_before(&self, before: Timestamp) -> Result<usize> {
        let conn = self.conn;
        Ok(conn
            .prepare_cached("DELETE FROM events WHERE at < ?1")?
            .execute(params![before.millis()])?)
    }
}
