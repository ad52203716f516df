//! Credential store, hash format and Mosquitto export tests.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use domain::DeviceId;

use super::*;

/// Written by the real `mosquitto_passwd -b -I 1000` (Mosquitto 2.0.11) for the
/// password `s3cret-Pa55`.
const MOSQUITTO_VECTOR: &str = "$7$1000$wJ1AoHJjQKY06chI$W2HQoxR/JWC79ytGF68v9sLO7+ZblOcxSEUZxz4l+1+m5rnLff08EG+9JTNwyENdqA6/RHIBTEw5A8zTN6nEZg==";

#[test]
fn verifies_a_hash_written_by_mosquitto_passwd() {
    let h = PasswordHash::parse(MOSQUITTO_VECTOR).unwrap();
    assert_eq!(h.iterations(), 1000);
    assert!(h.verify("s3cret-Pa55"));
    assert!(!h.verify("s3cret-Pa56"));
    assert!(!h.verify(""));
    assert_eq!(h.to_string(), MOSQUITTO_VECTOR, "round trip");
}

#[test]
fn new_hashes_have_the_mosquitto_shape_and_verify() {
    let h = PasswordHash::with_iterations("correct horse battery", 50);
    let text = h.to_string();
    let parts: Vec<&str> = text.split('$').collect();
    assert_eq!(parts[..3], ["", "7", "50"], "{text}");
    assert_eq!(STANDARD.decode(parts[3]).unwrap().len(), SALT_LEN);
    assert_eq!(STANDARD.decode(parts[4]).unwrap().len(), HASH_LEN);
    let parsed = PasswordHash::parse(&text).unwrap();
    assert!(parsed.verify("correct horse battery"));
    assert!(!parsed.verify("correct horse batter"));
    let again = PasswordHash::with_iterations("correct horse battery", 50);
    assert_ne!(again.to_string(), text, "a fresh salt every time");
    assert_eq!(PasswordHash::new("x").iterations(), HASH_ITERATIONS);
}

#[test]
fn malformed_hashes_are_errors_not_panics() {
    for bad in [
        "",
        "plain",
        "$6$abc$def",
        "$7$",
        "$7$1000$",
        "$7$1000$c2FsdA==",
        "$7$x$c2FsdA==$aGFzaA==",
        "$7$0$c2FsdA==$aGFzaA==",
        "$7$99999999999$c2FsdA==$aGFzaA==",
        "$7$1000$!!$aGFzaA==",
        "$7$1000$c2FsdA==$aGFzaA==",
        "$7$1000$$W2HQoxR/JWC79ytGF68v9sLO7+ZblOcxSEUZxz4l+1+m5rnLff08EG+9JTNwyENdqA6/RHIBTEw5A8zTN6nEZg==",
        &format!("{MOSQUITTO_VECTOR}$extra"),
    ] {
        let err = PasswordHash::parse(bad).unwrap_err();
        assert!(err.to_string().contains("password hash"), "{bad}: {err}");
    }
}

#[test]
fn generated_passwords_are_long_random_and_shell_safe() {
    let a = generate_password();
    let b = generate_password();
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
    assert!(a
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    check_supplied_password(&a).unwrap();
    assert!(check_supplied_password("short").is_err());
    assert!(check_supplied_password("sixteen chars ok\n").is_err());
    assert!(check_supplied_password(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
}

#[test]
fn the_store_issues_rotates_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::open_in(dir.path()).unwrap();
    let wm1 = DeviceId::parse("wm-1").unwrap();
    let (pw, info) = store.issue(&wm1, None, false).unwrap();
    assert_eq!(info.device_id, "wm-1");
    assert!(store.hash_of("wm-1").unwrap().unwrap().verify(&pw));
    assert!(store.hash_of("wm-2").unwrap().is_none());
    let err = store.issue(&wm1, None, false).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(store.hash_of("wm-1").unwrap().unwrap().verify(&pw), "kept");
    let (pw2, _) = store
        .issue(&wm1, Some("a supplied password"), true)
        .unwrap();
    assert_eq!(pw2, "a supplied password");
    let h = store.hash_of("wm-1").unwrap().unwrap();
    assert!(h.verify(&pw2) && !h.verify(&pw), "rotated");
    let wm2 = DeviceId::parse("wm-2").unwrap();
    assert!(store.issue(&wm2, Some("short"), false).is_err());
    store.issue(&wm2, None, false).unwrap();
    let ids: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|c| c.device_id)
        .collect();
    assert_eq!(ids, ["wm-1", "wm-2"]);
    store.revoke(&wm1).unwrap();
    assert!(store.hash_of("wm-1").unwrap().is_none());
    assert!(matches!(store.revoke(&wm1), Err(Error::NotFound(_))));
    // Reopened: the file holds them (a second connection, as the CLI beside `run`).
    let again = CredentialStore::open(store.path()).unwrap();
    assert_eq!(again.list().unwrap().len(), 1);
}

#[test]
fn a_corrupt_stored_hash_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::open_in(dir.path()).unwrap();
    store
        .with_conn(|c| {
            c.execute(
                "INSERT INTO device_credentials VALUES ('wm-9', 'plaintext', 0)",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    let err = store.hash_of("wm-9").unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    let err = export_mosquitto(&store, &dir.path().join("x"), "wm-9").unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
}

#[test]
fn the_export_restricts_each_device_to_its_own_topics() {
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::open_in(dir.path()).unwrap();
    for id in ["wm-1", "rf-2", "fixahead-ingest"] {
        store
            .issue(&DeviceId::parse(id).unwrap(), None, false)
            .unwrap();
    }
    let out = dir.path().join("mosquitto");
    let err = export_mosquitto(&store, &out, "nobody").unwrap_err();
    assert!(err.to_string().contains("devices add nobody"), "{err}");
    assert!(export_mosquitto(&store, &out, "bad:user").is_err());
    let export = export_mosquitto(&store, &out, "fixahead-ingest").unwrap();
    assert_eq!(export.devices, 2);
    let passwd = std::fs::read_to_string(&export.passwd).unwrap();
    let users: Vec<&str> = passwd
        .lines()
        .map(|l| l.split_once(':').unwrap().0)
        .collect();
    assert_eq!(users, ["fixahead-ingest", "rf-2", "wm-1"]);
    for line in passwd.lines() {
        let (user, hash) = line.split_once(':').unwrap();
        assert_eq!(
            PasswordHash::parse(hash).unwrap(),
            store.hash_of(user).unwrap().unwrap()
        );
    }
    let acl = std::fs::read_to_string(&export.acl).unwrap();
    assert!(acl.contains(
        "user wm-1\ntopic write fixahead/v1/wm-1/telemetry\ntopic write fixahead/v1/wm-1/fault\n"
    ));
    assert!(acl.contains(
        "user fixahead-ingest\ntopic read fixahead/v1/#\ntopic write fixahead/v1/+/cmd\n"
    ));
    let wm1_block = acl.split("user wm-1\n").nth(1).unwrap();
    let wm1_block = wm1_block.split("\n\n").next().unwrap();
    assert!(!wm1_block.contains("rf-2") && !wm1_block.contains('#') && !wm1_block.contains('+'));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for p in [&export.passwd, &export.acl] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
}
