//! Routes that start a run and answer its output: the original's meeting, hiring and
//! orchestration routes. The route waits for the run (up to `VORG_RUN_WAIT_MS`) and answers
//! the job's typed output plus `run_id`; `Prefer: respond-async`, or a run that outlasts the
//! wait, answers `202` with where to follow it.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use vorg_domain::RunStatus;
use vorg_jobs::{BackgroundJob, RunMeta};
use vorg_store::Run;

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult},
};

/// A run started and not (yet) ended: where to follow it.
#[derive(Serialize, ToSchema)]
pub struct RunAccepted {
    pub run_id: i64,
    pub status: RunStatus,
    /// Where to watch it live (SSE).
    pub stream: String,
}

/// How long a route waits for its run before answering 202 (`VORG_WAIT_MS` in the binary).
fn wait_limit(state: &AppState) -> Duration {
    Duration::from_millis(state.config.run_wait_ms)
}

pub(crate) fn wants_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

/// Waits for `run_id` to end, up to `limit`: woken by the run's status rows on the stream
/// hub (rows first: a status is committed before it is published), with a re-read every 2 s
/// as a safety net, instead of polling the database.
async fn wait_for(state: &AppState, run_id: i64, limit: Duration) -> ApiResult<Option<Run>> {
    use tokio::sync::broadcast::error::RecvError;
    let deadline = tokio::time::Instant::now() + limit;
    // Subscribe before reading: a status committed in between is in one or the other.
    let mut rx = state.hub.subscribe_run(run_id);
    loop {
        let run = state.store.get_run(run_id).await?;
        if run.status().is_terminal() {
            return Ok(Some(run));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let wake = (now + Duration::from_secs(2)).min(deadline);
        loop {
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(live) if live.row.kind == "status" => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    // The hub is shutting down: no more wake-ups, only the re-read.
                    Err(RecvError::Closed) => {
                        tokio::time::sleep_until(wake).await;
                        break;
                    }
                },
                _ = tokio::time::sleep_until(wake) => break,
            }
        }
    }
}

/// Starts `job` for `user` and audits it (`run.start` with the run type and `details`).
pub(crate) async fn start_audited<J: BackgroundJob>(
    state: &AppState,
    user: &CurrentUser,
    job: J,
    summary: &str,
    mut details: serde_json::Value,
) -> ApiResult<Run> {
    let meta = RunMeta {
        summary: Some(summary),
        requested_by: Some(user.id),
        ..RunMeta::default()
    };
    let run = job.start(&state.store, meta).await?;
    if let Some(d) = details.as_object_mut() {
        d.insert("run_type".into(), json!(run.run_type));
    }
    audit_as(
        state,
        user,
        "run.start",
        Some(format!("run:{}", run.id)),
        details,
    )
    .await;
    Ok(run)
}

/// Starts `job` and answers as the original (its output plus `run_id`), or 202 when asked
/// to, or when it outlasts the wait.
pub(crate) async fn run_and_answer<J: BackgroundJob>(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    job: J,
    summary: &str,
) -> ApiResult<Response> {
    let run = start_audited(state, user, job, summary, json!({})).await?;
    let accepted = |status: RunStatus| {
        (
            StatusCode::ACCEPTED,
            Json(RunAccepted {
                run_id: run.id,
                status,
                stream: format!("/streams/runs/{}", run.id),
            }),
        )
            .into_response()
    };
    if wants_async(headers) {
        return Ok(accepted(run.status()));
    }
    let Some(done) = wait_for(state, run.id, wait_limit(state)).await? else {
        return Ok(accepted(RunStatus::Running));
    };
    match done.status() {
        RunStatus::Succeeded => {
            let stored = done.output.map(|o| o.0).unwrap_or_default();
            // The output's own type, so the answer is what the OpenAPI document says.
            let output: J::Output = serde_json::from_value(stored).map_err(|e| {
                ApiError::Internal(anyhow::anyhow!("run {}: its output: {e}", run.id))
            })?;
            let mut out = serde_json::to_value(output)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("run {}: {e}", run.id)))?;
            if let Some(obj) = out.as_object_mut() {
                obj.insert("run_id".into(), json!(run.id));
            }
            Ok(Json(out).into_response())
        }
        status => {
            let error = done.error.unwrap_or_else(|| status.to_string());
            if error.starts_with("budget exceeded") {
                return Err(ApiError::Conflict(format!("run {}: {error}", run.id)));
            }
            Err(ApiError::BadGateway(format!(
                "run {} ended {status}: {error}",
                run.id
            )))
        }
    }
}
