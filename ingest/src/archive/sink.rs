//! Sending line protocol: the [`LineSink`] trait the archiver writes through, the
//! [`WriteError`]s that tell it whether to retry, split or move on, and
//! [`InfluxSink`], the sink over the `influxdb2` crate that maps the server's answers
//! to them.

use std::future::Future;
use std::time::Duration;

use super::settings::{parse_influx_url, InfluxTarget};
use crate::{Error, Result};

/// Why a write failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The server or the network failed before the batch was taken (no connection,
    /// 503, 429, 401/403/404): retry the same batch later.
    Retry(String),
    /// No clear answer: the request may have reached the server and been written (a
    /// timeout, a connection cut after sending, 500/502/504). Retry the same batch
    /// later; a server that did take it gets the same points twice.
    Unknown(String),
    /// The server refused the batch's content (400, 413) and wrote none of it: split
    /// it to find the points it refuses.
    Refused(String),
    /// The server wrote the batch except `dropped` points it will not take (422, e.g.
    /// older than the bucket's retention): done, nothing to send again.
    Partial {
        /// The server's answer.
        detail: String,
        /// Points it dropped, when its answer says (`dropped=N`).
        dropped: Option<u64>,
    },
}

/// The `dropped=N` of an InfluxDB partial-write answer.
fn dropped_points(detail: &str) -> Option<u64> {
    let after = &detail[detail.find("dropped=")? + "dropped=".len()..];
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    after[..digits].parse().ok()
}

/// Sends one body of line protocol with millisecond timestamps.
pub trait LineSink: Send + Sync + 'static {
    /// Writes `body`; `Ok` only once the server accepted every line.
    fn write(
        &self,
        body: String,
    ) -> impl Future<Output = std::result::Result<(), WriteError>> + Send;
}

/// [`LineSink`] over the `influxdb2` crate's raw line-protocol write.
pub struct InfluxSink {
    client: influxdb2::Client,
    bucket: String,
    org: String,
    timeout: Duration,
}

impl InfluxSink {
    /// A client for `target`. `target.url` must have passed [`parse_influx_url`]
    /// (the crate panics on a URL it cannot parse).
    pub fn new(target: &InfluxTarget, timeout: Duration) -> Result<Self> {
        let url = parse_influx_url(&target.url).map_err(Error::Archive)?;
        let client = influxdb2::ClientBuilder::new(url, &target.org, &target.token)
            .build()
            .map_err(|e| Error::Archive(format!("building the InfluxDB client: {e}")))?;
        Ok(Self {
            client,
            bucket: target.bucket.clone(),
            org: target.org.clone(),
            timeout,
        })
    }
}

impl LineSink for InfluxSink {
    async fn write(&self, body: String) -> std::result::Result<(), WriteError> {
        let write = self.client.write_line_protocol_with_precision(
            &self.org,
            &self.bucket,
            body,
            influxdb2::api::write::TimestampPrecision::Milliseconds,
        );
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(influxdb2::RequestError::Http { status, text })) => {
                let detail = format!("HTTP {status}: {}", text.trim());
                match status.as_u16() {
                    400 | 413 => Err(WriteError::Refused(detail)),
                    422 => Err(WriteError::Partial {
                        dropped: dropped_points(&detail),
                        detail,
                    }),
                    // A server that says it is unavailable or asks us to slow down
                    // did not write; any other server error may have written part or
                    // all of the batch (a proxy's 502/504 above a server that did).
                    s if s >= 500 && s != 503 => Err(WriteError::Unknown(detail)),
                    _ => Err(WriteError::Retry(detail)),
                }
            }
            // Not connected: the request never went out.
            Ok(Err(influxdb2::RequestError::ReqwestProcessing { source }))
                if source.is_connect() =>
            {
                Err(WriteError::Retry(source.to_string()))
            }
            // Sent, but the answer was lost on the way.
            Ok(Err(influxdb2::RequestError::ReqwestProcessing { source })) => {
                Err(WriteError::Unknown(source.to_string()))
            }
            Ok(Err(e)) => Err(WriteError::Retry(e.to_string())),
            Err(_) => Err(WriteError::Unknown(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes_say_how_many_points_were_dropped() {
        assert_eq!(
            dropped_points(
                r#"HTTP 422 Unprocessable Entity: {"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped=37"}"#
            ),
            Some(37)
        );
        assert_eq!(dropped_points("HTTP 422: something else"), None);
    }

    /// An HTTP server on a free port that answers one request per connection with
    /// `answer` (raw bytes after reading the request head; empty: close unanswered).
    async fn one_shot_server(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 64 * 1024];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        url
    }

    async fn write_to(url: String) -> std::result::Result<(), WriteError> {
        let target = InfluxTarget {
            url,
            org: "o".into(),
            bucket: "b".into(),
            token: "t".into(),
        };
        let sink = InfluxSink::new(&target, Duration::from_secs(5)).unwrap();
        sink.write("m,device_id=a v=1 1".into()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_say_whether_the_server_may_have_written_the_batch() {
        // Nothing listens: the request never went out.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let refused = write_to(format!("http://127.0.0.1:{port}")).await;
        assert!(matches!(refused, Err(WriteError::Retry(_))), "{refused:?}");
        // Read the request, then hung up: it may have been written.
        let cut = write_to(one_shot_server("").await).await;
        assert!(matches!(cut, Err(WriteError::Unknown(_))), "{cut:?}");
        let answer = |status: &'static str| {
            one_shot_server(match status {
                "503" => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy",
                "500" => "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops",
                _ => "HTTP/1.1 204 No Content\r\n\r\n",
            })
        };
        let unavailable = write_to(answer("503").await).await;
        assert!(
            matches!(unavailable, Err(WriteError::Retry(_))),
            "{unavailable:?}"
        );
        let internal = write_to(answer("500").await).await;
        assert!(
            matches!(internal, Err(WriteError::Unknown(_))),
            "{internal:?}"
        );
        assert_eq!(write_to(answer("204").await).await, Ok(()));
    }
}
