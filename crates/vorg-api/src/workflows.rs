//! Workflows: saved definitions (versioned by name), runs of them, ad hoc runs, and the
//! original's `/orchestration/*` routes, which run the shipped workflows on the `dag`,
//! `graph`, `crew` and `chat` engines.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::Permission;
use vorg_services::workflows::WorkflowRun;
use vorg_store::{NewWorkflowVersion, StoreError, WorkflowVersion};
use vorg_workflow::{Problem, Workflow};

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult, FieldError},
    extract::{ApiPath, ApiQuery, parse_json},
    org::yaml_text,
    run_answer::start_audited,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workflows, save_workflow))
        .routes(routes!(get_workflow))
        .routes(routes!(start_saved))
        .routes(routes!(start_adhoc))
        .routes(routes!(run_checkpoints))
}

/// The largest workflow document accepted.
const MAX_SOURCE_BYTES: usize = 256 * 1024;

#[derive(Serialize, ToSchema)]
pub struct WorkflowSummary {
    name: String,
    version: i64,
    engine: String,
    description: Option<String>,
    created_by: Option<i64>,
    created_at: DateTime<Utc>,
}

impl From<&WorkflowVersion> for WorkflowSummary {
    fn from(w: &WorkflowVersion) -> Self {
        WorkflowSummary {
            name: w.name.clone(),
            version: w.version,
            engine: w.engine.clone(),
            description: w.description.clone(),
            created_by: w.created_by,
            created_at: w.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WorkflowList {
    items: Vec<WorkflowSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkflowDetail {
    #[serde(flatten)]
    summary: WorkflowSummary,
    /// The document as it was saved (YAML or JSON).
    source: String,
    /// The document as JSON.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    definition: Value,
    /// Every version, newest first.
    versions: Vec<WorkflowSummary>,
}

/// The problems of a document as a 422: schema and semantic problems at their paths, then
/// agents that name no persona.
async fn check(state: &AppState, source: &str) -> ApiResult<Workflow> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(ApiError::invalid(
            "body",
            format!("at most {MAX_SOURCE_BYTES} bytes"),
        ));
    }
    // Parsing and validating a client's document is CPU work: off the async threads.
    let owned = source.to_owned();
    let wf = tokio::task::spawn_blocking(move || vorg_workflow::validate(&owned))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("validating a workflow: {e}")))?
        .map_err(problems)?;
    let personas = state.store.list_personas().await?;
    let unknown = vorg_services::workflows::agent_problems(&wf, &personas);
    if !unknown.is_empty() {
        return Err(problems(unknown));
    }
    Ok(wf)
}

fn problems(list: Vec<Problem>) -> ApiError {
    ApiError::Invalid(
        list.into_iter()
            .map(|p| FieldError::new(p.path, p.message))
            .collect(),
    )
}

/// Saved workflows, the latest version of each.
#[utoipa::path(get, path = "/workflows", tag = "workflows",
    responses((status = 200, body = WorkflowList)))]
pub async fn list_workflows(State(state): State<AppState>) -> ApiResult<Json<WorkflowList>> {
    let rows = state.store.list_workflows().await?;
    Ok(Json(WorkflowList {
        items: rows.iter().map(WorkflowSummary::from).collect(),
    }))
}

/// Saves a workflow document (YAML or JSON, `engine:` and the engine's fields) as the next
/// version of its `name`. A bad document gets a 422 listing every problem with its path.
#[utoipa::path(post, path = "/workflows", tag = "workflows",
    request_body(content = String, content_type = "application/yaml",
        description = "A workflow document (see schemas/workflow.schema.json)"),
    responses((status = 201, body = WorkflowSummary),
        (status = 422, description = "Every problem of the document, at its path")))]
