//! Issue 19's browser scenario: a planner's morning and an engineer's visit, with the
//! mouse, in English and Chinese, at a desk and on a phone, over `fixahead run` with
//! trained models and a simulated washer wearing out.
//!
//! 1. The planner (English, desk) has the queue open when the simulator starts; the
//!    washer's ticket appears in it without a reload. The planner opens it,
//!    acknowledges it and schedules it to the engineer for tomorrow morning; the
//!    header's switch shows the same ticket in Chinese.
//! 2. The engineer (Chinese, phone) finds it under "my day", starts work, runs a
//!    self-test on the device page and sees the answer, and resolves the ticket as a
//!    confirmed failure with the part replaced. Another engineer's ticket is a 403
//!    page, and there are no admin pages.
//! 3. The planner's models page counts the confirmed failure; the fleet page renders.
//!
//! Every action is checked twice: on the page, and through the JSON API (status,
//! assignment, outcome, the person's name in the ticket log).
//!
//! Elements are found by the pages' paths, their forms' actions and field names and a
//! few ids and classes; visible text is checked only where the language is what is
//! tested. docs/console.md, "Browser tests and what they rely on", lists them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{
    bin, free_port, now_ms, raised_fault, run_cli, service_stderr, trained_models, Publisher,
    Server, ADMIN_KEY,
};

use super::driver::{Browser, ChromeDriver, Window, STEP};
use super::{screenshot_dir, tools_or_skip};

/// The washer the simulator wears out (its first device).
const FAILING: &str = "wm-0001";
/// A washer with a critical fault whose ticket goes to the other engineer.
const ELSEWHERE: &str = "wm-elsewhere";

/// The error page's heading for 403 in Chinese (console::i18n `error_forbidden`).
const FORBIDDEN_ZH: &str = "您没有执行此操作的权限";

const DAY_MS: i64 = 86_400_000;
/// Asia/Shanghai's offset from UTC (no daylight saving time).
const SHANGHAI_MS: i64 = 8 * 3_600_000;

/// A console account made with `fixahead users add`.
struct Person {
    login: &'static str,
    display_name: &'static str,
    password: String,
}

