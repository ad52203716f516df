//! `fixahead demo` as a new user starts it: a temporary data directory, free ports,
//! and what it prints read back (the console's address and a sign-in per role).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::{bin, free_port, service_stderr, trained_models};

/// One of the sign-ins the demo prints: `  planner       planner    PASSWORD`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Account {
    pub(crate) role: String,
    pub(crate) login: String,
    pub(crate) password: String,
}

/// A running `fixahead demo`, killed on drop.
pub(crate) struct Demo {
    child: Option<Child>,
    /// The printed `Service console: URL`.
    pub(crate) console_url: String,
    /// `http://host:port` of that URL.
    pub(crate) origin: String,
    /// The printed sign-ins, in order (admin, planner, engineer).
    pub(crate) accounts: Vec<Account>,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts `fixahead demo` on free ports with a small fleet, on the models the suite
    /// trains once (the demo would otherwise train its own), and reads its sign-ins.
    pub(crate) fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin())
            .arg("demo")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--model-dir")
            .arg(trained_models())
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--mqtt-listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .args(["--devices", "6"])
            // A bound for a demo whose test was killed before it could stop it.
            .args(["--duration", "1800"])
            .stdout(Stdio::piped())
            .stderr(service_stderr())
            .spawn()
            .expect("spawn fixahead demo");
        let lines = read_lines(child.stdout.take().expect("demo stdout"));
        let mut printed = Vec::new();
        let parsed = loop {
            match lines.recv_timeout(Duration::from_secs(180)) {
                Ok(line) => {
                    printed.push(line);
                    if let Some(p) = parse_console(&printed) {
                        break p;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "fixahead demo printed no console address and sign-ins ({e}); it printed:\n{}",
                        printed.join("\n")
                    );
                }
            }
        };
        let (console_url, accounts) = parsed;
        let origin = console_url
            .split_once("/console")
            .map(|(o, _)| o.to_owned())
            .unwrap_or_else(|| panic!("the console address {console_url} is not under /console"));
        Demo {
            child: Some(child),
            console_url,
            origin,
            accounts,
            _dir: dir,
        }
    }

    /// The printed sign-in of `role`.
    pub(crate) fn account(&self, role: &str) -> &Account {
        self.accounts
            .iter()
            .find(|a| a.role == role)
            .unwrap_or_else(|| panic!("the demo printed no sign-in for {role}"))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads `out` line by line on a thread, to the end: the demo keeps printing status
/// lines, and a full pipe would stop it. Lines are echoed with `TEST_LOG` set.
fn read_lines(out: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let echo = std::env::var_os("TEST_LOG").is_some();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("demo: {line}");
            }
            // The receiver stops listening once it has what it needs; keep draining.
            let _ = tx.send(line);
        }
    });
    rx
}

/// The console's address and the three sign-ins, once the demo has printed them:
///
/// ```text
/// Service console: http://127.0.0.1:8080/console/
///   sign in as (new at every demo start):
///   admin         admin      xxxx-xxxx-xxxx-xxxx
///   planner       planner    xxxx-xxxx-xxxx-xxxx
///   engineer      engineer   xxxx-xxxx-xxxx-xxxx
/// ```
fn parse_console(lines: &[String]) -> Option<(String, Vec<Account>)> {
    let at = lines
        .iter()
        .position(|l| l.starts_with("Service console: "))?;
    let url = lines[at]["Service console: ".len()..].trim().to_owned();
    let accounts: Vec<Account> = lines[at + 1..]
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 3 && ["admin", "planner", "engineer"].contains(&w[0]))
        .map(|w| Account {
            role: w[0].to_owned(),
            login: w[1].to_owned(),
            password: w[2].to_owned(),
        })
        .collect();
    (accounts.len() == 3).then_some((url, accounts))
}

#[test]
fn the_demos_console_lines_are_parsed() {
    let printed: Vec<String> =
        "API keys (new at every demo start; send as Authorization: Bearer <key>):
  admin         fxa_abc
  planner       fxa_def

Service console: http://127.0.0.1:4321/console/
  sign in as (new at every demo start):
  admin         admin      aaaa-bbbb-cccc-dddd
  planner       planner    eeee-ffff-gggg-hhhh"
            .lines()
            .map(str::to_owned)
            .collect();
    assert_eq!(
        parse_console(&printed),
        None,
        "the engineer is still missing"
    );
    let mut all = printed;
    all.push("  engineer      engineer   iiii-jjjj-kkkk-llll".into());
    let (url, accounts) = parse_console(&all).unwrap();
    assert_eq!(url, "http://127.0.0.1:4321/console/");
    assert_eq!(
        accounts[1],
        Account {
            role: "planner".into(),
            login: "planner".into(),
            password: "eeee-ffff-gggg-hhhh".into()
        }
    );
    assert_eq!(accounts[2].login, "engineer");
}
