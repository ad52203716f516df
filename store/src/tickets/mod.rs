//! The ticket store, `tickets.db`: tickets and everything read with them. A
//! [`TicketDb`] is one writer connection and one reader connection; every service that
//! writes the file (tickets, webhooks, commands, fleet analytics) holds its own.
//!
//! Tables:
//! * `tickets`: one row per ticket. The unique partial index `tickets_one_active` on
//!   `(device_id, component) WHERE status IN ('open', 'acknowledged', 'scheduled',
//!   'in_progress')` makes "one active ticket per (device, component)" a property of
//!   the database. `number` is unique. `diagnosis` is the [`domain::Diagnosis`] as JSON.
//!   `risk_logged`/`risk_logged_at` remember the last risk written to the log, so the
//!   log is not flooded by every score. SLA clocks (`respond_by`, `resolve_by`,
//!   `responded_at`, `ended_at`, the `*_breached` flags, `escalated_to`), the assignment
//!   (`engineer`, `window_start`, `window_end`, `skills` as a JSON array, `region`) and
//!   the `outcome` (JSON) were added by schema version 2.
//! * `events`: what `GET /api/v1/events` streams, written in the same transaction as
//!   the change it reports (`id` is the SSE event id, never reused: AUTOINCREMENT).
//! * `ticket_log`: the progress log (ticket, time, actor, action, note), oldest first
//!   by id.
//! * `ticket_numbers`: the last sequence number issued per UTC day (`YYYYMMDD`). A
//!   number is `YYYYMMDD` followed by the 6-digit sequence (`20261124000042`); it is
//!   allocated in the same transaction as the ticket insert and never reused.
//! * `device_risk`: the latest score per (device, component) by event time, and
//!   `flagged_at`: when the current flag episode's first flagged score was recorded
//!   (NULL while not flagged), so that one episode opens at most one ticket.
//! * `fleet_alarms`: batch alarms (`fleet`), at most one `active` per
//!   (model, dimension, value, component, statistic) by a unique partial index.
//! * `fleet_alarm_acks`: the acknowledgement of an alarm (who, when, note), at most
//!   one per alarm (`alarm_acks`).
//! * `webhooks`, `webhook_deliveries`, `webhook_attempts`: registrations and the
//!   delivery outbox (`webhooks`).
//! * `commands`: remote commands to devices and their answers (`commands`).
//! * `fleet_ranges`, `fleet_cohorts`: the fleet summary behind remote diagnosis
//!   (`fleet`).
//! * `device_directory` (schema 7): serial, customer, address, location and region of
//!   a device, by which customer reports find it (`directory`).
//!
//! Tables added without a version (fleet alarms, webhooks, commands, the fleet
//! summary, alarm acknowledgements) are created by any read-write open (`CREATE TABLE
//! IF NOT EXISTS`), so older files gain them.
//!
//! **Schema versions** (`PRAGMA user_version`): 0/1 is the first schema; 2 adds the
//! columns above with `ALTER TABLE ... ADD COLUMN` (existing tickets get no resolve
//! clock, an empty assignment and no outcome) and the `events` table; 3 adds the
//! outcome's kind, component and failure time as columns (`outcome_kind`,
//! `outcome_component`, `outcome_failed_at`) and a change revision (`perf_rev`), all
//! kept by triggers, and the covering index `tickets_performance` from which the model
//! performance report reads the tickets changed since it last looked; 4 adds
//! `device_risk.flagged_at` (a flagged row of an older file gets its `updated_at`: the
//! episode is at least that old); 5 adds `device_risk.warming_up` (0 for older rows:
//! before it, a warming-up device was never scored); 6 adds, for the console's queue
//! (`queue`), the device's registry facts `device_model`, `device_batch` and
//! `device_region` (copied when a ticket opens; NULL on older tickets until a signal or
//! [`Tables::set_device_facts`] fills them in), the sort keys `queue_due` and
//! `queue_rank` kept by triggers, the covering index `tickets_queue` and the partial
//! index `tickets_assigned`. Opening a file upgrades it in place; the upgrade is
//! idempotent.
//!
//! The methods of [`Tables`] are plain SQL over a connection or transaction; the rules
//! (what a flag opens, which transitions are allowed) live in the services of the api
//! crate, which decide where a transaction begins and ends ([`TicketDb::write`]).

