//! `/triggers`: runs started by an external system's signed delivery to
//! `POST /hooks/{hook_id}` (Standard Webhooks, GitHub, Linear or a plain secret), or by
//! vorg's own events, with values mapped from the delivery into the target.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_automation::{
    Target,
    dispatch::{EVENT_TYPES, is_event_type},
    hooks::{HookError, mapping_problems, receive},
    signature::{Scheme, new_secret},
};
use vorg_store::{TriggerRow, TriggerWrite};

use super::{check_name, email_of, may_change, not_found, owner_for, start_error};
use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult, FieldError},
    extract::{ApiJson, ApiPath},
    runs::RunView,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_triggers, create_trigger))
        .routes(routes!(get_trigger, replace_trigger, delete_trigger))
        .routes(routes!(trigger_runs))
        .routes(routes!(hook))
}

fn default_kind() -> String {
    "webhook".into()
}
fn default_auth() -> String {
    "standard_webhooks".into()
}
fn default_depth() -> i64 {
    3
}
fn yes() -> bool {
    true
}

/// A trigger as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `webhook` (deliveries to `/hooks/{hook_id}`) or `event` (vorg's own events).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// How deliveries are authenticated: `standard_webhooks` (default), `github`, `linear`
    /// or `secret` (the secret in `X-Vorg-Trigger-Secret`).
    #[serde(default = "default_auth")]
    pub auth: String,
    /// The signing secret the sender uses (GitHub's or Linear's, pasted here); default: one
    /// is generated and answered once.
    #[schema(min_length = 16, max_length = 200)]
    pub secret: Option<String>,
    /// Event triggers: the event types that fire it (`run.failed`, `approval.decided`, …).
    #[serde(default)]
    pub events: Vec<String>,
    /// Event triggers: fields the event's data must equal (`{"run_type": "workflow"}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: Value,
    /// Event triggers: how many runs deep a chain of event-started runs may go (1 to 10).
    #[serde(default = "default_depth")]
    #[schema(minimum = 1, maximum = 10)]
    pub max_depth: i64,
    pub target: Target,
    /// Target fields read from the delivery: `{field: "/json/pointer"}` (for event
    /// triggers, into `{"type": …, "data": …}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub mapping: Value,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Whose permissions and budgets runs use (an admin may name another user).
    pub owner: Option<String>,
}

/// A trigger (its secret is never shown again after creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerView {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub auth: String,
    /// Where an external system delivers (webhook triggers).
    pub hook_url: Option<String>,
    pub events: Vec<String>,
    #[schema(value_type = Object)]
    pub filter: Value,
    pub max_depth: i64,
    #[schema(value_type = Object)]
    pub target: Value,
    #[schema(value_type = Object)]
    pub mapping: Value,
    pub enabled: bool,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new trigger and its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerCreated {
    #[serde(flatten)]
    pub trigger: TriggerView,
    pub secret: String,
}

