//! `/schedules`: start a meeting, a saved workflow or a hiring review on a cron timing in a
//! time zone, on the owner's behalf. Each slot starts one run however many processes run.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_automation::{
    Target,
    scheduler::{CatchUp, timing_of},
    timing::{DstGap, Timing},
};
use vorg_store::{ScheduleRow, ScheduleWrite};

use super::{check_name, email_of, may_change, not_found, owner_for, start_error};
use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult},
    extract::{ApiJson, ApiPath},
    runs::RunView,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(get_schedule, replace_schedule, delete_schedule))
        .routes(routes!(schedule_runs))
}

fn default_tz() -> String {
    "UTC".into()
}
fn default_catch_up() -> String {
    "skip".into()
}
fn default_gap() -> String {
    "run".into()
}
fn yes() -> bool {
    true
}

/// A schedule as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// Unique, 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    pub target: Target,
    /// Five fields (minute hour day month weekday) or six with seconds first; names
    /// (`MON`, `JAN`), ranges, lists and steps; `L` for a month's last day.
    #[schema(max_length = 128, example = "0 9 * * MON-FRI")]
    pub cron: String,
    /// An IANA time zone (default `UTC`).
    #[serde(default = "default_tz")]
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    /// Slots missed while no vorg process ran: `skip` them (default) or `run_once` (the
    /// newest of them, once).
    #[serde(default = "default_catch_up")]
    #[schema(example = "skip")]
    pub catch_up: String,
    /// A fixed time that a spring-forward change skips: `run` at the first instant after
    /// the gap (default) or `skip` that day.
    #[serde(default = "default_gap")]
    pub on_dst_gap: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Whose permissions and budgets the runs use (an admin may name another user by
    /// e-mail; default: the caller).
    pub owner: Option<String>,
}

/// A schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    pub id: i64,
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub target: serde_json::Value,
    pub cron: String,
    pub timezone: String,
    pub catch_up: String,
    pub on_dst_gap: String,
    pub enabled: bool,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    /// `api`, or `file` (declared in the config folder's `schedules.yaml`; edit it there).
    pub source: String,
    pub version: i64,
    /// The next slots (five on a single schedule, one in lists), empty while paused.
    pub next_fire_times: Vec<DateTime<Utc>>,
    pub last_slot_at: Option<DateTime<Utc>>,
    /// The run of the last slot fired.
    pub last_run_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

async fn view(state: &AppState, row: ScheduleRow, upcoming: usize) -> ScheduleView {
    let next = match (row.enabled, timing_of(&row)) {
        (true, Ok(t)) => {
            let anchor = DateTime::from_timestamp_millis(row.anchor_ms).unwrap_or_default();
            t.upcoming(anchor.max(Utc::now()), upcoming)
        }
        _ => Vec::new(),
    };
    ScheduleView {
        owner: email_of(state, row.owner_id).await,
        id: row.id,
        name: row.name,
        description: row.description,
        target: row.target.0,
        cron: row.cron,
        timezone: row.timezone,
        catch_up: row.catch_up,
        on_dst_gap: row.on_dst_gap,
        enabled: row.enabled,
        owner_id: row.owner_id,
        source: row.source,
        version: row.version,
        next_fire_times: next,
        last_slot_at: row.last_slot_ms.and_then(DateTime::from_timestamp_millis),
        last_run_id: row.last_run_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Checks a body's fields; answers its timing.
fn check(body: &ScheduleBody) -> ApiResult<Timing> {
    check_name("name", &body.name)?;
    if body.description.chars().count() > 1000 {
        return Err(ApiError::invalid("description", "at most 1000 characters"));
    }
    body.catch_up
        .parse::<CatchUp>()
        .map_err(|e| ApiError::invalid("catch_up", e))?;
    let gap: DstGap = body
        .on_dst_gap
        .parse()
        .map_err(|e| ApiError::invalid("on_dst_gap", e))?;
    Timing::parse(&body.cron, &body.timezone, gap).map_err(|e| ApiError::invalid(e.field, e.reason))
}

/// The row a body writes (made over the API, acting for `owner`).
fn stored<'a>(
    body: &'a ScheduleBody,
    target: &'a serde_json::Value,
    owner: i64,
) -> ScheduleWrite<'a> {
    ScheduleWrite {
        name: body.name.trim(),
        description: &body.description,
        target,
        cron: body.cron.trim(),
        timezone: &body.timezone,
        catch_up: &body.catch_up,
        on_dst_gap: &body.on_dst_gap,
        enabled: body.enabled,
        owner_id: Some(owner),
        source: "api",
    }
}