impl Person {
    fn add(
        data: &Path,
        login: &'static str,
        role: &str,
        display_name: &'static str,
        lang: &str,
    ) -> Person {
        let password = run_cli(&[
            "users",
            "add",
            login,
            "--role",
            role,
            "--display-name",
            display_name,
            "--lang",
            lang,
            "--time-zone",
            "Asia/Shanghai",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        Person {
            login,
            display_name,
            password: password.trim().to_owned(),
        }
    }

    /// How the ticket log names them.
    fn actor(&self) -> String {
        format!("{} ({})", self.display_name, self.login)
    }
}

/// `fixahead simulate`: one washer with a component already wearing out, from three
/// weeks ago at 20,000x (a washer reports a few programs a week), answering commands;
/// killed on drop.
struct Simulator(Child);

impl Simulator {
    fn start(mqtt_port: u16) -> Simulator {
        let start = (now_ms() - 21 * DAY_MS).to_string();
        let child = Command::new(bin())
            .args(["simulate", "--mqtt-url"])
            .arg(format!("mqtt://127.0.0.1:{mqtt_port}"))
            .args(["--devices", "1", "--kinds", "washer"])
            .args(["--early-degradation", "1", "--failure-rate", "0"])
            .args(["--speed", "20000", "--start", &start])
            .args(["--duration", "900", "--seed", "5"])
            .stdout(Stdio::null())
            .stderr(service_stderr())
            .spawn()
            .expect("spawn fixahead simulate");
        Simulator(child)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first active ticket of `device` (JSON API), if there is one.
async fn active_ticket(server: &Server, device: &str) -> Option<Value> {
    let (status, body) = server
        .get(&format!("/api/v1/tickets?device_id={device}&status=active"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["tickets"].as_array()?.first().cloned()
}

/// Waits (up to `timeout`) for an active ticket of `device`; returns it.
async fn wait_for_ticket(server: &Server, device: &str, timeout: Duration) -> Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(t) = active_ticket(server, device).await {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ticket for {device} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Ticket `id` as the JSON API shows it.
async fn ticket(server: &Server, id: i64) -> Value {
    let (status, body) = server.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Whether ticket `t`'s log has an entry `action` by `actor`.
fn logged(t: &Value, action: &str, actor: &str) -> bool {
    t["log"].as_array().is_some_and(|log| {
        log.iter()
            .any(|e| e["action"] == action && e["actor"] == actor)
    })
}

/// Epoch milliseconds of an RFC 3339 time in the API's JSON.
fn millis(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp_millis()
}

/// Tomorrow at `hour`:00 in Shanghai: the `datetime-local` value and the instant.
fn tomorrow_at(hour: i64) -> (String, i64) {
    let local_day = (now_ms() + SHANGHAI_MS).div_euclid(DAY_MS) + 1;
    let local = local_day * DAY_MS + hour * 3_600_000;
    let date = chrono::DateTime::from_timestamp_millis(local)
        .expect("a date")
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    (date, local - SHANGHAI_MS)
}

/// Waits until ticket `id`'s page shows `status` (after an action: the page is
/// reloaded, or its `<main>` replaced by console.js).
async fn wait_status(b: &Browser, id: i64, status: &str) {
    b.wait_for_path("the ticket", |p| p == format!("/console/tickets/{id}"))
        .await;
    b.wait(&format!(r#"main .ticket-head .badge.status-{status}"#))
        .await;
}

/// Submits ticket `id`'s one-button action `action` (`acknowledge`, `start`) and waits
/// for the ticket to be `status`.
async fn act(b: &Browser, id: i64, action: &str, status: &str) {
    b.click(&format!(
        r#"form[action="/console/tickets/{id}/{action}"] button[type="submit"]"#
    ))
    .await;
    wait_status(b, id, status).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planners_morning_and_an_engineers_visit() {
    let name = "browser::workday::a_planners_morning_and_an_engineers_visit";
    let Some(tools) = tools_or_skip(name) else {
        return;
    };
    let shots = screenshot_dir();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let planner = Person::add(&data, "li.wei", "planner", "Li Wei 李伟", "en");
    let engineer = Person::add(&data, "wang.fang", "engineer", "王芳 Wang Fang", "zh");
    let other = Person::add(&data, "zhao.lei", "engineer", "赵磊 Zhao Lei", "zh");
    let config = dir.path().join("fixahead.toml");
    // Fleet figures and normal ranges refreshed every few seconds, not every minute or
    // ten, so the fleet and device pages show the washers while the test runs.
    std::fs::write(
        &config,
        "[commands]\ntimeout_s = 60\n\n[fleet]\nrefresh_interval = \"2s\"\n\n[diagnosis]\nrefresh_interval_s = 2\n",
    )
    .unwrap();
    let server = Server::start_with(
        &data,
        Some(trained_models()),
        free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let origin = format!("http://{}", server.http);

    // Another engineer's ticket: a critical fault code on another washer.
    let mut mqtt = Publisher::connect(server.mqtt_port, "workday-elsewhere").await;
    mqtt.publish(
        &format!("fixahead/v1/{ELSEWHERE}/fault"),
        raised_fault(1, now_ms() - 60_000, "E23"),
    )
    .await;
    mqtt.flush().await;
    let elsewhere = wait_for_ticket(&server, ELSEWHERE, Duration::from_secs(60)).await["id"]
        .as_i64()
        .unwrap();
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{elsewhere}/assignment"),
            Some(ADMIN_KEY),
            Some(&json!({"engineer": other.login})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let driver = ChromeDriver::start(&tools).await;

    // 1. The planner's morning, at a desk, in English: the queue is open before the
    // washer has a ticket.
    let desk = driver.open(&origin, Window::DESK, &shots).await;
    desk.sign_in(planner.login, &planner.password).await;
    desk.goto("/console/").await;
    desk.wait("#queue-results").await;
    assert!(active_ticket(&server, FAILING).await.is_none());
    let _simulator = Simulator::start(server.mqtt_port);
    let raised = wait_for_ticket(&server, FAILING, Duration::from_secs(300)).await;
    let id = raised["id"].as_i64().unwrap();
    let component = raised["component"].as_str().unwrap().to_owned();
    let link = format!(r#"#queue-results a[href="/console/tickets/{id}"]"#);
    // Live: the page that was open shows it, no reload.
    desk.wait_within(&link, Duration::from_secs(30)).await;
    desk.screenshot("queue").await;

    desk.click(&link).await;
    desk.wait_for_path("the ticket", |p| p == format!("/console/tickets/{id}"))
        .await;
    act(&desk, id, "acknowledge", "acknowledged").await;
    let t = ticket(&server, id).await;
    assert_eq!(t["status"], "acknowledged");
    assert!(logged(&t, "status_changed", &planner.actor()), "{t:#}");

    // Scheduled to the engineer for tomorrow 09:00-11:00, Shanghai time.
    let (from, from_ms) = tomorrow_at(9);
    let (to, to_ms) = tomorrow_at(11);
    let form = format!(r#"form[action="/console/tickets/{id}/schedule"]"#);
    desk.reveal(&form).await;
    desk.select(
        &format!(r#"{form} select[name="engineer"]"#),
        engineer.login,
    )
    .await;
    desk.set_value(&format!(r#"{form} [name="window_start"]"#), &from)
        .await;
    desk.set_value(&format!(r#"{form} [name="window_end"]"#), &to)
        .await;
    desk.click(&format!(r#"{form} button[type="submit"]"#))
        .await;
    wait_status(&desk, id, "scheduled").await;
    let t = ticket(&server, id).await;
    assert_eq!(t["assignment"]["engineer"], engineer.login, "{t:#}");
    assert_eq!(millis(&t["assignment"]["window_start"]), from_ms, "{t:#}");
    assert_eq!(millis(&t["assignment"]["window_end"]), to_ms, "{t:#}");
    assert!(logged(&t, "assigned", &planner.actor()), "{t:#}");
    desk.scroll_to("main h1").await;
    desk.screenshot("ticket").await;

    // The same ticket in Chinese, with the catalogue's Chinese component title.
    desk.switch_language().await;
    desk.wait(r#"html[lang="zh-Hans"]"#).await;
    assert_eq!(
        desk.path().await.split('?').next(),
        Some(format!("/console/tickets/{id}").as_str()),
        "the switch stays on the ticket"
    );
    desk.wait("main .ticket").await;
    let profiles = domain::ProfileSet::builtin();
    let washer = profiles.get("washer").expect("the washer profile");
    let part = washer
        .component(&component)
        .unwrap_or_else(|| panic!("the washer has no component {component}"));
    let title_zh = part.title_in(domain::Lang::Zh);
    let page = desk.page_text().await;
    assert!(page.contains(title_zh), "{title_zh} on the page:\n{page}");
    desk.scroll_to("main h1").await;
    desk.screenshot("ticket-zh").await;
    desk.switch_language().await;
    desk.wait(r#"html[lang="en"]"#).await;

    // 2. The engineer's visit, on a phone, in Chinese.
    let phone = driver.open(&origin, Window::PHONE, &shots).await;
    phone.sign_in(engineer.login, &engineer.password).await;
    assert!(
        !phone.exists(r#"header nav a[href="/console/admin"]"#).await,
        "an engineer has no admin link"
    );
    phone.click(r#"header nav a[href="/console/my-day"]"#).await;
    let visit = format!(r#"main .day a[href="/console/tickets/{id}"]"#);
    phone.wait(&visit).await;
    assert_eq!(phone.lang().await, "zh-Hans");
    phone.assert_fits_the_window("my day").await;
    phone.screenshot("my-day-phone").await;
    phone.click(&visit).await;
    phone
        .wait_for_path("the ticket", |p| p == format!("/console/tickets/{id}"))
        .await;
    phone.assert_fits_the_window("the ticket").await;
    act(&phone, id, "start", "in_progress").await;

    // A self-test from the device page; the device's answer shows when it comes.
    phone
        .click(&format!(
            r#"main .ticket a[href="/console/devices/{FAILING}"]"#
        ))
        .await;
    phone
        .wait_for_path("the device", |p| p == format!("/console/devices/{FAILING}"))
        .await;
    phone.assert_fits_the_window("the device").await;
    phone
        .click(&format!(
            r#"form[action="/console/devices/{FAILING}/self-test"] button[type="submit"]"#
        ))
        .await;
    // The page polls while the command is pending (console.js); a reload shows it too.
    phone
        .wait_reloading(
            "#commands article.command .badge.ok",
            Duration::from_secs(90),
        )
        .await;
    phone.scroll_to("#commands").await;
    phone.screenshot("device-self-test-phone").await;
    let (_, diagnosis) = server
        .get(&format!("/api/v1/devices/{FAILING}/diagnosis"))
        .await;
    let command = &diagnosis["recent_commands"][0];
    assert_eq!(command["status"], "answered", "{diagnosis:#}");
    assert!(
        command["requested_by"]
            .as_str()
            .is_some_and(|r| r.contains(engineer.login)),
        "{command:#}"
    );

    // Resolved: a confirmed failure, the component's first part replaced.
    let part_name = part
        .parts
        .first()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| panic!("{component} has no parts in the catalogue"));
    phone.goto(&format!("/console/tickets/{id}")).await;
    let form = format!(r#"form[action="/console/tickets/{id}/resolve"]"#);
    phone.reveal(&form).await;
    phone
        .click(&format!(
            r#"{form} input[name="kind"][value="confirmed_failure"]"#
        ))
        .await;
    phone
        .select(&format!(r#"{form} select[name="component"]"#), &component)
        .await;
    let part_box = format!(r#"{form} input[type="checkbox"][name="parts"][value="{part_name}"]"#);
    phone.reveal(&part_box).await;
    phone.click(&part_box).await;
    phone
        .click(&format!(r#"{form} button[type="submit"]"#))
        .await;
    wait_status(&phone, id, "resolved").await;
    let t = ticket(&server, id).await;
    assert_eq!(t["outcome"]["kind"], "confirmed_failure", "{t:#}");
    assert_eq!(t["outcome"]["parts_replaced"], json!([part_name]), "{t:#}");
    assert!(logged(&t, "outcome_recorded", &engineer.actor()), "{t:#}");

    // Another engineer's ticket: the 403 page; no admin pages either.
    phone.goto(&format!("/console/tickets/{elsewhere}")).await;
    assert_eq!(phone.text("main h1").await, FORBIDDEN_ZH);
    assert_eq!(
        phone
            .fetch(&format!("/console/tickets/{elsewhere}"))
            .await
            .0,
        403
    );
    assert_eq!(phone.fetch("/console/admin").await.0, 403);
    phone.close().await;

    // 3. The planner's models page counts the confirmed failure; the fleet page.
    desk.goto("/console/models").await;
    // The one failure confirmed (the other washer's ticket is still open), for the
    // fleet and for washers.
    desk.wait_reloading(r#"#fleet[data-confirmed="1"]"#, STEP)
        .await;
    desk.wait(r#"#type-washer[data-confirmed]"#).await;
    desk.screenshot("models").await;
    desk.goto("/console/fleet").await;
    desk.wait("#alarms").await;
    desk.wait_reloading("#failures table", STEP).await;
    desk.screenshot("fleet").await;
    desk.close().await;
}
