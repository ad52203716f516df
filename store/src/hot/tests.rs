//! The hot store's tests: writer, reader, upgrades and dead-letter retention.

use std::time::Duration;

use domain::{decode, Message, ProfileSet, Rejection, Timestamp};
use rusqlite::Connection;

use super::*;
use crate::Synchronous;

fn msg(seq: u64, vib: f64) -> Message {
    let p = format!(
        r#"{{"ts": {}, "seq": {seq}, "type": "washer", "model": "WM-500", "fw": "1.0", "readings": {{"vibration_g": {vib}, "x_new": 1}}}}"#,
        1_795_500_000_000i64 + seq as i64 * 1000
    );
    decode(
        "fixahead/v1/wm-1/telemetry",
        p.as_bytes(),
        &ProfileSet::builtin(),
    )
    .unwrap()
}

#[test]
fn stores_once_and_registers_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
    let (a, b) = (msg(1, 0.1), msg(2, 0.2));
    let now = Timestamp(1);
    let items = [
        StoreItem::Message {
            message: &a,
            received_at: now,
        },
        StoreItem::Message {
            message: &b,
            received_at: now,
        },
        StoreItem::Message {
            message: &a,
            received_at: now,
        },
    ];
    let out = store.commit(&items).unwrap();
    assert_eq!(
        out,
        vec![Outcome::Stored, Outcome::Stored, Outcome::Duplicate]
    );
    let reader = StoreReader::open(&path).unwrap();
    let dev = reader.device("wm-1").unwrap().unwrap();
    assert_eq!(dev.messages, 2);
    assert_eq!(dev.device.fw.as_deref(), Some("1.0"));
    // The API's device JSON (a contract): the device info sits flat beside the id.
    let text = serde_json::to_string(&dev).unwrap();
    let head = r#"{"device_id":"wm-1","type":"washer","model":"WM-500","fw":"1.0","batch":null,"region":null,"first_seen":"#;
    assert!(text.starts_with(head), "{text}");
    let tel = reader.telemetry("wm-1", None, None, 10).unwrap();
    assert_eq!(tel.len(), 2);
    assert_eq!(tel[1].readings["vibration_g"], 0.2);
    assert_eq!(tel[1].readings["x_new"], 1.0);
    assert_eq!(reader.counts().unwrap().telemetry, 2);
}

