//! `/runs`: start, list, read, cancel. The work itself happens in a worker (vorg-jobs).

use axum::{Json, body::Bytes, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::RunStatus;
use vorg_store::{Run, RunFilter, RunLog, StoreError};

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult},
    extract::{ApiPath, ApiQuery, parse_json},
    pagination::{Paged, page},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_demo))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(list_run_logs))
        .routes(routes!(cancel_run))
}

/// A run's input, by run type (for the OpenAPI document: the view passes it through).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum RunInput {
    Meeting(vorg_services::meetings::Meeting),
    HiringPlan(vorg_services::hiring::HiringPlanJob),
    Workflow(vorg_services::workflows::WorkflowRun),
    Demo(vorg_jobs::builtin::Demo),
}

/// A run's output, by run type (for the OpenAPI document: the view passes it through).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum RunOutput {
    Minutes(vorg_services::meetings::Minutes),
    HiringPlan(vorg_services::hiring::HiringPlan),
    Workflow(vorg_services::workflows::WorkflowOutcome),
    Demo(vorg_jobs::builtin::DemoOutput),
}

#[derive(Serialize, ToSchema)]
pub struct RunView {
    id: i64,
    run_type: String,
    status: RunStatus,
    summary: Option<String>,
    /// The job's payload: its shape is the run type's (see `RunInput`).
    #[schema(value_type = RunInput)]
    input: serde_json::Value,
    /// What a succeeded run produced: its shape is the run type's (see `RunOutput`).
    #[schema(value_type = Option<RunOutput>)]
    output: Option<serde_json::Value>,
    error: Option<String>,
    requested_by: Option<i64>,
    /// Attempts started so far (a run is retried when its worker fails or is lost).
    attempts: i64,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    cancel_requested_at: Option<DateTime<Utc>>,
    /// What started it when no one did by hand: `schedule` or `trigger`, with its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<RunOrigin>,
}

/// The schedule or trigger that started a run.
#[derive(Serialize, ToSchema)]
pub struct RunOrigin {
    /// `schedule` or `trigger`.
    kind: String,
    id: i64,
    /// Where to read it (`/schedules/{id}` or `/triggers/{id}`).
    link: String,
    /// How many event-started runs led to this one (loop protection).
    depth: i64,
}

