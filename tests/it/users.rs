//! `fixahead users`: accounts for the console, from the command line.

use std::process::Command;

use crate::harness::{bin, run_cli};

#[test]
fn users_are_added_listed_reset_disabled_and_enabled_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let password = run_cli(&[
        "users",
        "add",
        "li.wei",
        "--role",
        "planner",
        "--display-name",
        "李伟",
        "--lang",
        "zh",
        "--time-zone",
        "Asia/Shanghai",
        "--data-dir",
        data,
    ]);
    // Alone on stdout: four groups of four, one line.
    assert_eq!(password.trim().len(), 19, "{password:?}");
    assert_eq!(password.lines().count(), 1);

    let listed = run_cli(&["users", "list", "--data-dir", data]);
    let fields: Vec<&str> = listed.trim().split('\t').collect();
    assert_eq!(
        fields[1..6],
        ["li.wei", "planner", "zh", "Asia/Shanghai", "enabled"]
    );
    assert_eq!(fields[6], "李伟");
    assert!(!listed.contains(password.trim()));

    let again = run_cli(&["users", "reset-password", "li.wei", "--data-dir", data]);
    assert_eq!(again.trim().len(), 19);
    assert_ne!(again, password);

    run_cli(&["users", "disable", "li.wei", "--data-dir", data]);
    assert!(run_cli(&["users", "list", "--data-dir", data]).contains("\tdisabled "));
    run_cli(&["users", "enable", "li.wei", "--data-dir", data]);
    assert!(run_cli(&["users", "list", "--data-dir", data]).contains("\tenabled\t"));

    // Refused with a reason, nothing on stdout.
    for args in [
        &["users", "add", "li.wei", "--role", "planner"][..],
        &["users", "add", "bot", "--role", "integration"],
        &["users", "add", "Bad Login", "--role", "planner"],
        &[
            "users",
            "add",
            "x",
            "--role",
            "planner",
            "--time-zone",
            "Mars/Base",
        ],
        &["users", "add", "x", "--role", "planner", "--lang", "fr"],
        &["users", "disable", "nobody"],
    ] {
        let out = Command::new(bin())
            .args(args)
            .args(["--data-dir", data])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}
