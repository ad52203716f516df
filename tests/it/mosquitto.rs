//! The end-to-end scenario against Mosquitto, an external broker nobody here wrote.
//! Runs with FIXAHEAD_IT=1 (`.ci/run` installs the Debian package); skipped otherwise.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{free_port, trained_models, wait_for, Server};
use crate::pipeline::run_scenario;

struct Mosquitto {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn extended_suite() -> bool {
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

fn start_mosquitto(port: u16) -> Mosquitto {
    let bin = mosquitto_binary()
        .expect("FIXAHEAD_IT=1 but mosquitto is not installed (apt-get install mosquitto)");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 100\nmax_queued_messages 100000\n"),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("start mosquitto");
    Mosquitto { child, _dir: dir }
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
    let _broker = start_mosquitto(port);
    wait_for(Duration::from_secs(10), "mosquitto to listen", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
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
