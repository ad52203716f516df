//! The `commands` table of `tickets.db`: remote commands to devices (`self_test`),
//! their deadlines and the devices' answers. Commands live beside their tickets:
//! requested by API users and read with them, while `hot.db` keeps exactly one writer,
//! the ingest pipeline, which must not wait on API requests.

use domain::{DeviceId, Timestamp};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::Tables;
use crate::{Error, Result};

/// Where a command stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Sent; no answer yet and the deadline has not passed.
    Pending,
    /// The device answered in time with a report.
    Answered,
    /// No answer arrived before the deadline (the device may be offline).
    TimedOut,
    /// It could not be published, or the device answered that it could not run it.
    Failed,
}

impl CommandStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Answered => "answered",
            Self::TimedOut => "timed_out",
            Self::Failed => "failed",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "answered" => Self::Answered,
            "timed_out" => Self::TimedOut,
            "failed" => Self::Failed,
            other => return Err(Error::Corrupt(format!("command status {other:?}"))),
        })
    }
}

/// A command as stored and shown by `GET /api/v1/devices/{device_id}/commands/{id}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandRecord {
    /// Command id (also in the MQTT payloads).
    pub id: i64,
    /// The device.
    pub device_id: String,
    /// The command, e.g. `self_test`.
    pub command: String,
    /// Where it stands.
    pub status: CommandStatus,
    /// When it was requested.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    /// Answers received after this are late.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub deadline: Timestamp,
    /// When ingest received the answer.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub answered_at: Option<Timestamp>,
    /// The device's report (status `ok`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<serde_json::Value>,
    /// Why it failed (device error or publish failure).
    pub error: Option<String>,
    /// The answer arrived after the deadline (the command stays `timed_out`).
    pub late: bool,
    /// The API key name that requested it.
    pub requested_by: String,
}

fn row_to_record(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(CommandRecord, String, Option<String>)> {
    Ok((
        CommandRecord {
            id: r.get(0)?,
            device_id: r.get(1)?,
            command: r.get(2)?,
            status: CommandStatus::Pending,
            created_at: Timestamp(r.get(4)?),
            deadline: Timestamp(r.get(5)?),
            answered_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
            result: None,
            error: r.get(8)?,
            late: r.get::<_, i64>(9)? != 0,
            requested_by: r.get(10)?,
        },
        r.get::<_, String>(3)?,
        r.get::<_, Option<String>>(7)?,
    ))
}

/// A row with its stored status and result text parsed.
fn into_record(
    (mut rec, status, result): (CommandRecord, String, Option<String>),
) -> Result<CommandRecord> {
    rec.status = CommandStatus::parse(&status)?;
    rec.result = result.map(|r| serde_json::from_str(&r)).transpose()?;
    Ok(rec)
}

const COLUMNS: &str = "id, device_id, command, status, created_at, deadline, answered_at, result, error, late, requested_by";

/// Where a command stood when its answer arrived ([`Tables::command_state`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandState {
    /// Its status.
    pub status: CommandStatus,
    /// Its deadline.
    pub deadline: Timestamp,
    /// When an answer was recorded, if one was.
    pub answered_at: Option<Timestamp>,
}

impl Tables<'_> {
    /// Stores a `pending` command; returns its id.
    pub fn insert_command(
        &self,
        device: &DeviceId,
        command: &str,
        created_at: Timestamp,
        deadline: Timestamp,
        requested_by: &str,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO commands (device_id, command, status, created_at, deadline, requested_by)
             VALUES (?1, ?2, 'pending', ?3, ?4, ?5)",
            params![
                device.as_str(),
                command,
                created_at.millis(),
                deadline.millis(),
                requested_by
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Marks a command `failed` with `error` (it could not be published).
    pub fn fail_command(&self, id: i64, error: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE commands SET status = 'failed', error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Marks pending commands whose deadline is at or before `now` `timed_out`: only
    /// command `id` when given, else all; returns how many.
    pub fn time_out_commands(&self, id: Option<i64>, now: Timestamp) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE commands SET status = 'timed_out'
             WHERE (?1 IS NULL OR id = ?1) AND status = 'pending' AND deadline <= ?2",
            params![id, now.millis()],
        )?)
    }

    /// Command `id` of `device_id`.
    pub fn command(&self, device_id: &str, id: i64) -> Result<Option<CommandRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM commands WHERE id = ?1 AND device_id = ?2"),
                params![id, device_id],
                row_to_record,
            )
            .optional()?
            .map(into_record)
            .transpose()
    }

    /// Where command `id` of `device_id` stands, for recording an answer.
    pub fn command_state(&self, device_id: &str, id: i64) -> Result<Option<CommandState>> {
        let row: Option<(String, i64, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT status, deadline, answered_at FROM commands WHERE id = ?1 AND device_id = ?2",
                params![id, device_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(status, deadline, answered_at)| {
            Ok(CommandState {
                status: CommandStatus::parse(&status)?,
                deadline: Timestamp(deadline),
                answered_at: answered_at.map(Timestamp),
            })
        })
        .transpose()
    }

    /// Records an answer to command `id`: its new status, when ingest received it, the
    /// report or error, and whether it was late.
    pub fn record_answer(
        &self,
        id: i64,
        status: CommandStatus,
        received_at: Timestamp,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        late: bool,
    ) -> Result<()> {
        let report = report.map(serde_json::to_string).transpose()?;
        self.conn.execute(
            "UPDATE commands SET status = ?2, answered_at = ?3, result = ?4, error = ?5, late = ?6 WHERE id = ?1",
            params![id, status.as_str(), received_at.millis(), report, error, late],
        )?;
        Ok(())
    }

    /// The newest `limit` commands of a device, newest first, as stored.
    pub fn recent_commands(&self, device_id: &str, limit: usize) -> Result<Vec<CommandRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM commands WHERE device_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![device_id, limit as i64], row_to_record)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(into_record).collect()
    }
}
