//! The console's queue and an engineer's day, read from `tickets` (schema version 6).
//!
//! * **Order**: what needs attention first: the SLA deadline that matters now
//!   (`queue_due`: `respond_by` while a ticket is `open`, else `resolve_by`), then
//!   priority (`queue_rank`: urgent, important, normal), then risk (highest first),
//!   then id. Both keys are columns kept by triggers (`schema::V6_QUEUE`).
//! * **Filters**: statuses, priority, source, device type, component, region (the
//!   device's registry region, else the ticket's assignment region, as the
//!   performance report groups them), production batch (the registry's, copied onto
//!   the ticket), engineer (or unassigned) and opened since.
//! * **Speed**: a page's ids and every count are read from the covering index
//!   `tickets_queue` alone (a ticket row carries its diagnosis JSON, which a scan would
//!   have to read past); only the rows of the page are read from the table. With
//!   10,000 active tickets a page and its counts take a few milliseconds.

use domain::{Priority, TicketSource, TicketStatus, Timestamp};
use rusqlite::{params, Row};

use super::ticket::{corrupt, parse_priority, parse_status, ACTIVE_SQL};
use super::{DeviceFacts, Tables};
use crate::Result;

/// Whose tickets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignee {
    /// Tickets without an engineer.
    Nobody,
    /// Tickets assigned to this engineer (their login or key name).
    Engineer(String),
}

/// The queue's filters. Every `None` (and an empty `statuses`) means "any".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueQuery {
    /// Only these statuses; empty: every status.
    pub statuses: Vec<TicketStatus>,
    pub priority: Option<Priority>,
    pub source: Option<TicketSource>,
    pub device_type: Option<String>,
    pub component: Option<String>,
    /// The device's registry region, else the assignment region.
    pub region: Option<String>,
    /// The device's production batch.
    pub batch: Option<String>,
    pub assignee: Option<Assignee>,
    /// Only tickets opened at or after this time.
    pub opened_since: Option<Timestamp>,
}

/// A ticket as the queue and an engineer's day show it (no diagnosis, no log).
#[derive(Clone, Debug, PartialEq)]
pub struct QueueTicket {
    pub id: i64,
    pub number: String,
    pub device_id: String,
    pub device_type: String,
    pub component: String,
    pub source: TicketSource,
    pub status: TicketStatus,
    pub priority: Priority,
    pub risk: f64,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub respond_by: Timestamp,
    pub resolve_by: Option<Timestamp>,
    /// The deadline the queue orders by: `respond_by` while `open`, else `resolve_by`.
    pub due: Timestamp,
    pub respond_breached: bool,
    pub resolve_breached: bool,
    pub engineer: Option<String>,
    pub window_start: Option<Timestamp>,
    pub window_end: Option<Timestamp>,
    /// The assignment's region.
    pub region: Option<String>,
    pub device_model: Option<String>,
    pub device_batch: Option<String>,
    pub device_region: Option<String>,
}

impl QueueTicket {
    /// Where the device is: its registry region, else the assignment's.
    pub fn shown_region(&self) -> Option<&str> {
        self.device_region.as_deref().or(self.region.as_deref())
    }
}

/// The number of tickets of one (status, priority) that match the filters but those
/// two ([`Tables::queue_counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueCell {
    pub status: TicketStatus,
    pub priority: Priority,
    pub count: u64,
}

/// Values the queue's filters can take among active tickets, for the filter form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueChoices {
    pub regions: Vec<String>,
    pub batches: Vec<String>,
    pub engineers: Vec<String>,
}

/// Columns of a [`QueueTicket`], of the table aliased `t`.
const QUEUE_COLUMNS: &str = "t.id, t.number, t.device_id, t.device_type, t.component, t.source,
    t.status, t.priority, t.risk, t.opened_at, t.updated_at, t.respond_by, t.resolve_by,
    t.queue_due, t.respond_breached, t.resolve_breached, t.engineer, t.window_start,
    t.window_end, t.region, t.device_model, t.device_batch, t.device_region";

