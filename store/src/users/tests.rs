//! People, sessions and failed sign-ins.

use super::*;
use domain::Lang;

fn store(dir: &Path) -> UserStore {
    UserStore::open_in(dir).unwrap()
}

fn planner<'a>(login: &'a str) -> NewUser<'a> {
    NewUser {
        login,
        display_name: "李伟",
        role: Role::Planner,
        lang: Lang::Zh,
        time_zone: "Asia/Shanghai",
    }
}

#[test]
fn an_account_signs_in_with_its_generated_password_which_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let users = store(dir.path());
    let (password, user) = users.add(&planner("li.wei")).unwrap();
    assert_eq!(password.len(), 19);
    assert_eq!(user.display_name, "李伟");
    assert_eq!(user.role, Role::Planner);
    assert_eq!(
        users.sign_in("li.wei", &password, "127.0.0.1").unwrap(),
        SignIn::Accepted(user.clone())
    );
    assert_eq!(
        users
            .sign_in("li.wei", "wrong password", "127.0.0.1")
            .unwrap(),
        SignIn::Refused
    );
    assert_eq!(
        users.sign_in("nobody", &password, "127.0.0.1").unwrap(),
        SignIn::Refused
    );
    let raw = std::fs::read(dir.path().join(crate::access::KEYS_DB)).unwrap();
    assert!(!raw
        .windows(password.len())
        .any(|w| w == password.as_bytes()));
    assert!(matches!(
        users.add(&planner("li.wei")),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn accounts_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let users = store(dir.path());
    for login in ["", "Li", "-x", "a b", "<script>", &"a".repeat(65)] {
        assert!(
            matches!(users.add(&planner(login)), Err(Error::Invalid(_))),
            "{login:?}"
        );
    }
    let bad = [
        NewUser {
            role: Role::Integration,
            ..planner("a")
        },
        NewUser {
            time_zone: "Mars/Olympus",
            ..planner("a")
        },
        NewUser {
            display_name: "a\u{7}b",
            ..planner("a")
        },
    ];
    for new in bad {
        assert!(matches!(users.add(&new), Err(Error::Invalid(_))), "{new:?}");
    }
    let (_, user) = users
        .add(&NewUser {
            display_name: "",
            ..planner("x1")
        })
        .unwrap();
    assert_eq!(user.display_name, "x1");
}

#[test]
fn sessions_end_on_sign_out_disable_reset_and_role_change() {
    let dir = tempfile::tempdir().unwrap();
    let users = store(dir.path());
    let (_, user) = users.add(&planner("p1")).unwrap();
    let new = users.start_session(&user, "10.0.0.1").unwrap();
    let s = users.session(&new.token).unwrap().unwrap();
    assert_eq!(s.user, user);
    assert_eq!(s.csrf, new.session.csrf);
    assert_ne!(s.csrf, new.token);
    assert_eq!(users.session("not a token").unwrap(), None);

    users.end_session(&new.token).unwrap();
    assert_eq!(users.session(&new.token).unwrap(), None);

    let a = users.start_session(&user, "10.0.0.1").unwrap();
    users.set_disabled(user.id, true).unwrap();
    assert_eq!(users.session(&a.token).unwrap(), None);
    let disabled = users.get(user.id).unwrap().unwrap();
    // A disabled account's sessions are gone, and a new one is refused too.
    let b = users.start_session(&disabled, "10.0.0.1").unwrap();
    assert_eq!(users.session(&b.token).unwrap(), None);
    users.set_disabled(user.id, false).unwrap();

    let c = users.start_session(&user, "10.0.0.1").unwrap();
    let (password, _) = users.reset_password(user.id).unwrap();
    assert_eq!(users.session(&c.token).unwrap(), None);
    assert!(matches!(
        users.sign_in("p1", &password, "a").unwrap(),
        SignIn::Accepted(_)
    ));

    let d = users.start_session(&user, "10.0.0.1").unwrap();
    users
        .update(user.id, "P One", Role::Planner, Lang::En, "UTC")
        .unwrap();
    assert!(
        users.session(&d.token).unwrap().is_some(),
        "same role keeps sessions"
    );
    users
        .update(user.id, "P One", Role::Engineer, Lang::En, "UTC")
        .unwrap();
    assert_eq!(users.session(&d.token).unwrap(), None);
}

#[test]
fn an_idle_or_old_session_has_ended() {
    let dir = tempfile::tempdir().unwrap();
    let users = store(dir.path()).with_policies(
        SessionPolicy {
            idle_ms: 1_000,
            max_age_ms: 10_000,
        },
        SignInPolicy::default(),
    );
    let (_, user) = users.add(&planner("p1")).unwrap();
    let idle = users.start_session(&user, "a").unwrap();
    let old = users.start_session(&user, "a").unwrap();
    let fresh = users.start_session(&user, "a").unwrap();
    users
        .with_conn(|c| {
            c.execute(
                "UPDATE sessions SET last_seen = last_seen - 2000 WHERE token_hash = ?1",
                [token_hash(&idle.token)],
            )?;
            c.execute(
                "UPDATE sessions SET created_at = created_at - 20000 WHERE token_hash = ?1",
                [token_hash(&old.token)],
            )?;
            Ok(())
        })
        .unwrap();
    assert_eq!(users.prune_sessions().unwrap(), 2);
    assert_eq!(users.session(&idle.token).unwrap(), None);
    assert_eq!(users.session(&old.token).unwrap(), None);
    assert!(users.session(&fresh.token).unwrap().is_some());
    assert_eq!(users.session_count(user.id).unwrap(), 1);
}

#[test]
fn failed_sign_ins_are_throttled_per_login_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let users = store(dir.path()).with_policies(
        SessionPolicy::default(),
        SignInPolicy {
            per_login: 3,
            per_address: 5,
            window_ms: 60_000,
        },
    );
    let (password, _) = users.add(&planner("p1")).unwrap();
    let (other, _) = users.add(&planner("p2")).unwrap();
    for _ in 0..3 {
        assert_eq!(
            users.sign_in("p1", "nope", "1.1.1.1").unwrap(),
            SignIn::Refused
        );
    }
    // The right password is not even checked now, from any address.
    assert!(matches!(
        users.sign_in("p1", &password, "2.2.2.2").unwrap(),
        SignIn::Throttled { .. }
    ));
    // Another login from the first address still works (2 of its 5 are left)...
    assert!(matches!(
        users.sign_in("p2", &other, "1.1.1.1").unwrap(),
        SignIn::Accepted(_)
    ));
    // ...until the address has failed five times, whatever the logins (a success
    // does not clear the count).
    for login in ["x", "y"] {
        assert_eq!(
            users.sign_in(login, "nope", "1.1.1.1").unwrap(),
            SignIn::Refused
        );
    }
    let SignIn::Throttled { until } = users.sign_in("p2", &other, "1.1.1.1").unwrap() else {
        panic!("the address is over its limit");
    };
    assert!(until.millis() > crate::now().millis());
    assert!(matches!(
        users.sign_in("p2", &other, "3.3.3.3").unwrap(),
        SignIn::Accepted(_)
    ));
    // Failures leave the window.
    users
        .with_conn(|c| {
            c.execute("UPDATE sign_in_failures SET at = at - 120000", [])?;
            Ok(())
        })
        .unwrap();
    assert!(matches!(
        users.sign_in("p1", &password, "1.1.1.1").unwrap(),
        SignIn::Accepted(_)
    ));
}

