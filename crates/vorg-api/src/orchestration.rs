//! The original's `/orchestration/*` routes: each runs a shipped workflow (`workflows/<file>`
//! of the config folder) on the `dag`, `graph`, `crew` or `chat` engine, waits for it like
//! the meeting routes and answers its `WorkflowOutcome`.

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_services::workflows::WorkflowOutcome;

use crate::{
    AppState,
    auth::CurrentUser,
    error::{ApiError, ApiResult},
    extract::parse_json,
    run_answer::{RunAccepted, run_and_answer},
    workflows::{check_inputs, workflow_run},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dag_meeting_cycle))
        .routes(routes!(graph_meeting_cycle))
        .routes(routes!(crew_brainstorm))
        .routes(routes!(chat_brainstorm))
}

/// Runs a shipped workflow (`workflows/<file>` of the config folder) for an original route:
/// waits for it like the meeting routes (or 202 with `Prefer: respond-async`).
async fn orchestrate(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    file: &str,
    inputs: Value,
) -> ApiResult<Response> {
    let source = state
        .org
        .files()
        .read(&format!("workflows/{file}"))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let wf = vorg_workflow::validate(&source.text).map_err(|p| {
        ApiError::Internal(anyhow::anyhow!(
            "{}: {}",
            source.origin,
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let personas = state.store.list_personas().await?;
    let unknown = vorg_services::workflows::agent_problems(&wf, &personas);
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        return Err(ApiError::Conflict(format!(
            "the organization lacks the personas {} needs: {}",
            source.origin,
            list.join("; ")
        )));
    }
    check_inputs(&wf, &inputs)?;
    let summary = format!("{} ({})", wf.name(), wf.engine());
    let job = workflow_run(&wf, &source.text, None, inputs, user);
    run_and_answer(state, user, headers, job, &summary).await
}

/// The topic of a meeting cycle from the original's context object: its `topic` (or
/// `idea`, `goal`), else the whole context as JSON, else a default.
fn topic_of(context: &Value) -> String {
    for key in ["topic", "idea", "goal", "agenda"] {
        if let Some(t) = context
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        {
            return t.trim().to_owned();
        }
    }
    match context {
        Value::Object(m) if !m.is_empty() => context.to_string(),
        _ => "what the organization should focus on next".to_owned(),
    }
}

fn context_body(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = parse_json(body)?;
    if !v.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    Ok(v)
}

/// The meeting cycle (brainstorms → standup → all-hands) on the `dag` engine; answers the
/// run's output (`results` per step) plus `run_id`.
#[utoipa::path(post, path = "/orchestration/dag/meeting_cycle", tag = "orchestration",
    request_body(content = std::collections::HashMap<String, serde_json::Value>, description = "A context object (`topic`, …)"),
    responses((status = 200, body = WorkflowOutcome, description = "The outcome (with `run_id`)"),
        (status = 202, body = RunAccepted, description = "Still running (or `Prefer: respond-async`)")))]
pub async fn dag_meeting_cycle(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let context = context_body(&body)?;
    let inputs = json!({ "topic": topic_of(&context) });
    orchestrate(&state, &user, &headers, "meeting_cycle.dag.yaml", inputs).await
}

/// The same cycle on the `graph` engine (LangGraph's model), checkpointed after every node.
#[utoipa::path(post, path = "/orchestration/langgraph/meeting_cycle", tag = "orchestration",
    request_body(content = std::collections::HashMap<String, serde_json::Value>, description = "A context object (`topic`, …)"),
    responses((status = 200, body = WorkflowOutcome, description = "The outcome (with `run_id`)"),
        (status = 202, body = RunAccepted, description = "Still running (or `Prefer: respond-async`)")))]
pub async fn graph_meeting_cycle(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let context = context_body(&body)?;
    let inputs = json!({ "topic": topic_of(&context) });
    orchestrate(&state, &user, &headers, "meeting_cycle.graph.yaml", inputs).await
}

#[derive(Deserialize, ToSchema)]
pub struct IdeaBody {
    /// What to brainstorm.
    idea: String,
}

fn idea(body: &[u8]) -> ApiResult<Value> {
    let req: IdeaBody = parse_json(body)?;
    if req.idea.trim().is_empty() {
        return Err(ApiError::invalid("idea", "must not be empty"));
    }
    if req.idea.len() > 4000 {
        return Err(ApiError::invalid("idea", "at most 4000 bytes"));
    }
    Ok(json!({ "topic": req.idea.trim() }))
}

/// A brainstorm by a crew (CrewAI's model): the CEO delegates and reviews.
#[utoipa::path(post, path = "/orchestration/crewai/brainstorm", tag = "orchestration",
    request_body = IdeaBody,
    responses((status = 200, body = WorkflowOutcome, description = "The outcome (with `run_id`)"),
        (status = 202, body = RunAccepted, description = "Still running (or `Prefer: respond-async`)")))]
pub async fn crew_brainstorm(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let inputs = idea(&body)?;
    orchestrate(&state, &user, &headers, "brainstorm.crew.yaml", inputs).await
}

/// A brainstorm as a group chat (AutoGen's model); the transcript is the result.
#[utoipa::path(post, path = "/orchestration/autogen/brainstorm", tag = "orchestration",
    request_body = IdeaBody,
    responses((status = 200, body = WorkflowOutcome, description = "The outcome (with `run_id`)"),
        (status = 202, body = RunAccepted, description = "Still running (or `Prefer: respond-async`)")))]
pub async fn chat_brainstorm(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let inputs = idea(&body)?;
    orchestrate(&state, &user, &headers, "brainstorm.chat.yaml", inputs).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_comes_from_the_context() {
        assert_eq!(topic_of(&json!({ "topic": " pricing " })), "pricing");
        assert_eq!(topic_of(&json!({ "idea": "x" })), "x");
        assert_eq!(topic_of(&json!({ "week": 3 })), r#"{"week":3}"#);
        assert!(topic_of(&json!({})).contains("focus"));
    }
}