async fn view(state: &AppState, row: TriggerRow) -> TriggerView {
    TriggerView {
        hook_url: (row.kind == "webhook")
            .then(|| format!("{}/hooks/{}", state.config.public_url, row.hook_id)),
        owner: email_of(state, row.owner_id).await,
        id: row.id,
        name: row.name,
        kind: row.kind,
        auth: row.auth,
        events: row
            .events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
        filter: row.filter.0,
        max_depth: row.max_depth,
        target: row.target.0,
        mapping: row.mapping.0,
        enabled: row.enabled,
        owner_id: row.owner_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn check(body: &TriggerBody) -> ApiResult<()> {
    check_name("name", &body.name)?;
    let mut problems = Vec::new();
    match body.kind.as_str() {
        "webhook" => {
            if let Err(e) = body.auth.parse::<Scheme>() {
                problems.push(FieldError::new("auth", e));
            }
            if !body.events.is_empty() {
                problems.push(FieldError::new(
                    "events",
                    "only event triggers listen for events",
                ));
            }
        }
        "event" => {
            if body.events.is_empty() || body.events.len() > EVENT_TYPES.len() {
                problems.push(FieldError::new("events", "name 1 or more event types"));
            }
            for (i, e) in body.events.iter().enumerate() {
                if e == "*" || !is_event_type(e) {
                    problems.push(FieldError::new(
                        format!("events[{i}]"),
                        format!("{e:?} is not one of {}", EVENT_TYPES.join(", ")),
                    ));
                }
            }
        }
        other => problems.push(FieldError::new(
            "kind",
            format!("{other:?} is not one of webhook, event"),
        )),
    }
    if let Some(s) = &body.secret
        && !(16..=200).contains(&s.len())
    {
        problems.push(FieldError::new("secret", "must be 16 to 200 characters"));
    }
    if !(body.filter.is_null() || body.filter.as_object().is_some_and(|f| f.len() <= 20)) {
        problems.push(FieldError::new(
            "filter",
            "must be an object of at most 20 fields",
        ));
    }
    if !(1..=10).contains(&body.max_depth) {
        problems.push(FieldError::new("max_depth", "must be from 1 to 10"));
    }
    if !body.mapping.is_null() {
        for (path, reason) in mapping_problems(&body.mapping) {
            problems.push(FieldError::new(path, reason));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(problems))
    }
}

fn object_or_empty(v: &Value) -> Value {
    if v.is_null() { json!({}) } else { v.clone() }
}

/// A body's stored forms: its target, events, filter and mapping.
struct Parts {
    target: Value,
    events: String,
    filter: Value,
    mapping: Value,
}

impl Parts {
    fn of(body: &TriggerBody) -> ApiResult<Parts> {
        Ok(Parts {
            target: serde_json::to_value(&body.target).map_err(|e| ApiError::Internal(e.into()))?,
            events: body.events.join(","),
            filter: object_or_empty(&body.filter),
            mapping: object_or_empty(&body.mapping),
        })
    }
}

/// The row a body writes, acting for `owner`.
fn stored<'a>(body: &'a TriggerBody, parts: &'a Parts, owner: i64) -> TriggerWrite<'a> {
    TriggerWrite {
        name: body.name.trim(),
        kind: &body.kind,
        auth: if body.kind == "event" {
            "none"
        } else {
            &body.auth
        },
        events: &parts.events,
        filter: &parts.filter,
        max_depth: body.max_depth,
        target: &parts.target,
        mapping: &parts.mapping,
        enabled: body.enabled,
        owner_id: Some(owner),
    }
}

/// Checks a body and answers whom it acts for: `owner` when named, else whom it acted for
/// so far (an admin pausing another user's trigger does not take it over), else the
/// caller.
async fn write(
    state: &AppState,
    user: &CurrentUser,
    body: &TriggerBody,
    current: Option<i64>,
) -> ApiResult<i64> {
    check(body)?;
    let named = match (&body.owner, current) {
        (Some(owner), _) => Some(owner.clone()),
        (None, Some(id)) if id != user.id => email_of(state, Some(id)).await,
        (None, _) => None,
    };
    let owner = owner_for(state, user, named.as_deref(), &body.target).await?;
    // Mapped fields arrive with each delivery; the target alone must already be sound
    // unless a mapping fills what it lacks.
    if body
        .mapping
        .as_object()
        .is_none_or(serde_json::Map::is_empty)
    {
        body.target
            .check(&state.store, None, "target")
            .await
            .map_err(start_error)?;
    }
    Ok(owner)
}

/// Every trigger.
#[utoipa::path(get, path = "/triggers", tag = "automation",
    responses((status = 200, body = Vec<TriggerView>)))]
pub async fn list_triggers(State(state): State<AppState>) -> ApiResult<Json<Vec<TriggerView>>> {
    let mut out = Vec::new();
    for row in state.store.list_triggers().await? {
        out.push(view(&state, row).await);
    }
    Ok(Json(out))
}

/// Creates a trigger; answers its secret once (and, for webhook triggers, the URL to give
/// the sender).
#[utoipa::path(post, path = "/triggers", tag = "automation", request_body = TriggerBody,
    responses((status = 201, body = TriggerCreated), (status = 409), (status = 422)))]
pub async fn create_trigger(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<TriggerBody>,
) -> ApiResult<(StatusCode, Json<TriggerCreated>)> {
    let owner = write(&state, &user, &body, None).await?;
    let parts = Parts::of(&body)?;
    let secret = body.secret.clone().unwrap_or_else(new_secret);
    let row = state
        .store
        .create_trigger(
            &stored(&body, &parts, owner),
            &vorg_automation::dispatch::new_hook_id(),
            &secret,
        )
        .await
        .map_err(|e| match e {
            vorg_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("a trigger named {:?} exists", body.name.trim()))
            }
            other => other.into(),
        })?;
    audit_as(
        &state,
        &user,
        "trigger.create",
        Some(format!("trigger:{}", row.id)),
        json!({ "name": row.name, "kind": row.kind }),
    )
    .await;
    let trigger = view(&state, row).await;
    Ok((
        StatusCode::CREATED,
        Json(TriggerCreated { trigger, secret }),
    ))
}