#[test]
fn batch_and_region_are_registered_and_kept_when_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
    let telemetry = |seq: u64, extra: &str| {
        let p = format!(
            r#"{{"ts": {seq}, "seq": {seq}, "type": "washer", "model": "WM-500"{extra}, "readings": {{"vibration_g": 0.1}}}}"#
        );
        decode(
            "fixahead/v1/wm-1/telemetry",
            p.as_bytes(),
            &ProfileSet::builtin(),
        )
        .unwrap()
    };
    let reader = StoreReader::open(&path).unwrap();
    let registered = |reader: &StoreReader| {
        let d = reader.device("wm-1").unwrap().unwrap();
        (d.device.batch, d.device.region)
    };
    let first = telemetry(1, r#", "batch": "B2025-07", "region": "north""#);
    store.commit(&[item(&first)]).unwrap();
    assert_eq!(
        registered(&reader),
        (Some("B2025-07".into()), Some("north".into()))
    );
    // An old firmware that sends neither keeps what the registry knows.
    let bare = telemetry(2, "");
    store.commit(&[item(&bare)]).unwrap();
    assert_eq!(
        registered(&reader),
        (Some("B2025-07".into()), Some("north".into()))
    );
    let moved = telemetry(3, r#", "region": "south""#);
    store.commit(&[item(&moved)]).unwrap();
    assert_eq!(
        registered(&reader),
        (Some("B2025-07".into()), Some("south".into()))
    );
    let mut replayed = Vec::new();
    reader
        .replay_since(Timestamp(0), |m| {
            if let Message::Telemetry(t) = m {
                replayed.push((t.device.batch, t.device.region));
            }
        })
        .unwrap();
    assert_eq!(replayed.len(), 3);
    assert!(replayed
        .iter()
        .all(|r| *r == (Some("B2025-07".into()), Some("south".into()))));
}

#[test]
fn replay_gives_back_the_stored_messages_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
    let late = msg(1, 0.1); // seq 1 has the earliest event time but arrives last
    let newer = msg(3, 0.3);
    let fault = decode(
        "fixahead/v1/wm-1/fault",
        br#"{"ts": 1795500002000, "seq": 2, "type": "washer", "model": "WM-500", "fw": "1.0", "code": "E21", "state": "raised"}"#,
        &ProfileSet::builtin(),
    )
    .unwrap();
    store
        .commit(&[
            StoreItem::Message {
                message: &newer,
                received_at: Timestamp(10),
            },
            StoreItem::Message {
                message: &fault,
                received_at: Timestamp(10),
            },
            StoreItem::Message {
                message: &late,
                received_at: Timestamp(11),
            },
        ])
        .unwrap();
    let reader = StoreReader::open(&path).unwrap();
    assert_eq!(reader.newest_received_at().unwrap(), Some(Timestamp(11)));
    let mut replayed = Vec::new();
    let n = reader
        .replay_since(Timestamp(0), |m| replayed.push(m))
        .unwrap();
    assert_eq!(n, 3);
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|m| match m {
            Message::Telemetry(t) => t.seq,
            Message::Fault(f) => f.seq,
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => 0,
        })
        .collect();
    // Arrival order: the late seq 1 comes last, as it did live (messages received at
    // the same instant keep event-time order).
    assert_eq!(seqs, vec![2, 3, 1]);
    assert_eq!(replayed[0], fault);
    let Message::Telemetry(t) = &replayed[1] else {
        panic!("telemetry")
    };
    assert_eq!(
        t.readings
            .iter()
            .find(|(k, _)| k == "vibration_g")
            .map(|(_, v)| *v),
        Some(0.3)
    );
    assert_eq!(t.device.fw.as_deref(), Some("1.0"));
}

fn fault(seq: u64) -> Message {
    let p = format!(
        r#"{{"ts": {}, "seq": {seq}, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}}"#,
        1_795_500_000_000i64 + seq as i64 * 1000
    );
    decode(
        "fixahead/v1/wm-1/fault",
        p.as_bytes(),
        &ProfileSet::builtin(),
    )
    .unwrap()
}

fn seq_of(m: &Message) -> u64 {
    match m {
        Message::Telemetry(t) => t.seq,
        Message::Fault(f) => f.seq,
        Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => {
            unreachable!("never archived")
        }
    }
}

fn item(message: &Message) -> StoreItem<'_> {
    StoreItem::Message {
        message,
        received_at: Timestamp(1),
    }
}

#[test]
fn arrivals_number_stored_rows_in_commit_order_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
    let (t1, f2, t3, f4) = (msg(1, 0.1), fault(2), msg(3, 0.3), fault(4));
    let (payload, rej) = bad_payload();
    // Duplicates and dead letters take no number; a failed commit keeps none.
    store
        .commit(&[
            item(&t1),
            item(&f2),
            item(&t1),
            dead_letter(payload, &rej, 1),
        ])
        .unwrap();
    store.conn.execute_batch("CREATE TRIGGER fail BEFORE INSERT ON faults BEGIN SELECT RAISE(ABORT, 'disk full'); END").unwrap();
    assert!(store.commit(&[item(&t3), item(&f4)]).is_err());
    store.conn.execute_batch("DROP TRIGGER fail").unwrap();
    store.commit(&[item(&f4), item(&f2), item(&t3)]).unwrap();

    let reader = StoreReader::open(&path).unwrap();
    assert_eq!(reader.newest_arrival().unwrap(), 4);
    let page = reader.read_after(0, 100).unwrap();
    let got: Vec<(i64, u64)> = page.messages.iter().map(|(a, m)| (*a, seq_of(m))).collect();
    assert_eq!(got, vec![(1, 1), (2, 2), (3, 4), (4, 3)]);
    assert_eq!((page.through, page.newest), (4, 4));
    let Message::Fault(mut want) = f4.clone() else {
        unreachable!()
    };
    want.device.fw = Some("1.0".into()); // the registry's, as in replay_since
    assert_eq!(page.messages[2].1, Message::Fault(want));

    // Pages: the first `limit` rows of both tables together.
    let page = reader.read_after(1, 2).unwrap();
    let got: Vec<i64> = page.messages.iter().map(|(a, _)| *a).collect();
    assert_eq!((got, page.through, page.newest), (vec![2, 3], 3, 4));
    let page = reader.read_after(4, 2).unwrap();
    assert!(page.messages.is_empty());
    assert_eq!(page.through, 4, "an empty page stays where it was asked");

    // Reopening continues the numbering.
    drop(store);
    let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
    let t5 = msg(5, 0.5);
    store.commit(&[item(&t5)]).unwrap();
    assert_eq!(reader.read_after(4, 10).unwrap().messages[0].0, 5);
}

