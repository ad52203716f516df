//! The service console in a real browser: Debian's `chromium`, driven through
//! `chromedriver` over WebDriver (fantoccini), against the real binary on free ports.
//!
//! Extended suite: runs with `FIXAHEAD_IT=1` (`.ci/run` installs `chromium` and
//! `chromium-driver`); without it each test prints that it skipped and why. With it, a
//! missing browser or driver is a failure. `CHROMIUM` and `CHROMEDRIVER` may name other
//! binaries.
//!
//! - [`sign_in`]: `fixahead demo` as a new user starts it: the printed address and
//!   sign-ins, the sign-in page in English and Chinese, a wrong password, the account
//!   page, the language switch, signing out, a phone-sized window.
//! - [`workday`]: issue 19's scenario, a planner's morning and an engineer's visit over
//!   `fixahead run` with a simulated device failing, through the queue, ticket,
//!   device, my-day, models and fleet pages.
//!
//! Screenshots go to `$FIXAHEAD_SCREENSHOTS`, by default `target/browser-screenshots/`;
//! each test prints where it wrote them.

mod demo;
mod driver;
mod service;
mod sign_in;
mod workday;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mosquitto::extended_suite;

/// The browser and its driver.
pub(crate) struct Tools {
    pub(crate) chromium: PathBuf,
    pub(crate) chromedriver: PathBuf,
}

/// The browser and driver for `test`, or `None` (after saying so) when the extended
/// suite is off. With `FIXAHEAD_IT=1` a missing one fails the test.
pub(crate) fn tools_or_skip(test: &str) -> Option<Tools> {
    if !extended_suite() {
        eprintln!(
            "skipped: {test}: FIXAHEAD_IT not set (it needs FIXAHEAD_IT=1 and the chromium and chromium-driver packages)"
        );
        return None;
    }
    let find = |env: &str, names: &[&str]| -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(env) {
            return Some(PathBuf::from(p)).filter(|p| p.is_file());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ])
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    };
    let chromedriver = find("CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
        panic!(
            "FIXAHEAD_IT=1 but chromedriver is not installed: apt-get install chromium chromium-driver (or set CHROMEDRIVER to its path)"
        )
    });
    let chromium = find("CHROMIUM", &["chromium", "chromium-browser"]).unwrap_or_else(|| {
        panic!(
            "FIXAHEAD_IT=1 but chromium is not installed: apt-get install chromium chromium-driver (or set CHROMIUM to its path)"
        )
    });
    let cjk = Command::new("fc-list")
        .args([":lang=zh", "family"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if !cjk {
        eprintln!(
            "warning: no Chinese font installed: Chinese pages' screenshots will show boxes (apt-get install fonts-wqy-microhei)"
        );
    }
    Some(Tools {
        chromium,
        chromedriver,
    })
}

/// Where screenshots go: `$FIXAHEAD_SCREENSHOTS`, else `target/browser-screenshots/`.
pub(crate) fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("FIXAHEAD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap_or(Path::new("target"))
                .join("browser-screenshots")
        });
    eprintln!("screenshots go to {}", dir.display());
    dir
}