impl From<Run> for RunView {
    fn from(r: Run) -> Self {
        RunView {
            status: r.status(),
            id: r.id,
            run_type: r.run_type,
            summary: r.summary,
            input: r.input.0,
            output: r.output.map(|o| o.0),
            error: r.error,
            requested_by: r.requested_by,
            attempts: r.attempts,
            created_at: r.created_at,
            started_at: r.started_at,
            completed_at: r.completed_at,
            cancel_requested_at: r.cancel_requested_at,
            origin: match (r.origin_kind, r.origin_id) {
                (Some(kind), Some(id)) => Some(RunOrigin {
                    link: format!("/{kind}s/{id}"),
                    kind,
                    id,
                    depth: r.trigger_depth,
                }),
                _ => None,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LogView {
    id: i64,
    run_id: i64,
    timestamp: DateTime<Utc>,
    /// `log` for a line, `status` for a status change.
    kind: String,
    level: vorg_domain::LogLevel,
    message: String,
    fields: serde_json::Value,
}

impl From<&RunLog> for LogView {
    fn from(l: &RunLog) -> Self {
        LogView {
            id: l.id,
            run_id: l.run_id,
            timestamp: l.timestamp,
            kind: l.kind.clone(),
            level: l.level,
            message: l.message.clone(),
            fields: l.fields.0.clone(),
        }
    }
}

/// Options of the demo run; all optional, and the body itself may be empty (as in the
/// original, which took none).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DemoOptions {
    /// Steps to run (1 to 1000, default 5).
    steps: Option<u64>,
    /// Pause per step in milliseconds (0 to 60000, default 400).
    step_ms: Option<u64>,
    /// A step that fails (retryable) on every attempt, to watch retries and failure.
    fail_at: Option<u64>,
    /// Attempts before the run fails (1 to 10, default 3).
    max_attempts: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct StartedRun {
    run_id: i64,
    status: RunStatus,
    /// Where to watch it live.
    stream: String,
}

/// A JSON body that may also be empty.
fn optional_body<T: DeserializeOwned + Default>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(body)
}

/// Start the demo run: a few steps whose log streams on `/streams/runs/{run_id}`.
#[utoipa::path(post, path = "/runs/start_demo", tag = "runs", request_body(content = Option<DemoOptions>),
    responses((status = 200, description = "Queued", body = StartedRun)))]
pub async fn start_demo(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<Json<StartedRun>> {
    let opts: DemoOptions = optional_body(&body)?;
    let mut errors = Vec::new();
    if opts.steps.is_some_and(|s| !(1..=1000).contains(&s)) {
        errors.push(crate::error::FieldError::new(
            "steps",
            "must be between 1 and 1000",
        ));
    }
    if opts.step_ms.is_some_and(|s| s > 60_000) {
        errors.push(crate::error::FieldError::new(
            "step_ms",
            "must be at most 60000",
        ));
    }
    let max_attempts = opts.max_attempts.unwrap_or(3);
    if !(1..=10).contains(&max_attempts) {
        errors.push(crate::error::FieldError::new(
            "max_attempts",
            "must be between 1 and 10",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let job = vorg_jobs::builtin::Demo {
        steps: opts.steps,
        step_ms: opts.step_ms,
        fail_at: opts.fail_at,
    };
    let meta = vorg_jobs::RunMeta {
        summary: Some("demo run"),
        requested_by: Some(user.id),
        max_attempts: Some(max_attempts),
        ..vorg_jobs::RunMeta::default()
    };
    let run = vorg_jobs::BackgroundJob::start(&job, &state.store, meta).await?;
    audit_as(
        &state,
        &user,
        "run.start",
        Some(format!("run:{}", run.id)),
        serde_json::json!({ "run_type": "demo" }),
    )
    .await;
    Ok(Json(StartedRun {
        run_id: run.id,
        status: run.status(),
        stream: format!("/streams/runs/{}", run.id),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// queued, running, waiting_approval, succeeded, failed or cancelled.
    status: Option<String>,
    /// The run type, e.g. `demo`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    run_type: Option<String>,
    /// Only runs requested by this user id.
    requested_by: Option<i64>,
    /// RFC 3339: only runs created at or after it.
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339: only runs created before it.
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// Items per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Runs, newest first, filtered by status, type, requester and creation time.
#[utoipa::path(get, path = "/runs", tag = "runs", params(RunQuery),
    responses((status = 200, description = "A page of runs", body = Paged<RunView>)))]
pub async fn list_runs(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<RunQuery>,
) -> ApiResult<Json<Paged<RunView>>> {
    let page = page(q.limit, q.cursor.as_deref())?;
    let status = q
        .status
        .as_deref()
        .map(|s| s.parse::<RunStatus>())
        .transpose()
        .map_err(|e| ApiError::invalid("query.status", e.to_string()))?;
    let filter = RunFilter {
        status,
        run_type: q.run_type,
        requested_by: q.requested_by,
        created_from: q.from,
        created_to: q.to,
    };
    let runs = state.store.list_runs(&filter, page).await?;
    Ok(Json(Paged::new(runs, page, |r| r.id, RunView::from)))
}

pub(crate) fn run_not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("run"),
        other => other.into(),
    }
}

/// One run.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs", params(("id" = i64, Path, description = "Run id")),
    responses((status = 200, description = "The run", body = RunDetail)))]
pub async fn get_run(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RunDetail>> {
    let run = state.store.get_run(id).await.map_err(run_not_found)?;
    let links = state.store.linear_links_for_run(id).await?;
    let (llm_calls, cost) = state.store.run_spend(id).await?;
    Ok(Json(RunDetail {
        run: run.into(),
        linear_issues: links.into_iter().map(Into::into).collect(),
        llm_calls,
        cost_usd: vorg_domain::money::micro_to_usd(cost),
    }))
}

/// A run with what it produced elsewhere.
#[derive(Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    run: RunView,
    /// Linear issues this run created.
    linear_issues: Vec<crate::linear::LinkView>,
    /// Model calls the run made (failed attempts included).
    llm_calls: i64,
    /// What the run's model calls cost, in USD.
    cost_usd: f64,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only rows after this id (the previous page's `next_after`).
    after: Option<i64>,
    /// Rows per page, 1 to 1000 (default 200).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct LogPage {
    items: Vec<LogView>,
    /// Pass as `after` for the next page; absent on the last page.
    next_after: Option<i64>,
}

/// A run's log (lines and status changes), oldest first.
#[utoipa::path(get, path = "/runs/{id}/logs", tag = "runs",
    params(("id" = i64, Path, description = "Run id"), LogQuery),
    responses((status = 200, description = "A page of the run's log", body = LogPage)))]
pub async fn list_run_logs(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "query.limit",
            "must be between 1 and 1000",
        ));
    }
    state.store.get_run(id).await.map_err(run_not_found)?;
    let rows = state
        .store
        .run_logs(id, q.after.unwrap_or(0), limit)
        .await?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(LogPage {
        items: rows.iter().map(LogView::from).collect(),
        next_after,
    }))
}

/// Cancel a run: a queued run ends at once; a running one stops at its next step boundary
/// and ends `cancelled`. 409 when it has already ended; 403 for someone else's run (admins
/// may cancel any).
#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs", params(("id" = i64, Path, description = "Run id")),
    responses((status = 200, description = "The run, cancelled or marked for cancellation", body = RunView)))]
pub async fn cancel_run(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RunView>> {
    let run = state.store.get_run(id).await.map_err(run_not_found)?;
    if run.requested_by != Some(user.id) && !user.is_admin() {
        return Err(ApiError::Refused(format!(
            "run {id} was started by someone else; only its starter or an admin may cancel it"
        )));
    }
    let run = state.store.request_cancel(id).await.map_err(|e| match e {
        StoreError::Rule(rule) => ApiError::Conflict(rule.to_owned()),
        other => run_not_found(other),
    })?;
    audit_as(
        &state,
        &user,
        "run.cancel",
        Some(format!("run:{id}")),
        serde_json::json!({}),
    )
    .await;
    Ok(Json(run.into()))
}
