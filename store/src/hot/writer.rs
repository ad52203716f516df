//! The hot store's single writer: one transaction per batch, dead letters beside the
//! messages, `arrival` numbers in commit order.

use std::path::Path;

use domain::{
    DeviceId, DeviceInfo, FaultMessage, Message, Rejection, StatusMessage, Telemetry, Timestamp,
};
use rusqlite::{params, CachedStatement, Connection, Transaction};

use super::retention::{DeadLetterRetention, Pruner};
use super::schema::{newest_arrival, HOT};
use super::DEAD_LETTER_PAYLOAD_BYTES;
use crate::sqlite::{self, Access, Synchronous};
use crate::Result;

/// One item of a batch to commit.
#[derive(Debug)]
pub enum StoreItem<'a> {
    /// A valid message.
    Message {
        /// The decoded message.
        message: &'a Message,
        /// Wall-clock receive time.
        received_at: Timestamp,
    },
    /// A rejected message.
    DeadLetter {
        /// Topic it arrived on.
        topic: &'a str,
        /// Raw payload (truncated to [`DEAD_LETTER_PAYLOAD_BYTES`] when stored).
        payload: &'a [u8],
        /// Why it was rejected.
        rejection: &'a Rejection,
        /// Wall-clock receive time.
        received_at: Timestamp,
    },
}

impl StoreItem<'_> {
    fn received_at(&self) -> Timestamp {
        match self {
            StoreItem::Message { received_at, .. } | StoreItem::DeadLetter { received_at, .. } => {
                *received_at
            }
        }
    }
}

/// What happened to one item of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Newly stored.
    Stored,
    /// `(device_id, seq)` was already stored: a redelivery.
    Duplicate,
    /// Stored as a dead letter.
    DeadLettered,
}

/// The hot store's single writer.
pub struct HotStore {
    pub(super) conn: Connection,
    pruner: Pruner,
    /// The `arrival` of the newest stored telemetry or fault row.
    last_arrival: i64,
}

impl HotStore {
    /// Opens (creating or upgrading if needed) the hot store file in WAL mode.
    pub fn open(path: &Path, synchronous: Synchronous) -> Result<Self> {
        let conn = sqlite::open(path, Access::ReadWrite(synchronous), &HOT)?;
        let last_arrival = newest_arrival(&conn)?;
        Ok(Self {
            conn,
            pruner: Pruner::default(),
            last_arrival,
        })
    }

    /// Replaces the dead-letter bounds (default: [`DeadLetterRetention::default`]). They
    /// are applied after the next commit.
    pub fn with_dead_letter_retention(mut self, retention: DeadLetterRetention) -> Self {
        self.pruner.retention = retention;
        self.pruner.prune_due = true;
        self
    }

    /// Dead-letter rows deleted by retention since the last call.
    pub fn take_pruned(&mut self) -> u64 {
        self.pruner.take_pruned()
    }

    /// Commits a batch in one transaction and reports what happened to each item,
    /// in order. On error nothing of the batch is stored.
    ///
    /// After the commit, and at most once per [`DeadLetterRetention::interval`], it
    /// prunes the dead letters in a second transaction if the batch added some, the
    /// oldest has aged out, or the store was just opened. A failed prune is logged and
    /// retried later; it never fails the commit, which is already durable.
    pub fn commit(&mut self, items: &[StoreItem<'_>]) -> Result<Vec<Outcome>> {
        let tx = self.conn.transaction()?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut newest: Option<Timestamp> = None;
        // Taken only by rows actually inserted, and kept only if the commit succeeds:
        // arrivals stay gapless and in commit order.
        let mut batch = Batch::prepare(&tx, self.last_arrival)?;
        for item in items {
            outcomes.push(batch.write(item)?);
            newest = newest.max(Some(item.received_at()));
        }
        let (arrival, dead_letters) = (batch.arrival, batch.dead_letters);
        drop(batch);
        tx.commit()?;
        self.last_arrival = arrival;
        self.pruner
            .after_commit(&mut self.conn, newest, dead_letters);
        Ok(outcomes)
    }

    /// Deletes the dead letters received more than `max_age` before `now`, then the
    /// oldest (by id) beyond `max_rows`, in one transaction, and returns how many. At
    /// most 10,000 rows more than were added since the previous prune go at
    /// once; the rest go after the next commits. Only `dead_letters` rows are deleted.
    pub fn prune_dead_letters(&mut self, now: Timestamp) -> Result<u64> {
        self.pruner.prune(&mut self.conn, now)
    }
}

/// The statements of one commit, and what it has written so far.
struct Batch<'t> {
    telemetry: CachedStatement<'t>,
    fault: CachedStatement<'t>,
    device: CachedStatement<'t>,
    status: CachedStatement<'t>,
    dead_letter: CachedStatement<'t>,
    /// The readings of the telemetry being written, as JSON (reused).
    readings: String,
    /// The `arrival` of the newest row written.
    arrival: i64,
    dead_letters: u64,
}

