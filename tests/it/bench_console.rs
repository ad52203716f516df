//! `fixahead bench console` on a tiny fleet: it generates its data, signs its people
//! in and prints a line per page, timing the pages that exist and calling the others
//! missing. No timing is asserted (docs/benchmarks.md has the numbers).

use crate::harness::run_cli;

#[test]
fn bench_console_times_the_pages_that_exist_and_names_the_missing() {
    let out = run_cli(&[
        "bench",
        "console",
        "--devices",
        "300",
        "--open-tickets",
        "60",
        "--closed-tickets",
        "120",
        "--shown-devices",
        "5",
        "--days",
        "40",
        "--requests",
        "3",
    ]);
    let line = |path: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(path))
            .unwrap_or_else(|| panic!("no line for {path}:\n{out}"))
            .to_owned()
    };
    // Pages as their roles see them: timed (PASS or MISS against the target), or
    // missing until they are built; never a failed status.
    for path in ["/console/sign-in", "/console/account"] {
        let l = line(path);
        assert!(l.contains("PASS") || l.contains("MISS"), "{l}");
    }
    assert!(line("/console/account").contains(" planner "));
    for path in ["/console/my-day", "/console/admin/audit"] {
        let l = line(path);
        assert!(
            l.contains("PASS") || l.contains("MISS") || l.contains("missing"),
            "{l}"
        );
    }
    assert!(!out.contains("FAIL"), "{out}");
    assert!(
        out.contains("300 devices (5 with 40 days of telemetry), 6"),
        "60 active tickets and the shown devices' own: {out}"
    );
    assert!(out.lines().any(|l| l.starts_with("overall: ")), "{out}");
}
