//! The ticket store's schema (version 7) and the upgrades of older files; see the
//! module docs of [`super`] for the tables.

use rusqlite::Connection;

use crate::sqlite::{has_column, Schema};
use crate::Result;

/// `tickets.db`.
pub(super) const TICKETS: Schema = Schema {
    file: super::TICKETS_DB,
    version: SCHEMA_VERSION,
    create: &[
        SCHEMA,
        WEBHOOKS,
        COMMANDS,
        FLEET_SUMMARY,
        super::alarm_acks::FLEET_ALARM_ACKS,
        DEVICE_DIRECTORY,
    ],
    upgrade,
};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tickets (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    number         TEXT NOT NULL UNIQUE,
    device_id      TEXT NOT NULL,
    device_type    TEXT NOT NULL,
    component      TEXT NOT NULL,
    source         TEXT NOT NULL,
    status         TEXT NOT NULL,
    priority       TEXT NOT NULL,
    risk           REAL NOT NULL,
    peak_risk      REAL NOT NULL,
    model_version  TEXT NOT NULL,
    opened_at      INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    respond_by     INTEGER NOT NULL,
    signals        INTEGER NOT NULL,
    diagnosis      TEXT NOT NULL,
    risk_logged    REAL NOT NULL,
    risk_logged_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_one_active ON tickets (device_id, component)
    WHERE status IN ('open', 'acknowledged', 'scheduled', 'in_progress');
CREATE INDEX IF NOT EXISTS tickets_by_device ON tickets (device_id, id);
CREATE INDEX IF NOT EXISTS tickets_by_status ON tickets (status, id);
CREATE TABLE IF NOT EXISTS ticket_log (
    id        INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    note      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_log_by_ticket ON ticket_log (ticket_id, id);
CREATE TABLE IF NOT EXISTS ticket_numbers (
    day      TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_risk (
    device_id     TEXT NOT NULL,
    component     TEXT NOT NULL,
    device_type   TEXT NOT NULL,
    risk          REAL NOT NULL,
    threshold     REAL NOT NULL,
    flagged       INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    top_features  TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    flagged_at    INTEGER,
    warming_up    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, component)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    type      TEXT NOT NULL,
    ticket_id INTEGER,
    device_id TEXT,
    data      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at);
CREATE TABLE IF NOT EXISTS fleet_alarms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    status     TEXT NOT NULL,
    raised_at  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cleared_at INTEGER,
    model      TEXT NOT NULL,
    dimension  TEXT NOT NULL,
    value      TEXT NOT NULL,
    component  TEXT NOT NULL,
    statistic  TEXT NOT NULL,
    p_value    REAL NOT NULL,
    q_value    REAL NOT NULL,
    observed   INTEGER NOT NULL,
    expected   REAL NOT NULL,
    exposure   REAL NOT NULL,
    ratio      REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS fleet_alarms_one_active
    ON fleet_alarms (model, dimension, value, component, statistic) WHERE status = 'active';
"#;

/// Schema version written to `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: i64 = 7;

/// Columns schema version 2 added to `tickets` (name, definition).
const V2_COLUMNS: [(&str, &str); 12] = [
    ("resolve_by", "INTEGER"),
    ("responded_at", "INTEGER"),
    ("ended_at", "INTEGER"),
    ("respond_breached", "INTEGER NOT NULL DEFAULT 0"),
    ("resolve_breached", "INTEGER NOT NULL DEFAULT 0"),
    ("escalated_to", "TEXT"),
    ("engineer", "TEXT"),
    ("window_start", "INTEGER"),
    ("window_end", "INTEGER"),
    ("skills", "TEXT NOT NULL DEFAULT '[]'"),
    ("region", "TEXT"),
    ("outcome", "TEXT"),
];

/// Columns schema version 3 added to `tickets`: the outcome's kind, component and
/// failure time (epoch milliseconds), copied out of `outcome`, and `perf_rev`, a
/// revision that grows with every change the performance report depends on. The
/// triggers of [`V3_DERIVED`] write all four, so whatever writes a ticket, the
/// database keeps them right. The report keeps its tickets in memory and reads only
/// those with a newer `perf_rev` (`Tables::performance_facts`), from a covering index, so it
/// parses no JSON and re-reads nothing that did not change. (Virtual generated columns
/// would be simpler, but SQLite does not read them from a covering index.)
const V3_COLUMNS: [(&str, &str); 4] = [
    ("outcome_kind", "TEXT"),
    ("outcome_component", "TEXT"),
    ("outcome_failed_at", "INTEGER"),
    ("perf_rev", "INTEGER NOT NULL DEFAULT 0"),
];

/// The V3 columns' new values for the row `{row}` (SQL assignments).
macro_rules! derived_columns {
    ($row:literal) => {
        concat!(
            "outcome_kind = json_extract(",
            $row,
            ".outcome, '$.kind'), ",
            "outcome_component = json_extract(",
            $row,
            ".outcome, '$.component'), ",
            "outcome_failed_at = CAST(ROUND(unixepoch(json_extract(",
            $row,
            ".outcome, '$.failed_at'), 'subsec') * 1000) AS INTEGER), ",
            "perf_rev = (SELECT COALESCE(MAX(perf_rev), 0) + 1 FROM tickets)"
        )
    };
}

/// The triggers that keep the V3 columns, the backfill, and the covering index of the
/// performance report, led by `perf_rev`. A write transaction holds the database lock,
/// so revisions grow in commit order: a reader that has seen revision `r` finds every
/// later change above it. Updates that touch none of the report's columns (a new risk
/// on an open ticket changes `model_version` only when the model does) leave it alone.
const V3_DERIVED: &str = concat!(
    "CREATE TRIGGER IF NOT EXISTS tickets_derived_insert AFTER INSERT ON tickets
     BEGIN UPDATE tickets SET ",
    derived_columns!("NEW"),
    " WHERE id = NEW.id; END;
     CREATE TRIGGER IF NOT EXISTS tickets_derived_update
     AFTER UPDATE OF outcome, status, model_version, region, ended_at, opened_at, source,
         device_id, device_type, component ON tickets
     WHEN NEW.outcome IS NOT OLD.outcome OR NEW.status IS NOT OLD.status
         OR NEW.model_version IS NOT OLD.model_version OR NEW.region IS NOT OLD.region
         OR NEW.ended_at IS NOT OLD.ended_at OR NEW.opened_at IS NOT OLD.opened_at
         OR NEW.source IS NOT OLD.source OR NEW.device_id IS NOT OLD.device_id
         OR NEW.device_type IS NOT OLD.device_type OR NEW.component IS NOT OLD.component
     BEGIN UPDATE tickets SET ",
    derived_columns!("NEW"),
    " WHERE id = NEW.id; END;
     UPDATE tickets SET ",
    derived_columns!("tickets"),
    ";
     CREATE INDEX IF NOT EXISTS tickets_performance ON tickets (
         perf_rev, id, opened_at, source, status, device_id, device_type, component,
         model_version, region, ended_at, outcome_kind, outcome_component,
         outcome_failed_at);"
);

/// Columns schema version 6 added to `tickets` for the console's queue
/// (`super::queue`): the device's model, production batch and region from the device
/// registry, copied when the ticket opens (and filled in by later signals when they
/// were unknown), and the queue's sort keys `queue_due` (the SLA deadline that
/// matters now: `respond_by` while `open`, else `resolve_by`) and `queue_rank` (0
/// urgent, 1 important, 2 normal), kept by the triggers of [`V6_QUEUE`].
const V6_COLUMNS: [(&str, &str); 5] = [
    ("device_model", "TEXT"),
    ("device_batch", "TEXT"),
    ("device_region", "TEXT"),
    ("queue_due", "INTEGER"),
    ("queue_rank", "INTEGER"),
];

/// `queue_due` and `queue_rank` of the row `{row}` (SQL expressions).
macro_rules! queue_due {
    ($row:literal) => {
        concat!(
            "CASE WHEN ",
            $row,
            ".status = 'open' THEN ",
            $row,
            ".respond_by ELSE COALESCE(",
            $row,
            ".resolve_by, ",
            $row,
            ".respond_by) END"
        )
    };
}
macro_rules! queue_rank {
    ($row:literal) => {
        concat!(
            "CASE ",
            $row,
            ".priority WHEN 'urgent' THEN 0 WHEN 'important' THEN 1 ELSE 2 END"
        )
    };
}

/// The triggers that keep `queue_due` and `queue_rank`, their backfill, and the
/// queue's indexes:
/// * `tickets_queue`, led by status and the sort keys, covering every column the
///   queue filters and counts on, so a page's ids and the counts are read from the
///   index alone (a ticket row carries its diagnosis JSON, which a scan would read);
/// * `tickets_assigned`: an engineer's active tickets by window start (their day).
///
/// The update trigger fires only on the columns the keys depend on and writes only
/// when a key changed; it touches none of the columns the V3 trigger watches.
const V6_QUEUE: &str = concat!(
    "CREATE TRIGGER IF NOT EXISTS tickets_queue_insert AFTER INSERT ON tickets
     BEGIN UPDATE tickets SET queue_due = ",
    queue_due!("NEW"),
    ", queue_rank = ",
    queue_rank!("NEW"),
    " WHERE id = NEW.id; END;
     CREATE TRIGGER IF NOT EXISTS tickets_queue_update
     AFTER UPDATE OF status, priority, respond_by, resolve_by ON tickets
     WHEN NEW.queue_due IS NOT (",
    queue_due!("NEW"),
    ") OR NEW.queue_rank IS NOT (",
    queue_rank!("NEW"),
    ") BEGIN UPDATE tickets SET queue_due = ",
    queue_due!("NEW"),
    ", queue_rank = ",
    queue_rank!("NEW"),
    " WHERE id = NEW.id; END;
     UPDATE tickets SET queue_due = ",
    queue_due!("tickets"),
    ", queue_rank = ",
    queue_rank!("tickets"),
    " WHERE queue_due IS NOT (",
    queue_due!("tickets"),
    ") OR queue_rank IS NOT (",
    queue_rank!("tickets"),
    ");
     CREATE INDEX IF NOT EXISTS tickets_queue ON tickets (
         status, queue_due, queue_rank, risk DESC, id, source, device_type, component,
         engineer, region, device_region, device_batch, opened_at);
     CREATE INDEX IF NOT EXISTS tickets_assigned ON tickets (engineer, window_start)
         WHERE status IN ('open', 'acknowledged', 'scheduled', 'in_progress');"
);

/// Columns schema version 7 added to `tickets` for the after-sales workflow
/// (docs/service.md): how the ticket came in (`channel`), the customer reports it
/// holds and the latest pre-judgement (JSON), the procedure's step clocks (JSON) with
/// `step_due`, the earliest limit of a step neither done nor overdue (the sweep's
/// key), the customer's satisfaction and the call-back (JSON) with `callback_due`
/// (set while the call-back is pending and not yet overdue), the number of visits and
/// the ticket's planner, and where automatic dispatch stands with it (`dispatch`:
/// `NULL` not yet considered, else the dispatcher's word, e.g. `assigned`, `proposed`,
/// `escalated`; `dispatch_at` when it was last considered).
const V7_COLUMNS: [(&str, &str); 12] = [
    ("channel", "TEXT NOT NULL DEFAULT 'device'"),
    ("reports", "TEXT NOT NULL DEFAULT '[]'"),
    ("prejudgement", "TEXT"),
    ("steps", "TEXT NOT NULL DEFAULT '[]'"),
    ("step_due", "INTEGER"),
    ("satisfaction", "TEXT"),
    ("callback", "TEXT"),
    ("callback_due", "INTEGER"),
    ("visits", "INTEGER NOT NULL DEFAULT 0"),
    ("planner", "TEXT"),
    ("dispatch", "TEXT"),
    ("dispatch_at", "INTEGER"),
];

/// The sweeps' indexes over the V7 clocks, the dispatcher's, and the service KPIs'
/// period scan (`tickets_opened`) and reopen look-up (`ticket_log_reopened`, so that
/// it does not walk every log entry of a period's tickets).
const V7_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS tickets_step_due ON tickets (step_due) WHERE step_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_callback_due ON tickets (callback_due)
    WHERE callback_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_opened ON tickets (opened_at);
CREATE INDEX IF NOT EXISTS ticket_log_reopened ON ticket_log (ticket_id, at)
    WHERE action = 'reopened';
CREATE INDEX IF NOT EXISTS tickets_undispatched ON tickets (id)
    WHERE dispatch IS NULL AND status IN ('open', 'acknowledged', 'scheduled', 'in_progress');";

/// The device directory (schema 7): what the service side knows of a device that the
/// device does not report: its serial number, the customer it belongs to and where
/// it stands. Customer reports find their device by serial or customer reference
/// here; dispatch measures distances from `lat`/`lon`.
const DEVICE_DIRECTORY: &str = r#"
CREATE TABLE IF NOT EXISTS device_directory (
    device_id     TEXT PRIMARY KEY,
    serial        TEXT UNIQUE,
    customer_ref  TEXT,
    customer_name TEXT,
    address       TEXT,
    lat           REAL,
    lon           REAL,
    region        TEXT,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS device_directory_by_customer ON device_directory (customer_ref);
"#;

/// Brings a file of an older version to [`SCHEMA_VERSION`]: adds the columns it
/// lacks, the V3 and V6 triggers and indexes, and backfills.
fn upgrade(conn: &Connection, _from: i64) -> Result<()> {
    let existing: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('tickets')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, definition) in V2_COLUMNS
        .into_iter()
        .chain(V3_COLUMNS)
        .chain(V6_COLUMNS)
        .chain(V7_COLUMNS)
    {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!(
                "ALTER TABLE tickets ADD COLUMN {name} {definition}"
            ))?;
        }
    }
    conn.execute_batch(V3_DERIVED)?;
    conn.execute_batch(V6_QUEUE)?;
    conn.execute_batch(V7_INDEXES)?;
    if !has_column(conn, "device_risk", "flagged_at")? {
        conn.execute_batch(
            "ALTER TABLE device_risk ADD COLUMN flagged_at INTEGER;
             UPDATE device_risk SET flagged_at = updated_at WHERE flagged;",
        )?;
    }
    if !has_column(conn, "device_risk", "warming_up")? {
        conn.execute_batch(
            "ALTER TABLE device_risk ADD COLUMN warming_up INTEGER NOT NULL DEFAULT 0;",
        )?;
    }
    Ok(())
}

/// The webhook tables (`super::webhooks`).
const WEBHOOKS: &str = r#"
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

/// The commands table (`super::commands`).
const COMMANDS: &str = r#"
CREATE TABLE IF NOT EXISTS commands (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id    TEXT NOT NULL,
    command      TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    deadline     INTEGER NOT NULL,
    answered_at  INTEGER,
    result       TEXT,
    error        TEXT,
    late         INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_by_device ON commands (device_id, id);
CREATE INDEX IF NOT EXISTS commands_pending ON commands (deadline) WHERE status = 'pending';
"#;

/// The fleet summary behind remote diagnosis (`super::fleet`).
const FLEET_SUMMARY: &str = r#"
CREATE TABLE IF NOT EXISTS fleet_ranges (
    device_type TEXT NOT NULL,
    model       TEXT NOT NULL,
    channel     TEXT NOT NULL,
    devices     INTEGER NOT NULL,
    p5          REAL NOT NULL,
    p50         REAL NOT NULL,
    p95         REAL NOT NULL,
    computed_at INTEGER NOT NULL,
    PRIMARY KEY (device_type, model, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_cohorts (
    device_type TEXT NOT NULL,
    model       TEXT NOT NULL,
    batch       TEXT NOT NULL,
    devices     INTEGER NOT NULL,
    devices_with_tickets INTEGER NOT NULL,
    components  TEXT NOT NULL,
    computed_at INTEGER NOT NULL,
    PRIMARY KEY (device_type, model, batch)
) WITHOUT ROWID;
"#;
