//! The route table: which permission each route needs. It is the single place that decides
//! access; the `authorize` middleware enforces it before any handler or extractor runs, the
//! OpenAPI document and `GET /auth/permissions` are rendered from it, and a generated test
//! walks it for every role.

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};
use vorg_domain::Permission;

use crate::{
    AppState,
    auth::{self, authenticate},
    error::ApiError,
};

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// An authenticated caller whose roles hold the permission.
    Requires(Permission),
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct RouteRule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn rule(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
    }
}

use Access::{Public, Requires};
use Permission::*;

/// Every API route and what it requires.
pub const ROUTES: &[RouteRule] = &[
    rule("GET", "/health", Public),
    rule("GET", "/ready", Public),
    rule("GET", "/metrics", Requires(ViewMetrics)),
    rule("POST", "/auth/register", Public),
    rule("POST", "/auth/login", Public),
    rule("GET", "/auth/status", Public),
    rule("POST", "/auth/logout", Requires(ViewSelf)),
    rule("POST", "/auth/assign-role", Requires(ManageUsers)),
    rule("GET", "/auth/me", Requires(ViewSelf)),
    rule("GET", "/auth/permissions", Requires(ViewSelf)),
    rule("POST", "/auth/tokens", Requires(ManageOwnTokens)),
    rule("GET", "/auth/tokens", Requires(ManageOwnTokens)),
    rule("GET", "/auth/tokens/{id}", Requires(ManageOwnTokens)),
    rule("PATCH", "/auth/tokens/{id}", Requires(ManageOwnTokens)),
    rule("DELETE", "/auth/tokens/{id}", Requires(ManageOwnTokens)),
    rule("POST", "/auth/enrolments", Requires(ManageUsers)),
    rule("GET", "/auth/enrolments", Requires(ManageUsers)),
    rule("POST", "/auth/enrol", Public),
    rule("GET", "/users", Requires(ManageUsers)),
    rule("POST", "/users/{id}/roles", Requires(ManageUsers)),
    rule("DELETE", "/users/{id}/roles/{role}", Requires(ManageUsers)),
    rule("GET", "/audit", Requires(ViewAudit)),
    rule("POST", "/auth/stream-token", Requires(ViewRuns)),
    rule("POST", "/runs/start_demo", Requires(StartRuns)),
    rule("GET", "/runs", Requires(ViewRuns)),
    rule("GET", "/runs/{id}", Requires(ViewRuns)),
    rule("GET", "/runs/{id}/logs", Requires(ViewRuns)),
    rule("POST", "/runs/{id}/cancel", Requires(CancelRuns)),
    rule("GET", "/streams/runs/{id}", Requires(ViewRuns)),
    rule("GET", "/streams/events", Requires(ViewRuns)),
    rule("POST", "/llm/generate", Requires(UseLlm)),
    rule("POST", "/v1/chat/completions", Requires(UseLlm)),
    rule("GET", "/v1/models", Requires(UseLlm)),
    rule("POST", "/v1/embeddings", Requires(UseLlm)),
    rule("GET", "/usage/events", Requires(ViewUsage)),
    rule("GET", "/usage/summary", Requires(ViewUsage)),
    rule("GET", "/budgets", Requires(ViewUsage)),
    rule("GET", "/governance/constitution", Requires(ViewOrg)),
    rule("GET", "/governance/policies", Requires(ViewOrg)),
    rule("PUT", "/governance/policies", Requires(ManageGovernance)),
    rule("GET", "/governance/policies/history", Requires(ViewOrg)),
    rule(
        "POST",
        "/governance/policies/rollback",
        Requires(ManageGovernance),
    ),
    rule("GET", "/personas", Requires(ViewOrg)),
    rule("POST", "/personas", Requires(ManagePersonas)),
    rule("GET", "/personas/{id}", Requires(ViewOrg)),
    rule("PUT", "/personas/{id}", Requires(ManagePersonas)),
    rule("DELETE", "/personas/{id}", Requires(ManagePersonas)),
    rule("GET", "/personas/{id}/history", Requires(ViewOrg)),
    rule("POST", "/personas/{id}/rollback", Requires(ManagePersonas)),
    rule("GET", "/org/chart", Requires(ViewOrg)),
    rule("POST", "/approvals/submit", Requires(SubmitApprovals)),
    rule(
        "PATCH",
        "/approvals/{id}/decision",
        Requires(DecideApprovals),
    ),
    rule("GET", "/ops/approvals", Requires(ViewOrg)),
    rule("GET", "/approvals", Requires(ViewOrg)),
    rule("GET", "/approvals/{id}", Requires(ViewOrg)),
    rule("POST", "/approvals/{id}/approve", Requires(DecideApprovals)),
    rule("POST", "/approvals/{id}/reject", Requires(DecideApprovals)),
    rule("GET", "/linear/teams", Requires(ViewOrg)),
    rule("GET", "/linear/cycles", Requires(ViewOrg)),
    rule("GET", "/linear/issues", Requires(ViewOrg)),
    rule("POST", "/linear/issues", Requires(CreateLinearIssues)),
    rule("POST", "/meetings/standup", Requires(HoldMeetings)),
    rule("POST", "/meetings/brainstorm", Requires(HoldMeetings)),
    rule("POST", "/meetings/allhands", Requires(HoldMeetings)),
    rule("GET", "/ops/minutes", Requires(ViewOrg)),
    rule("POST", "/hiring/plan", Requires(StartRuns)),
    rule("POST", "/hiring/plans/{id}/apply", Requires(ManagePersonas)),
    rule("GET", "/artifacts", Requires(ViewOrg)),
    rule("GET", "/artifacts/search", Requires(ViewOrg)),
    rule("GET", "/artifacts/{id}", Requires(ViewOrg)),
    rule("GET", "/artifacts/{id}/content", Requires(ViewOrg)),
    rule("GET", "/workflows", Requires(ViewOrg)),
    rule("POST", "/workflows", Requires(StartRuns)),
    rule("GET", "/workflows/{name}", Requires(ViewOrg)),
    rule("POST", "/workflows/{name}/runs", Requires(StartRuns)),
    rule("POST", "/workflows/run", Requires(StartRuns)),
    rule("GET", "/runs/{id}/checkpoints", Requires(ViewRuns)),
    rule(
        "POST",
        "/orchestration/dag/meeting_cycle",
        Requires(StartRuns),
    ),
    rule(
        "POST",
        "/orchestration/langgraph/meeting_cycle",
        Requires(StartRuns),
    ),
    rule(
        "POST",
        "/orchestration/crewai/brainstorm",
        Requires(StartRuns),
    ),
    rule(
        "POST",
        "/orchestration/autogen/brainstorm",
        Requires(StartRuns),
    ),
    rule("GET", "/schedules", Requires(ViewRuns)),
    rule("POST", "/schedules", Requires(ManageAutomations)),
    rule("GET", "/schedules/{id}", Requires(ViewRuns)),
    rule("PUT", "/schedules/{id}", Requires(ManageAutomations)),
    rule("DELETE", "/schedules/{id}", Requires(ManageAutomations)),
    rule("GET", "/schedules/{id}/runs", Requires(ViewRuns)),
    rule("GET", "/triggers", Requires(ViewRuns)),
    rule("POST", "/triggers", Requires(ManageAutomations)),
    rule("GET", "/triggers/{id}", Requires(ViewRuns)),
    rule("PUT", "/triggers/{id}", Requires(ManageAutomations)),
    rule("DELETE", "/triggers/{id}", Requires(ManageAutomations)),
    rule("GET", "/triggers/{id}/runs", Requires(ViewRuns)),
    // Authenticated by the trigger's signature scheme, not by a vorg credential.
    rule("POST", "/hooks/{hook_id}", Public),
    rule("GET", "/webhooks", Requires(ManageWebhooks)),
    rule("POST", "/webhooks", Requires(ManageWebhooks)),
    rule("GET", "/webhooks/{id}", Requires(ManageWebhooks)),
    rule("PUT", "/webhooks/{id}", Requires(ManageWebhooks)),
    rule("DELETE", "/webhooks/{id}", Requires(ManageWebhooks)),
    rule("GET", "/webhooks/{id}/deliveries", Requires(ManageWebhooks)),
    rule(
        "GET",
        "/webhooks/{id}/deliveries/{delivery_id}",
        Requires(ManageWebhooks),
    ),
    rule(
        "POST",
        "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        Requires(ManageWebhooks),
    ),
    rule("POST", "/webhooks/{id}/test", Requires(ManageWebhooks)),
];

