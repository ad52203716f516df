//! Chromium through chromedriver over WebDriver (fantoccini): the driver process, a
//! browser session per person, and the steps a scenario is written in (go to a page,
//! click, fill a field, wait for an element, take a screenshot).
//!
//! Every wait polls with a timeout (a liveness bound, never a speed target); a wait that
//! runs out saves a screenshot named `failed-...` beside the others and panics with the
//! page's address and text.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::harness::{free_port, service_stderr, wait_for};

use super::Tools;

/// How long a step waits for what it expects by default.
pub(crate) const STEP: Duration = Duration::from_secs(20);

/// A running `chromedriver --port=...`, killed on drop with the browsers it started.
pub(crate) struct ChromeDriver {
    child: Option<Child>,
    port: u16,
    chromium: PathBuf,
    /// The sessions opened, ended on drop so no browser outlives the test.
    sessions: Arc<Mutex<Vec<String>>>,
}

/// How a browser session starts.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// The `Accept-Language` the browser sends (and its UI language).
    pub(crate) accept_language: &'static str,
}

impl Window {
    /// A desk: 1280 x 900, English.
    pub(crate) const DESK: Window = Window {
        width: 1280,
        height: 900,
        accept_language: "en-US,en",
    };

    /// A phone-sized window: 375 x 812 CSS pixels, English.
    pub(crate) const PHONE: Window = Window {
        width: 375,
        height: 812,
        accept_language: "en-US,en",
    };

    /// The same window with another `Accept-Language`.
    pub(crate) const fn speaking(self, accept_language: &'static str) -> Window {
        Window {
            accept_language,
            ..self
        }
    }
}

