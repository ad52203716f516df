//! The feedback loop end to end: a simulated fleet replayed over MQTT into `fixahead
//! run` opens reactive tickets; outcomes recorded through the HTTP API
//! (`confirmed_failure` with the failure time, `no_fault_found`, `not_reached`) become
//! the labels `fixahead train --from-store` trains on, and the model it writes loads
//! and scores (`fixahead predict`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{
    bin, free_port, raised_fault, run_cli, wait_for, Publisher, Server, ADMIN_KEY,
};

/// (device type, component) -> count
type Counts = BTreeMap<(String, String), u64>;

fn device_type(device_id: &str) -> &'static str {
    if device_id.starts_with("wm-") {
        "washer"
    } else {
        "refrigerator"
    }
}

/// The first failure of each (device, component) in the history's ground truth.
fn first_failures(history: &Path) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(history.join("events.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let e: Value = serde_json::from_str(line).unwrap();
        if e["event"] == "failure" {
            out.entry((
                e["device_id"].as_str().unwrap().to_owned(),
                e["component"].as_str().unwrap().to_owned(),
            ))
            .or_insert_with(|| e["ts"].as_str().unwrap().to_owned());
        }
    }
    out
}

async fn tickets(server: &Server) -> Vec<Value> {
    let (status, body) = server.get("/api/v1/tickets?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    body["tickets"].as_array().cloned().unwrap_or_default()
}

async fn record(server: &Server, id: i64, outcome: &Value) {
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{id}/outcome"),
            Some(ADMIN_KEY),
            Some(outcome),
        )
        .await;
    assert_eq!(status, 200, "outcome {outcome} on ticket {id}: {body}");
}

