//! vorg's MCP server in the binary: `/mcp` on `vorg serve` (streamable HTTP, bearer tokens
//! only) and `vorg mcp` (stdio, for desktop and CLI agents, against a running server).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{ConnectInfo, Request, State},
    http::header,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use rmcp::{
    ServiceExt,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_api::{ApiError, AppState};
use vorg_mcp::{Backend, Caller, VorgMcp};

/// Most bytes of one MCP request body.
const MAX_MCP_BODY: usize = 4 * 1024 * 1024;

fn openapi() -> serde_json::Value {
    serde_json::to_value(vorg_api::openapi_document()).unwrap_or_default()
}

/// The API router with `/mcp` beside it. Tools call the API router in-process.
pub fn mount(
    api: Router,
    state: AppState,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Router {
    let server = VorgMcp::new(Backend::InProcess(api.clone()), &openapi(), tracker.clone());
    // Bearer tokens only (no cookie is ever accepted here), so a page on another site cannot
    // drive /mcp through a visitor's browser: the Host allow-list that guards cookie-less
    // local servers against DNS rebinding is not needed and would refuse real hostnames.
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(Vec::<String>::new())
        .with_max_request_body_bytes(MAX_MCP_BODY)
        .with_cancellation_token(shutdown);
    let service = StreamableHttpService::new(
        move || Ok(server.session()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(state, bearer_only));
    api.merge(mcp)
}

/// `/mcp` takes `Authorization: Bearer` only, checked before the MCP layer sees the request;
/// the caller (token and address) travels with the request to the tools.
async fn bearer_only(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let Some(token) = token else {
        return ApiError::Unauthenticated(
            "/mcp needs Authorization: Bearer <API token> (the console's session cookie is not accepted here)",
        )
        .into_response();
    };
    if let Err(e) = vorg_api::auth::authenticate(&state, req.headers(), None).await {
        return e.into_response();
    }
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0);
    let forwarded_for = req.headers().get("x-forwarded-for").cloned();
    req.extensions_mut().insert(Caller {
        token,
        client,
        forwarded_for,
    });
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    // A body that is not JSON-RPC gets a JSON-RPC error (the transport would answer a bare
    // 415 text): parse error -32700, invalid request -32600.
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_MCP_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return rpc_error(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                format!("Invalid Request: the body is larger than {MAX_MCP_BODY} bytes"),
            );
        }
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Err(e) => {
            return rpc_error(
                axum::http::StatusCode::BAD_REQUEST,
                -32700,
                format!("Parse error: {e}"),
            );
        }
        Ok(v) if !is_jsonrpc(&v) => {
            return rpc_error(
                axum::http::StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: expected a JSON-RPC 2.0 message (an object with \"jsonrpc\": \"2.0\" and a method, or a result or error)".into(),
            );
        }
        Ok(_) => {}
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Whether `v` is a JSON-RPC 2.0 message (or a batch of them).
fn is_jsonrpc(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Array(items) => !items.is_empty() && items.iter().all(is_jsonrpc),
        serde_json::Value::Object(m) => {
            m.get("jsonrpc").and_then(|j| j.as_str()) == Some("2.0")
                && (m.get("method").is_some_and(|x| x.is_string())
                    || m.contains_key("result")
                    || m.contains_key("error"))
        }
        _ => false,
    }
}

fn rpc_error(status: axum::http::StatusCode, code: i64, message: String) -> Response {
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// `vorg mcp`: serves the tools over stdio, each call sent to the vorg server at `url` with
/// `token`.
pub async fn stdio(url: &str, token: String) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let backend = Backend::remote(url).map_err(|e| anyhow::anyhow!(e))?;
    let server = VorgMcp::new(backend, &openapi(), tracker.clone()).for_caller(Caller {
        token,
        client: None,
        forwarded_for: None,
    });
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("starting the MCP session: {e}"))?;
    let reason = running.waiting().await?;
    tracing::debug!(?reason, "MCP session over");
    tracker.close();
    tracker.wait().await;
    Ok(())
}
