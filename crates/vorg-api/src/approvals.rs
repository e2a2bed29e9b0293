//! Approvals routed by the governance policies: submit, list, decide (once, by a role the
//! tier allows, never by the requester).

use axum::{Json, body::Bytes, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::ApprovalStatus;
use vorg_domain::money::{micro_to_usd, usd_to_micro};
use vorg_org::approvals::{DecideError, Decider, Decision, SubmitError};
use vorg_store::{Approval, Page, StoreError};

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult, FieldError},
    extract::{ApiPath, ApiQuery, parse_json},
    pagination::{Paged, page},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(decision))
        .routes(routes!(ops_approvals))
        .routes(routes!(list_approvals))
        .routes(routes!(get_approval))
        .routes(routes!(approve))
        .routes(routes!(reject))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// What the money or action is for.
    description: String,
    /// The amount in USD (0 for an action that costs nothing).
    amount_usd: f64,
    #[serde(default)]
    justification: String,
    /// The kind of request (e.g. `code_deploy`); `required_checks` of this kind apply.
    kind: Option<String>,
    /// The action requested; refused when the policies forbid it.
    action: Option<String>,
    /// Topics such as `legal` or `security` (routed by `escalation_matrix`).
    #[serde(default)]
    tags: Vec<String>,
    /// Checks the requester attests (e.g. `unit_tests_pass`).
    #[serde(default)]
    checks: Vec<String>,
    /// The run waiting on this approval.
    run_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SubmitAnswer {
    id: i64,
    /// `auto_approved` or `pending`.
    status: ApprovalStatus,
    /// `auto_approve_usd` of the policies in force.
    threshold: f64,
    /// Who decides: `approver` or `admin`; absent when approved automatically.
    tier: Option<String>,
    /// The policy rule that routed it.
    rule: String,
    /// Humans the request was escalated to (`escalation_matrix`).
    escalated_to: Vec<String>,
    /// Checks the policies require for this kind that are not yet attested.
    missing_checks: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    id: i64,
    description: String,
    amount_usd: f64,
    justification: String,
    status: ApprovalStatus,
    threshold: f64,
    kind: Option<String>,
    tier: Option<String>,
    rule: String,
    tags: Vec<String>,
    checks: Vec<String>,
    escalated_to: Vec<String>,
    run_id: Option<i64>,
    requested_by: Option<i64>,
    requested_by_email: String,
    decided_by: Option<i64>,
    decision_comment: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

impl From<Approval> for ApprovalView {
    fn from(a: Approval) -> Self {
        ApprovalView {
            id: a.id,
            description: a.description,
            amount_usd: micro_to_usd(a.amount_micro_usd),
            justification: a.justification,
            status: a.status,
            threshold: micro_to_usd(a.threshold_micro_usd),
            kind: a.kind,
            tier: a.tier,
            rule: a.rule,
            tags: a.tags.0,
            checks: a.checks.0,
            escalated_to: a.escalated_to.0,
            run_id: a.run_id,
            requested_by: a.requested_by,
            requested_by_email: a.requested_by_label,
            decided_by: a.decided_by,
            decision_comment: a.decision_comment,
            created_at: a.created_at,
            decided_at: a.decided_at,
            expires_at: a.expires_at,
        }
    }
}

const MAX_TEXT: usize = 10_000;

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, required: bool) {
    if required && value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if value.len() > MAX_TEXT {
        errors.push(FieldError::new(
            field,
            format!("must be at most {MAX_TEXT} bytes"),
        ));
    }
}

/// Ask for an approval. At or under `auto_approve_usd` it is approved at once; otherwise it
/// waits for the tier whose range covers the amount (`human_review_usd` → approver,
/// `executive_review_usd` → admin).
#[utoipa::path(post, path = "/approvals/submit", tag = "approvals", request_body = SubmitRequest,
    responses((status = 200, body = SubmitAnswer),
        (status = 403, description = "The action is forbidden by the policies"),
        (status = 422, description = "Invalid request")))]
