//! Issue 20's pages in a real browser, in English and Chinese, at a desk and on a
//! phone, over `fixahead demo` (its simulated service organisation running): a
//! planner takes a customer's call on the call-centre form and lands on the ticket
//! with the report and its pre-judgement; the KPI page draws its figures and charts in
//! both languages; the engineers and alerts pages render; on a phone none of them
//! scrolls sideways. Screenshots of each go to the suite's screenshot directory.

use super::demo::Demo;
use super::driver::{ChromeDriver, Window};
use super::{screenshot_dir, tools_or_skip};

#[tokio::test(flavor = "multi_thread")]
async fn a_call_is_taken_and_the_service_pages_render_in_both_languages() {
    let Some(tools) = tools_or_skip(
        "browser::service::a_call_is_taken_and_the_service_pages_render_in_both_languages",
    ) else {
        return;
    };
    let shots = screenshot_dir();
    let demo = Demo::start();
    let driver = ChromeDriver::start(&tools).await;
    let desk = driver.open(&demo.origin, Window::DESK, &shots).await;
    let planner = demo.account("planner");
    desk.sign_in(&planner.login, &planner.password).await;

    // The call: a leak at the demo's first washer, with markup in the customer's words.
    desk.goto("/console/report").await;
    assert_eq!(desk.lang().await, "en");
    desk.select(r#"select[name="find"]"#, "device_id").await;
    desk.fill(r#"input[name="reference"]"#, "wm-0001").await;
    desk.select(r#"select[name="channel"]"#, "phone").await;
    desk.select(r#"select[name="category"]"#, "leak").await;
    desk.fill(r#"textarea[name="words"]"#, "水漏到地板上 <b>bold?</b>")
        .await;
    desk.click(r#"form[action$="/report"] button[type="submit"]"#)
        .await;
    let answer = desk.text("#answer h2").await;
    assert!(
        answer == "A new ticket was opened."
            || answer == "The report joined the device's active ticket.",
        "{answer}"
    );
    desk.screenshot("service-report-answer-en").await;
    // The ticket carries the report.
    desk.click(r#"#answer a[href*="/console/tickets/"]"#).await;
    desk.wait_for_path("the ticket page", |p| p.starts_with("/console/tickets/"))
        .await;
    // The customer's words are shown as text, their markup included, never as markup.
    let text = desk.page_text().await;
    assert!(text.contains("水漏到地板上 <b>bold?</b>"), "{text}");
    desk.screenshot("service-ticket-reports-en").await;

    // The KPI page, then the same in Chinese.
    desk.goto("/console/kpis").await;
    desk.wait("#kpi-opened").await;
    // The charts are drawn only once the period has answered tickets, which depends
    // on how far the demo's world got (console/src/kpis/tests.rs checks them).
    desk.screenshot("service-kpis-en").await;
    desk.switch_language().await;
    desk.wait_reloading(
        "html[lang=\"zh-Hans\"] #kpi-opened",
        std::time::Duration::from_secs(10),
    )
    .await;
    assert!(desk.page_text().await.contains("服务指标"));
    desk.screenshot("service-kpis-zh").await;
    desk.goto("/console/engineers").await;
    assert_eq!(desk.lang().await, "zh-Hans");
    desk.screenshot("service-engineers-zh").await;
    desk.goto("/console/alerts").await;
    desk.screenshot("service-alerts-zh").await;
    desk.switch_language().await;
    desk.close().await;

    // On a phone: the planner's service pages and the engineer's alerts fit.
    let phone = driver.open(&demo.origin, Window::PHONE, &shots).await;
    phone.sign_in(&planner.login, &planner.password).await;
    for (path, what) in [
        ("/console/report", "the call-centre form"),
        ("/console/kpis", "the KPI page"),
        ("/console/engineers", "the engineers page"),
        ("/console/alerts", "the alerts page"),
    ] {
        phone.goto(path).await;
        phone.assert_fits_the_window(what).await;
    }
    phone.screenshot("phone-service-alerts").await;
    phone.close().await;
}
