//! The benchmarks' HTTP client for the API they run in this process: a GET with the
//! admin key the benchmark created.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use server::Context as _;

use crate::error::bail;
use crate::Result;

/// How long one request may take, from sending it to the end of its body.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The API at `base`, read with `key`.
#[derive(Clone)]
pub(crate) struct ApiClient {
    /// `http://{addr}`.
    base: String,
    /// The API key sent as a bearer token.
    key: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the API listening on `addr`, sending `key`.
    ///
    /// One connection per request, as a client that does not keep connections alive
    /// would make: the timed requests include connecting, and the pipeline's API sees
    /// the same traffic as before the benchmarks used reqwest. No proxy: the API is on
    /// this machine.
    pub(crate) fn new(addr: SocketAddr, key: String) -> Result<ApiClient> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .build()?;
        Ok(ApiClient {
            base: format!("http://{addr}"),
            key,
            http,
        })
    }

    /// GET `path`; status and body.
    pub(crate) async fn get(&self, path: &str) -> Result<(u16, String)> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send();
        tokio::time::timeout(TIMEOUT, async {
            let response = request.await?;
            let status = response.status().as_u16();
            Ok((status, response.text().await?))
        })
        .await
        .context("HTTP request timed out")?
    }

    /// GET `path`, which must answer 200 with JSON.
    pub(crate) async fn get_json(&self, path: &str) -> Result<Value> {
        let (status, body) = self.get(path).await?;
        if status != 200 {
            bail!("GET {path}: {status} {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}
