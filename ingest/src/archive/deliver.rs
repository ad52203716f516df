//! Delivering one batch: the whole batch, retried with backoff while the server or the
//! network fails; halves, down to single points, while the server refuses the content;
//! and the counting of what the server took.

use std::time::Duration;

use domain::{Message, ProfileSet};
use tokio_util::sync::CancellationToken;

use super::{write_point, Archiver, LineSink, WriteError};

/// One point of a batch.
pub(super) struct Line {
    text: String,
    fault: bool,
}

impl Line {
    /// The points of `messages`, in order (status messages have none).
    pub(super) fn batch(messages: &[(i64, Message)], profiles: &ProfileSet) -> Vec<Line> {
        let mut lines = Vec::with_capacity(messages.len());
        for (_, message) in messages {
            let mut text = String::with_capacity(160);
            if write_point(&mut text, message, profiles) {
                lines.push(Line {
                    text,
                    fault: matches!(message, Message::Fault(_)),
                });
            }
        }
        lines
    }
}

/// How a batch ended.
pub(super) enum Delivery {
    /// Every point was accepted or refused (and skipped).
    Done,
    /// Stopped while retrying.
    Stopped,
}

impl<S: LineSink> Archiver<S> {
    /// Writes `lines` in order: the whole batch, retried until the server is back; if
    /// the server refuses its content, each half in turn, down to single points,
    /// which are skipped when refused.
    pub(super) async fn deliver(&self, lines: &[Line], stop: &CancellationToken) -> Delivery {
        // Ranges still to write, the next one last.
        let mut todo = vec![(0, lines.len())];
        let mut backoff = self.first_backoff();
        while let Some((from, to)) = todo.pop() {
            if from == to {
                continue;
            }
            let body = lines[from..to]
                .iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            // A stop does not wait for the server: a batch cut off is sent again at
            // the next start, and a copy the server did take is overwritten.
            let result = tokio::select! {
                r = self.sink.write(body) => r,
                _ = stop.cancelled() => return Delivery::Stopped,
            };
            match result {
                Ok(()) => {
                    self.written(&lines[from..to], 0);
                    backoff = self.first_backoff();
                }
                Err(WriteError::Partial { detail, dropped }) => {
                    self.metrics.write_failures.inc();
                    let dropped = dropped.unwrap_or(0).min((to - from) as u64);
                    self.written(&lines[from..to], dropped);
                    self.metrics.points_refused.inc_by(dropped);
                    let refused = self.metrics.points_refused.get();
                    tracing::warn!(points = to - from, dropped, refused_so_far = refused, server = %detail,
                        "The archive's server wrote a batch in part (the dropped points stay in hot.db)");
                    backoff = self.first_backoff();
                }
                Err(WriteError::Refused(detail)) => {
                    self.metrics.write_failures.inc();
                    if to - from == 1 {
                        self.metrics.points_refused.inc();
                        let refused = self.metrics.points_refused.get();
                        // Bounded logging: a bucket that refuses every point (a field
                        // type another writer chose) would otherwise log each one.
                        if refused <= 10 || refused.is_power_of_two() {
                            tracing::warn!(point = %lines[from].text, server = %detail, refused_so_far = refused,
                                "The archive's server refused a point; skipped (it stays in hot.db)");
                        }
                    } else {
                        tracing::debug!(points = to - from, server = %detail,
                            "The archive's server refused a batch; splitting it to find the points it refuses");
                        let mid = from + (to - from) / 2;
                        todo.push((mid, to));
                        todo.push((from, mid));
                    }
                }
                Err(WriteError::Unknown(detail)) => {
                    self.metrics.points_uncertain.inc_by((to - from) as u64);
                    tracing::warn!(error = %detail, points = to - from, retry_in_ms = backoff.as_millis() as u64,
                        "Archive write got no clear answer; the points are sent again, and a server that took them holds them twice unless it overwrites");
                    todo.push((from, to));
                    if !self.retry_later(stop, &mut backoff).await {
                        return Delivery::Stopped;
                    }
                }
                Err(WriteError::Retry(detail)) => {
                    tracing::warn!(error = %detail, retry_in_ms = backoff.as_millis() as u64,
                        "Archive write failed; the points wait in hot.db and are retried");
                    todo.push((from, to));
                    if !self.retry_later(stop, &mut backoff).await {
                        return Delivery::Stopped;
                    }
                }
            }
        }
        Delivery::Done
    }

    /// After a failed write: counts it, refreshes the backlog and waits `backoff`,
    /// which then grows. False if stopped while waiting.
    async fn retry_later(&self, stop: &CancellationToken, backoff: &mut Duration) -> bool {
        self.metrics.write_failures.inc();
        self.refresh_backlog().await;
        if !self.pause(stop, *backoff).await {
            return false;
        }
        *backoff = self.next_backoff(*backoff);
        true
    }

    /// Counts a write the server took, but for `dropped` of its points.
    fn written(&self, lines: &[Line], dropped: u64) {
        let faults = lines.iter().filter(|l| l.fault).count() as u64;
        let telemetry = lines.len() as u64 - faults;
        // Which points a partial write dropped is not said: telemetry first.
        let dropped_telemetry = dropped.min(telemetry);
        self.metrics
            .points_telemetry
            .inc_by(telemetry - dropped_telemetry);
        self.metrics
            .points_faults
            .inc_by(faults - (dropped - dropped_telemetry).min(faults));
        self.metrics.batches.inc();
        self.metrics
            .succeeded_at(chrono::Utc::now().timestamp_millis());
    }
}
