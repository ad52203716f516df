//! `fixahead eval` and `fixahead predict` on a simulated fleet the model was not
//! trained on (another seed), through the public commands.

use serde_json::Value;

use crate::harness::{run_cli, trained_models};

fn unseen_history(dir: &std::path::Path) {
    run_cli(&[
        "simulate",
        "--out",
        dir.to_str().unwrap(),
        "--devices",
        "40",
        "--days",
        "90",
        "--seed",
        "77",
        "--start",
        "2026-09-01T00:00:00Z",
        "--refrigerator-interval",
        "3600",
        "--kinds",
        "washer,refrigerator,dishwasher",
    ]);
}

#[test]
fn eval_writes_metrics_report_and_charts_and_predict_prints_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history");
    let report = tmp.path().join("report");
    unseen_history(&history);
    let models = trained_models().to_str().unwrap();

    let out = run_cli(&[
        "eval",
        "--history",
        history.to_str().unwrap(),
        "--model",
        models,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.contains("model") && out.contains("baseline"), "{out}");
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("metrics.json")).unwrap())
            .unwrap();
    for side in ["model", "baseline"] {
        let overall = &metrics[side]["overall"];
        for key in [
            "precision",
            "recall",
            "f1",
            "lead_time_days_median",
            "lead_time_days_p10",
            "false_alarms_per_1000_device_months",
            "failures",
            "caught",
            "flags",
            "model_version",
        ] {
            assert!(
                overall.get(key).is_some(),
                "{side}.overall.{key} missing: {overall:#}"
            );
        }
        assert!(overall["caught"].as_u64() <= overall["failures"].as_u64());
    }
    assert!(
        metrics["model"]["by_type"]["washer"].is_object(),
        "{metrics:#}"
    );
    // The test model knows washers and refrigerators only: dishwashers are reported, not an error.
    assert_eq!(
        metrics["types_without_model"],
        serde_json::json!(["dishwasher"])
    );
    assert!(std::fs::read_to_string(report.join("report.md"))
        .unwrap()
        .contains("baseline"));
    for chart in metrics["charts"].as_array().unwrap() {
        let bytes = std::fs::read(report.join(chart.as_str().unwrap())).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{chart}");
    }

    let out = run_cli(&[
        "predict",
        "--history",
        history.to_str().unwrap(),
        "--model",
        models,
    ]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        for key in ["device_id", "component", "risk", "flagged", "model_version"] {
            assert!(l.get(key).is_some(), "{key} missing: {l}");
        }
        let risk = l["risk"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&risk), "{l}");
        assert!(
            !l["device_id"].as_str().unwrap().starts_with("dw-"),
            "no model, no prediction: {l}"
        );
    }
}

/// A command that fails prints `error:` and each cause once (the crates' errors both
/// say their cause and hand it out as `source`; the binary must not repeat it).
#[test]
fn a_failed_command_says_its_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-history");
    let out = std::process::Command::new(crate::harness::bin())
        .args(["train", "--history", missing.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("models"))
        .output()
        .expect("spawn fixahead");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(line.contains("events.jsonl"), "{line}");
    // ENOENT as the standard library says it: "No such file or directory (os error 2)".
    let said = line.matches("(os error 2)").count();
    assert_eq!(said, 1, "the cause is said {said} times: {line}");
}
