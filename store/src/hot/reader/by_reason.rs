//! Dead letters by reason, for the console's admin page.
//!
//! `dead_letters` has no index on `reason` (and up to 100,000 rows of up to 4 KiB), so
//! a `GROUP BY reason` or a filter by reason over the whole table would read all of it:
//! tens of milliseconds warm, far more cold. Both queries here read a bounded stretch
//! of ids instead (the primary key), newest first: the counts are over the newest
//! `window` dead letters, and a page filtered by reason looks at most `scan` ids below
//! its cursor, handing back where the next page continues even when the stretch held
//! fewer matches than asked for. An index on `(reason, id)` would make both exact and
//! direct; the SQL stays the same.

use rusqlite::params;

use super::{DeadLetterRecord, StoreReader};
use crate::Result;

fn dead_letter_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetterRecord> {
    let payload: Vec<u8> = r.get(6)?;
    let payload_bytes: i64 = r.get(7)?;
    Ok(DeadLetterRecord {
        id: r.get(0)?,
        received_at: domain::Timestamp(r.get(1)?),
        topic: r.get(2)?,
        device_id: r.get(3)?,
        reason: r.get(4)?,
        detail: r.get(5)?,
        truncated: (payload.len() as i64) < payload_bytes,
        payload: String::from_utf8_lossy(&payload).into_owned(),
        payload_bytes: payload_bytes.max(0).unsigned_abs(),
    })
}

fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Dead letters counted by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReasonCounts {
    /// (reason, count) among the newest dead letters counted, most frequent first,
    /// then by reason.
    pub reasons: Vec<(String, u64)>,
    /// How many dead letters were counted (at most the window asked for).
    pub counted: u64,
    /// How many dead letters the store holds.
    pub total: u64,
}

/// A page of dead letters with one reason.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReasonPage {
    /// The dead letters found, newest first.
    pub dead_letters: Vec<DeadLetterRecord>,
    /// The cursor (`before`) of the next page: older dead letters may have this reason;
    /// `None` when the oldest has been looked at.
    pub next: Option<i64>,
}

impl StoreReader {
    /// How many of the newest `window` dead letters (by id) have each reason, and how
    /// many dead letters there are.
    pub fn dead_letter_reasons(&self, window: u64) -> Result<ReasonCounts> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let total: i64 = tx.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?;
            let mut reasons = {
                let mut st = tx.prepare_cached(
                    "SELECT reason, COUNT(*) FROM dead_letters
                      WHERE id > (SELECT COALESCE(MAX(id), 0) FROM dead_letters) - ?1
                      GROUP BY reason",
                )?;
                let rows = st.query_map([sql_count(window)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?.max(0).unsigned_abs(),
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.finish()?;
            reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Ok(ReasonCounts {
                counted: reasons.iter().map(|(_, n)| n).sum(),
                reasons,
                total: total.max(0).unsigned_abs(),
            })
        })
    }