/// The filters but status and priority, with parameters `?1` to `?7`.
const FILTERS: &str = "
    AND (?1 IS NULL OR source = ?1)
    AND (?2 IS NULL OR device_type = ?2)
    AND (?3 IS NULL OR component = ?3)
    AND (?4 IS NULL OR COALESCE(device_region, region) = ?4)
    AND (?5 IS NULL OR device_batch = ?5)
    AND (?6 IS NULL OR (?6 = 0 AND engineer IS NULL) OR (?6 = 1 AND engineer = ?7))
    AND (?8 IS NULL OR opened_at >= ?8)";

/// Longest list of choices per filter.
const MAX_CHOICES: usize = 200;

/// `status IN (...)` for `statuses` (their wire names are constants, never input), or
/// `1` for every status. Exactly [`ACTIVE_SQL`] for the active ones.
fn status_sql(statuses: &[TicketStatus]) -> String {
    let mut sorted: Vec<TicketStatus> = TicketStatus::ALL
        .into_iter()
        .filter(|s| statuses.contains(s))
        .collect();
    sorted.dedup();
    if sorted.is_empty() || sorted.len() == TicketStatus::ALL.len() {
        return "1".to_owned();
    }
    let list: Vec<String> = sorted.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("status IN ({})", list.join(", "))
}

fn source_from(s: &str) -> Result<TicketSource> {
    match s {
        "proactive" => Ok(TicketSource::Proactive),
        "reactive" => Ok(TicketSource::Reactive),
        other => Err(corrupt("source", format!("unknown source {other:?}"))),
    }
}

fn rank_of(p: Priority) -> i64 {
    match p {
        Priority::Urgent => 0,
        Priority::Important => 1,
        Priority::Normal => 2,
    }
}

fn priority_of_rank(rank: i64) -> Priority {
    match rank {
        0 => Priority::Urgent,
        1 => Priority::Important,
        _ => Priority::Normal,
    }
}

/// A row of [`QUEUE_COLUMNS`], before its text columns are parsed.
type RawRow = (
    (i64, String, String, String, String, String, String, String),
    (f64, i64, i64, i64, Option<i64>, Option<i64>, bool, bool),
    (Option<String>, Option<i64>, Option<i64>, Option<String>),
    (Option<String>, Option<String>, Option<String>),
);

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ),
        (
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
            r.get(15)?,
        ),
        (r.get(16)?, r.get(17)?, r.get(18)?, r.get(19)?),
        (r.get(20)?, r.get(21)?, r.get(22)?),
    ))
}

fn queue_ticket(raw: RawRow) -> Result<QueueTicket> {
    let (
        (id, number, device_id, device_type, component, source, status, priority),
        (
            risk,
            opened_at,
            updated_at,
            respond_by,
            resolve_by,
            due,
            respond_breached,
            resolve_breached,
        ),
        (engineer, window_start, window_end, region),
        (device_model, device_batch, device_region),
    ) = raw;
    let status = parse_status(&status)?;
    // The trigger keeps `queue_due`; the fallback is its definition.
    let due = due.unwrap_or(match status {
        TicketStatus::Open => respond_by,
        _ => resolve_by.unwrap_or(respond_by),
    });
    Ok(QueueTicket {
        id,
        number,
        device_id,
        device_type,
        component,
        source: source_from(&source)?,
        status,
        priority: parse_priority(&priority)?,
        risk,
        opened_at: Timestamp(opened_at),
        updated_at: Timestamp(updated_at),
        respond_by: Timestamp(respond_by),
        resolve_by: resolve_by.map(Timestamp),
        due: Timestamp(due),
        respond_breached,
        resolve_breached,
        engineer,
        window_start: window_start.map(Timestamp),
        window_end: window_end.map(Timestamp),
        region,
        device_model,
        device_batch,
        device_region,
    })
}

/// The parameters `?1` to `?8` of [`FILTERS`].
type FilterParams<'q> = (
    Option<&'static str>,
    Option<&'q str>,
    Option<&'q str>,
    Option<&'q str>,
    Option<&'q str>,
    Option<i64>,
    Option<&'q str>,
    Option<i64>,
);