pub async fn save_workflow(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<WorkflowSummary>)> {
    let source = yaml_text(&headers, &body)?;
    let wf = check(&state, source).await?;
    may_publish(&state, &user, wf.name()).await?;
    let description = match &wf {
        Workflow::Dag(w) => w.description.as_deref(),
        Workflow::Graph(w) => w.description.as_deref(),
        Workflow::Crew(w) => w.description.as_deref(),
        Workflow::Chat(w) => w.description.as_deref(),
    };
    let row = state
        .store
        .save_workflow(NewWorkflowVersion {
            name: wf.name(),
            engine: wf.engine(),
            description,
            source,
            created_by: Some(user.id),
        })
        .await?;
    audit_as(
        &state,
        &user,
        "workflow.save",
        Some(format!("workflow:{}", row.name)),
        json!({ "version": row.version, "engine": row.engine }),
    )
    .await;
    Ok((StatusCode::CREATED, Json(WorkflowSummary::from(&row))))
}

/// A workflow belongs to whoever saved its first version: only they, or a holder of
/// `manage_workflows`, may publish the versions that its runs will use.
async fn may_publish(state: &AppState, user: &CurrentUser, name: &str) -> ApiResult<()> {
    let versions = state.store.workflow_versions(name).await?;
    let owner = versions
        .iter()
        .min_by_key(|v| v.version)
        .map(|v| v.created_by);
    match owner {
        None => Ok(()),
        Some(owner) if owner == Some(user.id) => Ok(()),
        Some(_) if user.may(Permission::ManageWorkflows) => Ok(()),
        Some(_) => Err(ApiError::Refused(format!(
            "workflow {name:?} belongs to the user who saved its first version; only they, or a \
             holder of the permission {}, may publish new versions (save yours under another name)",
            Permission::ManageWorkflows
        ))),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// A version (default: the latest).
    version: Option<i64>,
}

/// A saved workflow: its document and its versions.
#[utoipa::path(get, path = "/workflows/{name}", tag = "workflows",
    params(("name" = String, Path), VersionQuery),
    responses((status = 200, body = WorkflowDetail), (status = 404)))]
pub async fn get_workflow(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> ApiResult<Json<WorkflowDetail>> {
    let row = state
        .store
        .get_workflow(&name, q.version)
        .await
        .map_err(not_found)?;
    let versions = state.store.workflow_versions(&name).await?;
    let source = row.source.clone();
    let definition =
        tokio::task::spawn_blocking(move || vorg_domain::yaml::parse_untrusted(&source).ok())
            .await
            .ok()
            .flatten()
            .unwrap_or(Value::Null);
    Ok(Json(WorkflowDetail {
        summary: WorkflowSummary::from(&row),
        source: row.source,
        definition,
        versions: versions.iter().map(WorkflowSummary::from).collect(),
    }))
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("workflow"),
        other => other.into(),
    }
}

/// What a run of a workflow is given.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RunOptions {
    /// The workflow's inputs (a `graph`: initial values of its state keys).
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    inputs: Option<Value>,
    /// A saved version (default: the latest).
    version: Option<i64>,
    /// A model, alias or `provider/model` for every turn (default: each persona's).
    model: Option<String>,
    /// The Linear team `create_linear_issue` files into (default: the first team).
    linear_team_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdhocRun {
    /// The workflow document: a JSON object, or YAML/JSON text.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    workflow: Value,
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    inputs: Option<Value>,
    model: Option<String>,
    linear_team_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StartedRun {
    run_id: i64,
    status: vorg_domain::RunStatus,
    stream: String,
    workflow: String,
    engine: String,
    version: Option<i64>,
}

/// The job that runs `wf` (its document `source`) for `user`.
pub(crate) fn workflow_run(
    wf: &Workflow,
    source: &str,
    version: Option<i64>,
    inputs: Value,
    user: &CurrentUser,
) -> WorkflowRun {
    WorkflowRun {
        source: source.to_owned(),
        name: wf.name().to_owned(),
        version,
        inputs,
        model: None,
        linear_team_id: None,
        requester: user.requester(),
    }
}

pub(crate) fn check_inputs(wf: &Workflow, inputs: &Value) -> ApiResult<()> {
    let list = vorg_services::workflows::input_problems(wf, inputs);
    if list.is_empty() {
        Ok(())
    } else {
        Err(problems(list))
    }
}

async fn start_run(
    state: &AppState,
    user: &CurrentUser,
    wf: &Workflow,
    job: WorkflowRun,
) -> ApiResult<(StatusCode, Json<StartedRun>)> {
    check_inputs(wf, &job.inputs)?;
    let summary = format!("workflow {} ({})", wf.name(), wf.engine());
    let version = job.version;
    let details = json!({ "workflow": wf.name(), "version": version });
    let run = start_audited(state, user, job, &summary, details).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(StartedRun {
            run_id: run.id,
            status: run.status(),
            stream: format!("/streams/runs/{}", run.id),
            workflow: wf.name().to_owned(),
            engine: wf.engine().to_owned(),
            version,
        }),
    ))
}

