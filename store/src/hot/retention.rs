//! Dead-letter retention: the bounds, and the pruning the writer runs after its
//! commits.

use std::time::{Duration, Instant};

use domain::Timestamp;
use rusqlite::{params, Connection};

use crate::Result;

/// Most dead letters one prune deletes beyond those added since the previous prune, so
/// a large backlog (a lowered `max_rows`, a long-stopped store) is worked off over a
/// few commits instead of stalling one. Each prune still deletes at least as many rows
/// as arrived since the previous one, so the table cannot outgrow the bound.
const PRUNE_CHUNK: u64 = 10_000;

/// Bounds on the `dead_letters` table, enforced by the writer ([`HotStore`]).
///
/// Dead letters are evidence for debugging devices, not data: they may be deleted. The
/// counters of rejections (`fixahead_ingest_dead_letters_total`) count events and are
/// not affected by what retention deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadLetterRetention {
    /// Most rows kept: beyond it, the oldest (lowest ids) are deleted.
    pub max_rows: u64,
    /// Rows received more than this many milliseconds before the newest receive time
    /// the store has committed (the wall clock, as long as messages arrive) are deleted.
    pub max_age_ms: i64,
    /// Least time between two prunes. Between prunes the table can exceed `max_rows`
    /// by the dead letters that arrived meanwhile.
    pub interval: Duration,
}

impl DeadLetterRetention {
    /// Default `max_rows`.
    pub const DEFAULT_MAX_ROWS: u64 = 100_000;
    /// Default `max_age_ms`: 30 days.
    pub const DEFAULT_MAX_AGE_MS: i64 = 30 * Timestamp::DAY_MS;
    /// Default `interval`.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
}

impl Default for DeadLetterRetention {
    fn default() -> Self {
        Self {
            max_rows: Self::DEFAULT_MAX_ROWS,
            max_age_ms: Self::DEFAULT_MAX_AGE_MS,
            interval: Self::DEFAULT_INTERVAL,
        }
    }
}

/// The writer's pruning state: when the next prune is due, and what it deleted.
#[derive(Debug)]
pub(super) struct Pruner {
    pub(super) retention: DeadLetterRetention,
    /// The newest receive time committed: the clock `max_age` is measured against.
    clock: Option<Timestamp>,
    /// Dead letters committed since the last prune.
    added_since_prune: u64,
    /// A prune is wanted at the next chance: set at open (the bounds may have shrunk
    /// since the last run) and after a failed prune.
    pub(super) prune_due: bool,
    /// The last prune stopped at its cap with rows still to delete: prune again after
    /// the next commit, without waiting for the interval.
    backlog: bool,
    /// When (store clock, ms) the oldest dead letter passes `max_age`.
    next_expiry: Option<i64>,
    last_prune: Option<Instant>,
    /// Rows pruned and not yet taken by [`Pruner::take_pruned`].
    pruned: u64,
}

impl Default for Pruner {
    fn default() -> Self {
        Self {
            retention: DeadLetterRetention::default(),
            clock: None,
            added_since_prune: 0,
            prune_due: true,
            backlog: false,
            next_expiry: None,
            last_prune: None,
            pruned: 0,
        }
    }
}

impl Pruner {
    /// Dead-letter rows deleted since the last call.
    pub(super) fn take_pruned(&mut self) -> u64 {
        std::mem::take(&mut self.pruned)
    }

    /// Called after a commit that added `dead_letters` rows, the newest received at
    /// `newest`: prunes if a prune is due and the interval allows. A failed prune is
    /// logged and retried after a later commit; it never fails the commit, which is
    /// already durable.
    pub(super) fn after_commit(
        &mut self,
        conn: &mut Connection,
        newest: Option<Timestamp>,
        dead_letters: u64,
    ) {
        self.clock = self.clock.max(newest);
        self.added_since_prune += dead_letters;
        let Some(now) = self.clock else {
            return;
        };
        let aged = self.next_expiry.is_some_and(|t| t <= now.millis());
        if !(self.prune_due || self.backlog || aged || self.added_since_prune > 0) {
            return;
        }
        if !self.backlog
            && self
                .last_prune
                .is_some_and(|t| t.elapsed() < self.retention.interval)
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        if let Err(e) = self.prune(conn, now) {
            self.prune_due = true;
            self.backlog = false;
            tracing::warn!(error = %e, "Pruning dead letters failed; retrying after a later commit");
        }
    }

    /// Deletes the dead letters received more than `max_age` before `now`, then the
    /// oldest (by id) beyond `max_rows`, in one transaction, and returns how many. At
    /// most [`PRUNE_CHUNK`] rows more than were added since the previous prune go at
    /// once; the rest go after the next commits. Only `dead_letters` rows are deleted.
    pub(super) fn prune(&mut self, conn: &mut Connection, now: Timestamp) -> Result<u64> {
        let budget = PRUNE_CHUNK.saturating_add(self.added_since_prune);
        let cutoff = now.millis().saturating_sub(self.retention.max_age_ms);
        let max_rows = i64::try_from(self.retention.max_rows).unwrap_or(i64::MAX);
        let tx = conn.transaction()?;
        let aged = tx.execute(
            "DELETE FROM dead_letters WHERE id IN
                 (SELECT id FROM dead_letters WHERE received_at < ?1 LIMIT ?2)",
            params![cutoff, to_sql_count(budget)],
        )? as u64;
        let rows: i64 = tx.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?;
        let excess = rows.saturating_sub(max_rows).max(0) as u64;
        let trim = excess.min(budget - aged);
        let trimmed = if trim > 0 {
            tx.execute(
                "DELETE FROM dead_letters WHERE id IN
                     (SELECT id FROM dead_letters ORDER BY id LIMIT ?1)",
                params![to_sql_count(trim)],
            )? as u64
        } else {
            0
        };
        let oldest: Option<i64> =
            tx.query_row("SELECT MIN(received_at) FROM dead_letters", [], |r| {
                r.get(0)
            })?;
        tx.commit()?;
        self.next_expiry = oldest.map(|t| t.saturating_add(self.retention.max_age_ms));
        self.backlog = aged == budget || trim < excess;
        self.prune_due = false;
        self.added_since_prune = 0;
        let pruned = aged + trimmed;
        self.pruned += pruned;
        if pruned > 0 {
            tracing::debug!(
                pruned,
                aged,
                over_max_rows = trimmed,
                backlog = self.backlog,
                "Dead letters pruned"
            );
        }
        Ok(pruned)
    }
}

/// A row count as SQLite's integer.
pub(super) fn to_sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