/// `fixahead train --from-store` as a process: (success, stdout, stderr).
fn train_from_store(data: &Path, out: &Path, params: &Path) -> (bool, String, String) {
    let output = Command::new(bin())
        .args(["train", "--from-store", "--data-dir"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(["--horizon", "3d", "--params"])
        .arg(params)
        .args(["--target-precision", "0.2", "--alert-budget", "1000"])
        .output()
        .expect("spawn fixahead train");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn map_of(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// A month of 32 washers and refrigerators that fail often, ending now (so failure
/// times lie in the past, as the API requires, and the no-fault-found checks, recorded
/// now, lie at the end of the data), written to `history`.
fn simulate_failing_month(history: &Path) {
    run_cli(&[
        "simulate",
        "--out",
        history.to_str().unwrap(),
        "--devices",
        "32",
        "--days",
        "30",
        "--seed",
        "5",
        "--refrigerator-interval",
        "3600",
        "--failure-rate",
        "6",
        "--sudden-failures",
        "0",
        "--kinds",
        "washer,refrigerator",
    ]);
}

/// Records outcomes of the `reactive` tickets (in id order) through the API: the last
/// two were false alarms, the first customer was not reached, every other ticket a
/// confirmed failure at its first simulated failure time (from `failures`). Returns the
/// confirmed failures and the no-fault-found checks recorded.
async fn record_outcomes(
    server: &Server,
    reactive: &[&Value],
    failures: &BTreeMap<(String, String), String>,
) -> (Counts, Counts) {
    let mut confirmed = Counts::new();
    let mut no_fault = Counts::new();
    let n = reactive.len();
    for (i, t) in reactive.iter().enumerate() {
        let id = t["id"].as_i64().unwrap();
        let device = t["device_id"].as_str().unwrap().to_owned();
        let component = t["component"].as_str().unwrap().to_owned();
        let key = (device_type(&device).to_owned(), component.clone());
        if i + 2 >= n {
            record(server, id, &json!({"kind": "no_fault_found"})).await;
            *no_fault.entry(key).or_default() += 1;
        } else if i == 0 {
            record(server, id, &json!({"kind": "not_reached"})).await;
        } else {
            let failed_at = failures
                .get(&(device.clone(), component.clone()))
                .unwrap_or_else(|| panic!("{device}/{component} has a ticket and no failure"));
            record(
                server,
                id,
                &json!({"kind": "confirmed_failure", "failed_at": failed_at,
                        "parts_replaced": ["part"]}),
            )
            .await;
            *confirmed.entry(key).or_default() += 1;
        }
    }
    (confirmed, no_fault)
}

/// Checks that the active `kind` artefact in `models` records exactly the labels the
/// outcomes gave its type (`stdout`: what training printed, for the message); returns
/// its positive rows.
fn check_labels(
    models: &Path,
    kind: &str,
    confirmed: &Counts,
    no_fault: &Counts,
    stdout: &str,
) -> u64 {
    let active = std::fs::read_to_string(models.join(kind).join("ACTIVE"))
        .unwrap_or_else(|e| panic!("no active {kind} model: {e}\n{stdout}"));
    let artefact: Value = serde_json::from_str(
        &std::fs::read_to_string(models.join(kind).join(format!("{}.json", active.trim())))
            .unwrap(),
    )
    .unwrap();
    let summary = &artefact["training_summary"];
    let labels = &summary["labels"];
    assert_eq!(labels["source"], "store", "{labels:#}");
    let of = |counts: &Counts| -> BTreeMap<String, u64> {
        counts
            .iter()
            .filter(|((t, _), _)| t == kind)
            .map(|((_, c), n)| (c.clone(), *n))
            .collect()
    };
    assert_eq!(
        map_of(&labels["failures"]),
        of(confirmed),
        "{kind}: {labels:#}"
    );
    assert_eq!(
        map_of(&labels["no_fault_found"]),
        of(no_fault),
        "{kind}: {labels:#}"
    );
    // A no-fault-found check recorded now labels the rows of the horizon before it, at
    // the end of the data, which would otherwise be unknown (censored).
    for component in of(no_fault).keys() {
        assert!(
            map_of(&labels["no_fault_found_rows"])
                .get(component)
                .is_some_and(|n| *n > 0),
            "{kind}/{component}: {labels:#}"
        );
    }
    map_of(&summary["positives"]).values().sum::<u64>()
}

/// The model directory loads and scores `history`: some predictions, each a risk in
/// [0, 1].
fn assert_models_score(models: &Path, history: &Path) {
    let out = run_cli(&[
        "predict",
        "--history",
        history.to_str().unwrap(),
        "--model",
        models.to_str().unwrap(),
    ]);
    let predictions: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(!predictions.is_empty(), "no prediction from the new models");
    for p in &predictions {
        let risk = p["risk"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&risk), "{p}");
    }
}

// One scenario whose steps depend on each other: replay, outcomes, then training on them.
#[tokio::test(flavor = "multi_thread")]
async fn outcomes_recorded_through_the_api_become_the_labels_train_from_store_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history");
    let data = tmp.path().join("data");
    let models = tmp.path().join("models");
    simulate_failing_month(&history);
    let failures = first_failures(&history);
    let lines = std::fs::read_to_string(history.join("telemetry.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;

    let mut server =
        Server::start_with(&data, None, free_port(), &["--max-future-skew", "off"]).await;
    let url = format!("mqtt://127.0.0.1:{}", server.mqtt_port);
    run_cli(&[
        "replay",
        history.to_str().unwrap(),
        "--mqtt-url",
        &url,
        "--speed",
        "max",
    ]);
    // One more critical fault, from a device of its own, after the replay: one task
    // scores messages in arrival order, so once its ticket exists every replayed
    // message has been through the ticket service.
    let mut publisher = Publisher::connect(server.mqtt_port, "feedback-sentinel").await;
    publisher
        .publish(
            "fixahead/v1/wm-9999/fault",
            raised_fault(1, crate::harness::now_ms() - 60_000, "E23"),
        )
        .await;
    publisher.flush().await;
    wait_for(
        Duration::from_secs(120),
        "the sentinel's ticket (every replayed message scored)",
        || async {
            tickets(&server)
                .await
                .iter()
                .any(|t| t["device_id"] == "wm-9999")
        },
    )
    .await;
    let (_, health) = server.get("/health").await;
    let stored = ["stored_telemetry", "stored_faults"]
        .iter()
        .map(|k| health["ingest"][k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(stored, lines + 1, "every line stored: {health:#}");

    let mut all = tickets(&server).await;
    all.sort_by_key(|t| t["id"].as_i64());
    let reactive: Vec<&Value> = all.iter().filter(|t| t["device_id"] != "wm-9999").collect();
    assert!(
        reactive.len() >= 6,
        "the simulated failures open reactive tickets: {all:#?}"
    );

    // A small fleet's month: hourly rows, one flagged score enough (washers report
    // once a day), logistic only, thresholds for a test rather than for planners.
    let params = tmp.path().join("params.toml");
    std::fs::write(
        &params,
        "sample_interval_ms = 3600000\nmin_positives = 1\ntrees = 0\npersistence = 1\nhold_ms = 0\n",
    )
    .unwrap();
    // No outcome yet: refused, with the reason, while `fixahead run` keeps running (the
    // stores are read read-only beside it).
    let (ok, stdout, stderr) = train_from_store(&data, &models, &params);
    assert!(!ok, "no confirmed failure, no training: {stdout}");
    assert!(stderr.contains("no confirmed failure"), "{stderr}");
    assert!(!models.exists(), "nothing written");

    let (confirmed, no_fault) = record_outcomes(&server, &reactive, &failures).await;
    let sentinel = all.iter().find(|t| t["device_id"] == "wm-9999").unwrap()["id"]
        .as_i64()
        .unwrap();
    record(&server, sentinel, &json!({"kind": "customer_declined"})).await;
    let n_confirmed: u64 = confirmed.values().sum();
    let n_no_fault: u64 = no_fault.values().sum();
    let expected = format!(
        "outcomes: confirmed_failure {n_confirmed} -> {n_confirmed} failure events, no_fault_found {n_no_fault} -> {n_no_fault} negative labels, customer_declined 1 and not_reached 1 -> no label"
    );

    // Beside the running pipeline (read-only on both stores), then once it stopped.
    let (ok, stdout, stderr) = train_from_store(&data, &tmp.path().join("live-models"), &params);
    assert!(
        ok,
        "train --from-store beside fixahead run failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(&expected), "{expected}\nnot in:\n{stdout}");
    assert!(server.stop().success());
    let (ok, stdout, stderr) = train_from_store(&data, &models, &params);
    assert!(ok, "train --from-store failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&expected), "{expected}\nnot in:\n{stdout}");
    assert!(stdout.contains("33 devices"), "{stdout}");

    // Each active artefact records exactly the labels the outcomes gave its type.
    let positive_rows: u64 = ["washer", "refrigerator"]
        .into_iter()
        .map(|kind| check_labels(&models, kind, &confirmed, &no_fault, &stdout))
        .sum();
    assert!(
        positive_rows > 0,
        "the confirmed failures label rows: {stdout}"
    );

    assert_models_score(&models, &history);
}