#[test]
fn a_store_from_before_arrivals_is_numbered_in_arrival_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    {
        // The schema as it was, with rows received out of event order.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE telemetry (device_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
                 received_at INTEGER NOT NULL, readings TEXT NOT NULL, PRIMARY KEY (device_id, seq)) WITHOUT ROWID;
             CREATE TABLE faults (device_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
                 received_at INTEGER NOT NULL, code TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (device_id, seq)) WITHOUT ROWID;
             CREATE TABLE devices (device_id TEXT PRIMARY KEY, device_type TEXT NOT NULL, model TEXT NOT NULL, fw TEXT,
                 first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, last_event_ts INTEGER NOT NULL, messages INTEGER NOT NULL DEFAULT 0);
             INSERT INTO devices VALUES ('wm-1', 'washer', 'WM-500', NULL, 10, 30, 5000, 4);
             INSERT INTO telemetry VALUES ('wm-1', 3, 3000, 20, '{\"vibration_g\":0.3}');
             INSERT INTO telemetry VALUES ('wm-1', 1, 1000, 30, '{\"vibration_g\":0.1}');
             INSERT INTO faults VALUES ('wm-1', 2, 2000, 10, 'E21', 'raised');
             INSERT INTO faults VALUES ('wm-1', 4, 4000, 20, 'E21', 'cleared');",
        )
        .unwrap();
    }
    let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
    let reader = StoreReader::open(&path).unwrap();
    let order = |reader: &StoreReader| -> Vec<u64> {
        reader
            .read_after(0, 100)
            .unwrap()
            .messages
            .iter()
            .map(|(_, m)| seq_of(m))
            .collect()
    };
    // Receive time first, then event time: as replay_since orders them.
    assert_eq!(order(&reader), vec![2, 3, 4, 1]);
    let mut replayed = Vec::new();
    reader
        .replay_since(Timestamp(0), |m| replayed.push(seq_of(&m)))
        .unwrap();
    assert_eq!(replayed, vec![2, 3, 4, 1]);
    let t5 = msg(5, 0.5);
    store.commit(&[item(&t5)]).unwrap();
    drop(store);
    // Opening again renumbers nothing.
    let _store = HotStore::open(&path, Synchronous::Normal).unwrap();
    assert_eq!(order(&reader), vec![2, 3, 4, 1, 5]);
    assert_eq!(reader.newest_arrival().unwrap(), 5);
    // The registry gained the batch and region columns, empty for the old row.
    let dev = reader.device("wm-1").unwrap().unwrap();
    assert_eq!((dev.device.batch, dev.device.region), (None, None));
}

