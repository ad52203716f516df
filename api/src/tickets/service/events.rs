//! The event log's readers: what `GET /api/v1/events` and the webhook dispatcher read,
//! and the wake-up that tells them to look again.

use super::TicketService;
use crate::tickets::EventRecord;
use crate::Result;

impl TicketService {
    /// Tells subscribers about newly committed events (after every write).
    pub(super) fn notify(&self) {
        match self.read(|t| Ok(t.last_event_id()?)) {
            Ok(last) => {
                self.inner.events.send_if_modified(|cur| {
                    let newer = last > *cur;
                    if newer {
                        *cur = last;
                    }
                    newer
                });
            }
            Err(e) => tracing::warn!(error = %e, "Could not read the last event id"),
        }
    }

    /// Events with an id above `after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventRecord>> {
        self.read(|t| Ok(t.events_after(after, limit)?))
    }

    /// A receiver of the newest committed event id; it changes after every commit
    /// that wrote events. Readers then call [`Self::events_after`], so a wake-up that
    /// covers several commits loses nothing.
    pub fn subscribe_events(&self) -> tokio::sync::watch::Receiver<i64> {
        self.inner.events.subscribe()
    }
}
