//! The console's stylesheet and script, compiled into the binary and served under
//! names that carry a hash of their content (`console.3f2a9c01d4.css`), so a browser
//! may keep them for a year and still never uses a stale one after an upgrade.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use crate::PREFIX;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

struct Asset {
    name: String,
    body: &'static str,
    content_type: &'static str,
}

fn hashed(stem: &str, ext: &str, body: &'static str, content_type: &'static str) -> Asset {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    Asset {
        name: format!("{stem}.{hex}.{ext}"),
        body,
        content_type,
    }
}

fn assets() -> &'static [Asset; 2] {
    static ASSETS: OnceLock<[Asset; 2]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            hashed("console", "css", CSS, "text/css; charset=utf-8"),
            hashed("console", "js", JS, "text/javascript; charset=utf-8"),
        ]
    })
}

/// The stylesheet's URL.
pub(crate) fn css_url() -> String {
    format!("{PREFIX}/assets/{}", assets()[0].name)
}

/// The script's URL.
pub(crate) fn js_url() -> String {
    format!("{PREFIX}/assets/{}", assets()[1].name)
}

/// `GET /console/assets/{name}`: an asset by its hashed name, cached for a year.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    match assets().iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_carry_their_content_hash() {
        let css = css_url();
        assert!(css.starts_with("/console/assets/console.") && css.ends_with(".css"));
        assert_eq!(css.len(), "/console/assets/console..css".len() + 10);
        assert_ne!(css_url(), js_url());
    }
}