/// The rule for a matched route, if the table has one.
pub fn lookup(method: &Method, path: &str) -> Option<&'static RouteRule> {
    ROUTES
        .iter()
        .find(|r| r.path == path && r.method == method.as_str())
}

/// Enforces [`ROUTES`]: authenticates the caller and checks the permission, or lets a
/// public route through. A route missing from the table is refused (and logged): access is
/// never granted by omission.
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let Some(rule) = lookup(req.method(), &path) else {
        if ROUTES.iter().any(|r| r.path == path) {
            // A known path with a method it does not have: the router answers 405 with
            // `Allow`. Anyone can send these, so they are not worth more than a debug line.
            tracing::debug!(method = %req.method(), path, "method not allowed");
            return next.run(req).await;
        }
        tracing::error!(method = %req.method(), path, "route missing from the access table");
        return ApiError::Refused("this route is not in the access table".into()).into_response();
    };
    let Access::Requires(permission) = rule.access else {
        return next.run(req).await;
    };
    if permission == ViewMetrics && state.config.metrics_public {
        return next.run(req).await;
    }
    let stream_token = path
        .starts_with("/streams/")
        .then(|| auth::query_token(req.uri().query()))
        .flatten();
    let user = match authenticate(&state, req.headers(), stream_token).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if matches!(user.credential, auth::Credential::Session { .. })
        && changes_state
        && !req.headers().contains_key(auth::CSRF_HEADER)
    {
        return ApiError::Refused(format!(
            "a request authenticated by the session cookie that changes state must carry the \
             {} header",
            auth::CSRF_HEADER
        ))
        .into_response();
    }
    if !user.may(permission) {
        return ApiError::Forbidden(permission).into_response();
    }
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|ci| {
            crate::client_ip::client_ip(ci.0.ip(), req.headers(), &state.config.trusted_proxies)
        });
    let rate = match token_gates(&state, &user, ip).await {
        Ok(rate) => rate,
        Err(e) => {
            let mut response = e.into_response();
            if let Some(limit) = user.limits.as_ref().and_then(|l| l.requests_per_minute) {
                rate_headers(&mut response, limit, 0);
            }
            return response;
        }
    };
    if let Some(tool) = mcp_tool(&req) {
        let detail = serde_json::json!({
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "token_id": user.token_id(),
        });
        crate::audit::audit_as(
            &state,
            &user,
            "mcp.tool_call",
            Some(format!("tool:{tool}")),
            detail,
        )
        .await;
    }
    req.extensions_mut().insert(user);
    let mut response = next.run(req).await;
    if let Some((limit, remaining)) = rate {
        rate_headers(&mut response, limit, remaining);
    }
    response
}

