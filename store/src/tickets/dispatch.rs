//! Automatic dispatch's reads and writes (docs/dispatch.md): the tickets not yet
//! considered (`dispatch IS NULL`, index `tickets_undispatched`), the dispatcher's
//! word on each (`dispatch`, `dispatch_at`), an escalation when nobody fits, where a
//! device stands (`device_directory`), and the engineers' bookings their load and
//! availability are counted from.

use domain::Timestamp;
use rusqlite::{params, OptionalExtension};

use super::Tables;
use crate::Result;

/// Where a device stands, from the device directory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceLocation {
    /// Latitude, when known.
    pub lat: Option<f64>,
    /// Longitude, when known.
    pub lon: Option<f64>,
    /// Service region, when known.
    pub region: Option<String>,
}

/// One visit booked for an engineer: a ticket assigned to them with a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booking {
    /// The engineer (the ticket's assignee).
    pub engineer: String,
    /// The ticket.
    pub ticket_id: i64,
    /// Start of its window.
    pub window_start: Timestamp,
}

/// Where automatic dispatch stands with a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchState {
    /// `assigned`, `proposed` or `escalated`; `None` while not yet considered.
    pub state: Option<String>,
    /// When it was last considered.
    pub at: Option<Timestamp>,
}

impl Tables<'_> {
    /// Up to `limit` active tickets the dispatcher has not considered yet, oldest
    /// first.
    pub fn undispatched(&self, limit: usize) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id FROM tickets INDEXED BY tickets_undispatched
             WHERE dispatch IS NULL AND status IN ('open', 'acknowledged', 'scheduled', 'in_progress')
             ORDER BY id LIMIT ?1",
        )?;
        let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records the dispatcher's word on ticket `id` (`assigned`, `proposed`, ...).
    pub fn set_dispatch(&self, id: i64, state: &str, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE tickets SET dispatch = ?2, dispatch_at = ?3 WHERE id = ?1")?
            .execute(params![id, state, now.millis()])?;
        Ok(())
    }

    /// Escalates ticket `id` to `to` because nobody fits: `escalated_to` and
    /// `dispatch = 'escalated'`.
    pub fn escalate_dispatch(&self, id: i64, to: &str, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tickets SET escalated_to = ?2, dispatch = 'escalated', dispatch_at = ?3,
                     updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, to, now.millis()])?;
        Ok(())
    }

    /// Where dispatch stands with ticket `id` (`None` without such a ticket).
    pub fn dispatch_state(&self, id: i64) -> Result<Option<DispatchState>> {
        Ok(self
            .conn
            .prepare_cached("SELECT dispatch, dispatch_at FROM tickets WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(DispatchState {
                    state: r.get(0)?,
                    at: r.get::<_, Option<i64>>(1)?.map(Timestamp),
                })
            })
            .optional()?)
    }

    /// Active tickets the dispatcher escalated, newest first (ids).
    pub fn escalated_by_dispatch(&self, limit: usize) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id FROM tickets WHERE dispatch = 'escalated'
               AND status IN ('open', 'acknowledged', 'scheduled', 'in_progress')
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Where device `device_id` stands according to the device directory, when it is
    /// listed there.
    pub fn device_location(&self, device_id: &str) -> Result<Option<DeviceLocation>> {
        Ok(self
            .conn
            .prepare_cached("SELECT lat, lon, region FROM device_directory WHERE device_id = ?1")?
            .query_row([device_id], |r| {
                Ok(DeviceLocation {
                    lat: r.get(0)?,
                    lon: r.get(1)?,
                    region: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// The registry region copied onto ticket `id` (`device_region`), when known.
    pub fn ticket_device_region(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT device_region FROM tickets WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Visits booked from `from` on: every ticket not dismissed that is assigned to
    /// an engineer with a window starting at or after `from`, but ticket `except`.
    pub fn bookings(&self, from: Timestamp, except: Option<i64>) -> Result<Vec<Booking>> {
        let mut st = self.conn.prepare_cached(
            "SELECT engineer, id, window_start FROM tickets
             WHERE engineer IS NOT NULL AND window_start >= ?1 AND status != 'dismissed'
               AND id != ?2
             ORDER BY window_start",
        )?;
        let rows = st.query_map(params![from.millis(), except.unwrap_or(-1)], |r| {
            Ok(Booking {
                engineer: r.get(0)?,
                ticket_id: r.get(1)?,
                window_start: Timestamp(r.get(2)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Active tickets per engineer (engineer, count), but ticket `except`.
    pub fn active_per_engineer(&self, except: Option<i64>) -> Result<Vec<(String, u32)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT engineer, COUNT(*) FROM tickets
             WHERE engineer IS NOT NULL AND id != ?1
               AND status IN ('open', 'acknowledged', 'scheduled', 'in_progress')
             GROUP BY engineer",
        )?;
        let rows = st.query_map([except.unwrap_or(-1)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