/// Starts a run of a saved workflow (its latest version unless `version` is given).
#[utoipa::path(post, path = "/workflows/{name}/runs", tag = "workflows",
    params(("name" = String, Path)), request_body = RunOptions,
    responses((status = 202, body = StartedRun), (status = 404), (status = 422)))]
pub async fn start_saved(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(name): ApiPath<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<StartedRun>)> {
    let opts: RunOptions = if body.iter().all(u8::is_ascii_whitespace) {
        RunOptions::default()
    } else {
        parse_json(&body)?
    };
    let row = state
        .store
        .get_workflow(&name, opts.version)
        .await
        .map_err(not_found)?;
    let wf = check(&state, &row.source).await?;
    let inputs = opts.inputs.unwrap_or_else(|| json!({}));
    let job = WorkflowRun {
        model: opts.model,
        linear_team_id: opts.linear_team_id,
        ..workflow_run(&wf, &row.source, Some(row.version), inputs, &user)
    };
    start_run(&state, &user, &wf, job).await
}

/// Runs a workflow document without saving it.
#[utoipa::path(post, path = "/workflows/run", tag = "workflows", request_body = AdhocRun,
    responses((status = 202, body = StartedRun), (status = 422)))]
pub async fn start_adhoc(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<StartedRun>)> {
    let req: AdhocRun = parse_json(&body)?;
    let source = match &req.workflow {
        Value::String(s) => s.clone(),
        Value::Object(_) => req.workflow.to_string(),
        _ => {
            return Err(ApiError::invalid(
                "workflow",
                "must be a workflow document (an object, or YAML/JSON text)",
            ));
        }
    };
    let wf = check(&state, &source).await.map_err(|e| match e {
        ApiError::Invalid(list) => ApiError::Invalid(
            list.into_iter()
                .map(|f| FieldError::new(format!("workflow.{}", f.field), f.message))
                .collect(),
        ),
        other => other,
    })?;
    let inputs = req.inputs.unwrap_or_else(|| json!({}));
    let job = WorkflowRun {
        model: req.model,
        linear_team_id: req.linear_team_id,
        ..workflow_run(&wf, &source, None, inputs, &user)
    };
    start_run(&state, &user, &wf, job).await
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointView {
    steps: i64,
    node: String,
    next: Option<String>,
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    state: Value,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointList {
    items: Vec<CheckpointView>,
    /// Pass as `after` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointQuery {
    /// Checkpoints per page, 1 to 50 (default 20; each holds at most 256 KiB of state).
    limit: Option<i64>,
    /// `next_cursor` of the previous page: checkpoints after that step.
    after: Option<i64>,
}

/// The checkpoints of a `graph` run: the state after every node, in order, a page at a time.
#[utoipa::path(get, path = "/runs/{id}/checkpoints", tag = "runs",
    params(("id" = i64, Path), CheckpointQuery),
    responses((status = 200, body = CheckpointList), (status = 404)))]
pub async fn run_checkpoints(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<CheckpointQuery>,
) -> ApiResult<Json<CheckpointList>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::invalid("query.limit", "must be between 1 and 50"));
    }
    let after = q.after.unwrap_or(0).max(0);
    state
        .store
        .get_run(id)
        .await
        .map_err(crate::runs::run_not_found)?;
    let rows = state.store.list_checkpoints(id, after, limit).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|c| c.steps.to_string()))
        .flatten();
    Ok(Json(CheckpointList {
        items: rows
            .into_iter()
            .map(|c| CheckpointView {
                steps: c.steps,
                node: c.node,
                next: c.next,
                state: c.state.0,
                created_at: c.created_at,
            })
            .collect(),
        next_cursor,
    }))
}