/// The MCP tool a request serves (the MCP server names it in a header): such calls are
/// audited with the token as actor, whatever the route, so every tool call leaves a row.
fn mcp_tool(req: &Request) -> Option<String> {
    req.headers()
        .get("x-vorg-mcp-tool")
        .and_then(|v| v.to_str().ok())
        .filter(|t| t.len() <= 64 && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
}

/// An API token's own gates, checked on every request it makes: the client's address must
/// be in its allowed ranges, and its requests this minute (counted in the database, so every
/// process shares the count) within its rate. Answers the rate and what is left of it.
async fn token_gates(
    state: &AppState,
    user: &auth::CurrentUser,
    ip: Option<std::net::IpAddr>,
) -> Result<Option<(u32, u32)>, ApiError> {
    let (Some(limits), Some(token_id)) = (&user.limits, user.token_id()) else {
        return Ok(None);
    };
    if let Some(allowed) = &limits.allowed_ips {
        let inside = ip.is_some_and(|ip| {
            allowed
                .iter()
                .filter_map(|net| crate::client_ip::parse_trusted_proxies(net).ok())
                .flatten()
                .any(|net| net.contains(&ip))
        });
        if !inside {
            return Err(ApiError::Refused(format!(
                "this API token works only from {}; this request came from {}",
                allowed.join(", "),
                ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string())
            )));
        }
    }
    let Some(limit) = limits.requests_per_minute else {
        return Ok(None);
    };
    let now = chrono::Utc::now();
    match state
        .store
        .count_token_request(token_id, vorg_store::rate_minute(now), limit)
        .await?
    {
        Some(count) => Ok(Some((limit, limit.saturating_sub(count)))),
        None => Err(ApiError::Throttled {
            code: "rate_limited",
            detail: format!(
                "this API token may make {limit} requests a minute and has made them; retry \
                 after the minute ends"
            ),
            retry_after_secs: seconds_to_next_minute(now),
        }),
    }
}

/// Seconds until the next rate window opens (at least 1).
pub(crate) fn seconds_to_next_minute(now: chrono::DateTime<chrono::Utc>) -> u64 {
    (60 - now.timestamp().rem_euclid(60)).max(1) as u64
}

/// OpenAI's rate headers, on every answer to a token with a request rate.
fn rate_headers(response: &mut Response, limit: u32, remaining: u32) {
    let reset = format!("{}s", seconds_to_next_minute(chrono::Utc::now()));
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit-requests", limit.into());
    headers.insert("x-ratelimit-remaining-requests", remaining.into());
    if let Ok(v) = reset.parse() {
        headers.insert("x-ratelimit-reset-requests", v);
    }
}
