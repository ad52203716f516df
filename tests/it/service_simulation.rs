//! `fixahead simulate-service` end to end on a tiny fleet: the service world acts
//! through the public API only, and what it did is what the ticket records and the
//! KPI endpoint say.

use serde_json::Value;

use crate::harness::{bin, run_cli, trained_models, Server, ADMIN_KEY};

fn count(tickets: &[Value], f: impl Fn(&Value) -> bool) -> u64 {
    tickets.iter().filter(|t| f(t)).count() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_service_works_through_the_api_and_its_kpis_agree_with_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    run_cli(&[
        "simulate",
        "--out",
        history.to_str().unwrap(),
        "--devices",
        "6",
        "--days",
        "4",
        "--seed",
        "5",
        "--early-degradation",
        "0.7",
        "--start",
        "2026-09-01T00:00:00Z",
        "--refrigerator-interval",
        "3600",
        "--kinds",
        "washer,refrigerator",
    ]);
    let data = dir.path().join("sim");
    // With the suite's admin key, which the server started on the data later accepts.
    let output = std::process::Command::new(bin())
        .env("FIXAHEAD_ADMIN_KEY", ADMIN_KEY)
        .args([
            "simulate-service",
            "--history",
            history.to_str().unwrap(),
            "--models",
            trained_models().to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--engineers",
            "3",
            "--step-minutes",
            "60",
            "--drain-days",
            "4",
            "--rule",
            "fcfs",
            "--json",
        ])
        .output()
        .expect("run simulate-service");
    assert!(
        output.status.success(),
        "simulate-service failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let run = &doc["rules"][0];
    assert_eq!(run["rule"], "fcfs");
    let counts = &run["counts"];
    let n = |k: &str| counts[k].as_u64().unwrap_or_else(|| panic!("counts.{k}"));
    assert!(n("tickets") > 0, "the world worked on no ticket: {counts}");
    assert!(n("resolved") > 0, "nothing resolved: {counts}");
    assert!(n("visits") >= n("resolved"));
    assert_eq!(n("resolved"), n("confirmed_failure") + n("no_fault_found"));
    assert_eq!(n("api_errors"), 0, "refused API calls: {counts}");
    let missing: Vec<&str> = run["missing_routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();

    // The records, read back through the API of a fixahead started on the data.
    let rule_dir = data.join("fcfs");
    let server = Server::start(&rule_dir, Some(trained_models())).await;
    let (status, body) = server
        .get("/api/v1/tickets?status=resolved,closed&limit=1000")
        .await;
    assert_eq!(status, 200, "{body}");
    let tickets = body["tickets"].as_array().unwrap().clone();
    let with_outcome = |kind: &'static str| {
        move |t: &Value| t.pointer("/outcome/kind").and_then(Value::as_str) == Some(kind)
    };
    assert_eq!(
        count(&tickets, with_outcome("confirmed_failure")),
        n("confirmed_failure")
    );
    assert_eq!(
        count(&tickets, with_outcome("no_fault_found")),
        n("no_fault_found")
    );
    // Every outcome was recorded by a simulated engineer, with their own key.
    for t in tickets.iter().filter(|t| !t["outcome"].is_null()) {
        let (_, full) = server.get(&format!("/api/v1/tickets/{}", t["id"])).await;
        let resolved_by: Vec<&str> = full["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "outcome_recorded")
            .filter_map(|e| e["actor"].as_str())
            .collect();
        assert!(
            resolved_by.iter().any(|a| a.starts_with("eng-")),
            "ticket {} resolved by {resolved_by:?}",
            t["id"]
        );
        assert!(full["visits"].as_u64().unwrap_or(0) >= 1);
    }
    if !missing.contains(&"post /api/v1/tickets/{id}/satisfaction") {
        assert_eq!(
            count(&tickets, |t| !t["satisfaction"].is_null()),
            n("satisfaction_answers")
        );
    }
    if !missing.contains(&"get /api/v1/kpis") {
        let (from, to) = (run["from"].as_str().unwrap(), run["to"].as_str().unwrap());
        let (status, kpis) = server
            .get(&format!("/api/v1/kpis?from={from}&to={to}"))
            .await;
        assert_eq!(status, 200, "{kpis}");
        assert_eq!(kpis["overall"], run["kpis"]["overall"]);
    }
}
