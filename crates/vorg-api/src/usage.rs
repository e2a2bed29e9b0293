//! `/usage`: what the organization's model calls cost, as rows and as totals.

use axum::{Json, extract::State};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_store::{UsageEvent, UsageGroup};

use crate::{
    AppState,
    auth::CurrentUser,
    error::{ApiError, ApiResult},
    extract::ApiQuery,
    pagination::{PageQuery, Paged},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_usage_events))
        .routes(routes!(usage_summary))
}

fn usd(micro: i64) -> f64 {
    micro as f64 / 1_000_000.0
}

#[derive(Serialize, ToSchema)]
pub struct UsageView {
    id: i64,
    run_id: Option<i64>,
    actor: String,
    user_id: Option<i64>,
    token_id: Option<i64>,
    provider: String,
    model: String,
    prompt_tokens: i64,
    completion_tokens: i64,
    /// Of `prompt_tokens`: read from the provider's prompt cache (billed at its cache rate).
    cache_read_tokens: i64,
    /// Of `prompt_tokens`: written to the provider's prompt cache (billed at its cache rate).
    cache_write_tokens: i64,
    cost_micro_usd: i64,
    cost_usd: f64,
    /// False when the model had no price in the table (counted at 0, or at the pricing
    /// file's `unpriced` rate): add it to the pricing table.
    priced: bool,
    /// The tokens are vorg's estimate: the upstream never reported usage (a stream the
    /// client closed before its usage chunk, or that broke).
    estimated: bool,
    latency_ms: i64,
    streamed: bool,
    /// `ok` or `error`.
    status: String,
    error: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<UsageEvent> for UsageView {
    fn from(u: UsageEvent) -> Self {
        UsageView {
            cost_usd: usd(u.cost_micro_usd),
            id: u.id,
            run_id: u.run_id,
            actor: u.actor,
            user_id: u.user_id,
            token_id: u.token_id,
            provider: u.provider,
            model: u.model,
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cache_read_tokens: u.cache_read_tokens,
            cache_write_tokens: u.cache_write_tokens,
            cost_micro_usd: u.cost_micro_usd,
            priced: u.priced,
            estimated: u.estimated,
            latency_ms: u.latency_ms,
            streamed: u.streamed,
            status: u.status,
            error: u.error,
            created_at: u.created_at,
        }
    }
}

/// Every model call, newest first.
#[utoipa::path(get, path = "/usage/events", tag = "usage", params(PageQuery),
    responses((status = 200, description = "A page of usage rows", body = Paged<UsageView>)))]
pub async fn list_usage_events(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Paged<UsageView>>> {
    let page = query.page()?;
    state.llm.flush_usage().await;
    let rows = state.store.list_usage(page).await?;
    Ok(Json(Paged::new(rows, page, |r| r.id, UsageView::from)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// provider, model, actor, run or day (default provider).
    group_by: Option<String>,
    /// RFC 3339 start, inclusive (default: 30 days before `to`).
    from: Option<DateTime<Utc>>,
    /// RFC 3339 end, exclusive (default: now).
    to: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct SummaryRow {
    key: Option<String>,
    calls: i64,
    errors: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_micro_usd: i64,
    cost_usd: f64,
    unpriced_calls: i64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageSummary {
    group_by: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rows: Vec<SummaryRow>,
    total_cost_micro_usd: i64,
    total_cost_usd: f64,
}

/// Totals of calls, tokens and cost per provider, model, actor, run or day.
#[utoipa::path(get, path = "/usage/summary", tag = "usage", params(SummaryQuery),
    responses((status = 200, description = "Totals per group", body = UsageSummary)))]
pub async fn usage_summary(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> ApiResult<Json<UsageSummary>> {
    state.llm.flush_usage().await;
    let name = q.group_by.unwrap_or_else(|| "provider".to_owned());
    let group = match name.as_str() {
        "provider" => UsageGroup::Provider,
        "model" => UsageGroup::Model,
        "actor" => UsageGroup::Actor,
        "run" => UsageGroup::Run,
        "day" => UsageGroup::Day,
        _ => {
            return Err(ApiError::invalid(
                "query.group_by",
                "must be provider, model, actor, run or day",
            ));
        }
    };
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::invalid("query.from", "must be before `to`"));
    }
    let rows = state.store.usage_summary(group, from, to).await?;
    let total: i64 = rows.iter().map(|r| r.cost_micro_usd).sum();
    Ok(Json(UsageSummary {
        group_by: name,
        from,
        to,
        rows: rows
            .into_iter()
            .map(|r| SummaryRow {
                cost_usd: usd(r.cost_micro_usd),
                key: r.key,
                calls: r.calls,
                errors: r.errors,
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                cost_micro_usd: r.cost_micro_usd,
                unpriced_calls: r.unpriced_calls,
            })
            .collect(),
        total_cost_micro_usd: total,
        total_cost_usd: usd(total),
    }))
}