#[test]
fn a_disabled_account_with_the_right_password_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let users = store(dir.path());
    let (password, user) = users.add(&planner("p1")).unwrap();
    users.set_disabled(user.id, true).unwrap();
    assert_eq!(
        users.sign_in("p1", &password, "a").unwrap(),
        SignIn::Disabled
    );
    assert_eq!(users.sign_in("p1", "wrong", "a").unwrap(), SignIn::Refused);
}

#[test]
fn a_person_changes_their_own_password_with_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let users = store(dir.path());
    let (password, user) = users.add(&planner("p1")).unwrap();
    assert!(matches!(
        users.change_password(user.id, "wrong", "a new long password"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        users.change_password(user.id, &password, "short"),
        Err(Error::Invalid(_))
    ));
    users
        .change_password(user.id, &password, "a new long password")
        .unwrap();
    assert!(matches!(
        users.sign_in("p1", "a new long password", "a").unwrap(),
        SignIn::Accepted(_)
    ));
    assert_eq!(
        users.sign_in("p1", &password, "a").unwrap(),
        SignIn::Refused
    );
}

#[test]
fn a_version_1_key_file_is_upgraded_and_its_audit_records_are_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(crate::access::KEYS_DB);
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE api_keys (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, role TEXT NOT NULL,
                 name TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER);
             CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, key_id INTEGER NOT NULL,
                 key_name TEXT NOT NULL, role TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
                 status INTEGER NOT NULL, summary TEXT NOT NULL);
             INSERT INTO audit VALUES (1, 5, 7, 'desk', 'planner', 'POST', '/x', 200, 'old');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let access = crate::access::AccessStore::open(&path).unwrap();
    let log = access.audit_log(None, 10).unwrap();
    assert_eq!(log[0].record.principal, crate::access::PrincipalKind::Key);
    assert_eq!(log[0].record.key_name, "desk");
    let users = UserStore::open(&path).unwrap();
    users.add(&planner("p1")).unwrap();
    let c = Connection::open(&path).unwrap();
    assert_eq!(sqlite::user_version(&c).unwrap(), 3);
}

#[test]
fn generated_passwords_use_the_unambiguous_alphabet() {
    for _ in 0..100 {
        let p = generate_password();
        assert_eq!(p.matches('-').count(), 3);
        assert!(p
            .bytes()
            .filter(|b| *b != b'-')
            .all(|b| PASSWORD_ALPHABET.contains(&b)));
    }
    assert_ne!(generate_password(), generate_password());
}