#[test]
fn dead_letters_keep_a_bounded_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
    let payload = vec![b'x'; 10_000];
    let rej = decode(
        "fixahead/v1/wm-1/telemetry",
        &payload,
        &ProfileSet::builtin(),
    )
    .unwrap_err();
    store
        .commit(&[StoreItem::DeadLetter {
            topic: "fixahead/v1/wm-1/telemetry",
            payload: &payload,
            rejection: &rej,
            received_at: Timestamp(5),
        }])
        .unwrap();
    let dl = StoreReader::open(&path)
        .unwrap()
        .dead_letters(None, 10)
        .unwrap();
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].reason, "malformed_json");
    assert_eq!(dl[0].payload.len(), DEAD_LETTER_PAYLOAD_BYTES);
    assert_eq!(dl[0].payload_bytes, 10_000);
    assert!(dl[0].truncated);
    assert_eq!(dl[0].device_id.as_deref(), Some("wm-1"));
}

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;

fn bad_payload() -> (&'static [u8], Rejection) {
    let payload: &'static [u8] = b"{not json";
    let rej = decode(
        "fixahead/v1/wm-1/telemetry",
        payload,
        &ProfileSet::builtin(),
    )
    .unwrap_err();
    (payload, rej)
}

fn dead_letter<'a>(payload: &'a [u8], rej: &'a Rejection, at: i64) -> StoreItem<'a> {
    StoreItem::DeadLetter {
        topic: "fixahead/v1/wm-1/telemetry",
        payload,
        rejection: rej,
        received_at: Timestamp(at),
    }
}

fn retention(max_rows: u64, max_age_ms: i64) -> DeadLetterRetention {
    DeadLetterRetention {
        max_rows,
        max_age_ms,
        interval: Duration::ZERO,
    }
}

fn dead_letter_times(reader: &StoreReader) -> Vec<(i64, i64)> {
    let mut rows: Vec<(i64, i64)> = reader
        .dead_letters(None, 1000)
        .unwrap()
        .iter()
        .map(|d| (d.id, d.received_at.millis()))
        .collect();
    rows.reverse();
    rows
}

#[test]
fn dead_letter_retention_keeps_the_newest_max_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let mut store = HotStore::open(&path, Synchronous::Normal)
        .unwrap()
        .with_dead_letter_retention(retention(3, 30 * Timestamp::DAY_MS));
    let (payload, rej) = bad_payload();
    // One batch of four, then six batches of one: pruning follows every commit.
    let first: Vec<_> = (0..4).map(|i| dead_letter(payload, &rej, T0 + i)).collect();
    store.commit(&first).unwrap();
    assert_eq!(store.take_pruned(), 1);
    for i in 4..10 {
        store.commit(&[dead_letter(payload, &rej, T0 + i)]).unwrap();
    }
    assert_eq!(store.take_pruned(), 6);
    assert_eq!(store.take_pruned(), 0, "taken once");
    let reader = StoreReader::open(&path).unwrap();
    assert_eq!(
        dead_letter_times(&reader),
        vec![(8, T0 + 7), (9, T0 + 8), (10, T0 + 9)],
        "the newest three, by id"
    );
    assert_eq!(reader.counts().unwrap().dead_letters, 3);
}

#[test]
fn dead_letter_retention_removes_rows_older_than_max_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let day = Timestamp::DAY_MS;
    let mut store = HotStore::open(&path, Synchronous::Normal)
        .unwrap()
        .with_dead_letter_retention(retention(1000, 7 * day));
    let (payload, rej) = bad_payload();
    // Ids follow arrival, not receive time: a clock that stepped back leaves an old
    // receive time after a newer one, and age pruning still finds it.
    store
        .commit(&[
            dead_letter(payload, &rej, T0 - 40 * day),
            dead_letter(payload, &rej, T0 - 6 * day),
            dead_letter(payload, &rej, T0 - 8 * day),
            dead_letter(payload, &rej, T0),
        ])
        .unwrap();
    assert_eq!(store.take_pruned(), 2);
    let reader = StoreReader::open(&path).unwrap();
    assert_eq!(dead_letter_times(&reader), vec![(2, T0 - 6 * day), (4, T0)]);

    // Time moves on with valid messages only: the row that ages out still goes.
    let m = msg(1, 0.1);
    store
        .commit(&[StoreItem::Message {
            message: &m,
            received_at: Timestamp(T0 + 2 * day),
        }])
        .unwrap();
    assert_eq!(store.take_pruned(), 1);
    assert_eq!(dead_letter_times(&reader), vec![(4, T0)]);
    assert_eq!(reader.counts().unwrap().telemetry, 1);
}