impl ChromeDriver {
    /// Starts chromedriver on a free port and waits until it is ready.
    pub(crate) async fn start(tools: &Tools) -> ChromeDriver {
        let port = free_port();
        let mut cmd = Command::new(&tools.chromedriver);
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(service_stderr());
        // Its own process group, so that the browsers it starts can be stopped with it
        // if a session could not be ended.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "could not start {} ({e}); apt-get install chromium-driver",
                tools.chromedriver.display()
            )
        });
        let driver = ChromeDriver {
            child: Some(child),
            port,
            chromium: tools.chromium.clone(),
            sessions: Arc::default(),
        };
        let status = format!("http://127.0.0.1:{port}/status");
        wait_for(Duration::from_secs(30), "chromedriver to be ready", || {
            let status = status.clone();
            async move {
                let Ok(r) = reqwest::Client::new()
                    .get(&status)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                else {
                    return false;
                };
                r.json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true)
            }
        })
        .await;
        driver
    }

    /// Opens a new headless Chromium session (its own profile: no cookies shared with
    /// other sessions) with `window`, for the console at `base` (`http://host:port`),
    /// saving screenshots into `shots`.
    pub(crate) async fn open(&self, base: &str, window: Window, shots: &Path) -> Browser {
        let mut caps = fantoccini::wd::Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        // The console's `data-confirm` buttons ask with confirm(): a person clicks OK.
        caps.insert("unhandledPromptBehavior".into(), json!("accept"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": self.chromium,
                "args": [
                    "--headless=new",
                    // CI runs as root, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    // Containers have a small /dev/shm.
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--hide-scrollbars",
                    format!("--window-size={},{}", window.width, window.height),
                    format!("--lang={}", window.accept_language.split(',').next().unwrap_or("en-US")),
                ],
                "prefs": { "intl.accept_languages": window.accept_language },
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        if let Ok(Some(id)) = client.session_id().await {
            self.sessions.lock().unwrap().push(id);
        }
        let browser = Browser {
            client,
            base: base.trim_end_matches('/').to_owned(),
            shots: shots.to_owned(),
        };
        // --window-size sets the outer window; make the page's viewport the size asked.
        browser.fit_viewport(window.width, window.height).await;
        browser
    }

    /// Ends a session with a plain HTTP request (Drop cannot wait for async calls).
    fn end_session(&self, id: &str) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = write!(
            stream,
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.port
        );
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let sessions =
            std::mem::take(&mut *self.sessions.lock().unwrap_or_else(|e| e.into_inner()));
        for id in sessions {
            self.end_session(&id);
        }
        if let Some(mut c) = self.child.take() {
            // The process group started with it: chromedriver and any browser left.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One person's browser: a WebDriver session on the console.
pub(crate) struct Browser {
    client: Client,
    /// `http://host:port`, without the console's path.
    base: String,
    shots: PathBuf,
}

impl Browser {
    /// Resizes the window so that the page's viewport (`innerWidth` x `innerHeight`) is
    /// `width` x `height` CSS pixels.
    pub(crate) async fn fit_viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("set the window size");
        let inner = self
            .eval("return [window.innerWidth, window.innerHeight];")
            .await;
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (w, h) != (width, height) && w > 0 && h > 0 {
            self.client
                .set_window_size(
                    width + (width - w.min(width)),
                    height + (height - h.min(height)),
                )
                .await
                .expect("set the window size");
        }
    }

    /// Opens `path` (e.g. `/console/sign-in?lang=zh`).
    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Reloads the page.
    pub(crate) async fn reload(&self) {
        self.client.refresh().await.expect("reload");
    }

    /// The current address's path and query (`/console/account?saved=preferences`).
    pub(crate) async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the address's path (without the query) satisfies `ok`; returns the
    /// path with its query.
    pub(crate) async fn wait_for_path(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(url) = self.client.current_url().await {
                if ok(url.path()) {
                    return self.path().await;
                }
            }
            if Instant::now() > deadline {
                self.fail(&format!("the address to be {what}")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every element matching `css` now (none: empty).
    pub(crate) async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    /// Whether an element matches `css` now.
    pub(crate) async fn exists(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    /// Waits (up to [`STEP`]) for an element matching `css`; returns the first.
    pub(crate) async fn wait(&self, css: &str) -> Element {
        self.wait_within(css, STEP).await
    }

    /// Waits up to `timeout` for an element matching `css`; returns the first.
    pub(crate) async fn wait_within(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.all(css).await.into_iter().next() {
                return e;
            }
            if Instant::now() > deadline {
                self.fail(&format!("an element {css} (waited {timeout:?})"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Like [`Browser::wait_within`], reloading the page between looks: for what a
    /// page shows when it comes but need not push to an open page.
    pub(crate) async fn wait_reloading(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.all(css).await.into_iter().next() {
                return e;
            }
            if Instant::now() > deadline {
                self.fail(&format!("an element {css} (reloading for {timeout:?})"))
                    .await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.reload().await;
        }
    }

    /// Clicks the first element matching `css` once it is there.
    pub(crate) async fn click(&self, css: &str) {
        let e = self.wait(css).await;
        if let Err(err) = e.click().await {
            self.fail(&format!("a click on {css} to work ({err})"))
                .await;
        }
    }

    /// Opens the closed `<details>` around the element matching `css` by clicking their
    /// summaries, outermost first, as a person unfolds a form.
    pub(crate) async fn reveal(&self, css: &str) {
        self.wait(css).await;
        let closed = self
            .client
            .execute(
                "document.querySelectorAll('details[data-reveal]')
                   .forEach(d => d.removeAttribute('data-reveal'));
                 const out = [];
                 for (let e = document.querySelector(arguments[0]); e; e = e.parentElement) {
                   if (e.tagName === 'DETAILS' && !e.open) out.unshift(e);
                 }
                 out.forEach((d, k) => d.setAttribute('data-reveal', String(k)));
                 return out.length;",
                vec![json!(css)],
            )
            .await
            .unwrap_or_else(|e| panic!("reveal {css}: {e}"));
        for k in 0..closed.as_u64().unwrap_or(0) {
            self.click(&format!(r#"details[data-reveal="{k}"] > summary"#))
                .await;
        }
    }

    /// Scrolls the element matching `css` to the middle of the window.
    pub(crate) async fn scroll_to(&self, css: &str) {
        self.wait(css).await;
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
                vec![json!(css)],
            )
            .await
            .unwrap_or_else(|e| panic!("scroll to {css}: {e}"));
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let e = self.wait(css).await;
        e.clear().await.ok();
        if let Err(err) = e.send_keys(text).await {
            self.fail(&format!("typing into {css} to work ({err})"))
                .await;
        }
    }

    /// Sets the value of the field matching `css` as a date or time picker would, and
    /// fires its `input` and `change` events (typing into `datetime-local` fields
    /// depends on the browser's locale).
    pub(crate) async fn set_value(&self, css: &str, value: &str) {
        self.wait(css).await;
        self.client
            .execute(
                "const e = document.querySelector(arguments[0]);
                 e.value = arguments[1];
                 e.dispatchEvent(new Event('input', {bubbles: true}));
                 e.dispatchEvent(new Event('change', {bubbles: true}));",
                vec![json!(css), json!(value)],
            )
            .await
            .unwrap_or_else(|e| panic!("set {css}: {e}"));
    }

    /// Chooses the option with `value` in the `<select>` matching `css`.
    pub(crate) async fn select(&self, css: &str, value: &str) {
        let e = self.wait(css).await;
        if let Err(err) = e.select_by_value(value).await {
            self.fail(&format!("option {value:?} of {css} ({err})"))
                .await;
        }
    }

    /// The text of the first element matching `css` (waiting for it).
    pub(crate) async fn text(&self, css: &str) -> String {
        self.wait(css).await.text().await.unwrap_or_default()
    }

    /// Attribute `name` of the first element matching `css` (waiting for it).
    pub(crate) async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.wait(css).await.attr(name).await.ok().flatten()
    }

    /// The page's `<html lang>`.
    pub(crate) async fn lang(&self) -> String {
        self.attr("html", "lang").await.unwrap_or_default()
    }

    /// The visible text of the whole page.
    pub(crate) async fn page_text(&self) -> String {
        match self.all("body").await.into_iter().next() {
            Some(body) => body.text().await.unwrap_or_default(),
            None => String::new(),
        }
    }

    /// Runs `script` in the page; returns what it returns.
    pub(crate) async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// GET `path` from this page (same origin, with this person's cookies, following
    /// redirects): the status of the last answer and the path it came from.
    pub(crate) async fn fetch(&self, path: &str) -> (u16, String) {
        let v = self
            .client
            .execute_async(
                "const [path, done] = arguments;
                 fetch(path, {credentials: 'same-origin'})
                   .then(r => { const u = new URL(r.url); done([r.status, u.pathname + u.search]); })
                   .catch(e => done([0, String(e)]));",
                vec![json!(path)],
            )
            .await
            .unwrap_or_else(|e| panic!("fetch {path}: {e}"));
        let status = v[0]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0);
        assert!(status > 0, "fetch {path} failed: {v}");
        (status, v[1].as_str().unwrap_or_default().to_owned())
    }

    /// The page's layout width and the viewport's (`scrollWidth`, `innerWidth`).
    pub(crate) async fn widths(&self) -> (u64, u64) {
        let v = self
            .eval(
                "return [Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
                         window.innerWidth];",
            )
            .await;
        (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0))
    }

    /// Asserts that the page is no wider than the window: nothing but scrolling
    /// regions (`.table-wrap`) may be wider than a phone.
    pub(crate) async fn assert_fits_the_window(&self, what: &str) {
        let (scroll, inner) = self.widths().await;
        if scroll > inner {
            let wide = self
                .eval(
                    "const w = window.innerWidth; const out = [];
                     for (const e of document.querySelectorAll('body *')) {
                       const r = e.getBoundingClientRect();
                       if (r.right > w + 0.5 && !e.closest('.table-wrap')) {
                         out.push(e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' right=' + Math.round(r.right));
                       }
                     }
                     return out.slice(0, 10);",
                )
                .await;
            self.screenshot(&format!("failed-overflow-{what}")).await;
            panic!(
                "{what} at {} is {scroll} px wide in a {inner} px window; wider elements: {wide}",
                self.path().await
            );
        }
    }

    /// Saves a screenshot of the window as `<dir>/<name>.png`; returns its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::create_dir_all(&self.shots).expect("screenshot directory");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Signs in through the form with `login` and `password`; waits until the page is
    /// no longer the sign-in form.
    pub(crate) async fn sign_in(&self, login: &str, password: &str) {
        self.goto("/console/sign-in").await;
        self.submit_sign_in(login, password).await;
        self.wait_for_path("past the sign-in page", |p| {
            p.starts_with("/console") && !p.starts_with("/console/sign-in")
        })
        .await;
    }

    /// Fills and submits the sign-in form on the current page.
    pub(crate) async fn submit_sign_in(&self, login: &str, password: &str) {
        self.fill(r#"form[action$="/sign-in"] input[name="login"]"#, login)
            .await;
        self.fill(
            r#"form[action$="/sign-in"] input[name="password"]"#,
            password,
        )
        .await;
        self.click(r#"form[action$="/sign-in"] button[type="submit"]"#)
            .await;
    }

    /// Clicks the header's language switch.
    pub(crate) async fn switch_language(&self) {
        self.click(r#"header form[action$="/account/language"] button[type="submit"]"#)
            .await;
    }

    /// Clicks the header's sign-out button.
    pub(crate) async fn sign_out(&self) {
        self.click(r#"header form[action$="/sign-out"] button[type="submit"]"#)
            .await;
    }

    /// Ends the session (closes the browser).
    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Saves a screenshot and panics with where the browser is and what it shows.
    async fn fail(&self, waited_for: &str) -> ! {
        let path = self.path().await;
        let text = self.page_text().await;
        let name = format!(
            "failed-{}",
            path.trim_start_matches('/')
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        );
        let shot = self.screenshot(&name).await;
        panic!(
            "timed out waiting for {waited_for} at {path} (screenshot {}); the page shows:\n{}",
            shot.display(),
            text.chars().take(2000).collect::<String>()
        );
    }
}
