//! The InfluxDB 2 archive: every stored reading and fault, as line protocol, in
//! batches, to `/api/v2/write` (docs/archive.md).
//!
//! ```text
//! writer --commit--> hot.db (telemetry, faults: `arrival` 1, 2, 3, ...)
//!                       |  StoreReader::read_after(cursor, batch_size)
//!                       v
//!                    Archiver: line protocol -> influxdb2 write -> cursor file
//! ```
//!
//! **The hot store is the spool.** The archiver tails `hot.db` instead of taking a
//! second copy of each message from the pipeline. It reads the rows committed after
//! its cursor (the `arrival` of the last row the server accepted, kept in a file in
//! the data directory), writes them as one batch, and moves the cursor only after the
//! server answered 204. So:
//! * ingest never waits for the archive: the writer knows nothing of it, and an
//!   unreachable server only grows the backlog, which is rows already on disk;
//! * the spool is ordered, durable and survives restarts, with no file format of its
//!   own: while the server is down the backlog is the rows after the cursor, and when
//!   it is back they are sent oldest first, in the order they were committed;
//! * a restart resumes at the cursor.
//!
//! **Exactly once in the archive** follows from point identity. A point's series key
//! (measurement, tags) and timestamp come from the stored row alone, so a batch sent
//! again (a crash between the server's answer and the cursor write, or an answer lost
//! on the way) carries the same points, and InfluxDB overwrites a point with the same
//! series and timestamp: resending is harmless. While it runs, the archiver resends
//! only a batch whose outcome it cannot know (no answer in time, the connection cut
//! after the request went out, a 5xx other than 503); it counts those points in
//! `points_uncertain`, the bound on the copies a server without InfluxDB's overwrite
//! (VictoriaMetrics without `-dedup.minScrapeInterval`) can hold twice.
//!
//! Failures: a write that fails for the server's or the network's sake (no connection,
//! timeout, 5xx, 429, 401/403/404: a token or bucket an operator can fix) is retried
//! with exponential backoff, without limit, and without moving the cursor. A batch the
//! server refuses for its content (400 malformed, 413 too large) is split in halves
//! until the refused points are isolated; those are skipped, counted and logged, the
//! rest written. A partial write (422: InfluxDB wrote the batch except the points it
//! drops, such as those older than the bucket's retention) counts as done, with the
//! dropped points counted. One bad point thus never blocks the archive, and a down
//! server never loses one.
//!
//! Here: the [`Archiver`] and its tail loop. Beside it: `settings` (where to write and
//! how to batch), `line_protocol` (a stored row as a point), `sink` (the write request
//! and what its failures mean), `deliver` (one batch: retries, splitting, counting),
//! `cursor` (the position file) and `metrics`.

mod cursor;
mod deliver;
mod line_protocol;
mod metrics;
mod settings;
mod sink;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use domain::ProfileSet;
use tokio_util::sync::CancellationToken;

use store::hot::StoreReader;

pub use cursor::Cursor;
pub use line_protocol::{write_point, FAULT_MEASUREMENT, TELEMETRY_MEASUREMENT};
pub use metrics::{ArchiveMetrics, ArchiveSnapshot};
pub use settings::{parse_influx_url, ArchiveSettings, InfluxTarget};
pub use sink::{InfluxSink, LineSink, WriteError};

use deliver::{Delivery, Line};

/// The task that tails the hot store into the archive.
pub struct Archiver<S> {
    /// Its own read connection to hot.db.
    pub reader: StoreReader,
    /// Where points go.
    pub sink: S,
    /// For fault severities.
    pub profiles: Arc<ProfileSet>,
    /// Batching and retries.
    pub settings: ArchiveSettings,
    /// Counters.
    pub metrics: Arc<ArchiveMetrics>,
}