#[utoipa::path(get, path = "/triggers/{id}", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = TriggerView), (status = 404)))]
pub async fn get_trigger(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TriggerView>> {
    let row = state
        .store
        .get_trigger(id)
        .await
        .map_err(not_found("trigger"))?;
    Ok(Json(view(&state, row).await))
}

/// Replaces a trigger's settings (its hook URL and secret stay).
#[utoipa::path(put, path = "/triggers/{id}", tag = "automation", params(("id" = i64, Path)),
    request_body = TriggerBody,
    responses((status = 200, body = TriggerView), (status = 404), (status = 422)))]
pub async fn replace_trigger(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TriggerBody>,
) -> ApiResult<Json<TriggerView>> {
    let row = state
        .store
        .get_trigger(id)
        .await
        .map_err(not_found("trigger"))?;
    may_change(&user, row.owner_id)?;
    if body.secret.is_some() {
        return Err(ApiError::invalid(
            "secret",
            "a trigger's secret is set when it is created",
        ));
    }
    let owner = write(&state, &user, &body, row.owner_id).await?;
    let parts = Parts::of(&body)?;
    let row = state
        .store
        .update_trigger(id, &stored(&body, &parts, owner))
        .await?;
    audit_as(
        &state,
        &user,
        "trigger.update",
        Some(format!("trigger:{id}")),
        json!({ "name": row.name, "enabled": row.enabled }),
    )
    .await;
    Ok(Json(view(&state, row).await))
}

#[utoipa::path(delete, path = "/triggers/{id}", tag = "automation", params(("id" = i64, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete_trigger(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let row = state
        .store
        .get_trigger(id)
        .await
        .map_err(not_found("trigger"))?;
    may_change(&user, row.owner_id)?;
    state.store.delete_trigger(id).await?;
    audit_as(
        &state,
        &user,
        "trigger.delete",
        Some(format!("trigger:{id}")),
        json!({ "name": row.name }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The runs a trigger started, newest first (at most 100).
#[utoipa::path(get, path = "/triggers/{id}/runs", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<RunView>), (status = 404)))]
pub async fn trigger_runs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<RunView>>> {
    state
        .store
        .get_trigger(id)
        .await
        .map_err(not_found("trigger"))?;
    let runs = state.store.runs_of_origin("trigger", id, 100).await?;
    Ok(Json(runs.into_iter().map(RunView::from).collect()))
}

/// What a hook delivery started.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookAccepted {
    pub run_id: i64,
    /// `false`: this delivery id was seen before, and this is the run it started.
    pub created: bool,
    pub trigger: String,
}

/// An external system's delivery: verified by the trigger's scheme (401 and nothing
/// started when unsigned, wrongly signed or outside the replay window), mapped into the
/// trigger's target and started once per delivery id.
#[utoipa::path(post, path = "/hooks/{hook_id}", tag = "automation",
    params(("hook_id" = String, Path)), request_body(content = Object, description = "The sender's JSON"),
    security(()),
    responses((status = 202, body = HookAccepted), (status = 200, body = HookAccepted, description = "A delivery seen before"),
        (status = 401, description = "Not signed, wrongly signed, or stale"), (status = 404),
        (status = 422, description = "The mapped fields do not make a valid target")))]
pub async fn hook(
    State(state): State<AppState>,
    ApiPath(hook_id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<HookAccepted>)> {
    if hook_id.len() > 64 {
        return Err(ApiError::NotFound("hook"));
    }
    let now = Utc::now().timestamp_millis();
    match receive(&state.store, &hook_id, &headers, &body, now).await {
        Ok((trigger, run, created)) => {
            if created {
                tracing::info!(trigger = %trigger.name, run_id = run.id, "a hook delivery started a run");
            }
            let status = if created {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok((
                status,
                Json(HookAccepted {
                    run_id: run.id,
                    created,
                    trigger: trigger.name,
                }),
            ))
        }
        Err(HookError::NotFound) => Err(ApiError::NotFound("hook")),
        Err(HookError::Unauthorized(e)) => {
            tracing::info!(hook_id, reason = %e, "a hook delivery was refused");
            Err(ApiError::Unauthenticated(match e {
                vorg_automation::signature::VerifyError::Stale => {
                    "the delivery's timestamp is outside the replay window"
                }
                vorg_automation::signature::VerifyError::Mismatch => "the signature does not match",
                _ => "the delivery is not signed as this hook requires",
            }))
        }
        Err(HookError::BadBody(e)) => Err(ApiError::BadRequest(format!("body: not JSON ({e})"))),
        Err(HookError::OwnerRefused(e)) => Err(ApiError::Conflict(format!(
            "the trigger cannot start its target: {e}"
        ))),
        Err(HookError::Start(e)) => Err(start_error(e)),
    }
}
