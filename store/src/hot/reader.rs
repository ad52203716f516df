//! Reading the hot store: the registry, telemetry, faults and dead letters for the
//! API, replays for warm-up and training, and arrival pages for the archive.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use domain::{FaultState, Message, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::retention::to_sql_count;
use super::rows::{device_row, fault_row, message_row, telemetry_row, DEVICE_SELECT};
use super::schema::{newest_arrival, HOT};
use crate::sqlite::{self, Access};
use crate::Result;

mod by_reason;
pub use by_reason::{ReasonCounts, ReasonPage};

/// A registered device, as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceRecord {
    /// Device id.
    pub device_id: String,
    /// The latest type, model, firmware, batch and region the device reported (JSON:
    /// `type`, `model`, `fw`, `batch`, `region` beside `device_id`).
    #[serde(flatten)]
    pub device: domain::DeviceInfo,
    /// Wall-clock time of the first stored message.
    pub first_seen: Timestamp,
    /// Wall-clock time of the latest stored message.
    pub last_seen: Timestamp,
    /// Latest event time the device reported.
    pub last_event_ts: Timestamp,
    /// Messages stored.
    pub messages: u64,
    /// Last online/offline status, if the device published one.
    pub online: Option<bool>,
    /// When that status was set.
    pub status_at: Option<Timestamp>,
}

/// One stored telemetry message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TelemetryRecord {
    /// Device id.
    pub device_id: String,
    /// Device sequence number.
    pub seq: u64,
    /// Event time.
    pub ts: Timestamp,
    /// Wall-clock receive time.
    pub received_at: Timestamp,
    /// Readings by channel.
    pub readings: BTreeMap<String, f64>,
}

/// One stored fault message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultRecord {
    /// Device id.
    pub device_id: String,
    /// Device sequence number.
    pub seq: u64,
    /// Event time.
    pub ts: Timestamp,
    /// Wall-clock receive time.
    pub received_at: Timestamp,
    /// Fault code.
    pub code: String,
    /// Raised or cleared.
    pub state: FaultState,
}

/// One dead letter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadLetterRecord {
    /// Store id (increasing).
    pub id: i64,
    /// Wall-clock receive time.
    pub received_at: Timestamp,
    /// Topic it arrived on.
    pub topic: String,
    /// Device id, when the topic named a valid one.
    pub device_id: Option<String>,
    /// Stable reason code (see docs/protocol.md).
    pub reason: String,
    /// What exactly was wrong.
    pub detail: String,
    /// The stored payload prefix, as UTF-8 (invalid bytes replaced).
    pub payload: String,
    /// Full payload length in bytes.
    pub payload_bytes: u64,
    /// Whether `payload` is only a prefix.
    pub truncated: bool,
}

/// Stored telemetry and faults after an arrival position, for the archive
/// ([`StoreReader::read_after`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ArrivalPage {
    /// The messages, in arrival (commit) order, each with its `arrival`. Type, model and
    /// firmware are the device's current ones from the registry.
    pub messages: Vec<(i64, Message)>,
    /// The position after this page: the `arrival` of its last row (a row that could
    /// not be decoded is skipped but still passed), or the `after` asked for if empty.
    pub through: i64,
    /// The newest `arrival` stored when the page was read (0: none), so
    /// `newest - through` rows are left after it.
    pub newest: i64,
}

/// Row counts, for health and metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreCounts {
    /// Registered devices.
    pub devices: u64,
    /// Stored telemetry messages.
    pub telemetry: u64,
    /// Stored fault messages.
    pub faults: u64,
    /// Dead letters.
    pub dead_letters: u64,
}

/// Read access to the hot store. Cheap to clone; blocking (call from
/// `spawn_blocking` in async code).
#[derive(Clone)]
pub struct StoreReader {
    conn: Arc<Mutex<Connection>>,
}

