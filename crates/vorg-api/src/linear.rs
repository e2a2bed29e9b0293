//! `/linear`: the original's Linear routes (teams, cycles, issues, create), with filters,
//! cursors, idempotent creates and links back to the run that asked. 503 with how to
//! configure it when `LINEAR_API_KEY` is not set.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_linear::{Cycle, Issue, IssueFilter, LinearClient, LinearError, Team};
use vorg_services::linear::{FileError, IssueRequest, check_issue, file_issue};
use vorg_store::LinearLink;

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult},
    extract::{ApiQuery, parse_json},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(teams))
        .routes(routes!(cycles))
        .routes(routes!(list_issues, create_issue))
}

fn client(state: &AppState) -> ApiResult<&LinearClient> {
    state.linear.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "Linear is not configured: set LINEAR_API_KEY (a personal API key from Linear's \
             settings, Security & access) and restart vorg"
                .into(),
        )
    })
}

/// A Linear failure as a problem: their trouble is a 502/503, bad input a 4xx, never 500.
fn linear_problem(e: LinearError) -> ApiError {
    match e {
        LinearError::NotFound { message } => ApiError::invalid("linear", message),
        LinearError::RateLimited {
            retry_after,
            reset_at,
        } => {
            let secs = retry_after
                .map(|d| d.as_secs().max(1))
                .or_else(|| reset_at.map(|r| (r - Utc::now()).num_seconds().max(1) as u64))
                .unwrap_or(60);
            ApiError::RateLimited {
                retry_after_secs: secs,
            }
        }
        LinearError::GraphQl {
            ref code,
            ref messages,
            ..
        } if matches!(
            code.as_deref(),
            Some("INVALID_INPUT" | "BAD_USER_INPUT" | "INPUT_ERROR")
        ) =>
        {
            ApiError::invalid("linear", messages.join("; "))
        }
        LinearError::Auth { .. } => ApiError::BadGateway(e.to_string()),
        other => ApiError::BadGateway(other.to_string()),
    }
}

/// The teams the key can see.
#[utoipa::path(get, path = "/linear/teams", tag = "linear",
    responses((status = 200, body = Vec<Team>), (status = 503, description = "Linear is not configured")))]
pub async fn teams(State(state): State<AppState>) -> ApiResult<Json<Vec<Team>>> {
    let teams = client(&state)?.teams().await.map_err(linear_problem)?;
    Ok(Json(teams))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CyclesQuery {
    team_id: String,
    /// `current` or `upcoming` to narrow the list.
    when: Option<String>,
}

/// The cycles of a team (all, or the current or upcoming ones).
#[utoipa::path(get, path = "/linear/cycles", tag = "linear", params(CyclesQuery),
    responses((status = 200, body = Vec<Cycle>)))]
pub async fn cycles(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CyclesQuery>,
) -> ApiResult<Json<Vec<Cycle>>> {
    let c = client(&state)?;
    let cycles = match q.when.as_deref() {
        None => c.cycles(&q.team_id).await,
        Some("current") => c
            .current_cycle(&q.team_id)
            .await
            .map(|c| c.into_iter().collect()),
        Some("upcoming") => c.upcoming_cycles(&q.team_id).await,
        Some(other) => {
            return Err(ApiError::invalid(
                "query.when",
                format!("{other:?}: expected current or upcoming"),
            ));
        }
    };
    Ok(Json(cycles.map_err(linear_problem)?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IssuesQuery {
    team_id: Option<String>,
    cycle_id: Option<String>,
    /// A workflow state's name, e.g. `In Progress`.
    state: Option<String>,
    assignee_id: Option<String>,
    /// A label's name.
    label: Option<String>,
    /// Issues per page, 1 to 250 (default 50).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IssuePage {
    items: Vec<Issue>,
    next_cursor: Option<String>,
}

/// Issues, filtered by team, cycle, state, assignee and label, a page at a time.
#[utoipa::path(get, path = "/linear/issues", tag = "linear", params(IssuesQuery),
    responses((status = 200, body = IssuePage)))]
pub async fn list_issues(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<IssuesQuery>,
) -> ApiResult<Json<IssuePage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=250).contains(&limit) {
        return Err(ApiError::invalid(
            "query.limit",
            "must be between 1 and 250",
        ));
    }
    let filter = IssueFilter {
        team_id: q.team_id,
        cycle_id: q.cycle_id,
        state_name: q.state,
        assignee_id: q.assignee_id,
        label_name: q.label,
        ..IssueFilter::default()
    };
    let page = client(&state)?
        .issues(&filter, limit, q.cursor.as_deref())
        .await
        .map_err(linear_problem)?;
    Ok(Json(IssuePage {
        next_cursor: page
            .page_info
            .has_next_page
            .then_some(page.page_info.end_cursor)
            .flatten(),
        items: page.nodes,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct CreatedIssueView {
    #[serde(flatten)]
    issue: Issue,
    /// True when this key was used before: the issue is the first one.
    replayed: bool,
    run_id: Option<i64>,
    artifact_id: Option<i64>,
}

/// A link as shown with a run.
#[derive(Serialize, ToSchema)]
pub struct LinkView {
    pub identifier: String,
    pub title: String,
    pub url: String,
    pub linear_issue_id: String,
    pub created_at: DateTime<Utc>,
}

impl From<LinearLink> for LinkView {
    fn from(l: LinearLink) -> Self {
        LinkView {
            identifier: l.identifier,
            title: l.title,
            url: l.url,
            linear_issue_id: l.linear_issue_id,
            created_at: l.created_at,
        }
    }
}

/// Create an issue in Linear (idempotent with a key), linked to the run that asked.
#[utoipa::path(post, path = "/linear/issues", tag = "linear", request_body = IssueRequest,
    responses((status = 201, body = CreatedIssueView), (status = 200, description = "Replayed: the key was used before", body = CreatedIssueView),
        (status = 503, description = "Linear is not configured")))]
pub async fn create_issue(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CreatedIssueView>)> {
    let req: IssueRequest = parse_json(&body)?;
    let header_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()?;
    // Checked before the client, so bad input is a 422 even without Linear.
    let key = req.idempotency_key.as_deref().or(header_key.as_deref());
    let problems = check_issue(&state.store, &req, key).await?;
    if !problems.is_empty() {
        return Err(crate::meetings::invalid(problems));
    }
    let c = client(&state)?;
    let filed = file_issue(&state.store, c, &req, header_key.as_deref(), Some(user.id))
        .await
        .map_err(|e| match e {
            FileError::Invalid(problems) => crate::meetings::invalid(problems),
            FileError::Linear(e) => linear_problem(e),
            FileError::Store(e) => e.into(),
        })?;
    audit_as(
        &state,
        &user,
        "linear.issue.create",
        Some(format!("linear:{}", filed.issue.identifier)),
        serde_json::json!({ "run_id": req.run_id, "replayed": filed.replayed }),
    )
    .await;
    let status = if filed.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(CreatedIssueView {
            issue: filed.issue,
            replayed: filed.replayed,
            run_id: filed.link.run_id,
            artifact_id: filed.link.artifact_id,
        }),
    ))
}