fn filter_params(q: &QueueQuery) -> FilterParams<'_> {
    let (kind, name) = match &q.assignee {
        None => (None, None),
        Some(Assignee::Nobody) => (Some(0), None),
        Some(Assignee::Engineer(e)) => (Some(1), Some(e.as_str())),
    };
    (
        q.source.map(TicketSource::as_str),
        q.device_type.as_deref(),
        q.component.as_deref(),
        q.region.as_deref(),
        q.batch.as_deref(),
        kind,
        name,
        q.opened_since.map(Timestamp::millis),
    )
}

impl Tables<'_> {
    /// One page of the queue: the tickets matching `q`, in the queue's order (module
    /// docs), skipping `offset`, at most `limit`.
    pub fn queue_page(
        &self,
        q: &QueueQuery,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<QueueTicket>> {
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM (
                 SELECT id AS pid FROM tickets
                 WHERE {} {FILTERS} AND (?9 IS NULL OR queue_rank = ?9)
                 ORDER BY queue_due, queue_rank, risk DESC, id LIMIT ?10 OFFSET ?11
             ) AS page JOIN tickets AS t ON t.id = page.pid
             ORDER BY t.queue_due, t.queue_rank, t.risk DESC, t.id",
            status_sql(&q.statuses)
        );
        let f = filter_params(q);
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(
            params![
                f.0,
                f.1,
                f.2,
                f.3,
                f.4,
                f.5,
                f.6,
                f.7,
                q.priority.map(rank_of),
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX),
            ],
            raw_row,
        )?;
        let raws = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(queue_ticket).collect()
    }

    /// The queue's counts: per (status, priority), the tickets matching every filter
    /// of `q` but status and priority, over the active statuses and those `q` selects
    /// (every status when `q.statuses` is empty). Cells without tickets are absent.
    /// The caller sums them: per status within the priority filter, per priority
    /// within the status filter, and both for the total the pager needs.
    pub fn queue_counts(&self, q: &QueueQuery) -> Result<Vec<QueueCell>> {
        let considered: Vec<TicketStatus> = if q.statuses.is_empty() {
            Vec::new()
        } else {
            TicketStatus::ALL
                .into_iter()
                .filter(|s| s.is_active() || q.statuses.contains(s))
                .collect()
        };
        let sql = format!(
            "SELECT status, queue_rank, COUNT(*) FROM tickets WHERE {} {FILTERS}
             GROUP BY status, queue_rank",
            status_sql(&considered)
        );
        let f = filter_params(q);
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![f.0, f.1, f.2, f.3, f.4, f.5, f.6, f.7], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (status, rank, n) = row?;
            Ok(QueueCell {
                status: parse_status(&status)?,
                priority: priority_of_rank(rank.unwrap_or(2)),
                count: n.max(0) as u64,
            })
        })
        .collect()
    }

    /// The regions, batches and engineers of the active tickets (at most 200 each,
    /// sorted), for the filter form: one pass over the covering index.
    pub fn queue_choices(&self) -> Result<QueueChoices> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT DISTINCT COALESCE(device_region, region), device_batch, engineer
             FROM tickets WHERE status IN {ACTIVE_SQL}"
        ))?;
        let mut regions = std::collections::BTreeSet::new();
        let mut batches = std::collections::BTreeSet::new();
        let mut engineers = std::collections::BTreeSet::new();
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            for (set, i) in [(&mut regions, 0), (&mut batches, 1), (&mut engineers, 2)] {
                if let Some(v) = r.get::<_, Option<String>>(i)? {
                    if set.len() < MAX_CHOICES || set.contains(&v) {
                        set.insert(v);
                    }
                }
            }
        }
        Ok(QueueChoices {
            regions: regions.into_iter().collect(),
            batches: batches.into_iter().collect(),
            engineers: engineers.into_iter().collect(),
        })
    }

    /// The active tickets assigned to `engineer`, by window start (unscheduled last),
    /// then the queue's order; at most `limit`.
    pub fn assigned_tickets(&self, engineer: &str, limit: usize) -> Result<Vec<QueueTicket>> {
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM tickets AS t
             WHERE t.engineer = ?1 AND t.status IN {ACTIVE_SQL}
             ORDER BY t.window_start IS NULL, t.window_start, t.queue_due, t.queue_rank, t.id
             LIMIT ?2"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(
            params![engineer, i64::try_from(limit).unwrap_or(i64::MAX)],
            raw_row,
        )?;
        let raws = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(queue_ticket).collect()
    }

    /// Active tickets with no device facts at all (opened before schema version 6, or
    /// of a device the registry did not know), after id `after`, at most `limit`, as
    /// (id, device id).
    pub fn tickets_without_device_facts(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT id, device_id FROM tickets
             WHERE status IN {ACTIVE_SQL} AND device_model IS NULL AND device_batch IS NULL
               AND device_region IS NULL AND id > ?1
             ORDER BY id LIMIT ?2"
        ))?;
        let rows = st.query_map(
            params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Writes a ticket's device facts (a known value replaces the stored one). Not a
    /// change of the ticket: no log entry, no event, `updated_at` kept.
    pub fn set_device_facts(&self, id: i64, facts: &DeviceFacts<'_>) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tickets SET device_model = COALESCE(?2, device_model),
                     device_batch = COALESCE(?3, device_batch),
                     device_region = COALESCE(?4, device_region)
                 WHERE id = ?1",
            )?
            .execute(params![id, facts.model, facts.batch, facts.region])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::{NewTicket, StatusChange, TicketDb, TicketUpdate};
    use rusqlite::Connection;

    const T0: i64 = 1_795_500_000_000;
    const HOUR: i64 = 3_600_000;

    struct Spec<'a> {
        device: String,
        component: &'a str,
        priority: Priority,
        risk: f64,
        opened_at: i64,
        respond_h: i64,
        resolve_h: i64,
        batch: Option<&'a str>,
        region: Option<&'a str>,
        source: TicketSource,
    }

    fn spec(i: usize) -> Spec<'static> {
        let priority = [Priority::Urgent, Priority::Important, Priority::Normal][i % 3];
        Spec {
            device: format!("wm-{i:05}"),
            component: ["drain_pump", "heater", "bearing"][i % 3],
            priority,
            risk: 0.5 + (i % 50) as f64 / 100.0,
            opened_at: T0 + (i as i64 % 97) * 60_000,
            respond_h: [1, 4, 24][i % 3],
            resolve_h: [24, 48, 72][i % 3],
            batch: [Some("B1"), Some("B2"), None][i % 3 / 2 + i % 2],
            region: [Some("north"), Some("south"), Some("east"), None][i % 4],
            source: if i % 5 == 0 {
                TicketSource::Reactive
            } else {
                TicketSource::Proactive
            },
        }
    }

    fn insert(t: &Tables<'_>, n: usize, s: &Spec<'_>) -> i64 {
        t.insert_ticket(&NewTicket {
            number: &format!("20261124{n:06}"),
            device_id: &s.device,
            device_type: "washer",
            component: s.component,
            source: s.source,
            risk: s.risk,
            model_version: "washer-v1",
            priority: s.priority,
            opened_at: Timestamp(s.opened_at),
            respond_by: Timestamp(s.opened_at + s.respond_h * HOUR),
            resolve_by: Timestamp(s.opened_at + s.resolve_h * HOUR),
            diagnosis_json: "{}",
            skills_json: "[]",
            device: DeviceFacts {
                model: Some("WM-500"),
                batch: s.batch,
                region: s.region,
            },
        })
        .unwrap()
        .unwrap()
    }

    fn change(t: &Tables<'_>, id: i64, status: TicketStatus) {
        assert!(t
            .change_status(&StatusChange {
                id,
                status,
                now: Timestamp(T0 + HOUR),
                respond: true,
                end: !status.is_active(),
                reopen: None,
            })
            .unwrap());
    }

    /// `n` tickets; every 7th acknowledged, every 11th resolved, every 13th assigned.
    fn fleet(n: usize) -> (tempfile::TempDir, TicketDb, Vec<Spec<'static>>) {
        let dir = tempfile::tempdir().unwrap();
        let db = TicketDb::open(&dir.path().join("tickets.db")).unwrap();
        let specs: Vec<Spec<'static>> = (0..n).map(spec).collect();
        db.write(|t| {
            for (i, s) in specs.iter().enumerate() {
                let id = insert(t, i, s);
                if i % 11 == 0 {
                    change(t, id, TicketStatus::Resolved);
                } else if i % 7 == 0 {
                    change(t, id, TicketStatus::Acknowledged);
                }
                if i % 13 == 0 {
                    t.set_assignment(
                        id,
                        &domain::Assignment {
                            engineer: Some("li.wei".into()),
                            window_start: Some(Timestamp(T0 + (i as i64 % 5) * HOUR)),
                            window_end: Some(Timestamp(T0 + (i as i64 % 5 + 2) * HOUR)),
                            skills: Vec::new(),
                            region: Some("assigned-region".into()),
                        },
                        Timestamp(T0),
                    )?;
                }
            }
            Ok::<_, crate::Error>(())
        })
        .unwrap();
        (dir, db, specs)
    }

    fn active() -> Vec<TicketStatus> {
        TicketStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect()
    }

    fn whole_queue(db: &TicketDb, q: &QueueQuery) -> Vec<QueueTicket> {
        db.read(|t| t.queue_page(q, 0, usize::MAX)).unwrap()
    }

    #[test]
    fn the_queue_orders_by_the_deadline_that_matters_then_priority_then_risk() {
        let (_dir, db, _) = fleet(3000);
        let q = QueueQuery {
            statuses: active(),
            ..QueueQuery::default()
        };
        let all = whole_queue(&db, &q);
        assert!(all.iter().all(|t| t.status.is_active()));
        assert_eq!(all.len(), 3000 - (0..3000).filter(|i| i % 11 == 0).count());
        let mut expected = all.clone();
        expected.sort_by(|a, b| {
            a.due
                .cmp(&b.due)
                .then(a.priority.cmp(&b.priority))
                .then(b.risk.total_cmp(&a.risk))
                .then(a.id.cmp(&b.id))
        });
        assert_eq!(
            all.iter().map(|t| t.id).collect::<Vec<_>>(),
            expected.iter().map(|t| t.id).collect::<Vec<_>>()
        );
        for t in &all {
            let due = if t.status == TicketStatus::Open {
                t.respond_by
            } else {
                t.resolve_by.unwrap()
            };
            assert_eq!(t.due, due, "{t:?}");
        }
        // Pages are slices of the whole.
        let page3 = db.read(|t| t.queue_page(&q, 100, 50)).unwrap();
        assert_eq!(
            page3.iter().map(|t| t.id).collect::<Vec<_>>(),
            all[100..150].iter().map(|t| t.id).collect::<Vec<_>>()
        );
        let past = db.read(|t| t.queue_page(&q, 5000, 50)).unwrap();
        assert!(past.is_empty());
    }

    #[test]
    fn filters_select_and_counts_ignore_only_the_filter_they_count() {
        let (_dir, db, specs) = fleet(2000);
        let matches = |i: usize, f: &dyn Fn(&Spec<'_>) -> bool| f(&specs[i]) && i % 11 != 0;
        let q = QueueQuery {
            statuses: active(),
            batch: Some("B1".into()),
            region: Some("north".into()),
            source: Some(TicketSource::Proactive),
            ..QueueQuery::default()
        };
        let got = whole_queue(&db, &q);
        // Assigned tickets (every 13th) have an assignment region, but the device's
        // region wins when it has one.
        let expected = (0..specs.len())
            .filter(|&i| {
                matches(i, &|s| {
                    s.batch == Some("B1")
                        && s.source == TicketSource::Proactive
                        && (s.region == Some("north"))
                })
            })
            .count();
        assert_eq!(got.len(), expected);
        assert!(got.iter().all(|t| t.device_batch.as_deref() == Some("B1")
            && t.shown_region() == Some("north")
            && t.source == TicketSource::Proactive));
        // A ticket without a device region is found by its assignment region.
        let assigned = whole_queue(
            &db,
            &QueueQuery {
                region: Some("assigned-region".into()),
                ..QueueQuery::default()
            },
        );
        assert!(!assigned.is_empty());
        assert!(assigned.iter().all(|t| t.device_region.is_none()));

        // Engineer and unassigned.
        let mine = whole_queue(
            &db,
            &QueueQuery {
                statuses: active(),
                assignee: Some(Assignee::Engineer("li.wei".into())),
                ..QueueQuery::default()
            },
        );
        assert_eq!(
            mine.len(),
            (0..2000).filter(|i| i % 13 == 0 && i % 11 != 0).count()
        );
        let nobody = whole_queue(
            &db,
            &QueueQuery {
                statuses: active(),
                assignee: Some(Assignee::Nobody),
                ..QueueQuery::default()
            },
        );
        assert_eq!(
            nobody.len() + mine.len(),
            (0..2000).filter(|i| i % 11 != 0).count()
        );

        // Counts: per status over every priority, per priority within the statuses.
        let q = QueueQuery {
            statuses: vec![TicketStatus::Acknowledged],
            priority: Some(Priority::Urgent),
            component: Some("drain_pump".into()),
            ..QueueQuery::default()
        };
        let cells = db.read(|t| t.queue_counts(&q)).unwrap();
        let count = |status: TicketStatus, priority: Priority| {
            cells
                .iter()
                .filter(|c| c.status == status && c.priority == priority)
                .map(|c| c.count)
                .sum::<u64>()
        };
        let status_of = |i: usize| {
            if i % 11 == 0 {
                TicketStatus::Resolved
            } else if i % 7 == 0 {
                TicketStatus::Acknowledged
            } else {
                TicketStatus::Open
            }
        };
        for status in [TicketStatus::Open, TicketStatus::Acknowledged] {
            for priority in [Priority::Urgent, Priority::Important, Priority::Normal] {
                let expected = (0..2000)
                    .filter(|&i| {
                        status_of(i) == status
                            && specs[i].priority == priority
                            && specs[i].component == "drain_pump"
                    })
                    .count() as u64;
                assert_eq!(count(status, priority), expected, "{status} {priority}");
            }
        }
        assert_eq!(
            count(TicketStatus::Resolved, Priority::Urgent),
            0,
            "ended statuses are counted only when selected"
        );
        let page = whole_queue(&db, &q);
        assert_eq!(
            page.len() as u64,
            count(TicketStatus::Acknowledged, Priority::Urgent)
        );

        // Opened since.
        let since = Timestamp(T0 + 90 * 60_000);
        let late = whole_queue(
            &db,
            &QueueQuery {
                opened_since: Some(since),
                ..QueueQuery::default()
            },
        );
        assert_eq!(
            late.len(),
            specs
                .iter()
                .filter(|s| s.opened_at >= since.millis())
                .count()
        );
    }

    #[test]
    fn pages_and_counts_are_read_from_the_covering_index() {
        let (_dir, db, _) = fleet(500);
        let conn = Connection::open(db.path()).unwrap();
        let plan = |sql: &str| -> String {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = st
                .query_map(
                    params![
                        None::<String>,
                        None::<String>,
                        None::<String>,
                        Some("north"),
                        Some("B1"),
                        None::<i64>,
                        None::<String>,
                        None::<i64>,
                        None::<i64>,
                        50,
                        0
                    ],
                    |r| r.get::<_, String>(3),
                )
                .unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        for statuses in [active(), Vec::new(), vec![TicketStatus::Resolved]] {
            let ids = format!(
                "SELECT id AS pid FROM tickets WHERE {} {FILTERS} AND (?9 IS NULL OR queue_rank = ?9)
                 ORDER BY queue_due, queue_rank, risk DESC, id LIMIT ?10 OFFSET ?11",
                status_sql(&statuses)
            );
            let p = plan(&ids);
            assert!(
                p.contains("COVERING INDEX tickets_queue"),
                "{statuses:?}: {p}"
            );
            let counts = format!(
                "SELECT status, queue_rank, COUNT(*) FROM tickets WHERE {} {FILTERS}
                 AND ?9 IS NULL AND ?10 > 0 AND ?11 >= 0 GROUP BY status, queue_rank",
                status_sql(&statuses)
            );
            let p = plan(&counts);
            assert!(
                p.contains("COVERING INDEX tickets_queue"),
                "{statuses:?}: {p}"
            );
        }
    }

    #[test]
    fn the_sort_keys_follow_status_priority_and_deadline_changes() {
        let dir = tempfile::tempdir().unwrap();
        let db = TicketDb::open(&dir.path().join("tickets.db")).unwrap();
        let s = spec(1); // important: respond in 4 h, resolve in 48 h
        let id = db
            .write(|t| Ok::<_, crate::Error>(insert(t, 1, &s)))
            .unwrap();
        let get = || {
            db.read(|t| t.queue_page(&QueueQuery::default(), 0, 10))
                .unwrap()
                .remove(0)
        };
        let t = get();
        assert_eq!(t.id, id);
        assert_eq!(t.due, Timestamp(s.opened_at + 4 * HOUR));
        db.write(|t| {
            change(t, id, TicketStatus::Acknowledged);
            Ok::<_, crate::Error>(())
        })
        .unwrap();
        assert_eq!(get().due, Timestamp(s.opened_at + 48 * HOUR));
        db.write(|t| {
            t.update_ticket(&TicketUpdate {
                id,
                priority: Priority::Urgent,
                risk: 0.97,
                peak_risk: 0.97,
                model_version: "washer-v1",
                updated_at: Timestamp(T0 + 2 * HOUR),
                respond_by: Timestamp(T0 + 3 * HOUR),
                resolve_by: Some(Timestamp(T0 + 20 * HOUR)),
                diagnosis_json: "{}",
                risk_logged: None,
                device: DeviceFacts {
                    region: Some("west"),
                    ..DeviceFacts::default()
                },
            })
        })
        .unwrap();
        let t = get();
        assert_eq!(
            (t.priority, t.due),
            (Priority::Urgent, Timestamp(T0 + 20 * HOUR))
        );
        let urgent = db
            .read(|t| {
                t.queue_page(
                    &QueueQuery {
                        priority: Some(Priority::Urgent),
                        ..QueueQuery::default()
                    },
                    0,
                    10,
                )
            })
            .unwrap();
        assert_eq!(urgent.len(), 1);
        // An unknown fact keeps the stored one; a known one replaces it.
        assert_eq!(
            (t.device_model.as_deref(), t.device_region.as_deref()),
            (Some("WM-500"), Some("west"))
        );
    }

    #[test]
    fn an_engineers_tickets_come_by_window_start_with_the_unscheduled_last() {
        let (_dir, db, _) = fleet(300);
        db.write(|t| {
            // One more of theirs, active, without a window.
            let extra = Spec {
                device: "wm-extra".into(),
                ..spec(1)
            };
            let id = insert(t, 9999, &extra);
            t.set_assignment(
                id,
                &domain::Assignment {
                    engineer: Some("li.wei".into()),
                    ..domain::Assignment::default()
                },
                Timestamp(T0),
            )
        })
        .unwrap();
        let day = db.read(|t| t.assigned_tickets("li.wei", 100)).unwrap();
        assert_eq!(
            day.len(),
            (0..300).filter(|i| i % 13 == 0 && i % 11 != 0).count() + 1
        );
        assert!(day.iter().all(|t| t.status.is_active()));
        let starts: Vec<Option<Timestamp>> = day.iter().map(|t| t.window_start).collect();
        assert_eq!(starts.last(), Some(&None));
        let scheduled: Vec<Timestamp> = starts.iter().flatten().copied().collect();
        assert!(scheduled.windows(2).all(|w| w[0] <= w[1]), "{scheduled:?}");
        assert!(db
            .read(|t| t.assigned_tickets("nobody", 10))
            .unwrap()
            .is_empty());
        let choices = db.read(|t| t.queue_choices()).unwrap();
        assert_eq!(choices.engineers, ["li.wei"]);
        assert_eq!(choices.batches, ["B1", "B2"]);
        assert!(choices.regions.contains(&"north".to_owned()));
        assert!(choices.regions.contains(&"assigned-region".to_owned()));
    }

    #[test]
    fn a_version_6_file_gains_the_after_sales_columns_with_their_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.db");
        let db = TicketDb::open(&path).unwrap();
        let id = db
            .write(|t| Ok::<_, crate::Error>(insert(t, 1, &spec(2))))
            .unwrap();
        drop(db);
        let mut drop_v7 = String::from(
            "DROP INDEX tickets_step_due; DROP INDEX tickets_callback_due;
             DROP INDEX tickets_undispatched; DROP INDEX tickets_opened;
             DROP INDEX ticket_log_reopened;
             DROP TABLE device_directory;",
        );
        for column in [
            "channel",
            "reports",
            "prejudgement",
            "steps",
            "step_due",
            "satisfaction",
            "callback",
            "callback_due",
            "visits",
            "planner",
        ] {
            drop_v7.push_str(&format!("ALTER TABLE tickets DROP COLUMN {column};"));
        }
        drop_v7.push_str("PRAGMA user_version = 6;");
        Connection::open(&path)
            .unwrap()
            .execute_batch(&drop_v7)
            .unwrap();
        let db = TicketDb::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(crate::sqlite::user_version(&conn).unwrap(), 7);
        drop(db);
        let row: (String, String, String, i64, Option<String>) = conn
            .query_row(
                "SELECT channel, reports, steps, visits, planner FROM tickets WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, ("device".into(), "[]".into(), "[]".into(), 0, None));
        assert!(crate::sqlite::has_column(&conn, "device_directory", "serial").unwrap());
    }

    #[test]
    fn a_version_5_file_is_upgraded_with_sort_keys_and_without_device_facts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.db");
        let db = TicketDb::open(&path).unwrap();
        let s = spec(2); // normal: respond in 24 h
        let (open, acked) = db
            .write(|t| {
                let open = insert(t, 1, &s);
                let acked = insert(t, 2, &spec(4));
                change(t, acked, TicketStatus::Acknowledged);
                Ok::<_, crate::Error>((open, acked))
            })
            .unwrap();
        drop(db);
        // Make it a version-5 file: no V6 triggers, indexes or columns.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DROP TRIGGER tickets_queue_insert; DROP TRIGGER tickets_queue_update;
                 DROP INDEX tickets_queue; DROP INDEX tickets_assigned;
                 ALTER TABLE tickets DROP COLUMN device_model;
                 ALTER TABLE tickets DROP COLUMN device_batch;
                 ALTER TABLE tickets DROP COLUMN device_region;
                 ALTER TABLE tickets DROP COLUMN queue_due;
                 ALTER TABLE tickets DROP COLUMN queue_rank;
                 PRAGMA user_version = 5;",
            )
            .unwrap();
        let db = TicketDb::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(crate::sqlite::user_version(&conn).unwrap(), 7);
        let all = db
            .read(|t| t.queue_page(&QueueQuery::default(), 0, 10))
            .unwrap();
        let by_id = |id: i64| all.iter().find(|t| t.id == id).unwrap();
        assert_eq!(by_id(open).due, Timestamp(s.opened_at + 24 * HOUR));
        assert_eq!(by_id(acked).due, by_id(acked).resolve_by.unwrap());
        assert!(by_id(open).device_batch.is_none(), "facts are unknown");
        let missing = db.read(|t| t.tickets_without_device_facts(0, 10)).unwrap();
        assert_eq!(missing.len(), 2);
        db.write(|t| {
            t.set_device_facts(
                open,
                &DeviceFacts {
                    model: Some("WM-500"),
                    batch: Some("B9"),
                    region: None,
                },
            )
        })
        .unwrap();
        let filled = db.read(|t| t.tickets_without_device_facts(0, 10)).unwrap();
        assert_eq!(filled, [(acked, spec(4).device)]);
        // The triggers work on the upgraded file.
        db.write(|t| {
            change(t, open, TicketStatus::Acknowledged);
            Ok::<_, crate::Error>(())
        })
        .unwrap();
        let t = db
            .read(|t| {
                t.queue_page(
                    &QueueQuery {
                        batch: Some("B9".into()),
                        ..QueueQuery::default()
                    },
                    0,
                    10,
                )
            })
            .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].due, t[0].resolve_by.unwrap());
        // Opening again runs no upgrade.
        drop(TicketDb::open(&path).unwrap());
    }
}
