//! Dead-letter retention seen through the writer: rows are pruned, the per-reason
//! counters of rejections keep counting every event.

use std::sync::Arc;
use std::time::Duration;

use domain::{ProfileSet, RejectReason, Timestamp};
use ingest::metrics::IngestMetrics;
use ingest::pipeline::{PipelineSettings, Writer};
use ingest::source::{Acker, Received};
use rumqttc::{Publish, QoS};
use store::hot::{DeadLetterRetention, HotStore, StoreReader};
use store::Synchronous;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;

fn received(pkid: u16, topic: &str, payload: &str) -> Received {
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload);
    publish.pkid = pkid;
    Received::new(publish, 1, Timestamp(T0 + i64::from(pkid)))
}

#[tokio::test]
async fn per_reason_counters_count_every_rejection_while_rows_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let store = HotStore::open(&path, Synchronous::Normal)
        .unwrap()
        .with_dead_letter_retention(DeadLetterRetention {
            max_rows: 2,
            max_age_ms: 30 * Timestamp::DAY_MS,
            interval: Duration::ZERO,
        });
    // No connection: the acknowledgements the writer hands back wait in the channel.
    let (acker, mut acks) = Acker::channel();
    let (downstream, mut scored) = mpsc::channel(100);
    let metrics = Arc::new(IngestMetrics::default());
    let writer = Writer {
        store,
        acker,
        profiles: Arc::new(ProfileSet::builtin()),
        downstream,
        metrics: metrics.clone(),
        settings: PipelineSettings {
            batch_max: 3,
            batch_interval: Duration::from_millis(1),
            max_future_ms: None,
        },
    };

    let topic = "fixahead/v1/wm-r/telemetry";
    let (tx, rx) = mpsc::channel(100);
    let mut pkid = 0;
    let mut send = |payload: String| {
        pkid += 1;
        tx.try_send(received(pkid, topic, &payload)).unwrap();
    };
    for seq in 1..=6 {
        send(format!(r#"{{"ts": {T0}, "seq": {seq}, "type": "washer""#));
    }
    send(format!(
        r#"{{"ts": {T0}, "seq": 7, "type": "washer", "model": "WM-500", "readings": {{"vibration_g": 0.1}}}}"#
    ));
    for seq in 8..=11 {
        send(format!(
            r#"{{"ts": {T0}, "seq": "s{seq}", "type": "washer", "model": "WM-500", "readings": {{"vibration_g": 0.1}}}}"#
        ));
    }
    drop(tx);
    writer.run(rx, CancellationToken::new()).await.unwrap();

    assert_eq!(metrics.rejected(RejectReason::MalformedJson), 6);
    assert_eq!(metrics.rejected(RejectReason::WrongType), 4);
    assert_eq!(metrics.stored_telemetry.get(), 1);
    assert_eq!(metrics.dead_letters_pruned.get(), 8);
    let registry = prometheus::Registry::new();
    metrics.register(&registry).unwrap();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    for line in [
        "fixahead_ingest_dead_letters_total{reason=\"malformed_json\"} 6",
        "fixahead_ingest_dead_letters_total{reason=\"wrong_type\"} 4",
        "fixahead_dead_letters_pruned_total 8",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }

    let reader = StoreReader::open(&path).unwrap();
    let rows = reader.dead_letters(None, 100).unwrap();
    assert_eq!(
        rows.iter().map(|d| d.reason.as_str()).collect::<Vec<_>>(),
        ["wrong_type", "wrong_type"],
        "the newest two"
    );
    let telemetry = reader.telemetry("wm-r", None, None, 10).unwrap();
    assert_eq!(telemetry.len(), 1, "the valid message survives");
    assert_eq!(telemetry[0].seq, 7);
    assert!(scored.try_recv().is_ok(), "and was forwarded");
    // Every message, stored or dead-lettered, was handed back for acknowledgement once,
    // in arrival order.
    let mut pkids = Vec::new();
    while let Ok(token) = acks.try_recv() {
        pkids.push(token.pkid);
    }
    assert_eq!(pkids, (1..=11).collect::<Vec<u16>>());
}
