//! Meetings: the original's routes, each a `meeting` run. The body is the services'
//! meeting contract ([`vorg_services::meetings`]); the answer is its minutes plus `run_id`.

use axum::{Json, body::Bytes, extract::State, http::HeaderMap, response::Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_org::Problem;
use vorg_services::meetings::{
    AllhandsBody, BrainstormBody, MeetingBody, Minutes, StandupBody, unknown_participants,
};

use crate::{
    AppState,
    auth::CurrentUser,
    error::{ApiError, ApiResult, FieldError},
    extract::parse_json,
    run_answer::{RunAccepted, run_and_answer},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(standup))
        .routes(routes!(brainstorm))
        .routes(routes!(allhands))
        .routes(routes!(ops_minutes))
}

pub(crate) fn invalid(problems: Vec<Problem>) -> ApiError {
    ApiError::Invalid(
        problems
            .into_iter()
            .map(|p| FieldError::new(p.path, p.reason))
            .collect(),
    )
}

/// Checks the body (sizes first, so a huge list costs no database work; then that every
/// participant is a persona) and holds the meeting.
async fn hold(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    body: MeetingBody,
) -> ApiResult<Response> {
    let problems = body.problems();
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let ids = &body.extras().participants;
    if !ids.is_empty() {
        let known: std::collections::HashSet<String> = state
            .store
            .list_personas()
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        let unknown = unknown_participants(ids, |id| known.contains(id));
        if !unknown.is_empty() {
            return Err(invalid(unknown));
        }
    }
    let kind = body.kind();
    let job = body.into_job(user.requester());
    run_and_answer(state, user, headers, job, kind.as_str()).await
}

/// A stand-up. With content, rendered as given; without, each persona reports yesterday /
/// today / blockers (in parallel) and the facilitator summarises with action items.
#[utoipa::path(post, path = "/meetings/standup", tag = "meetings", request_body = StandupBody,
    responses((status = 200, body = Minutes, description = "The minutes (with `run_id`)"),
        (status = 202, body = RunAccepted, description = "Still running (or `Prefer: respond-async`)")))]
pub async fn standup(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body: StandupBody = parse_json(&body)?;
    hold(&state, &user, &headers, MeetingBody::Standup(body)).await
}

/// A brainstorm. With ideas, rendered as given; without, rounds of ideas in a group chat,
/// a vote, clustering and a decision.
#[utoipa::path(post, path = "/meetings/brainstorm", tag = "meetings", request_body = BrainstormBody,
    responses((status = 200, body = Minutes, description = "The minutes (with `run_id`)"),
        (status = 202, body = RunAccepted, description = "Still running (or `Prefer: respond-async`)")))]
pub async fn brainstorm(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body: BrainstormBody = parse_json(&body)?;
    hold(&state, &user, &headers, MeetingBody::Brainstorm(body)).await
}

/// An all-hands. With updates, rendered as given; without, leadership updates in
/// reporting-line order, then questions and answers.
#[utoipa::path(post, path = "/meetings/allhands", tag = "meetings", request_body = AllhandsBody,
    responses((status = 200, body = Minutes, description = "The minutes (with `run_id`)"),
        (status = 202, body = RunAccepted, description = "Still running (or `Prefer: respond-async`)")))]
pub async fn allhands(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body: AllhandsBody = parse_json(&body)?;
    hold(&state, &user, &headers, MeetingBody::Allhands(body)).await
}

#[derive(Serialize, ToSchema)]
pub struct MinutesEntry {
    id: i64,
    name: String,
    path: Option<String>,
    download: String,
    created_at: chrono::DateTime<chrono::Utc>,
    run_id: Option<i64>,
}

/// The newest minutes (at most 200), as the original listed them.
#[utoipa::path(get, path = "/ops/minutes", tag = "meetings",
    responses((status = 200, body = Vec<MinutesEntry>)))]
pub async fn ops_minutes(State(state): State<AppState>) -> ApiResult<Json<Vec<MinutesEntry>>> {
    let rows = state
        .store
        .list_artifacts(
            Some("minutes"),
            None,
            vorg_store::Page {
                limit: 200,
                before: None,
            },
        )
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|a| MinutesEntry {
                download: format!("/artifacts/{}/content", a.id),
                id: a.id,
                name: a.name,
                path: a.path,
                created_at: a.created_at,
                run_id: a.run_id,
            })
            .collect(),
    ))
}
