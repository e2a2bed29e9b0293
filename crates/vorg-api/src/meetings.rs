//! Meetings and hiring plans: the original's routes, run as runs. The route waits for the
//! run (up to a limit) and answers the original's shape plus `run_id`; `Prefer:
//! respond-async` answers `202 {run_id}` at once.

use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::{RunStatus, money::usd_to_micro};
use vorg_org::Tier;
use vorg_store::{NewApproval, NewRun, PersonaWrite, Run, StoreError};

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult, FieldError},
    extract::{ApiPath, parse_json},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(standup))
        .routes(routes!(brainstorm))
        .routes(routes!(allhands))
        .routes(routes!(ops_minutes))
        .routes(routes!(hiring_plan))
        .routes(routes!(apply_plan))
}

/// What vorg adds to every meeting body.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MeetingExtras {
    /// Persona ids who hold the meeting (default: the leadership).
    #[serde(default)]
    participants: Vec<String>,
    /// A model, alias or `provider/model` for every speaker (default: each persona's).
    model: Option<String>,
    /// Brainstorm rounds (1–5, default 2).
    rounds: Option<u64>,
    /// File the action items as issues in this Linear team (when Linear is configured).
    linear_team_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StandupBody {
    date: Option<String>,
    #[serde(default)]
    attendees: Vec<String>,
    #[serde(default)]
    yesterday: Vec<String>,
    #[serde(default)]
    today: Vec<String>,
    #[serde(default)]
    blockers: Vec<String>,
    #[serde(default)]
    decisions: Vec<String>,
    #[serde(flatten)]
    extras: MeetingExtras,
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    problem: String,
    #[serde(default)]
    option: String,
    #[serde(default)]
    why: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrainstormBody {
    topic: Option<String>,
    owner: Option<String>,
    date: Option<String>,
    #[serde(default)]
    ideas: Vec<String>,
    #[serde(default)]
    top3: Vec<String>,
    decision: Option<Decision>,
    #[serde(flatten)]
    extras: MeetingExtras,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllhandsBody {
    week: Option<Value>,
    date: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    metrics: Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = Object)]
    updates: Map<String, Value>,
    #[serde(default)]
    risks: Vec<String>,
    #[serde(default)]
    lessons: Vec<String>,
    #[serde(flatten)]
    extras: MeetingExtras,
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

/// Starts a run of `job_kind` and answers as the original (its output plus `run_id`), or
/// 202 when asked to, or when it outlasts the wait.
pub(crate) async fn run_and_answer(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    run_type: &str,
    job_kind: &str,
    summary: &str,
    input: Value,
) -> ApiResult<Response> {
    let run = state
        .store
        .create_run(NewRun {
            run_type,
            summary: Some(summary),
            input,
            requested_by: Some(user.id),
            job_kind,
            max_attempts: 2,
        })
        .await?;
    audit_as(
        state,
        user,
        "run.start",
        Some(format!("run:{}", run.id)),
        json!({ "run_type": run_type }),
    )
    .await;
    let accepted = |status: RunStatus| {
        (
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": run.id, "status": status,
                         "stream": format!("/streams/runs/{}", run.id) })),
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
            let mut out = done.output.map(|o| o.0).unwrap_or_else(|| json!({}));
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

/// Most participants of one meeting, and the longest persona id accepted.
const MAX_PARTICIPANTS: usize = 20;
const MAX_PERSONA_ID: usize = 200;

async fn check_extras(state: &AppState, extras: &MeetingExtras) -> ApiResult<()> {
    // Sizes first, so a huge list costs no database work.
    if extras.participants.len() > MAX_PARTICIPANTS {
        return Err(ApiError::invalid(
            "participants",
            format!(
                "at most {MAX_PARTICIPANTS} (got {})",
                extras.participants.len()
            ),
        ));
    }
    let mut errors = Vec::new();
    for (i, id) in extras.participants.iter().enumerate() {
        if id.len() > MAX_PERSONA_ID {
            errors.push(FieldError::new(
                format!("participants[{i}]"),
                format!("at most {MAX_PERSONA_ID} bytes"),
            ));
        }
    }
    if extras.rounds.is_some_and(|r| !(1..=5).contains(&r)) {
        errors.push(FieldError::new("rounds", "must be between 1 and 5"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    if !extras.participants.is_empty() {
        let known: std::collections::HashSet<String> = state
            .store
            .list_personas()
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        for (i, id) in extras.participants.iter().enumerate() {
            if !known.contains(id) {
                errors.push(FieldError::new(
                    format!("participants[{i}]"),
                    format!("no persona {id:?}"),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(errors))
    }
}

fn meeting_input(kind: &str, body: Value, extras: &MeetingExtras, user: &CurrentUser) -> Value {
    user.stamp_run(json!({
        "type": kind,
        "body": body,
        "participants": extras.participants,
        "model": extras.model,
        "rounds": extras.rounds,
        "linear_team_id": extras.linear_team_id,
    }))
}

/// A stand-up. With content, rendered as given; without, each persona reports yesterday /
/// today / blockers (in parallel) and the facilitator summarises with action items.
#[utoipa::path(post, path = "/meetings/standup", tag = "meetings", request_body = StandupBody,
    responses((status = 200, description = "{markdown_path, json_path, markdown, minutes, run_id}"),
        (status = 202, description = "Accepted: {run_id}")))]
pub async fn standup(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: StandupBody = parse_json(&body)?;
    check_extras(&state, &b.extras).await?;
    let content = json!({ "date": b.date, "attendees": b.attendees, "yesterday": b.yesterday,
        "today": b.today, "blockers": b.blockers, "decisions": b.decisions });
    let input = meeting_input("standup", content, &b.extras, &user);
    run_and_answer(
        &state, &user, &headers, "meeting", "meeting", "standup", input,
    )
    .await
}

/// A brainstorm. With ideas, rendered as given; without, rounds of ideas in a group chat,
/// a vote, clustering and a decision.
#[utoipa::path(post, path = "/meetings/brainstorm", tag = "meetings", request_body = BrainstormBody,
    responses((status = 200, description = "{markdown_path, json_path, markdown, minutes, run_id}"),
        (status = 202, description = "Accepted: {run_id}")))]
pub async fn brainstorm(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: BrainstormBody = parse_json(&body)?;
    check_extras(&state, &b.extras).await?;
    if b.topic.as_deref().is_some_and(|t| t.len() > 2000) {
        return Err(ApiError::invalid("topic", "must be at most 2000 bytes"));
    }
    let content = json!({ "topic": b.topic, "owner": b.owner, "date": b.date, "ideas": b.ideas,
        "top3": b.top3, "decision": b.decision.unwrap_or_default() });
    let input = meeting_input("brainstorm", content, &b.extras, &user);
    run_and_answer(
        &state,
        &user,
        &headers,
        "meeting",
        "meeting",
        "brainstorm",
        input,
    )
    .await
}

/// An all-hands. With updates, rendered as given; without, leadership updates in
/// reporting-line order, then questions and answers.
#[utoipa::path(post, path = "/meetings/allhands", tag = "meetings", request_body = AllhandsBody,
    responses((status = 200, description = "{markdown_path, json_path, markdown, minutes, run_id}"),
        (status = 202, description = "Accepted: {run_id}")))]
pub async fn allhands(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: AllhandsBody = parse_json(&body)?;
    check_extras(&state, &b.extras).await?;
    let content = json!({ "week": b.week, "date": b.date, "metrics": b.metrics,
        "updates": b.updates, "risks": b.risks, "lessons": b.lessons });
    let input = meeting_input("allhands", content, &b.extras, &user);
    run_and_answer(
        &state, &user, &headers, "meeting", "meeting", "allhands", input,
    )
    .await
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HiringRequest {
    idea: String,
    budget_usd: f64,
    deadline_days: u32,
    goal: String,
    provider: Option<String>,
    model: Option<String>,
}

/// Propose a team for an idea: the model's plan, validated against the hiring-plan schema
/// (repaired by re-asking when invalid), stored as an artifact with its monthly cost.
#[utoipa::path(post, path = "/hiring/plan", tag = "hiring", request_body = HiringRequest,
    responses((status = 200, description = "{roles, workstreams, llm_output, inputs, run_id, plan_id, estimated_monthly_cost_usd}"),
        (status = 202, description = "Accepted: {run_id}")))]