impl StoreReader {
    /// Opens a read-only connection. The writer must have created the file.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = sqlite::open(path, Access::ReadOnly, &HOT)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        Ok(f(&sqlite::lock(&self.conn))?)
    }

    /// Devices ordered by id, after `after` (cursor), optionally of one type.
    pub fn list_devices(
        &self,
        device_type: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "{DEVICE_SELECT} WHERE (?1 IS NULL OR d.device_type = ?1) AND (?2 IS NULL OR d.device_id > ?2)
                 ORDER BY d.device_id LIMIT ?3"
            ))?;
            let rows = st.query_map(params![device_type, after, limit as i64], device_row)?;
            rows.collect()
        })
    }

    /// Every device that reported a region, with its latest region (for the model
    /// performance report, which groups tickets by the device's region).
    pub fn device_regions(&self) -> Result<std::collections::HashMap<String, String>> {
        self.with(|c| {
            let mut st =
                c.prepare_cached("SELECT device_id, region FROM devices WHERE region IS NOT NULL")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// One device.
    pub fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>> {
        self.with(|c| {
            c.prepare_cached(&format!("{DEVICE_SELECT} WHERE d.device_id = ?1"))?
                .query_row(params![device_id], device_row)
                .optional()
        })
    }

    /// Telemetry of a device with `from <= ts < to`, oldest first, at most `limit` rows.
    pub fn telemetry(
        &self,
        device_id: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<TelemetryRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT device_id, seq, ts, received_at, readings FROM telemetry
                 WHERE device_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts, seq LIMIT ?4",
            )?;
            let rows = st.query_map(
                params![
                    device_id,
                    from.map_or(i64::MIN, Timestamp::millis),
                    to.map_or(i64::MAX, Timestamp::millis),
                    limit as i64
                ],
                telemetry_row,
            )?;
            rows.collect()
        })
    }

    /// The latest telemetry message of a device (by event time).
    pub fn latest_telemetry(&self, device_id: &str) -> Result<Option<TelemetryRecord>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT device_id, seq, ts, received_at, readings FROM telemetry
                 WHERE device_id = ?1 ORDER BY ts DESC, seq DESC LIMIT 1",
            )?
            .query_row(params![device_id], telemetry_row)
            .optional()
        })
    }

    /// The latest value of every channel a device reported, with its event time: a
    /// message may carry a subset of channels, so this looks back until each channel
    /// has been seen (bounded to the last `lookback` messages).
    pub fn latest_readings(
        &self,
        device_id: &str,
        lookback: usize,
    ) -> Result<BTreeMap<String, (f64, Timestamp)>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT device_id, seq, ts, received_at, readings FROM telemetry
                 WHERE device_id = ?1 ORDER BY ts DESC, seq DESC LIMIT ?2",
            )?;
            let mut latest = BTreeMap::new();
            for row in st.query_map(params![device_id, lookback as i64], telemetry_row)? {
                let row = row?;
                for (name, value) in row.readings {
                    latest.entry(name).or_insert((value, row.ts));
                }
            }
            Ok(latest)
        })
    }

    /// The newest faults of a device, newest first.
    pub fn recent_faults(&self, device_id: &str, limit: usize) -> Result<Vec<FaultRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT device_id, seq, ts, received_at, code, state FROM faults
                 WHERE device_id = ?1 ORDER BY ts DESC, seq DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![device_id, limit as i64], fault_row)?;
            rows.collect()
        })
    }

    /// Dead letters, newest first, with ids below `before` (cursor).
    pub fn dead_letters(&self, before: Option<i64>, limit: usize) -> Result<Vec<DeadLetterRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, received_at, topic, device_id, reason, detail, payload, payload_bytes
                 FROM dead_letters WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![before.unwrap_or(i64::MAX), limit as i64], |r| {
                let payload: Vec<u8> = r.get(6)?;
                let payload_bytes: i64 = r.get(7)?;
                Ok(DeadLetterRecord {
                    id: r.get(0)?,
                    received_at: Timestamp(r.get(1)?),
                    topic: r.get(2)?,
                    device_id: r.get(3)?,
                    reason: r.get(4)?,
                    detail: r.get(5)?,
                    truncated: (payload.len() as i64) < payload_bytes,
                    payload: String::from_utf8_lossy(&payload).into_owned(),
                    payload_bytes: payload_bytes.max(0) as u64,
                })
            })?;
            rows.collect()
        })
    }

    /// Row counts.
    pub fn counts(&self) -> Result<StoreCounts> {
        self.with(|c| {
            let count = |table: &str| -> rusqlite::Result<u64> {
                c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n.max(0) as u64)
            };
            Ok(StoreCounts {
                devices: count("devices")?,
                telemetry: count("telemetry")?,
                faults: count("faults")?,
                dead_letters: count("dead_letters")?,
            })
        })
    }

    /// The newest receive time of any stored message, if any device is registered.
    pub fn newest_received_at(&self) -> Result<Option<Timestamp>> {
        self.with(|c| {
            c.query_row("SELECT MAX(last_seen) FROM devices", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|v| v.map(Timestamp))
        })
    }

    /// Every stored telemetry and fault message received at or after `since`, as the
    /// messages they were decoded from, in the order they arrived (then event time and
    /// seq), passed to `f` one at a time. Used to rebuild feature state after a
    /// restart: arrival order is the order the live pipeline applied them in, so a
    /// message that arrived late is late again. The device's current type, model and
    /// firmware, batch and region from the registry stand in for the original payload's.
    pub fn replay_since(&self, since: Timestamp, mut f: impl FnMut(Message)) -> Result<u64> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT 0, t.device_id, t.seq, t.ts, t.readings, NULL, NULL, d.device_type, d.model, d.fw, t.received_at,
                        d.batch, d.region
                   FROM telemetry t JOIN devices d ON d.device_id = t.device_id WHERE t.received_at >= ?1
                 UNION ALL
                 SELECT 1, f.device_id, f.seq, f.ts, NULL, f.code, f.state, d.device_type, d.model, d.fw, f.received_at,
                        d.batch, d.region
                   FROM faults f JOIN devices d ON d.device_id = f.device_id WHERE f.received_at >= ?1
                 ORDER BY 11, 4, 3",
            )?;
            let mut rows = st.query(params![since.millis()])?;
            let mut n = 0;
            while let Some(r) = rows.next()? {
                if let Some(message) = message_row(r)? {
                    f(message);
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    /// The newest `arrival` of a stored telemetry or fault row (0: none).
    pub fn newest_arrival(&self) -> Result<i64> {
        self.with(newest_arrival)
    }

    /// Up to `limit` stored telemetry and fault messages with `arrival > after`, in
    /// arrival order: the order they were committed in, which is the order they
    /// arrived. Read in one snapshot, so a page never holds a later commit's row
    /// without an earlier one's. The archive tails the store with it.
    pub fn read_after(&self, after: i64, limit: usize) -> Result<ArrivalPage> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let mut rows: Vec<(i64, Option<Message>)> = Vec::new();
            for sql in [
                "SELECT 0, t.device_id, t.seq, t.ts, t.readings, NULL, NULL,
                        COALESCE(d.device_type, ''), COALESCE(d.model, ''), d.fw, t.arrival,
                        d.batch, d.region
                   FROM telemetry t LEFT JOIN devices d ON d.device_id = t.device_id
                  WHERE t.arrival > ?1 ORDER BY t.arrival LIMIT ?2",
                "SELECT 1, f.device_id, f.seq, f.ts, NULL, f.code, f.state,
                        COALESCE(d.device_type, ''), COALESCE(d.model, ''), d.fw, f.arrival,
                        d.batch, d.region
                   FROM faults f LEFT JOIN devices d ON d.device_id = f.device_id
                  WHERE f.arrival > ?1 ORDER BY f.arrival LIMIT ?2",
            ] {
                let mut st = tx.prepare_cached(sql)?;
                let mut q = st.query(params![after, to_sql_count(limit as u64)])?;
                while let Some(r) = q.next()? {
                    rows.push((r.get(10)?, message_row(r)?));
                }
            }
            let newest = newest_arrival(&tx)?;
            tx.finish()?;
            // Each table's first `limit` rows hold the first `limit` of both together.
            rows.sort_unstable_by_key(|(arrival, _)| *arrival);
            rows.truncate(limit);
            let through = rows.last().map_or(after, |(arrival, _)| *arrival);
            Ok(ArrivalPage {
                messages: rows
                    .into_iter()
                    .filter_map(|(arrival, m)| m.map(|m| (arrival, m)))
                    .collect(),
                through,
                newest,
            })
        })
    }
}