pub async fn submit(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<Json<SubmitAnswer>> {
    let req: SubmitRequest = parse_json(&body)?;
    let mut errors = Vec::new();
    check_text(&mut errors, "description", &req.description, true);
    check_text(&mut errors, "justification", &req.justification, false);
    let amount = usd_to_micro(req.amount_usd);
    if amount.is_none() {
        errors.push(FieldError::new(
            "amount_usd",
            "must be a non-negative amount in USD (at most 1e12)",
        ));
    }
    if let Some(run_id) = req.run_id
        && let Err(StoreError::NotFound) = state.store.get_run(run_id).await
    {
        errors.push(FieldError::new(
            "run_id",
            format!("no run with id {run_id}"),
        ));
    }
    for (field, list) in [("tags", &req.tags), ("checks", &req.checks)] {
        if list.len() > 100 || list.iter().any(|s| s.trim().is_empty() || s.len() > 200) {
            errors.push(FieldError::new(
                field,
                "at most 100 non-empty names of up to 200 bytes",
            ));
        }
    }
    let Some(amount) = amount.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    let submitted = vorg_org::approvals::submit_approval(
        &state.store,
        &state.org,
        vorg_org::approvals::ApprovalRequest {
            description: &req.description,
            amount_micro_usd: amount,
            justification: &req.justification,
            kind: req.kind.as_deref(),
            action: req.action.as_deref(),
            tags: req.tags.clone(),
            checks: req.checks.clone(),
            run_id: req.run_id,
            requested_by: Some(user.id),
            requested_by_label: &user.email,
        },
    )
    .await;
    let vorg_org::approvals::Submitted {
        approval: row,
        escalated_to,
        missing_checks: missing,
    } = match submitted {
        Ok(s) => s,
        Err(SubmitError::Forbidden(named)) => {
            audit_as(
                &state,
                &user,
                "approval.forbidden",
                None,
                serde_json::json!({ "action": named }),
            )
            .await;
            return Err(ApiError::Refused(SubmitError::Forbidden(named).to_string()));
        }
        Err(SubmitError::Store(e)) => return Err(e.into()),
    };
    let status = row.status;
    audit_as(
        &state,
        &user,
        "approval.submit",
        Some(format!("approval:{}", row.id)),
        serde_json::json!({ "status": status, "amount_micro_usd": amount, "tier": row.tier }),
    )
    .await;
    Ok(Json(SubmitAnswer {
        id: row.id,
        status: row.status,
        threshold: micro_to_usd(row.threshold_micro_usd),
        tier: row.tier,
        rule: row.rule,
        escalated_to,
        missing_checks: missing,
        expires_at: row.expires_at,
    }))
}

/// Decides `id` as `user` (the rules are [`vorg_org::approvals::decide`]'s) and audits it.
async fn decide(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    approved: bool,
    comment: Option<&str>,
    attested: &[String],
) -> ApiResult<Approval> {
    let decider = Decider {
        user_id: user.id,
        email: &user.email,
        roles: &user.roles,
    };
    let decision = Decision {
        approved,
        comment,
        attested,
    };
    let row = vorg_org::approvals::decide(&state.store, &state.org, decider, id, decision)
        .await
        .map_err(|e| match e {
            DecideError::NotFound => ApiError::NotFound("approval"),
            DecideError::Conflict(why) => ApiError::Conflict(why),
            DecideError::Refused(why) => ApiError::Refused(why),
            DecideError::Store(e) => not_found(e),
        })?;
    audit_as(
        state,
        user,
        if approved {
            "approval.approve"
        } else {
            "approval.reject"
        },
        Some(format!("approval:{id}")),
        serde_json::json!({ "comment": comment, "attested": attested }),
    )
    .await;
    Ok(row)
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("approval"),
        StoreError::Refused(m) => ApiError::Conflict(m),
        other => other.into(),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DecisionQuery {
    /// `true` approves, `false` rejects.
    #[param(value_type = bool)]
    approved: String,
}

#[derive(Serialize, ToSchema)]
pub struct DecisionAnswer {
    id: i64,
    /// `approved` or `rejected`.
    status: ApprovalStatus,
}

/// Decide a pending approval (the original's route).
#[utoipa::path(patch, path = "/approvals/{id}/decision", tag = "approvals",
    params(("id" = i64, Path), DecisionQuery),
    responses((status = 200, body = DecisionAnswer), (status = 404), (status = 409, description = "Already decided")))]