pub async fn hiring_plan(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: HiringRequest = parse_json(&body)?;
    let mut errors = Vec::new();
    for (field, value) in [("idea", &req.idea), ("goal", &req.goal)] {
        if value.trim().is_empty() || value.len() > 5000 {
            errors.push(FieldError::new(field, "must be 1 to 5000 bytes"));
        }
    }
    if usd_to_micro(req.budget_usd).is_none() {
        errors.push(FieldError::new(
            "budget_usd",
            "must be a non-negative amount in USD",
        ));
    }
    if req.deadline_days == 0 || req.deadline_days > 3650 {
        errors.push(FieldError::new(
            "deadline_days",
            "must be between 1 and 3650",
        ));
    }
    if let Some(p) = &req.provider
        && !state.llm.provider_names().any(|n| n == p)
    {
        errors.push(FieldError::new(
            "provider",
            format!("{p:?} is not a configured provider"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let input = json!({ "inputs": {
        "idea": req.idea, "budget_usd": req.budget_usd, "deadline_days": req.deadline_days,
        "goal": req.goal, "provider": req.provider, "model": req.model,
    }});
    let input = user.stamp_run(input);
    run_and_answer(
        &state,
        &user,
        &headers,
        "hiring_plan",
        "hiring_plan",
        "hiring plan",
        input,
    )
    .await
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The persona the new hires report to.
    reports_to: Option<String>,
    /// An approved approval for this plan (when its cost needed one).
    approval_id: Option<i64>,
}

/// Hire the plan's team: one persona per role. When the plan's monthly cost is above the
/// auto-approve threshold, the first call files an approval (202) and a later call with
/// the approved `approval_id` hires.
#[utoipa::path(post, path = "/hiring/plans/{id}/apply", tag = "hiring",
    params(("id" = i64, Path, description = "The plan's artifact id")),
    request_body(content = Option<ApplyRequest>),
    responses((status = 201, description = "{created: [persona ids], skipped}"),
        (status = 202, description = "An approval is needed: {approval_id, status, tier}")))]
pub async fn apply_plan(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: ApplyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ApplyRequest::default()
    } else {
        parse_json(&body)?
    };
    let artifact = match state.store.get_artifact(id).await {
        Ok(a) if a.kind == "hiring_plan" => a,
        Ok(_) | Err(StoreError::NotFound) => return Err(ApiError::NotFound("hiring plan")),
        Err(e) => return Err(e.into()),
    };
    if let Some(m) = &req.reports_to
        && let Err(StoreError::NotFound) = state.store.get_persona(m).await
    {
        return Err(ApiError::invalid("reports_to", format!("no persona {m:?}")));
    }
    let blobs = crate::artifacts::blobs(&state)?;
    let key = artifact.path.clone().unwrap_or_default();
    let bytes = blobs
        .get(&key)
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading the plan: {e}")))?;
    let plan: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored plan {id}: {e}")))?;
    let cost = plan
        .get("estimated_monthly_cost_usd")
        .and_then(Value::as_f64)
        .and_then(usd_to_micro)
        .unwrap_or(0);
    let policies = state.org.policies().await?;
    let routing = policies.route(cost);
    if let Some(tier) = routing.tier {
        let approved = match req.approval_id {
            None => false,
            Some(aid) => {
                let a = state.store.get_approval(aid).await.map_err(|e| match e {
                    StoreError::NotFound => ApiError::invalid("approval_id", "no such approval"),
                    other => other.into(),
                })?;
                if a.kind.as_deref() != Some("hiring") || a.run_id != artifact.run_id {
                    return Err(ApiError::invalid(
                        "approval_id",
                        "is not the approval of this plan",
                    ));
                }
                if a.status != vorg_domain::ApprovalStatus::Approved {
                    return Err(ApiError::Conflict(format!(
                        "approval {aid} is {}; the plan can be applied once it is approved",
                        a.status
                    )));
                }
                true
            }
        };
        if !approved {
            let row = state
                .store
                .create_approval(NewApproval {
                    description: &format!("Apply hiring plan {id} ({})", artifact.name),
                    amount_micro_usd: cost,
                    justification: plan["inputs"]["goal"].as_str().unwrap_or(""),
                    status: vorg_domain::ApprovalStatus::Pending,
                    threshold_micro_usd: policies.auto_approve,
                    kind: Some("hiring"),
                    tier: Some(tier.as_str()),
                    rule: &routing.rule,
                    tags: vec![],
                    checks: vec![],
                    escalated_to: vec![],
                    run_id: artifact.run_id,
                    requested_by: Some(user.id),
                    requested_by_label: &user.email,
                    expires_at: None,
                })
                .await?;
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "approval_id": row.id, "status": "pending",
                    "tier": Tier::as_str(tier), "rule": routing.rule,
                    "estimated_monthly_cost_usd": vorg_domain::money::micro_to_usd(cost) })),
            )
                .into_response());
        }
    }
    let mut created = Vec::new();
    let mut skipped = Vec::new();
    for role in plan["roles"].as_array().into_iter().flatten() {
        let role_id = role["role_id"].as_str().unwrap_or("role");
        let slug: String = role_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let persona_id = format!("{slug}.hired.v1");
        let monthly = role["monthly_cost_usd"].as_f64().unwrap_or(0.0);
        let doc = json!({
            "id": persona_id,
            "name": role_id.replace(['_', '-'], " "),
            "title": role_id,
            "reports_to": req.reports_to,
            "goals": [role["mission"]],
            "skills": role["tools"].as_array().cloned().unwrap_or_default(),
            "tools": role["tools"].as_array().cloned().unwrap_or_default(),
            "risk_limits": { "max_spend": ((monthly / 30.0) * 100.0).round() / 100.0 },
            "context_pack": [],
            "hired_from_plan": id,
        });
        let persona = vorg_org::Persona::validate(doc, &state.org.schemas().persona, None)
            .map_err(|p| {
                ApiError::Conflict(format!(
                    "role {role_id} does not make a valid persona: {}",
                    p.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            })?;
        match state
            .store
            .save_persona(
                persona.id(),
                persona.doc(),
                persona.reports_to(),
                &user.email,
                PersonaWrite::Create,
            )
            .await
        {
            Ok(_) => created.push(persona.id().to_owned()),
            Err(StoreError::Refused(_)) => skipped.push(persona.id().to_owned()),
            Err(e) => return Err(e.into()),
        }
    }
    audit_as(
        &state,
        &user,
        "hiring.apply",
        Some(format!("artifact:{id}")),
        json!({ "created": created }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "created": created, "skipped": skipped })),
    )
        .into_response())
}