#[test]
fn pruning_deletes_only_dead_letters_even_from_the_same_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let day = Timestamp::DAY_MS;
    let mut store = HotStore::open(&path, Synchronous::Normal)
        .unwrap()
        .with_dead_letter_retention(retention(1, day));
    let (payload, rej) = bad_payload();
    let (old, new) = (msg(1, 0.1), msg(2, 0.2));
    let fault = decode(
        "fixahead/v1/wm-1/fault",
        br#"{"ts": 1795500002000, "seq": 3, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}"#,
        &ProfileSet::builtin(),
    )
    .unwrap();
    // The valid messages are older than max_age and share the batch with dead letters
    // of every age: only dead letters go.
    let out = store
        .commit(&[
            StoreItem::Message {
                message: &old,
                received_at: Timestamp(T0 - 90 * day),
            },
            dead_letter(payload, &rej, T0 - 90 * day),
            StoreItem::Message {
                message: &fault,
                received_at: Timestamp(T0 - 90 * day),
            },
            dead_letter(payload, &rej, T0 - 1),
            StoreItem::Message {
                message: &new,
                received_at: Timestamp(T0),
            },
            dead_letter(payload, &rej, T0),
        ])
        .unwrap();
    assert_eq!(
        out,
        vec![
            Outcome::Stored,
            Outcome::DeadLettered,
            Outcome::Stored,
            Outcome::DeadLettered,
            Outcome::Stored,
            Outcome::DeadLettered
        ]
    );
    assert_eq!(store.take_pruned(), 2);
    let reader = StoreReader::open(&path).unwrap();
    assert_eq!(dead_letter_times(&reader), vec![(3, T0)]);
    let counts = reader.counts().unwrap();
    assert_eq!((counts.telemetry, counts.faults, counts.devices), (2, 1, 1));
    assert_eq!(reader.device("wm-1").unwrap().unwrap().messages, 3);
    let mut replayed = 0;
    reader
        .replay_since(Timestamp(i64::MIN), |_| replayed += 1)
        .unwrap();
    assert_eq!(replayed, 3);
}

#[test]
fn pruning_waits_for_its_interval_and_applies_new_bounds_at_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let (payload, rej) = bad_payload();
    let mut store = HotStore::open(&path, Synchronous::Normal)
        .unwrap()
        .with_dead_letter_retention(DeadLetterRetention {
            interval: Duration::from_secs(3600),
            ..retention(2, Timestamp::DAY_MS)
        });
    let batch: Vec<_> = (0..3).map(|i| dead_letter(payload, &rej, T0 + i)).collect();
    // The first commit after opening prunes; the next ones wait for the interval.
    store.commit(&batch).unwrap();
    assert_eq!(store.take_pruned(), 1);
    store.commit(&batch).unwrap();
    store.commit(&batch).unwrap();
    assert_eq!(store.take_pruned(), 0);
    let reader = StoreReader::open(&path).unwrap();
    assert_eq!(reader.counts().unwrap().dead_letters, 8);
    // Explicitly, and on reopening with other bounds, it applies at once.
    assert_eq!(store.prune_dead_letters(Timestamp(T0 + 2)).unwrap(), 6);
    store.commit(&batch).unwrap();
    drop(store);
    let mut store = HotStore::open(&path, Synchronous::Normal)
        .unwrap()
        .with_dead_letter_retention(DeadLetterRetention {
            interval: Duration::from_secs(3600),
            ..retention(1, Timestamp::DAY_MS)
        });
    store.commit(&[]).unwrap();
    assert_eq!(store.take_pruned(), 0, "an empty batch has no clock yet");
    store.commit(&batch[..1]).unwrap();
    assert_eq!(store.take_pruned(), 5);
    assert_eq!(dead_letter_times(&reader), vec![(13, T0)]);
}
