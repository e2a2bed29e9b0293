//! `/webhooks` (admin): subscriptions to the organization's events, delivered signed per
//! Standard Webhooks, durable and retried, with a delivery log and manual redelivery.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_automation::{
    deliver::url_problem,
    dispatch::{EVENT_TYPES, is_event_type},
    signature::new_secret,
};
use vorg_store::{AttemptRow, DeliveryRow, NewDelivery, WebhookRow, WebhookWrite};

use super::{check_name, not_found};
use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult, FieldError},
    extract::{ApiJson, ApiPath, ApiQuery},
    pagination::{PageQuery, Paged},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, replace_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(redeliver))
        .routes(routes!(test_webhook))
}

fn standard() -> String {
    "standard".into()
}
fn yes() -> bool {
    true
}

/// A subscription as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// An http(s) URL; loopback, private and metadata addresses are refused unless
    /// `VORG_WEBHOOKS_ALLOW_PRIVATE=true`.
    #[schema(max_length = 2000, example = "https://hooks.example.com/vorg")]
    pub url: String,
    /// Event types to receive (`*` for all).
    #[schema(example = json!(["run.failed", "approval.requested"]))]
    pub events: Vec<String>,
    /// `standard` (a Standard Webhooks message, default) or `slack` (an incoming-webhook
    /// message with links to the console).
    #[serde(default = "standard")]
    pub format: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// A subscription (its secret is shown only when it is created).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub format: String,
    pub enabled: bool,
    /// Why vorg disabled it (a 410, or too many failures in a row).
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last success.
    pub failure_streak: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl From<WebhookRow> for WebhookView {
    fn from(w: WebhookRow) -> Self {
        WebhookView {
            id: w.id,
            name: w.name,
            url: w.url,
            events: w.events.split(',').map(str::to_owned).collect(),
            format: w.format,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            failure_streak: w.failure_streak,
            created_at: w.created_at,
            updated_at: w.updated_at,
            last_success_at: w.last_success_at,
            last_failure_at: w.last_failure_at,
        }
    }
}

/// A new subscription and its signing secret (`whsec_…`), shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: WebhookView,
    pub secret: String,
}

/// One delivery of one event to one subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: Option<i64>,
    pub event_type: String,
    /// The `webhook-id` header, the same on every attempt.
    pub msg_id: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        DeliveryView {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event_type: d.event_type,
            msg_id: d.msg_id,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            payload: d.payload.0,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// One attempt at a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    /// The receiver's status (none when it could not be reached).
    pub status_code: Option<i64>,
    /// The start of the receiver's answer (at most 2 KiB shown).
    pub response_excerpt: String,
    pub error: Option<String>,
}

impl From<AttemptRow> for AttemptView {
    fn from(a: AttemptRow) -> Self {
        AttemptView {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            response_excerpt: a.response_excerpt,
            error: a.error,
        }
    }
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempts_log: Vec<AttemptView>,
}

fn check(state: &AppState, body: &WebhookBody) -> ApiResult<()> {
    check_name("name", &body.name)?;
    let mut problems = Vec::new();
    if body.url.len() > 2000 {
        problems.push(FieldError::new("url", "at most 2000 characters"));
    } else if let Some(p) = url_problem(&body.url, state.config.webhooks_allow_private) {
        problems.push(FieldError::new("url", p));
    }
    if body.events.is_empty() || body.events.len() > EVENT_TYPES.len() + 1 {
        problems.push(FieldError::new(
            "events",
            "name 1 or more event types (or \"*\")",
        ));
    }
    for (i, e) in body.events.iter().enumerate() {
        if !is_event_type(e) {
            problems.push(FieldError::new(
                format!("events[{i}]"),
                format!("{e:?} is not \"*\" or one of {}", EVENT_TYPES.join(", ")),
            ));
        }
    }
    if !matches!(body.format.as_str(), "standard" | "slack") {
        problems.push(FieldError::new("format", "must be standard or slack"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(problems))
    }
}

fn write<'a>(body: &'a WebhookBody, events: &'a str) -> WebhookWrite<'a> {
    WebhookWrite {
        name: body.name.trim(),
        url: body.url.trim(),
        events,
        format: &body.format,
        enabled: body.enabled,
    }
}

/// Every subscription.
#[utoipa::path(get, path = "/webhooks", tag = "automation",
    responses((status = 200, body = Vec<WebhookView>)))]
pub async fn list_webhooks(State(state): State<AppState>) -> ApiResult<Json<Vec<WebhookView>>> {
    let rows = state.store.list_webhooks().await?;
    Ok(Json(rows.into_iter().map(WebhookView::from).collect()))
}