impl<S: LineSink> Archiver<S> {
    /// Runs until `stop` is cancelled. Never fails: store and server errors are
    /// logged and retried, since ingest must not depend on the archive.
    pub async fn run(self, stop: CancellationToken) {
        let cursor = Cursor::new(&self.settings.cursor_path);
        let Some(mut position) = self.start_position(&cursor).await else {
            return;
        };
        self.metrics.position.set(position);
        tracing::info!(
            position,
            cursor = %cursor.path().display(),
            "InfluxDB archive started"
        );
        let mut backoff = self.first_backoff();
        loop {
            if stop.is_cancelled() {
                return;
            }
            let reader = self.reader.clone();
            let limit = self.settings.batch_size;
            let page = match tokio::task::spawn_blocking(move || reader.read_after(position, limit))
                .await
            {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "Archive could not read hot.db; retrying");
                    if !self.pause(&stop, backoff).await {
                        return;
                    }
                    backoff = self.next_backoff(backoff);
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Archive read task failed");
                    return;
                }
            };
            backoff = self.first_backoff();
            self.set_backlog(page.newest, position);
            if page.through == position {
                if !self.pause(&stop, self.settings.flush_interval).await {
                    return;
                }
                continue;
            }
            let full = page.through - position >= limit as i64;
            let lines = Line::batch(&page.messages, &self.profiles);
            match self.deliver(&lines, &stop).await {
                Delivery::Stopped => return,
                Delivery::Done => {}
            }
            position = page.through;
            self.metrics.position.set(position);
            // Rows committed while the batch was on its way count too.
            self.refresh_backlog().await;
            save_cursor(&cursor, position).await;
            if !full && !self.pause(&stop, self.settings.flush_interval).await {
                return;
            }
        }
    }

    /// Where the archive starts: the stored position, or 0 (the start of hot.db) when
    /// the cursor file is unreadable or ahead of the store. `None` when the start-up
    /// task failed.
    async fn start_position(&self, cursor: &Cursor) -> Option<i64> {
        let (c, r) = (cursor.clone(), self.reader.clone());
        match tokio::task::spawn_blocking(move || (c.load(), r.newest_arrival())).await {
            Ok((Ok(p), Ok(newest))) if p > newest => {
                tracing::warn!(
                    position = p,
                    newest,
                    "The archive cursor is ahead of hot.db (a different or restored store?): archiving it from the start; points already archived are overwritten with themselves"
                );
                Some(0)
            }
            Ok((Ok(p), _)) => Some(p),
            Ok((Err(e), _)) => {
                tracing::warn!(error = %e, "Archive cursor unreadable: archiving hot.db from the start; points already archived are overwritten with themselves");
                Some(0)
            }
            Err(e) => {
                tracing::error!(error = %e, "Archive start-up failed");
                None
            }
        }
    }

    fn first_backoff(&self) -> Duration {
        Duration::from_millis(100).min(self.settings.max_backoff)
    }

    fn next_backoff(&self, current: Duration) -> Duration {
        (current * 2).min(self.settings.max_backoff)
    }

    /// Sleeps `d`; `false` if stopped meanwhile.
    async fn pause(&self, stop: &CancellationToken, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stop.cancelled() => false,
        }
    }

    fn set_backlog(&self, newest: i64, position: i64) {
        self.metrics
            .backlog
            .set(newest.saturating_sub(position).max(0));
    }

    /// Refreshes the backlog while a batch waits for the server, so `/metrics` shows
    /// it grow during an outage.
    async fn refresh_backlog(&self) {
        let reader = self.reader.clone();
        if let Ok(Ok(newest)) = tokio::task::spawn_blocking(move || reader.newest_arrival()).await {
            let position = self.metrics.position.get();
            self.set_backlog(newest, position);
        }
    }
}

/// Stores `position` in the cursor file. A failure is logged only: the position in
/// memory moves on; after a restart the rows since the last stored position are sent
/// again, which overwrites them in place.
async fn save_cursor(cursor: &Cursor, position: i64) {
    let c = cursor.clone();
    match tokio::task::spawn_blocking(move || c.store(position)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "Archive cursor not saved"),
        Err(e) => tracing::warn!(error = %e, "Archive cursor task failed"),
    }
}
