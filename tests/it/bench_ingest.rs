//! `fixahead bench ingest` on a tiny load: it runs every phase end to end and prints
//! the documented JSON. No timing is asserted (docs/performance.md has the numbers).

use serde_json::Value;

use crate::harness::{run_cli, trained_models};

#[test]
fn bench_ingest_runs_every_phase_and_prints_its_json() {
    let model = trained_models().to_str().unwrap().to_owned();
    let out = run_cli(&[
        "bench",
        "ingest",
        "--model",
        &model,
        "--messages",
        "2000",
        "--devices",
        "50",
        "--seconds",
        "2",
        "--background-rate",
        "200",
        "--tickets",
        "2",
        "--state-devices",
        "2000",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(json["messages"], 2000, "{json}");
    assert!(json["pipeline_stalled"].is_null(), "{json}");
    assert_eq!(json["pipeline_dead_letters"], 0, "{json}");
    for field in [
        "raw_msgs_per_s",
        "pipeline_msgs_per_s",
        "ratio",
        "store_latency_ms_p50",
        "store_latency_ms_p99",
        "bytes_per_device",
        "state_bytes_per_device",
        "payload_bytes_mean",
    ] {
        assert!(
            json[field].as_f64().is_some_and(|v| v > 0.0),
            "{field}: {json}"
        );
    }
    assert_eq!(json["state_devices"], 2000, "{json}");
    // Each ticket sample either opened its ticket or timed out; none was opened early.
    let samples = json["ticket_samples"].as_u64().unwrap();
    let timeouts = json["ticket_timeouts"].as_u64().unwrap();
    let not_taken = json["ticket_not_taken"].as_u64().unwrap();
    assert_eq!(json["ticket_skipped"], 0, "{json}");
    assert!(samples + timeouts + not_taken <= 2, "{json}");
    assert!(
        samples + timeouts >= 1,
        "no device of the test fleet flagged: {json}"
    );
    assert!(
        json["targets"]["bytes_per_device"]["met"].is_boolean(),
        "{json}"
    );
}
