//! The end-to-end scenario against Mosquitto, an external broker nobody here wrote.
//! Runs with FIXAHEAD_IT=1 (`.ci/run` installs the Debian package); skipped otherwise.
//! The helpers here start Mosquitto for the other extended-suite tests too (crash.rs).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{free_port, service_stderr, sigterm, trained_models, wait_for, Server};
use crate::pipeline::run_scenario;

/// A Mosquitto on 127.0.0.1:`port`, killed on drop. Its configuration (and, with
/// persistence, its database) lives in a temporary directory that outlives restarts.
pub(crate) struct Mosquitto {
    child: Option<Child>,
    conf: PathBuf,
    persistent: bool,
    /// The port it listens on, the same across restarts.
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// True when the extended suite runs (FIXAHEAD_IT=1): a missing service is then a
/// failure rather than a skip.
pub(crate) fn extended_suite() -> bool {
    std::env::var("FIXAHEAD_IT").is_ok_and(|v| v == "1")
}

fn mosquitto_binary() -> Option<String> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .find(|p| std::path::Path::new(p).exists())
    .map(|p| p.to_string())
}

impl Mosquitto {
    /// Starts Mosquitto without persistence and waits until it listens.
    pub(crate) async fn start(port: u16) -> Mosquitto {
        Self::start_with(
            port,
            "persistence false\nmax_inflight_messages 100\nmax_queued_messages 100000\n",
        )
        .await
    }

    /// Starts Mosquitto with persistence in its directory, as docs/operations.md asks
    /// for zero loss: sessions and queued QoS 1 messages survive a broker restart, and
    /// the queue holds everything published while fixahead is away.
    pub(crate) async fn start_persistent(port: u16) -> Mosquitto {
        Self::start_with(
            port,
            // autosave_interval: the database is also saved every second, not only on
            // a clean exit, so a SIGKILLed broker comes back with a recent snapshot.
            "persistence true\npersistence_location {dir}/\nautosave_interval 1\n\
             max_inflight_messages 100\nmax_queued_messages 1000000\n",
        )
        .await
    }

    /// Starts Mosquitto with a listener on 127.0.0.1:`port` followed by `settings`,
    /// raw configuration lines (`{dir}` becomes its directory); lines such as
    /// `certfile` apply to that listener, and further `listener` lines add others.
    /// Anonymous clients are allowed unless `settings` sets `allow_anonymous`.
    pub(crate) async fn start_with(port: u16, settings: &str) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        // Started as root, Mosquitto drops to the `mosquitto` user before it writes
        // its database: the directory must be writable for that user too.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let conf = dir.path().join("mosquitto.conf");
        let settings = settings.replace("{dir}", dir.path().to_str().unwrap());
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{}{settings}",
                if settings.contains("allow_anonymous") {
                    ""
                } else {
                    "allow_anonymous true\n"
                }
            ),
        )
        .unwrap();
        let mut m = Mosquitto {
            child: None,
            conf,
            persistent: settings.contains("persistence true"),
            port,
            dir,
        };
        m.spawn().await;
        m
    }

    async fn spawn(&mut self) {
        let bin = mosquitto_binary()
            .expect("FIXAHEAD_IT=1 but mosquitto is not installed (apt-get install mosquitto)");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(service_stderr())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let port = self.port;
        wait_for(Duration::from_secs(10), "mosquitto to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
    }

    /// Stops it: SIGTERM (Mosquitto saves its database on the way out), or SIGKILL
    /// (it keeps only its last autosave). Waits for the exit.
    pub(crate) fn stop(&mut self, kill: bool) {
        let mut child = self.child.take().expect("mosquitto running");
        if kill {
            let _ = child.kill();
        } else {
            sigterm(&child);
        }
        let _ = child.wait();
        if self.persistent {
            let db = self.dir.path().join("mosquitto.db");
            assert!(
                db.exists(),
                "mosquitto saved no database at {}: persistence is not working",
                db.display()
            );
        }
    }

    /// Starts it again on the same port, configuration and persistence directory.
    pub(crate) async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop mosquitto before restarting it");
        self.spawn().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_against_mosquitto() {
    if !extended_suite() {
        eprintln!(
            "skipped: end_to_end_against_mosquitto needs FIXAHEAD_IT=1 and the mosquitto package"
        );
        return;
    }
    let port = free_port();
    let _broker = Mosquitto::start(port).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{port}");
    let server = Server::start_with(
        dir.path(),
        Some(trained_models()),
        free_port(),
        &["--mqtt-url", &url],
    )
    .await;
    run_scenario(&server, port).await;
}