    /// At most `limit` dead letters with `reason`, newest first, among the `scan` ids
    /// below `before` (the newest when `None`).
    pub fn dead_letters_with_reason(
        &self,
        reason: &str,
        before: Option<i64>,
        limit: usize,
        scan: u64,
    ) -> Result<ReasonPage> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let (oldest, newest): (Option<i64>, Option<i64>) =
                tx.query_row("SELECT MIN(id), MAX(id) FROM dead_letters", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let (Some(oldest), Some(newest)) = (oldest, newest) else {
                return Ok(ReasonPage::default());
            };
            let below = before.unwrap_or(i64::MAX).min(newest.saturating_add(1));
            let floor = below.saturating_sub(sql_count(scan.max(1)));
            let mut rows = {
                let mut st = tx.prepare_cached(
                    "SELECT id, received_at, topic, device_id, reason, detail, payload, payload_bytes
                       FROM dead_letters WHERE reason = ?1 AND id < ?2 AND id >= ?3
                      ORDER BY id DESC LIMIT ?4",
                )?;
                let rows = st.query_map(
                    params![reason, below, floor, sql_count(limit as u64 + 1)],
                    dead_letter_row,
                )?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.finish()?;
            let next = if rows.len() > limit {
                rows.truncate(limit);
                rows.last().map(|r| r.id)
            } else if floor > oldest {
                Some(floor)
            } else {
                None
            };
            Ok(ReasonPage {
                dead_letters: rows,
                next,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use domain::{decode, ProfileSet, Timestamp};

    use crate::hot::{HotStore, StoreItem};
    use crate::Synchronous;

    use super::*;

    /// A store with dead letters 1..=n: every tenth `unknown_device_type`, the rest
    /// `malformed_json`.
    fn store(n: usize) -> (tempfile::TempDir, StoreReader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
        let profiles = ProfileSet::builtin();
        let bad_json = b"{not json".to_vec();
        let bad_type = br#"{"ts": 1, "seq": 1, "type": "toaster", "readings": {}}"#.to_vec();
        let json = decode("fixahead/v1/wm-1/telemetry", &bad_json, &profiles).unwrap_err();
        let kind = decode("fixahead/v1/wm-1/telemetry", &bad_type, &profiles).unwrap_err();
        let items: Vec<StoreItem<'_>> = (1..=n)
            .map(|i| {
                let (payload, rejection) = if i % 10 == 0 {
                    (&bad_type, &kind)
                } else {
                    (&bad_json, &json)
                };
                StoreItem::DeadLetter {
                    topic: "fixahead/v1/wm-1/telemetry",
                    payload,
                    rejection,
                    received_at: Timestamp(i as i64),
                }
            })
            .collect();
        store.commit(&items).unwrap();
        let reader = StoreReader::open(&path).unwrap();
        (dir, reader)
    }

    #[test]
    fn reasons_are_counted_over_the_newest_window() {
        let (_dir, reader) = store(100);
        let all = reader.dead_letter_reasons(1_000).unwrap();
        let rare = all
            .reasons
            .iter()
            .find(|(r, _)| r != "malformed_json")
            .cloned()
            .unwrap();
        assert_eq!(all.reasons[0], ("malformed_json".to_owned(), 90));
        assert_eq!(rare.1, 10);
        assert_eq!((all.counted, all.total), (100, 100));
        let newest = reader.dead_letter_reasons(20).unwrap();
        assert_eq!((newest.counted, newest.total), (20, 100));
        assert_eq!(newest.reasons[0], ("malformed_json".to_owned(), 18));
        let (_empty_dir, empty) = store(0);
        assert_eq!(
            empty.dead_letter_reasons(10).unwrap(),
            ReasonCounts::default()
        );
    }

    #[test]
    fn a_reason_is_paged_within_a_bounded_scan_and_continues_below_it() {
        let (_dir, reader) = store(100);
        let rare = reader.dead_letter_reasons(1_000).unwrap().reasons[1]
            .0
            .clone();
        // Ids 100, 90, ..., 10 have the rare reason.
        let page = reader
            .dead_letters_with_reason(&rare, None, 3, 1_000)
            .unwrap();
        let ids: Vec<i64> = page.dead_letters.iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![100, 90, 80]);
        assert_eq!(page.next, Some(80));
        let page = reader
            .dead_letters_with_reason(&rare, page.next, 3, 1_000)
            .unwrap();
        assert_eq!(page.dead_letters[0].id, 70);
        // A short scan stops early and says where to go on.
        let page = reader
            .dead_letters_with_reason(&rare, Some(55), 3, 4)
            .unwrap();
        assert!(page.dead_letters.is_empty());
        assert_eq!(page.next, Some(51));
        let page = reader
            .dead_letters_with_reason(&rare, Some(51), 3, 4)
            .unwrap();
        assert_eq!(page.dead_letters[0].id, 50);
        // The end of the table ends the paging.
        let last = reader
            .dead_letters_with_reason(&rare, Some(15), 3, 1_000)
            .unwrap();
        assert_eq!(last.dead_letters.len(), 1);
        assert_eq!(last.next, None);
        assert_eq!(
            reader
                .dead_letters_with_reason("no_such_reason", None, 3, 1_000)
                .unwrap(),
            ReasonPage::default()
        );
    }
}
