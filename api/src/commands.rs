//! Remote commands to devices (`self_test`): the `commands` table in `tickets.db`, the
//! publish through an injected [`CommandPublisher`], results and timeouts.
//!
//! A command is `pending` from its creation until its device answers on
//! `fixahead/v1/{id}/cmd/result` (`answered`, or `failed` when the device says it could
//! not run it) or its deadline passes (`timed_out`). The deadline is judged by the time
//! ingest *received* the answer, not by when it reaches this store, so a reader that
//! marks a command `timed_out` (lazily on read, or the periodic [`CommandService::expire`])
//! and a late-recorded answer that arrived in time agree: the answer wins. An answer
//! received after the deadline is kept (`late: true`) but leaves the command
//! `timed_out`. docs/protocol.md, "Commands", is the wire contract.
//!
//! Why `tickets.db`: commands are requested by API users and read with their tickets;
//! the API process already writes `tickets.db`, while `hot.db` has exactly one writer,
//! the ingest pipeline, which must not wait on API requests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use domain::{CommandOutcome, CommandRequest, CommandResult, DeviceId, MessageKind, Timestamp};
use store::tickets::TicketDb;
pub use store::tickets::{CommandRecord, CommandStatus};

use crate::tickets::Clock;
use crate::{Error, Result};

/// Publishes one MQTT message (topic, payload) with QoS 1, not retained. Must not
/// block: queue it and return.
pub type CommandPublisher =
    Arc<dyn Fn(&str, Vec<u8>) -> std::result::Result<(), String> + Send + Sync>;

/// What recording an answer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultOutcome {
    /// The command is now answered (or failed, as the device said).
    Recorded,
    /// Received after the deadline: kept as late, the command stays timed out.
    Late,
    /// No such command of this device, or it was already answered: nothing changed.
    Unmatched,
}

struct Inner {
    db: TicketDb,
    clock: Clock,
    timeout: Duration,
    publisher: CommandPublisher,
}

/// The command store and sender. Cheap to clone.
#[derive(Clone)]
pub struct CommandService {
    inner: Arc<Inner>,
}