mod alarm_acks;
mod commands;
mod device_tickets;
mod directory;
mod dispatch;
mod events;
mod fleet;
mod kpis;
mod outcomes;
mod queue;
mod reports;
mod risk;
mod satisfaction;
mod schema;
mod sla;
mod steps;
mod ticket;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};

pub use alarm_acks::AlarmAck;
pub use commands::{CommandRecord, CommandState, CommandStatus};
pub use directory::DirectoryEntry;
pub use dispatch::{Booking, DeviceLocation, DispatchState};
pub use events::EventRecord;
pub use fleet::{
    AlarmCell, AlarmNumbers, AlarmRecord, Cohort, CohortRow, ComponentHistory, FleetTicket,
    NormalRange, RangeRow,
};
pub use kpis::{KpiCallback, KpiFact, KpiStep};
pub use outcomes::{read_outcomes, PerformanceFact, TicketOutcome};
pub use queue::{Assignee, QueueCell, QueueChoices, QueueQuery, QueueTicket};
pub use risk::RiskRecord;
pub use sla::{DueClock, SlaKind};
pub use steps::next_step_due;
pub use ticket::{
    ActiveTicket, DeviceFacts, NewTicket, Reopen, StatusChange, TicketQuery, TicketUpdate,
};
pub use webhooks::{Attempt, Delivery, DeliveryStatus, DueDelivery, Webhook};

use crate::sqlite::{self, Access, Synchronous};
use crate::Result;

/// The ticket store's file name in a data directory.
pub const TICKETS_DB: &str = "tickets.db";

/// A handle on `tickets.db`: one writer connection and one read-only reader
/// connection, each behind its own lock. Cheap to clone. Every method blocks.
#[derive(Clone)]
pub struct TicketDb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for TicketDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketDb")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl TicketDb {
    /// Opens (creating or upgrading if needed) the ticket store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let writer = sqlite::open(path, Access::ReadWrite(Synchronous::Full), &schema::TICKETS)?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        let reader = sqlite::open(path, Access::QueryOnly, &schema::TICKETS)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one immediate write transaction and commits it if `f` returns
    /// `Ok`; nothing of it is written otherwise. Writers of the whole file (this
    /// process's other handles, other processes) wait for each other.
    pub fn write<T, E: From<crate::Error>>(
        &self,
        f: impl FnOnce(&Tables<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = sqlite::lock(&self.inner.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(crate::Error::from)?;
        let out = f(&Tables { conn: &tx })?;
        tx.commit().map_err(crate::Error::from)?;
        Ok(out)
    }

    /// Runs `f` on the reader connection (each statement sees the latest commit).
    pub fn read<T, E>(
        &self,
        f: impl FnOnce(&Tables<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        f(&Tables {
            conn: &sqlite::lock(&self.inner.reader),
        })
    }

    /// A read-only connection of its own, for a reader that scans whole tables (fleet
    /// snapshots) without holding up this handle's reader.
    pub fn reader(&self) -> Result<TicketReader> {
        Ok(TicketReader {
            conn: sqlite::open(&self.inner.path, Access::QueryOnly, &schema::TICKETS)?,
        })
    }
}

/// A read-only connection to `tickets.db` of its own ([`TicketDb::reader`]).
pub struct TicketReader {
    conn: Connection,
}

impl TicketReader {
    /// The tables, read through this connection. A read that spans several statements
    /// and must see one state uses [`Tables::snapshot`].
    pub fn tables(&self) -> Tables<'_> {
        Tables { conn: &self.conn }
    }
}

/// The tables of `tickets.db` seen through one connection or transaction: the SQL of
/// every read and write, each a method returning domain types and this module's
/// records.
#[derive(Clone, Copy)]
pub struct Tables<'c> {
    conn: &'c Connection,
}