impl<'t> Batch<'t> {
    fn prepare(tx: &'t Transaction<'_>, last_arrival: i64) -> Result<Self> {
        Ok(Self {
            telemetry: tx.prepare_cached(
                "INSERT OR IGNORE INTO telemetry (device_id, seq, ts, received_at, readings, arrival) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            fault: tx.prepare_cached(
                "INSERT OR IGNORE INTO faults (device_id, seq, ts, received_at, code, state, arrival) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            device: tx.prepare_cached(
                "INSERT INTO devices (device_id, device_type, model, fw, batch, region, first_seen, last_seen, last_event_ts, messages)
                 VALUES (?1, ?2, ?3, ?4, ?7, ?8, ?5, ?5, ?6, 1)
                 ON CONFLICT (device_id) DO UPDATE SET
                     device_type = excluded.device_type,
                     model = excluded.model,
                     fw = COALESCE(excluded.fw, devices.fw),
                     batch = COALESCE(excluded.batch, devices.batch),
                     region = COALESCE(excluded.region, devices.region),
                     last_seen = MAX(devices.last_seen, excluded.last_seen),
                     last_event_ts = MAX(devices.last_event_ts, excluded.last_event_ts),
                     messages = devices.messages + 1",
            )?,
            status: tx.prepare_cached(
                "INSERT INTO device_status (device_id, online, status_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, status_at = excluded.status_at
                 WHERE excluded.status_at >= device_status.status_at",
            )?,
            dead_letter: tx.prepare_cached(
                "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload, payload_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            readings: String::with_capacity(256),
            arrival: last_arrival,
            dead_letters: 0,
        })
    }

    fn write(&mut self, item: &StoreItem<'_>) -> Result<Outcome> {
        match *item {
            StoreItem::Message {
                message: Message::Telemetry(t),
                received_at,
            } => self.telemetry(t, received_at),
            StoreItem::Message {
                message: Message::Fault(f),
                received_at,
            } => self.fault(f, received_at),
            StoreItem::Message {
                message:
                    Message::Status(StatusMessage {
                        ref device_id,
                        online,
                        ts,
                    }),
                received_at,
            } => {
                let at = ts.unwrap_or(received_at);
                self.status
                    .execute(params![device_id.as_str(), online, at.millis()])?;
                Ok(Outcome::Stored)
            }
            // Commands are fixahead's own echo; results go on to the command store
            // (tickets.db) downstream. Neither is kept here.
            StoreItem::Message {
                message: Message::Command(_) | Message::CommandResult(_),
                ..
            } => Ok(Outcome::Stored),
            StoreItem::DeadLetter {
                topic,
                payload,
                rejection,
                received_at,
            } => {
                let kept = &payload[..payload.len().min(DEAD_LETTER_PAYLOAD_BYTES)];
                let topic: String = topic.chars().take(256).collect();
                self.dead_letter.execute(params![
                    received_at.millis(),
                    topic,
                    rejection.device_id.as_ref().map(|d| d.as_str()),
                    rejection.reason.as_str(),
                    rejection.detail,
                    kept,
                    payload.len() as i64
                ])?;
                self.dead_letters += 1;
                Ok(Outcome::DeadLettered)
            }
        }
    }

    fn telemetry(&mut self, t: &Telemetry, received_at: Timestamp) -> Result<Outcome> {
        write_readings(&mut self.readings, t);
        let n = self.telemetry.execute(params![
            t.device_id.as_str(),
            t.seq as i64,
            t.ts.millis(),
            received_at.millis(),
            self.readings,
            self.arrival + 1
        ])?;
        self.stored(n, &t.device_id, t.ts, &t.device, received_at)
    }

    fn fault(&mut self, f: &FaultMessage, received_at: Timestamp) -> Result<Outcome> {
        let n = self.fault.execute(params![
            f.device_id.as_str(),
            f.seq as i64,
            f.ts.millis(),
            received_at.millis(),
            f.code,
            f.state.as_str(),
            self.arrival + 1
        ])?;
        self.stored(n, &f.device_id, f.ts, &f.device, received_at)
    }

    /// After inserting a telemetry or fault row (`inserted` rows: 1, or 0 for a
    /// duplicate): takes the next arrival and registers the device.
    fn stored(
        &mut self,
        inserted: usize,
        device_id: &DeviceId,
        ts: Timestamp,
        d: &DeviceInfo,
        received_at: Timestamp,
    ) -> Result<Outcome> {
        if inserted == 0 {
            return Ok(Outcome::Duplicate);
        }
        self.arrival += 1;
        self.device.execute(params![
            device_id.as_str(),
            d.device_type,
            d.model,
            d.fw,
            received_at.millis(),
            ts.millis(),
            d.batch,
            d.region
        ])?;
        Ok(Outcome::Stored)
    }
}

/// The readings of `t` as a JSON object, into `out`.
fn write_readings(out: &mut String, t: &Telemetry) {
    use std::fmt::Write as _;
    out.clear();
    out.push('{');
    for (i, (name, value)) in t.readings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Channel names were checked to be at most 64 bytes; serde_json escapes them.
        let _ = write!(
            out,
            "{}:{}",
            serde_json::Value::String(name.clone()),
            serde_json::Value::from(*value)
        );
    }
    out.push('}');
}