/// Checks a body and answers whom it acts for: `owner` when named, else whom it acted for
/// so far (an admin pausing another user's schedule does not take it over), else the
/// caller.
async fn write(
    state: &AppState,
    user: &CurrentUser,
    body: &ScheduleBody,
    current: Option<i64>,
) -> ApiResult<i64> {
    check(body)?;
    let named = match (&body.owner, current) {
        (Some(owner), _) => Some(owner.clone()),
        (None, Some(id)) if id != user.id => email_of(state, Some(id)).await,
        (None, _) => None,
    };
    let owner = owner_for(state, user, named.as_deref(), &body.target).await?;
    body.target
        .check(&state.store, None, "target")
        .await
        .map_err(start_error)?;
    Ok(owner)
}

/// Every schedule with its next slot.
#[utoipa::path(get, path = "/schedules", tag = "automation",
    responses((status = 200, body = Vec<ScheduleView>)))]
pub async fn list_schedules(State(state): State<AppState>) -> ApiResult<Json<Vec<ScheduleView>>> {
    let mut out = Vec::new();
    for row in state.store.list_schedules().await? {
        out.push(view(&state, row, 1).await);
    }
    Ok(Json(out))
}

/// Creates a schedule. The caller needs the permission to start its target (and an
/// admin may make it act for another user who holds it).
#[utoipa::path(post, path = "/schedules", tag = "automation", request_body = ScheduleBody,
    responses((status = 201, body = ScheduleView), (status = 409, description = "The name is taken"),
        (status = 422, description = "A field is invalid")))]
pub async fn create_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let owner = write(&state, &user, &body, None).await?;
    let target = serde_json::to_value(&body.target).map_err(|e| ApiError::Internal(e.into()))?;
    let row = state
        .store
        .create_schedule(&stored(&body, &target, owner))
        .await
        .map_err(|e| match e {
            vorg_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("a schedule named {:?} exists", body.name.trim()))
            }
            other => other.into(),
        })?;
    audit_as(
        &state,
        &user,
        "schedule.create",
        Some(format!("schedule:{}", row.id)),
        json!({ "name": row.name, "cron": row.cron, "timezone": row.timezone }),
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(&state, row, 5).await)))
}

/// A schedule with its next five slots.
#[utoipa::path(get, path = "/schedules/{id}", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = ScheduleView), (status = 404)))]
pub async fn get_schedule(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ScheduleView>> {
    let row = state
        .store
        .get_schedule(id)
        .await
        .map_err(not_found("schedule"))?;
    Ok(Json(view(&state, row, 5).await))
}

async fn owned(state: &AppState, user: &CurrentUser, id: i64) -> ApiResult<ScheduleRow> {
    let row = state
        .store
        .get_schedule(id)
        .await
        .map_err(not_found("schedule"))?;
    may_change(user, row.owner_id)?;
    if row.source == "file" {
        return Err(ApiError::Conflict(format!(
            "schedule {:?} is declared in the config folder's schedules.yaml: change it there",
            row.name
        )));
    }
    Ok(row)
}

/// Replaces a schedule (pausing with `enabled: false`). Enabling it again, or changing its
/// timing, counts slots from now on.
#[utoipa::path(put, path = "/schedules/{id}", tag = "automation", params(("id" = i64, Path)),
    request_body = ScheduleBody,
    responses((status = 200, body = ScheduleView), (status = 404), (status = 409), (status = 422)))]
pub async fn replace_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<Json<ScheduleView>> {
    let current = owned(&state, &user, id).await?;
    let owner = write(&state, &user, &body, current.owner_id).await?;
    let target = serde_json::to_value(&body.target).map_err(|e| ApiError::Internal(e.into()))?;
    let row = state
        .store
        .update_schedule(id, &stored(&body, &target, owner))
        .await?;
    audit_as(
        &state,
        &user,
        "schedule.update",
        Some(format!("schedule:{id}")),
        json!({ "name": row.name, "enabled": row.enabled, "version": row.version }),
    )
    .await;
    Ok(Json(view(&state, row, 5).await))
}

/// Deletes a schedule (its runs stay).
#[utoipa::path(delete, path = "/schedules/{id}", tag = "automation", params(("id" = i64, Path)),
    responses((status = 204), (status = 404), (status = 409)))]
pub async fn delete_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let row = owned(&state, &user, id).await?;
    state.store.delete_schedule(id).await?;
    audit_as(
        &state,
        &user,
        "schedule.delete",
        Some(format!("schedule:{id}")),
        json!({ "name": row.name }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The runs a schedule started, newest first (at most 100).
#[utoipa::path(get, path = "/schedules/{id}/runs", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<RunView>), (status = 404)))]
pub async fn schedule_runs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<RunView>>> {
    state
        .store
        .get_schedule(id)
        .await
        .map_err(not_found("schedule"))?;
    let runs = state.store.runs_of_origin("schedule", id, 100).await?;
    Ok(Json(runs.into_iter().map(RunView::from).collect()))
}
