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
    rule("DELETE", "/auth/tokens/{id}", Requires(ManageOwnTokens)),
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
    if !permission.granted_to(&user.roles) {
        return ApiError::Forbidden(permission).into_response();
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}