impl CommandService {
    /// Opens the `commands` table in the ticket store at `path` (creating it), with
    /// `timeout` from sending to the deadline, publishing through `publisher`.
    pub fn open(
        path: &Path,
        timeout: Duration,
        publisher: CommandPublisher,
        clock: Clock,
    ) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                db: TicketDb::open(path)?,
                clock,
                timeout,
                publisher,
            }),
        })
    }

    /// The time from sending a command to its deadline.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Stores a `pending` command and publishes it on `fixahead/v1/{device}/cmd`. If the
    /// publish cannot even be queued the command is `failed` at once.
    pub fn send(
        &self,
        device: &DeviceId,
        command: &str,
        requested_by: &str,
    ) -> Result<CommandRecord> {
        let now = (self.inner.clock)();
        let deadline = Timestamp(
            now.millis()
                .saturating_add(i64::try_from(self.inner.timeout.as_millis()).unwrap_or(i64::MAX)),
        );
        let db = &self.inner.db;
        let id = db.write(|tx| tx.insert_command(device, command, now, deadline, requested_by))?;
        let payload = serde_json::to_vec(&CommandRequest {
            id,
            command: command.to_owned(),
            issued_at: now,
            deadline,
        })?;
        let topic = MessageKind::Command.topic(device);
        if let Err(e) = (self.inner.publisher)(&topic, payload) {
            tracing::warn!(command_id = id, device_id = %device, error = %e, "Could not publish a command");
            let error = format!("could not publish the command: {e}");
            db.write(|tx| tx.fail_command(id, &error))?;
        } else {
            tracing::info!(command_id = id, device_id = %device, command, "Command sent");
        }
        self.get(device.as_str(), id)?
            .ok_or_else(|| Error::Corrupt(format!("command {id} vanished")))
    }

    /// The command `id` of `device_id`, timed out first if its deadline has passed.
    pub fn get(&self, device_id: &str, id: i64) -> Result<Option<CommandRecord>> {
        let now = (self.inner.clock)();
        Ok(self.inner.db.write(|tx| {
            tx.time_out_commands(Some(id), now)?;
            tx.command(device_id, id)
        })?)
    }

    /// Marks every pending command whose deadline has passed `timed_out`; returns how
    /// many. The same rule as the lazy check in [`CommandService::get`].
    pub fn expire(&self) -> Result<usize> {
        let now = (self.inner.clock)();
        Ok(self.inner.db.write(|tx| tx.time_out_commands(None, now))?)
    }

    /// Records a device's answer, received by ingest at `result.received_at` (now, if
    /// unset).
    pub fn record_result(&self, result: &CommandResult) -> Result<ResultOutcome> {
        let received_at = result.received_at.unwrap_or_else(|| (self.inner.clock)());
        Ok(self.inner.db.write(|tx| {
            let Some(state) = tx.command_state(result.device_id.as_str(), result.id)? else {
                return Ok(ResultOutcome::Unmatched);
            };
            let open = matches!(
                state.status,
                CommandStatus::Pending | CommandStatus::TimedOut
            ) && state.answered_at.is_none();
            if !open {
                return Ok(ResultOutcome::Unmatched);
            }
            let late = received_at > state.deadline;
            let new_status = match (late, result.status) {
                (true, _) => CommandStatus::TimedOut,
                (false, CommandOutcome::Ok) => CommandStatus::Answered,
                (false, CommandOutcome::Error) => CommandStatus::Failed,
            };
            tx.record_answer(
                result.id,
                new_status,
                received_at,
                result.report.as_ref(),
                result.error.as_deref(),
                late,
            )?;
            Ok::<_, store::Error>(if late {
                ResultOutcome::Late
            } else {
                ResultOutcome::Recorded
            })
        })?)
    }

    /// The newest `limit` commands of a device, newest first (for its diagnosis).
    pub fn recent(&self, device_id: &str, limit: usize) -> Result<Vec<CommandRecord>> {
        let now = (self.inner.clock)();
        let mut rows = self
            .inner
            .db
            .read(|t| t.recent_commands(device_id, limit))?;
        for rec in &mut rows {
            if rec.status == CommandStatus::Pending && rec.deadline <= now {
                rec.status = CommandStatus::TimedOut;
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use std::sync::Mutex;

    use super::*;

    const T0: i64 = 1_790_000_000_000;

    fn service(dir: &Path, now: Arc<AtomicI64>) -> (CommandService, Arc<Mutex<Vec<String>>>) {
        let path = dir.join("tickets.db");
        crate::TicketService::open(&path, crate::TicketConfig::default()).unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        let publisher: CommandPublisher = Arc::new(move |topic: &str, payload: Vec<u8>| {
            log.lock()
                .unwrap()
                .push(format!("{topic} {}", String::from_utf8_lossy(&payload)));
            Ok(())
        });
        let clock: Clock = Arc::new(move || Timestamp(now.load(Ordering::SeqCst)));
        let svc = CommandService::open(&path, Duration::from_secs(30), publisher, clock).unwrap();
        (svc, sent)
    }

    fn answer(device: &DeviceId, id: i64, at: i64) -> CommandResult {
        CommandResult {
            device_id: device.clone(),
            id,
            status: CommandOutcome::Ok,
            ts: None,
            report: Some(serde_json::json!({"components": []})),
            error: None,
            received_at: Some(Timestamp(at)),
        }
    }

    #[test]
    fn the_receive_time_decides_whatever_the_order_of_sweep_and_answer() {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(T0));
        let (svc, sent) = service(dir.path(), now.clone());
        let wm = DeviceId::parse("wm-1").unwrap();
        let other = DeviceId::parse("wm-2").unwrap();

        let a = svc.send(&wm, "self_test", "eng").unwrap();
        assert_eq!(a.status, CommandStatus::Pending);
        assert_eq!(a.deadline, Timestamp(T0 + 30_000));
        let published = sent.lock().unwrap()[0].clone();
        assert!(
            published.starts_with("fixahead/v1/wm-1/cmd {"),
            "{published}"
        );
        assert!(
            published.contains(&format!("\"id\":{}", a.id)),
            "{published}"
        );

        // Swept before an answer that arrived in time was recorded: the answer wins.
        now.store(T0 + 31_000, Ordering::SeqCst);
        assert_eq!(svc.expire().unwrap(), 1);
        assert_eq!(
            svc.get("wm-1", a.id).unwrap().unwrap().status,
            CommandStatus::TimedOut
        );
        assert_eq!(
            svc.record_result(&answer(&wm, a.id, T0 + 29_000)).unwrap(),
            ResultOutcome::Recorded
        );
        let got = svc.get("wm-1", a.id).unwrap().unwrap();
        assert_eq!(got.status, CommandStatus::Answered);
        assert!(!got.late);
        // A second answer, or one from another device, changes nothing.
        assert_eq!(
            svc.record_result(&answer(&wm, a.id, T0 + 29_500)).unwrap(),
            ResultOutcome::Unmatched
        );
        let b = svc.send(&wm, "self_test", "eng").unwrap();
        assert_eq!(
            svc.record_result(&answer(&other, b.id, T0 + 31_500))
                .unwrap(),
            ResultOutcome::Unmatched
        );
        assert_eq!(
            svc.record_result(&answer(&wm, 9_999, T0 + 31_500)).unwrap(),
            ResultOutcome::Unmatched
        );
        // Received after the deadline: late, still timed out, read lazily.
        now.store(T0 + 31_000 + 60_000, Ordering::SeqCst);
        assert_eq!(
            svc.get("wm-1", b.id).unwrap().unwrap().status,
            CommandStatus::TimedOut
        );
        assert_eq!(
            svc.record_result(&answer(&wm, b.id, T0 + 31_000 + 45_000))
                .unwrap(),
            ResultOutcome::Late
        );
        let got = svc.get("wm-1", b.id).unwrap().unwrap();
        assert_eq!((got.status, got.late), (CommandStatus::TimedOut, true));
        assert!(got.result.is_some());
        assert!(svc.get("wm-2", b.id).unwrap().is_none());
        assert_eq!(svc.recent("wm-1", 5).unwrap().len(), 2);
    }

    #[test]
    fn a_publish_that_cannot_be_queued_fails_the_command_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.db");
        crate::TicketService::open(&path, crate::TicketConfig::default()).unwrap();
        let publisher: CommandPublisher = Arc::new(|_: &str, _: Vec<u8>| Err("queue full".into()));
        let clock: Clock = Arc::new(|| Timestamp(T0));
        let svc = CommandService::open(&path, Duration::from_secs(30), publisher, clock).unwrap();
        let c = svc
            .send(&DeviceId::parse("wm-1").unwrap(), "self_test", "eng")
            .unwrap();
        assert_eq!(c.status, CommandStatus::Failed);
        assert!(c.error.unwrap().contains("queue full"));
    }
}
