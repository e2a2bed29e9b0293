//! How the MCP server reaches vorg: every tool is a call to vorg's own REST API made with the
//! caller's bearer token, so a tool checks permissions, validates, audits and charges exactly
//! as the route does. In `vorg serve` the calls go to the router in-process; `vorg mcp`
//! (stdio) sends them over HTTP to a running server.

use std::{net::SocketAddr, pin::Pin};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::{HeaderMap, HeaderValue, Method, Request, header},
};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tower::ServiceExt;

/// Who is calling: the bearer token and, over HTTP, the client's address (so a token's
/// allowed address ranges hold for MCP calls too).
#[derive(Clone)]
pub struct Caller {
    pub token: String,
    pub client: Option<SocketAddr>,
    /// The `X-Forwarded-For` the client's request carried (believed only from trusted
    /// proxies, by the API).
    pub forwarded_for: Option<HeaderValue>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// A REST answer: status and JSON body (`Null` when empty, a string when not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Bytes of a streamed answer (SSE).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// One REST call.
pub struct Call<'a> {
    pub method: Method,
    /// Path and query, e.g. `/runs/7/logs?after=3`.
    pub path: String,
    pub body: Option<&'a Value>,
    /// The MCP tool this call serves (audited by the API with the token as actor).
    pub tool: Option<&'a str>,
    /// Extra headers (e.g. `Prefer: respond-async`).
    pub prefer_async: bool,
}

impl<'a> Call<'a> {
    pub fn get(path: impl Into<String>) -> Self {
        Call {
            method: Method::GET,
            path: path.into(),
            body: None,
            tool: None,
            prefer_async: false,
        }
    }

    pub fn send(method: Method, path: impl Into<String>, body: Option<&'a Value>) -> Self {
        Call {
            method,
            path: path.into(),
            body,
            tool: None,
            prefer_async: false,
        }
    }

    pub fn for_tool(mut self, tool: &'a str) -> Self {
        self.tool = Some(tool);
        self
    }

    pub fn respond_async(mut self) -> Self {
        self.prefer_async = true;
        self
    }
}

/// The header naming the MCP tool a REST call serves; the API audits such calls.
pub const TOOL_HEADER: &str = "x-vorg-mcp-tool";

/// Most bytes of a REST answer the MCP server reads (an artifact, a run's log page).
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub enum Backend {
    /// vorg's router, in this process.
    InProcess(Router),
    /// A vorg server reached over HTTP (`vorg mcp --url`).
    Remote {
        base: String,
        client: reqwest::Client,
    },
}

impl Backend {
    pub fn remote(base: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(Backend::Remote {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    fn headers(caller: &Caller, call: &Call<'_>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", caller.token)) {
            headers.insert(header::AUTHORIZATION, v);
        }
        if call.body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if call.prefer_async {
            headers.insert("prefer", HeaderValue::from_static("respond-async"));
        }
        if let Some(tool) = call.tool.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(TOOL_HEADER, tool);
        }
        if let Some(v) = &caller.forwarded_for {
            headers.insert("x-forwarded-for", v.clone());
        }
        headers
    }

    /// Makes one call and reads its JSON answer.
    pub async fn call(&self, caller: &Caller, call: Call<'_>) -> Result<Reply, String> {
        let (status, bytes) = match self {
            Backend::InProcess(router) => {
                let (status, body) = self.in_process(router, caller, &call).await?;
                let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
                    .await
                    .map_err(|e| format!("reading the answer: {e}"))?;
                (status, bytes)
            }
            Backend::Remote { base, client } => {
                let resp = Self::remote_send(base, client, caller, &call)
                    .timeout(std::time::Duration::from_secs(300))
                    .send()
                    .await
                    .map_err(|e| format!("vorg at {base} did not answer: {e}"))?;
                let status = resp.status().as_u16();
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| format!("reading the answer: {e}"))?;
                if bytes.len() > MAX_ANSWER_BYTES {
                    return Err("the answer is larger than the MCP server reads".into());
                }
                (status, bytes)
            }
        };
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply { status, body })
    }

    /// Opens a streamed answer (an SSE route): its status and bytes.
    pub async fn open_stream(
        &self,
        caller: &Caller,
        path: &str,
    ) -> Result<(u16, ByteStream), String> {
        let call = Call::get(path);
        match self {
            Backend::InProcess(router) => {
                let (status, body) = self.in_process(router, caller, &call).await?;
                let stream = body
                    .into_data_stream()
                    .map(|r| r.map_err(|e| e.to_string()));
                Ok((status, Box::pin(stream)))
            }
            Backend::Remote { base, client } => {
                let resp = Self::remote_send(base, client, caller, &call)
                    .send()
                    .await
                    .map_err(|e| format!("vorg at {base} did not answer: {e}"))?;
                let status = resp.status().as_u16();
                let stream = resp.bytes_stream().map(|r| r.map_err(|e| e.to_string()));
                Ok((status, Box::pin(stream)))
            }
        }
    }

    async fn in_process(
        &self,
        router: &Router,
        caller: &Caller,
        call: &Call<'_>,
    ) -> Result<(u16, Body), String> {
        let body = match call.body {
            Some(v) => Body::from(v.to_string()),
            None => Body::empty(),
        };
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(&call.path)
            .body(body)
            .map_err(|e| format!("building the request: {e}"))?;
        *req.headers_mut() = Self::headers(caller, call);
        if let Some(addr) = caller.client {
            req.extensions_mut().insert(ConnectInfo(addr));
        }
        let resp = router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| format!("the API failed: {e}"))?;
        Ok((resp.status().as_u16(), resp.into_body()))
    }

    fn remote_send(
        base: &str,
        client: &reqwest::Client,
        caller: &Caller,
        call: &Call<'_>,
    ) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(call.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let mut builder = client.request(method, format!("{base}{}", call.path));
        for (k, v) in Self::headers(caller, call).iter() {
            builder = builder.header(k.as_str(), v.as_bytes());
        }
        if let Some(body) = call.body {
            builder = builder.body(body.to_string());
        }
        builder
    }
}
