//! The simulation's HTTP client: every action of the service world goes through the
//! public API with the key of the role that does it.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::{Error, Result};

/// A response: status and JSON body (`Null` when there was none).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The API of one running fixahead.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub(crate) fn new(addr: SocketAddr) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Failed(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: format!("http://{addr}"),
        })
    }

    /// Sends `body` (if any) with `key`; a transport failure is an error, any HTTP
    /// status a [`Reply`].
    pub(crate) async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Failed(format!("{method} {path}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// The routes (`post /api/v1/tickets`) the running fixahead serves (from its OpenAPI document):
    /// the simulation uses what the API offers, and says what it lacks.
    pub(crate) async fn routes(&self, key: &str) -> Result<std::collections::BTreeSet<String>> {
        let r = self.get(key, "/openapi.json").await?;
        let mut out = std::collections::BTreeSet::new();
        for (path, methods) in r
            .body
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for method in methods.as_object().into_iter().flat_map(|m| m.keys()) {
                out.insert(format!("{method} {path}"));
            }
        }
        Ok(out)
    }

    pub(crate) async fn get(&self, key: &str, path: &str) -> Result<Reply> {
        self.call(key, Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, key: &str, path: &str, body: &Value) -> Result<Reply> {
        self.call(key, Method::POST, path, Some(body)).await
    }

    pub(crate) async fn put(&self, key: &str, path: &str, body: &Value) -> Result<Reply> {
        self.call(key, Method::PUT, path, Some(body)).await
    }

    /// Every ticket matching `query` (`status=active`, ...), following `next`.
    pub(crate) async fn tickets(&self, key: &str, query: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut after: Option<i64> = None;
        loop {
            let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
            let r = self
                .get(key, &format!("/api/v1/tickets?{query}&limit=1000{cursor}"))
                .await?;
            if !r.ok() {
                return Err(Error::Failed(format!(
                    "listing tickets ({query}): {} {}",
                    r.status, r.body
                )));
            }
            if let Some(list) = r.body.get("tickets").and_then(Value::as_array) {
                out.extend(list.iter().cloned());
            }
            match r.body.get("next").and_then(Value::as_i64) {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }
}
