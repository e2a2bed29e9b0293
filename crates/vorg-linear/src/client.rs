//! The HTTP side of the client: one POST per operation, the `Authorization` header,
//! classification of the answer, and waiting out short rate limits. The operations
//! themselves are in `ops.rs`.

use std::sync::Arc;

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{LinearConfig, LinearError, documents::Document, error::classify, types::Page};

/// The largest page Linear serves.
pub(crate) const MAX_PAGE: usize = 250;

/// A Linear GraphQL client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct LinearClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: LinearConfig,
}

impl std::fmt::Debug for LinearClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearClient")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl LinearClient {
    /// Builds the client; nothing is sent until the first call.
    pub fn new(config: LinearConfig) -> Result<Self, LinearError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(std::time::Duration::from_secs(10)))
            .timeout(config.timeout)
            .user_agent(concat!("vorg-linear/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LinearError::from_reqwest(&e, &config.api_key))?;
        Ok(LinearClient {
            inner: Arc::new(Inner { http, config }),
        })
    }

    /// The GraphQL endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.inner.config.endpoint
    }

    /// Runs `doc` and deserialises its root field, waiting out rate limits that reset
    /// within `max_retry_wait`, at most `max_retries` times.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        doc: &Document,
        variables: Value,
    ) -> Result<T, LinearError> {
        let config = &self.inner.config;
        let mut attempt = 0;
        let data = loop {
            match self.send_once(doc, &variables).await {
                Err(LinearError::RateLimited {
                    retry_after: Some(wait),
                    ..
                }) if attempt < config.max_retries && wait <= config.max_retry_wait => {
                    attempt += 1;
                    tracing::warn!(
                        operation = doc.operation,
                        wait_ms = wait.as_millis() as u64,
                        attempt,
                        "Linear rate limit reached; waiting for the reset"
                    );
                    tokio::time::sleep(wait).await;
                }
                other => break other?,
            }
        };
        let root = data.get(doc.root_field).cloned().unwrap_or(Value::Null);
        serde_json::from_value(root)
            .map_err(|e| LinearError::InvalidResponse(format!("{}: {e}", doc.root_field)))
    }

    async fn send_once(&self, doc: &Document, variables: &Value) -> Result<Value, LinearError> {
        let config = &self.inner.config;
        let key = config.api_key.trim();
        if key.is_empty() {
            return Err(LinearError::Auth {
                message: "no API key is set".into(),
            });
        }
        tracing::debug!(operation = doc.operation, "calling Linear");
        let body = json!({
            "query": doc.text,
            "operationName": doc.operation,
            "variables": variables,
        });
        let resp = self
            .inner
            .http
            .post(&config.endpoint)
            .header(reqwest::header::AUTHORIZATION, key)
            .json(&body)
            .send()
            .await
            .map_err(|e| LinearError::from_reqwest(&e, key))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| LinearError::from_reqwest(&e, key))?;
        let result = classify(status, &headers, &text, key, Utc::now());
        if let Err(e) = &result {
            tracing::debug!(operation = doc.operation, status, error = %e, "Linear call failed");
        }
        result
    }

    /// One page of a list operation whose document takes `$filter`, `$first` and `$after`.
    pub(crate) async fn page<T: DeserializeOwned>(
        &self,
        doc: &Document,
        filter: Option<Value>,
        first: usize,
        after: Option<&str>,
    ) -> Result<Page<T>, LinearError> {
        let mut variables = json!({ "first": first.clamp(1, MAX_PAGE), "after": after });
        if let Some(filter) = filter {
            variables["filter"] = filter;
        }
        self.call(doc, variables).await
    }

    /// Follows pages until there are no more or `limit` items are collected.
    pub(crate) async fn collect<T: DeserializeOwned>(
        &self,
        doc: &Document,
        filter: Option<Value>,
        limit: usize,
    ) -> Result<Vec<T>, LinearError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        while items.len() < limit {
            let want = (limit - items.len()).min(MAX_PAGE);
            let page: Page<T> = self
                .page(doc, filter.clone(), want, after.as_deref())
                .await?;
            let more = page.page_info.has_next_page;
            items.extend(page.nodes.into_iter().take(want));
            match page.page_info.end_cursor {
                Some(cursor) if more => after = Some(cursor),
                _ => break,
            }
        }
        Ok(items)
    }
}
