//! The service console as a user's browser meets it, through the real binary: served
//! by `fixahead run` on the HTTP port, over HTTPS with `--http-tls-cert` and
//! `--http-tls-key` (cookies then Secure), an account from `fixahead users add`
//! signing in with the form. The pages themselves are tested in the console crate;
//! the browser scenarios in `browser`.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::harness::{bin, free_port, run_cli, service_stderr, sigterm, wait_for};

/// A self-signed certificate for 127.0.0.1 and localhost: (cert file, key file, PEM).
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("console.pem"), dir.join("console-key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.pem())
}

/// The value of cookie `name` among a response's `Set-Cookie` headers, with the header.
fn cookie(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v
                .split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
                .map(|(_, v)| v.to_owned())
                .unwrap_or_default();
            (value, v.to_owned())
        })
}

#[tokio::test]
async fn the_console_signs_a_person_in_over_https_with_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password = run_cli(&[
        "users",
        "add",
        "li.wei",
        "--role",
        "planner",
        "--display-name",
        "李伟",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let password = password.trim().to_owned();
    let (cert, key, pem) = self_signed(dir.path());
    let port = free_port();
    let mut child = Command::new(bin())
        .arg("run")
        .arg("--data-dir")
        .arg(&data)
        .arg("--mqtt-listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--http-tls-cert")
        .arg(&cert)
        .arg("--http-tls-key")
        .arg(&key)
        .arg("--model-dir")
        .arg(dir.path().join("no-models"))
        .stdout(Stdio::null())
        .stderr(service_stderr())
        .spawn()
        .expect("spawn fixahead run");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    wait_for(Duration::from_secs(60), "HTTPS /health", || {
        let (client, url) = (client.clone(), format!("{base}/health"));
        async move {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;

    // Plain HTTP on the HTTPS port gets nowhere.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP must not be served on the TLS port"
    );

    let root = client.get(format!("{base}/")).send().await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()[LOCATION], "/console/");

    let form = client
        .get(format!("{base}/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let (token, header) = cookie(&form, "fixahead_sign_in").expect("the form's token cookie");
    assert!(header.contains("Secure"), "{header}");
    let signed_in = client
        .post(format!("{base}/console/sign-in"))
        .header(COOKIE, format!("fixahead_sign_in={token}"))
        .form(&[
            ("login", "li.wei"),
            ("password", password.as_str()),
            ("csrf", token.as_str()),
            ("next", "/console/account"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let (session, header) = cookie(&signed_in, "fixahead_session").expect("a session cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(header.contains(attribute), "{header}");
    }
    let account = client
        .get(format!("{base}/console/account"))
        .header(COOKIE, format!("fixahead_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);
    assert!(account.text().await.unwrap().contains("李伟"));

    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "clean stop: {status}");
}

#[test]
fn a_certificate_without_its_key_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = self_signed(dir.path());
    let out = Command::new(bin())
        .arg("run")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--http-tls-cert")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--http-tls-key"), "{stderr}");
}
