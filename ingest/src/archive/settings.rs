//! Where the archive writes ([`InfluxTarget`], its URL checked by
//! [`parse_influx_url`]) and how it batches and retries ([`ArchiveSettings`]).

use std::path::PathBuf;
use std::time::Duration;

/// Where to write: an InfluxDB 2 server (or anything that accepts its
/// `/api/v2/write`, such as VictoriaMetrics).
#[derive(Clone)]
pub struct InfluxTarget {
    /// `http://host:port`, as returned by [`parse_influx_url`].
    pub url: String,
    /// Organization name.
    pub org: String,
    /// Bucket name.
    pub bucket: String,
    /// API token with write permission on the bucket.
    pub token: String,
}

impl std::fmt::Debug for InfluxTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxTarget")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// How the archiver batches and retries.
#[derive(Clone, Debug)]
pub struct ArchiveSettings {
    /// Most points per write request.
    pub batch_size: usize,
    /// How long the archiver waits after a batch that was not full before it looks for
    /// more rows: the longest a stored row waits to be sent while the server is up.
    pub flush_interval: Duration,
    /// A write request that has not been answered within this is a failure (retried).
    pub timeout: Duration,
    /// The first retry waits 100 ms (or this, if shorter), each next one twice as long,
    /// up to this.
    pub max_backoff: Duration,
    /// The cursor file.
    pub cursor_path: PathBuf,
}

impl ArchiveSettings {
    /// Default `batch_size`: InfluxData's recommended batch of 5,000 lines.
    pub const DEFAULT_BATCH_SIZE: usize = 5000;
    /// Default `flush_interval`.
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
    /// Default `timeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default `max_backoff`.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
    /// The cursor file's name in the data directory.
    pub const CURSOR_FILE: &'static str = "influxdb-archive.cursor";
}

/// Checks an archive URL and returns it as `http://host[:port]`.
///
/// Only `http://` is accepted: fixahead is built without TLS for now (issue 5), like
/// its MQTT client. A path is refused rather than silently dropped: the write goes to
/// `/api/v2/write` at the server's root.
pub fn parse_influx_url(url: &str) -> std::result::Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| {
            if url.starts_with("https://") {
                format!("{url:?}: https is not supported yet (fixahead is built without TLS); use http:// or a TLS-terminating proxy on the same host")
            } else {
                format!("{url:?} must start with http://")
            }
        })?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err(format!(
            "{url:?}: give scheme, host and port only (http://host:8086); the write goes to /api/v2/write"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{url:?}: {addr:?} is not an IPv6 address"));
        }
        if !(after.is_empty() || after.starts_with(':')) {
            return Err(format!("{url:?}: only a port may follow the IPv6 address"));
        }
        (&authority[..addr.len() + 2], after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = host.starts_with('[')
        || (!host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'));
    if !host_ok {
        return Err(format!("{url:?}: the host must be a name or an IP address"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{url:?}: the port must be 1-65535"));
        }
    }
    Ok(format!("http://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_host_and_port_only() {
        for (ok, want) in [
            ("http://influxdb:8086", "http://influxdb:8086"),
            ("http://127.0.0.1:8086/", "http://127.0.0.1:8086"),
            ("http://[::1]:8086", "http://[::1]:8086"),
            ("http://influx.internal", "http://influx.internal"),
        ] {
            assert_eq!(parse_influx_url(ok).as_deref(), Ok(want), "{ok}");
        }
        for bad in [
            "https://influxdb:8086",
            "influxdb:8086",
            "http://",
            "http://:8086",
            "http://influxdb:0",
            "http://influxdb:99999",
            "http://influxdb:8086/api/v2",
            "http://in flux:8086",
            "http://[::1:8086",
            "http://[nope]:8086",
            "http://[::1]x",
            "http://user@influxdb:8086",
        ] {
            assert!(parse_influx_url(bad).is_err(), "{bad}");
        }
        let https = parse_influx_url("https://x:1").unwrap_err();
        assert!(https.contains("TLS"), "{https}");
    }
}