/// Subscribes a URL; answers its signing secret once.
#[utoipa::path(post, path = "/webhooks", tag = "automation", request_body = WebhookBody,
    responses((status = 201, body = WebhookCreated), (status = 422)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    check(&state, &body)?;
    let secret = new_secret();
    let events = body.events.join(",");
    let row = state
        .store
        .create_webhook(&write(&body, &events), &secret, Some(user.id))
        .await?;
    audit_as(
        &state,
        &user,
        "webhook.create",
        Some(format!("webhook:{}", row.id)),
        json!({ "name": row.name, "url": row.url, "events": row.events }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            webhook: row.into(),
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = WebhookView), (status = 404)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<WebhookView>> {
    let row = state
        .store
        .get_webhook(id)
        .await
        .map_err(not_found("webhook"))?;
    Ok(Json(row.into()))
}

/// Replaces a subscription's settings; `enabled: true` re-enables one vorg disabled.
#[utoipa::path(put, path = "/webhooks/{id}", tag = "automation", params(("id" = i64, Path)),
    request_body = WebhookBody,
    responses((status = 200, body = WebhookView), (status = 404), (status = 422)))]
pub async fn replace_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<Json<WebhookView>> {
    check(&state, &body)?;
    let events = body.events.join(",");
    let row = state
        .store
        .update_webhook(id, &write(&body, &events))
        .await
        .map_err(not_found("webhook"))?;
    audit_as(
        &state,
        &user,
        "webhook.update",
        Some(format!("webhook:{id}")),
        json!({ "url": row.url, "enabled": row.enabled }),
    )
    .await;
    Ok(Json(row.into()))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "automation", params(("id" = i64, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_webhook(id)
        .await
        .map_err(not_found("webhook"))?;
    audit_as(
        &state,
        &user,
        "webhook.delete",
        Some(format!("webhook:{id}")),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's deliveries, newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "automation",
    params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = Paged<DeliveryView>), (status = 404)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Paged<DeliveryView>>> {
    let page = q.page()?;
    state
        .store
        .get_webhook(id)
        .await
        .map_err(not_found("webhook"))?;
    let rows = state.store.list_deliveries(id, page).await?;
    Ok(Json(Paged::new(rows, page, |d| d.id, DeliveryView::from)))
}

async fn delivery_of(state: &AppState, id: i64, delivery_id: i64) -> ApiResult<DeliveryRow> {
    let d = state
        .store
        .get_delivery(delivery_id)
        .await
        .map_err(not_found("delivery"))?;
    if d.webhook_id != id {
        return Err(ApiError::NotFound("delivery"));
    }
    Ok(d)
}

/// A delivery with every attempt (status, time, the start of the answer).
#[utoipa::path(get, path = "/webhooks/{id}/deliveries/{delivery_id}", tag = "automation",
    params(("id" = i64, Path), ("delivery_id" = i64, Path)),
    responses((status = 200, body = DeliveryDetail), (status = 404)))]
pub async fn get_delivery(
    State(state): State<AppState>,
    ApiPath((id, delivery_id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<DeliveryDetail>> {
    let d = delivery_of(&state, id, delivery_id).await?;
    let attempts = state.store.list_attempts(d.id).await?;
    Ok(Json(DeliveryDetail {
        delivery: d.into(),
        attempts_log: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}

/// Sends a delivery again now, with the same `webhook-id`.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "automation",
    params(("id" = i64, Path), ("delivery_id" = i64, Path)),
    responses((status = 202, body = DeliveryView), (status = 404), (status = 409)))]
pub async fn redeliver(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, delivery_id)): ApiPath<(i64, i64)>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    delivery_of(&state, id, delivery_id).await?;
    let hook = state
        .store
        .get_webhook(id)
        .await
        .map_err(not_found("webhook"))?;
    if !hook.enabled {
        return Err(ApiError::Conflict(
            "the subscription is disabled: enable it first".into(),
        ));
    }
    let d = state.store.redeliver(delivery_id).await?;
    audit_as(
        &state,
        &user,
        "webhook.redeliver",
        Some(format!("webhook:{id}")),
        json!({ "delivery_id": delivery_id }),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(d.into())))
}

/// Sends a `webhook.test` event to this subscription only.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "automation", params(("id" = i64, Path)),
    responses((status = 202, body = DeliveryView), (status = 404)))]
pub async fn test_webhook(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let hook = state
        .store
        .get_webhook(id)
        .await
        .map_err(not_found("webhook"))?;
    let now = Utc::now();
    let d = state
        .store
        .create_delivery(&NewDelivery {
            webhook_id: hook.id,
            event_id: None,
            event_type: "webhook.test".into(),
            msg_id: vorg_automation::dispatch::new_msg_id(),
            payload: json!({
                "type": "webhook.test",
                "timestamp": now.to_rfc3339(),
                "data": { "webhook_id": hook.id, "message": "a test delivery from vorg" },
            }),
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(d.into())))
}
