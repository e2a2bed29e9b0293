//! Hiring plans: drafting one is a `hiring_plan` run; applying one hires its team (behind an
//! approval when its cost needs one). The logic is in [`vorg_services::hiring`].

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_services::hiring::{
    Actor, Applied, ApplyError, ApplyPlan, ApprovalNeeded, Hired, HiringPlan, HiringPlanJob,
    HiringRequest,
};

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult},
    extract::{ApiPath, parse_json},
    meetings::invalid,
    run_answer::{RunAccepted, run_and_answer},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hiring_plan))
        .routes(routes!(apply_plan))
}

/// Propose a team for an idea: the model's plan, validated against the hiring-plan schema
/// (repaired by re-asking when invalid), stored as an artifact with its monthly cost.
#[utoipa::path(post, path = "/hiring/plan", tag = "hiring", request_body = HiringRequest,
    responses((status = 200, body = HiringPlan, description = "The plan (with `run_id`)"),
        (status = 202, body = RunAccepted, description = "Still running (or `Prefer: respond-async`)")))]
pub async fn hiring_plan(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: HiringRequest = parse_json(&body)?;
    let problems = req.problems(state.llm.provider_names());
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let job = HiringPlanJob {
        inputs: req,
        requester: user.requester(),
    };
    run_and_answer(&state, &user, &headers, job, "hiring plan").await
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::NotFound => ApiError::NotFound("hiring plan"),
            ApplyError::Invalid { field, reason } => ApiError::invalid(field, reason),
            ApplyError::Conflict(why) => ApiError::Conflict(why),
            ApplyError::Unavailable(why) => ApiError::Unavailable(why),
            e @ ApplyError::Corrupt(..) => ApiError::Internal(anyhow::anyhow!("{e}")),
            ApplyError::Store(e) => e.into(),
        }
    }
}

/// Hire the plan's team: one persona per role. When the plan's monthly cost is above the
/// auto-approve threshold, the first call files an approval (202) and a later call with
/// the approved `approval_id` hires.
#[utoipa::path(post, path = "/hiring/plans/{id}/apply", tag = "hiring",
    params(("id" = i64, Path, description = "The plan's artifact id")),
    request_body(content = Option<ApplyPlan>),
    responses((status = 201, body = Hired, description = "The personas hired"),
        (status = 202, body = ApprovalNeeded, description = "An approval is needed first")))]
pub async fn apply_plan(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: ApplyPlan = if body.iter().all(u8::is_ascii_whitespace) {
        ApplyPlan::default()
    } else {
        parse_json(&body)?
    };
    let blobs = crate::artifacts::blobs(&state)?;
    let actor = Actor {
        user_id: user.id,
        label: &user.email,
    };
    match vorg_services::hiring::apply_plan(&state.store, &state.org, blobs, id, &req, actor)
        .await?
    {
        Applied::NeedsApproval(needed) => Ok((StatusCode::ACCEPTED, Json(needed)).into_response()),
        Applied::Hired(hired) => {
            audit_as(
                &state,
                &user,
                "hiring.apply",
                Some(format!("artifact:{id}")),
                json!({ "created": hired.created }),
            )
            .await;
            Ok((StatusCode::CREATED, Json(hired)).into_response())
        }
    }
}