pub async fn decision(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<DecisionQuery>,
) -> ApiResult<Json<DecisionAnswer>> {
    // Parsed here rather than by serde, whose message would name `true` as the field.
    let approved = match q.approved.as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(ApiError::invalid(
                "query.approved",
                format!("must be true or false, not {other:?}"),
            ));
        }
    };
    let row = decide(&state, &user, id, approved, None, &[]).await?;
    Ok(Json(DecisionAnswer {
        id: row.id,
        status: row.status,
    }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    comment: Option<String>,
    /// Checks the decider attests now (e.g. `security_scan_low`).
    #[serde(default)]
    checks: Vec<String>,
}

fn decide_body(body: &Bytes) -> ApiResult<DecideRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecideRequest::default());
    }
    let req: DecideRequest = parse_json(body)?;
    if req.comment.as_deref().is_some_and(|c| c.len() > MAX_TEXT) {
        return Err(ApiError::invalid(
            "comment",
            format!("must be at most {MAX_TEXT} bytes"),
        ));
    }
    Ok(req)
}

/// Approve a pending request, with an optional comment.
#[utoipa::path(post, path = "/approvals/{id}/approve", tag = "approvals",
    params(("id" = i64, Path)), request_body(content = Option<DecideRequest>),
    responses((status = 200, body = ApprovalView), (status = 409, description = "Already decided or checks missing")))]
pub async fn approve(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> ApiResult<Json<ApprovalView>> {
    let req = decide_body(&body)?;
    let row = decide(&state, &user, id, true, req.comment.as_deref(), &req.checks).await?;
    Ok(Json(row.into()))
}

/// Reject a pending request, with an optional comment.
#[utoipa::path(post, path = "/approvals/{id}/reject", tag = "approvals",
    params(("id" = i64, Path)), request_body(content = Option<DecideRequest>),
    responses((status = 200, body = ApprovalView), (status = 409, description = "Already decided")))]
pub async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> ApiResult<Json<ApprovalView>> {
    let req = decide_body(&body)?;
    let row = decide(
        &state,
        &user,
        id,
        false,
        req.comment.as_deref(),
        &req.checks,
    )
    .await?;
    Ok(Json(row.into()))
}

#[derive(Serialize, ToSchema)]
pub struct OpsApproval {
    id: i64,
    description: String,
    amount_usd: f64,
    status: ApprovalStatus,
    created_at: DateTime<Utc>,
    tier: Option<String>,
}

/// The newest approvals (at most 200), as the original listed them.
#[utoipa::path(get, path = "/ops/approvals", tag = "approvals",
    responses((status = 200, body = Vec<OpsApproval>)))]
pub async fn ops_approvals(State(state): State<AppState>) -> ApiResult<Json<Vec<OpsApproval>>> {
    let rows = state
        .store
        .list_approvals(
            None,
            Page {
                limit: 200,
                before: None,
            },
        )
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|a| OpsApproval {
                id: a.id,
                description: a.description,
                amount_usd: micro_to_usd(a.amount_micro_usd),
                status: a.status,
                created_at: a.created_at,
                tier: a.tier,
            })
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// `auto_approved`, `pending`, `approved`, `rejected` or `expired`.
    status: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Approvals, newest first, optionally of one status.
#[utoipa::path(get, path = "/approvals", tag = "approvals", params(ApprovalQuery),
    responses((status = 200, body = Paged<ApprovalView>)))]
pub async fn list_approvals(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ApprovalQuery>,
) -> ApiResult<Json<Paged<ApprovalView>>> {
    let page = page(q.limit, q.cursor.as_deref())?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<ApprovalStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid("query.status", e.to_string()))?;
    let rows = state.store.list_approvals(status, page).await?;
    Ok(Json(Paged::new(rows, page, |a| a.id, ApprovalView::from)))
}

/// One approval.
#[utoipa::path(get, path = "/approvals/{id}", tag = "approvals", params(("id" = i64, Path)),
    responses((status = 200, body = ApprovalView)))]
pub async fn get_approval(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ApprovalView>> {
    let row = state.store.get_approval(id).await.map_err(not_found)?;
    Ok(Json(row.into()))
}
