//! `fixahead demo` as a new user meets it in Chromium: the printed address opens the
//! sign-in page in the browser's language (or the one chosen with `?lang=zh`), a wrong
//! password is refused with a message, a printed sign-in works, the account page and
//! its preferences form, the header's language switch, signing out, and a phone-sized
//! window with nothing wider than the screen.

use super::demo::Demo;
use super::driver::{Browser, ChromeDriver, Window};
use super::{screenshot_dir, tools_or_skip};

/// The sign-in form's heading and a wrong password's message, as a person reads them.
const SIGN_IN_EN: &str = "Sign in";
const SIGN_IN_ZH: &str = "登录";
const REFUSED_EN: &str = "The login or the password is wrong.";
const REFUSED_ZH: &str = "用户名或密码错误。";

/// Opens the address the demo printed, as a person pasting it would.
async fn open_printed_address(browser: &Browser, demo: &Demo) {
    let path = demo
        .console_url
        .strip_prefix(&demo.origin)
        .expect("the console address starts with its origin");
    browser.goto(path).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_page_speaks_the_browsers_language_and_refuses_a_wrong_password() {
    let Some(tools) = tools_or_skip(
        "browser::sign_in::the_sign_in_page_speaks_the_browsers_language_and_refuses_a_wrong_password",
    ) else {
        return;
    };
    let shots = screenshot_dir();
    let demo = Demo::start();
    let driver = ChromeDriver::start(&tools).await;

    // An English browser: the printed address leads to the form, in English.
    let en = driver.open(&demo.origin, Window::DESK, &shots).await;
    open_printed_address(&en, &demo).await;
    let at = en
        .wait_for_path("the sign-in page", |p| p == "/console/sign-in")
        .await;
    assert!(at.contains("next=%2Fconsole%2F"), "comes back after: {at}");
    assert_eq!(en.lang().await, "en");
    assert_eq!(en.text("main h1").await, SIGN_IN_EN);
    en.screenshot("sign-in-en").await;

    // A wrong password: refused, with the message and the login kept.
    let planner = demo.account("planner");
    en.submit_sign_in(&planner.login, "not-the-password").await;
    assert_eq!(en.text(r#".notice[role="alert"]"#).await, REFUSED_EN);
    assert_eq!(en.path().await.split('?').next(), Some("/console/sign-in"));
    assert_eq!(
        en.attr(r#"input[name="login"]"#, "value").await.as_deref(),
        Some(planner.login.as_str())
    );
    en.screenshot("sign-in-refused").await;

    // The language chosen with ?lang=zh, kept for the next visit.
    en.goto("/console/sign-in?lang=zh").await;
    assert_eq!(en.lang().await, "zh-Hans");
    assert_eq!(en.text("main h1").await, SIGN_IN_ZH);
    en.goto("/console/sign-in").await;
    assert_eq!(en.lang().await, "zh-Hans", "the choice is remembered");
    en.submit_sign_in(&planner.login, "还是不对").await;
    assert_eq!(en.text(r#".notice[role="alert"]"#).await, REFUSED_ZH);
    // ... and switched back with the link in the header.
    en.click(r#"header a[href$="?lang=en"]"#).await;
    en.wait("html[lang=\"en\"]").await;
    assert_eq!(en.text("main h1").await, SIGN_IN_EN);
    en.close().await;

    // A Chinese browser (Accept-Language: zh-CN): Chinese without asking.
    let zh = driver
        .open(&demo.origin, Window::DESK.speaking("zh-CN,zh"), &shots)
        .await;
    open_printed_address(&zh, &demo).await;
    zh.wait_for_path("the sign-in page", |p| p == "/console/sign-in")
        .await;
    assert_eq!(zh.lang().await, "zh-Hans");
    assert_eq!(zh.text("main h1").await, SIGN_IN_ZH);
    zh.screenshot("sign-in-zh").await;

    // The printed password works.
    zh.sign_in(&planner.login, &planner.password).await;
    zh.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planner_signs_in_switches_language_and_signs_out() {
    let Some(tools) =
        tools_or_skip("browser::sign_in::a_planner_signs_in_switches_language_and_signs_out")
    else {
        return;
    };
    let shots = screenshot_dir();
    let demo = Demo::start();
    let driver = ChromeDriver::start(&tools).await;
    let b = driver.open(&demo.origin, Window::DESK, &shots).await;
    let planner = demo.account("planner");

    // From the printed address through the form, back to the console's home.
    open_printed_address(&b, &demo).await;
    b.wait_for_path("the sign-in page", |p| p == "/console/sign-in")
        .await;
    b.submit_sign_in(&planner.login, &planner.password).await;
    b.wait_for_path("signed in", |p| {
        p.starts_with("/console/") && p != "/console/sign-in"
    })
    .await;

    // The account page, from the navigation: who is signed in, in English.
    b.click(r#"header nav a[href="/console/account"]"#).await;
    b.wait_for_path("the account page", |p| p == "/console/account")
        .await;
    assert_eq!(b.lang().await, "en");
    assert_eq!(b.text("main h1").await, "Your account");
    let page = b.page_text().await;
    for shown in ["Li Wei 李伟", "Planner", "planner"] {
        assert!(
            page.contains(shown),
            "the account page shows {shown}:\n{page}"
        );
    }
    assert!(
        !b.exists(r#"header nav a[href="/console/admin"]"#).await,
        "a planner has no admin pages"
    );
    b.screenshot("account-en").await;

    // The preferences form: another time zone, saved.
    let form = r#"form[action$="/account/preferences"]"#;
    b.select(&format!(r#"{form} select[name="lang"]"#), "en")
        .await;
    b.fill(
        &format!(r#"{form} input[name="time_zone"]"#),
        "Europe/Berlin",
    )
    .await;
    b.click(&format!(r#"{form} button[type="submit"]"#)).await;
    b.wait_for_path("the saved account page", |p| p == "/console/account")
        .await;
    assert_eq!(b.text(r#".notice[role="status"]"#).await, "Saved.");
    assert_eq!(
        b.attr(r#"input[name="time_zone"]"#, "value")
            .await
            .as_deref(),
        Some("Europe/Berlin")
    );

    // The header's switch: the same page (query and all), in Chinese, and it stays so.
    b.switch_language().await;
    b.wait("html[lang=\"zh-Hans\"]").await;
    assert_eq!(b.path().await, "/console/account?saved=preferences");
    assert_eq!(b.text("main h1").await, "我的账户");
    assert!(b.text("header nav").await.contains("账户"));
    b.screenshot("account-zh").await;
    b.goto("/console/account").await;
    assert_eq!(b.lang().await, "zh-Hans", "the language is the person's");
    b.switch_language().await;
    b.wait("html[lang=\"en\"]").await;
    assert_eq!(b.text("main h1").await, "Your account");

    // Signing out: back at the form, told so; the pages ask to sign in again.
    b.sign_out().await;
    let at = b
        .wait_for_path("the sign-in page", |p| p == "/console/sign-in")
        .await;
    assert!(at.contains("signed_out=true"), "{at}");
    assert_eq!(b.text(".notice").await, "You have signed out.");
    b.goto("/console/account").await;
    let at = b
        .wait_for_path("the sign-in page", |p| p == "/console/sign-in")
        .await;
    assert!(at.contains("next=%2Fconsole%2Faccount"), "{at}");
    let (status, landed) = b.fetch("/console/account").await;
    assert_eq!(status, 200);
    assert!(landed.starts_with("/console/sign-in?"), "{landed}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_sized_window_shows_the_pages_without_sideways_scrolling() {
    let Some(tools) = tools_or_skip(
        "browser::sign_in::a_phone_sized_window_shows_the_pages_without_sideways_scrolling",
    ) else {
        return;
    };
    let shots = screenshot_dir();
    let demo = Demo::start();
    let driver = ChromeDriver::start(&tools).await;
    let phone = driver.open(&demo.origin, Window::PHONE, &shots).await;

    phone.goto("/console/sign-in").await;
    let (_, inner) = phone.widths().await;
    assert_eq!(inner, 375, "the window is phone-sized");
    phone.assert_fits_the_window("the sign-in page").await;
    phone.screenshot("phone-sign-in").await;

    // The engineer works in Chinese: the header with its navigation, the name and both
    // buttons, and the account page's forms.
    let engineer = demo.account("engineer");
    phone.sign_in(&engineer.login, &engineer.password).await;
    phone.goto("/console/account").await;
    assert_eq!(phone.lang().await, "zh-Hans");
    phone.assert_fits_the_window("the account page").await;
    assert!(
        !phone.exists(r#"header nav a[href="/console/admin"]"#).await,
        "an engineer has no admin pages"
    );
    phone.screenshot("phone-account-zh").await;
    phone.close().await;
}
