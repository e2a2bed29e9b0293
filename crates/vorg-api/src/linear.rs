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
use vorg_domain::LogLevel;
use vorg_linear::{Cycle, Issue, IssueFilter, LinearClient, LinearError, NewIssue, Team};
use vorg_store::{LinearLink, NewLinearLink, StoreError};

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult, FieldError},
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIssueRequest {
    team_id: String,
    title: String,
    description: Option<String>,
    /// 0 none, 1 urgent, 2 high, 3 medium, 4 low.
    priority: Option<u8>,
    /// Label names or ids.
    #[serde(default)]
    labels: Vec<String>,
    /// The run that produced this issue (linked both ways).
    run_id: Option<i64>,
    /// The artifact that produced it (e.g. meeting minutes).
    artifact_id: Option<i64>,
    /// Retrying with the same key returns the first issue instead of making another (the
    /// `Idempotency-Key` header works too).
    idempotency_key: Option<String>,
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
#[utoipa::path(post, path = "/linear/issues", tag = "linear", request_body = CreateIssueRequest,
    responses((status = 201, body = CreatedIssueView), (status = 200, description = "Replayed: the key was used before", body = CreatedIssueView),
        (status = 503, description = "Linear is not configured")))]
pub async fn create_issue(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CreatedIssueView>)> {
    let req: CreateIssueRequest = parse_json(&body)?;
    let header_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()?;
    let key = req.idempotency_key.clone().or(header_key);
    let mut errors = Vec::new();
    if req.title.trim().is_empty() || req.title.len() > 500 {
        errors.push(FieldError::new("title", "must be 1 to 500 characters"));
    }
    if req.team_id.trim().is_empty() {
        errors.push(FieldError::new("team_id", "must not be empty"));
    }
    if req.priority.is_some_and(|p| p > 4) {
        errors.push(FieldError::new("priority", "must be 0 (none) to 4 (low)"));
    }
    if key
        .as_deref()
        .is_some_and(|k| k.is_empty() || k.len() > 200)
    {
        errors.push(FieldError::new(
            "idempotency_key",
            "must be 1 to 200 characters",
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
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let c = client(&state)?;
    if let Some(k) = key.as_deref()
        && let Some(link) = state.store.linear_link_by_key(k).await?
    {
        let issue = c
            .issue(&link.linear_issue_id)
            .await
            .map_err(linear_problem)?;
        return Ok((
            StatusCode::OK,
            Json(CreatedIssueView {
                issue,
                replayed: true,
                run_id: link.run_id,
                artifact_id: link.artifact_id,
            }),
        ));
    }
    let label_ids = resolve_labels(c, &req.team_id, &req.labels).await?;
    let input = NewIssue {
        team_id: req.team_id.clone(),
        title: req.title.trim().to_owned(),
        description: req.description.clone(),
        priority: req.priority,
        label_ids,
        ..NewIssue::default()
    };
    let (issue, replayed) = match key.as_deref() {
        Some(k) => {
            let created = c
                .create_issue_idempotent(k, &input)
                .await
                .map_err(linear_problem)?;
            (created.issue, created.replayed)
        }
        None => (c.create_issue(&input).await.map_err(linear_problem)?, false),
    };
    let link = state
        .store
        .link_linear_issue(NewLinearLink {
            idempotency_key: key.as_deref(),
            linear_issue_id: &issue.id,
            identifier: &issue.identifier,
            title: &issue.title,
            url: &issue.url,
            team_id: &req.team_id,
            run_id: req.run_id,
            artifact_id: req.artifact_id,
            created_by: Some(user.id),
        })
        .await?;
    if let Some(run_id) = link.run_id {
        let _ = state
            .store
            .append_run_log(
                run_id,
                LogLevel::Info,
                &format!("Linear issue {} created: {}", issue.identifier, issue.url),
                serde_json::json!({ "linear_issue": issue.identifier, "url": issue.url }),
            )
            .await;
    }
    audit_as(
        &state,
        &user,
        "linear.issue.create",
        Some(format!("linear:{}", issue.identifier)),
        serde_json::json!({ "run_id": req.run_id, "replayed": replayed }),
    )
    .await;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(CreatedIssueView {
            issue,
            replayed,
            run_id: link.run_id,
            artifact_id: link.artifact_id,
        }),
    ))
}

/// Label names (case-insensitive) or ids of `team_id` (or the workspace) → ids.
async fn resolve_labels(
    c: &LinearClient,
    team_id: &str,
    wanted: &[String],
) -> ApiResult<Vec<String>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let labels = c.labels(Some(team_id)).await.map_err(linear_problem)?;
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        match labels
            .iter()
            .find(|l| l.id == *w || l.name.eq_ignore_ascii_case(w))
        {
            Some(l) => ids.push(l.id.clone()),
            None => errors.push(FieldError::new(
                format!("labels[{i}]"),
                format!("no label {w:?} in this team or workspace"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(ApiError::Invalid(errors))
    }
}
