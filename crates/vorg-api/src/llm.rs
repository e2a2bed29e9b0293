//! The gateway over HTTP: `POST /llm/generate` (the original's `generate`) and the
//! OpenAI-compatible front door `POST /v1/chat/completions` and `GET /v1/models`, so any
//! agent framework pointed at vorg gets routing, fallbacks and cost tracking.

use std::convert::Infallible;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, Sse},
    },
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_llm::{CallContext, ChatRequest, ErrorKind, GatewayError};

use crate::{
    AppState,
    auth::{Credential, CurrentUser},
    error::{ApiError, ApiResult, FieldError},
    extract::{ApiJson, parse_json},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(generate))
        .routes(routes!(chat_completions))
        .routes(routes!(list_models))
        .routes(routes!(embeddings))
}

fn context(user: &CurrentUser, run_id: Option<i64>) -> CallContext {
    CallContext {
        actor: user.email.clone(),
        user_id: Some(user.id),
        token_id: match user.credential {
            Credential::ApiToken { token_id } => Some(token_id),
            _ => None,
        },
        run_id,
        persona: None,
        roles: user.roles.clone(),
        on_behalf_of: None,
    }
}

/// A gateway failure as a problem: upstream trouble is a 502 (or 503 when rate limited),
/// never a 500, and never shows a key.
fn gateway_problem(e: GatewayError) -> ApiError {
    match e {
        GatewayError::UnknownModel(_) => ApiError::invalid("model", e.to_string()),
        GatewayError::Budget(b) => ApiError::BudgetExceeded(b),
        GatewayError::ModelNotAllowed { .. }
        | GatewayError::ModelNotAllowedForToken { .. }
        | GatewayError::Unpriced { .. } => ApiError::Refused(e.to_string()),
        GatewayError::Governance(m) => ApiError::Unavailable(format!("budgets: {m}")),
        GatewayError::Provider(p) => match p.kind {
            ErrorKind::BadRequest => ApiError::BadRequest(format!("model: {p}")),
            ErrorKind::RateLimited => {
                ApiError::Unavailable(format!("the model is rate limited upstream: {p}"))
            }
            _ => ApiError::BadGateway(p.to_string()),
        },
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    prompt: String,
    /// `openai`, `anthropic`, `simulated` or a configured instance; default: the default.
    provider: Option<String>,
    /// A model, an alias (e.g. `smart`), or `provider/model`. Default: the default model.
    model: Option<String>,
    /// A system prompt (a persona's voice).
    system: Option<String>,
    max_tokens: Option<u64>,
    /// Attribute the call to this run.
    run_id: Option<i64>,
    /// Speak as this persona: its model preference applies when no model is named, and its
    /// `risk_limits.max_spend` is a daily budget for the call.
    persona: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Generated {
    text: String,
    provider: String,
    model: String,
    prompt_tokens: i64,
    completion_tokens: i64,
    /// Exact, in micro-dollars.
    cost_micro_usd: i64,
    cost_usd: f64,
    run_id: Option<i64>,
}

/// The original's `generate(prompt, provider, model, run_id)`: one completion, accounted.
#[utoipa::path(post, path = "/llm/generate", tag = "llm", request_body = GenerateRequest,
    responses((status = 200, description = "The model's answer and its cost", body = Generated),
              (status = 502, description = "Every provider of the model's chain failed")))]
pub async fn generate(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<GenerateRequest>,
) -> ApiResult<Json<Generated>> {
    if body.prompt.trim().is_empty() {
        return Err(ApiError::invalid("prompt", "must not be empty"));
    }
    let persona = match &body.persona {
        None => None,
        Some(id) => match state.store.get_persona(id).await {
            Ok(row) => Some(vorg_org::Persona::trusted(row.doc.0)),
            Err(vorg_store::StoreError::NotFound) => {
                return Err(ApiError::invalid("persona", format!("no persona {id:?}")));
            }
            Err(e) => return Err(e.into()),
        },
    };
    let preferred = persona.as_ref().and_then(|p| p.model()).map(str::to_owned);
    let model = match (&body.provider, body.model.as_ref().or(preferred.as_ref())) {
        (Some(p), Some(m)) => format!("{p}/{m}"),
        (Some(p), None) => format!("{p}/{}", state.llm.default_model_for(p)),
        (None, Some(m)) => m.clone(),
        (None, None) => "default".to_owned(),
    };
    let mut req = ChatRequest::user(&model, &body.prompt);
    if let Some(system) = &body.system {
        req.body.insert(
            "messages".into(),
            json!([{ "role": "system", "content": system }, { "role": "user", "content": body.prompt }]),
        );
    }
    if let Some(max) = body.max_tokens {
        req.body.insert("max_tokens".into(), json!(max));
    }
    if let Some(run_id) = body.run_id {
        check_run(&state, &user, run_id)
            .await
            .map_err(|m| ApiError::invalid("run_id", m))?;
    }
    let mut ctx = context(&user, body.run_id);
    ctx.persona = body.persona.clone();
    let (resp, provider, model) = state
        .llm
        .complete(&ctx, &req)
        .await
        .map_err(gateway_problem)?;
    let cost = resp.cost_micro_usd;
    Ok(Json(Generated {
        text: resp.text(),
        provider,
        model,
        prompt_tokens: resp.usage.prompt_tokens,
        completion_tokens: resp.usage.completion_tokens,
        cost_micro_usd: cost,
        cost_usd: cost as f64 / 1_000_000.0,
        run_id: body.run_id,
    }))
}

/// Checks that the run a call is attributed to exists and is the caller's own (admins may
/// attribute calls to any run): nobody charges their spend to someone else's run.
async fn check_run(state: &AppState, user: &CurrentUser, run_id: i64) -> Result<(), String> {
    match state.store.run_owner(run_id).await {
        Ok(owner) if owner == Some(user.id) || user.is_admin() => Ok(()),
        Ok(_) => Err(format!(
            "run {run_id} was started by someone else; calls may be attributed only to your own runs"
        )),
        Err(vorg_store::StoreError::NotFound) => Err(format!("no run with id {run_id}")),
        Err(e) => Err(format!("could not check the run: {e}")),
    }
}

fn openai_error(status: StatusCode, kind: &str, message: String) -> Response {
    crate::openai::error(status, kind, None, None, message)
}

/// A gateway refusal or failure as OpenAI answers it, so the official SDKs raise their
/// matching exception with vorg's message.
fn front_door_error(e: GatewayError) -> Response {
    use crate::openai::error as oa;
    match e {
        GatewayError::UnknownModel(_) => oa(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model"),
            Some("model_not_found"),
            e.to_string(),
        ),
        GatewayError::Budget(b) => crate::openai::budget_refusal(&b),
        GatewayError::ModelNotAllowed { .. } | GatewayError::ModelNotAllowedForToken { .. } => oa(
            StatusCode::FORBIDDEN,
            "permission_error",
            Some("model"),
            Some("model_not_allowed"),
            e.to_string(),
        ),
        GatewayError::Unpriced { .. } => oa(
            StatusCode::FORBIDDEN,
            "permission_error",
            Some("model"),
            Some("model_unpriced"),
            e.to_string(),
        ),
        GatewayError::Governance(m) => oa(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            None,
            None,
            format!("budgets could not be checked: {m}"),
        ),
        GatewayError::Provider(p) if p.kind == ErrorKind::BadRequest && p.status == Some(404) => {
            // The upstream does not know the model (OpenAI's `model_not_found`).
            oa(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model"),
                Some("model_not_found"),
                p.to_string(),
            )
        }
        GatewayError::Provider(p) => {
            let (status, kind, code) = match p.kind {
                ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "invalid_request_error", None),
                ErrorKind::RateLimited => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    Some("upstream_rate_limited"),
                ),
                _ => (StatusCode::BAD_GATEWAY, "upstream_error", None),
            };
            oa(status, kind, None, code, p.to_string())
        }
    }
}

/// `x-vorg-run-id`: attribute the call to a run.
fn run_header(headers: &HeaderMap) -> Result<Option<i64>, Box<Response>> {
    match headers.get("x-vorg-run-id") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| {
                Box::new(openai_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "x-vorg-run-id: must be a run id".into(),
                ))
            }),
    }
}

/// The request body of a `/v1` call, with every problem with its required fields named
/// (OpenAI's 400 with `param` set to the first).
/// A required field of a `/v1` body: its name, its check, and what it must be.
type Required = (&'static str, fn(&Value) -> bool, &'static str);

fn front_door_body(
    bytes: &Bytes,
    required: &[Required],
) -> Result<Map<String, Value>, Box<Response>> {
    let body: Map<String, Value> = parse_json(bytes).map_err(|e| {
        Box::new(crate::openai::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            None,
            e.detail(),
        ))
    })?;
    let problems: Vec<FieldError> = required
        .iter()
        .filter(|(field, ok, _)| !body.get(*field).is_some_and(ok))
        .map(|(field, _, why)| FieldError::new(*field, *why))
        .collect();
    if let Some(first) = problems.first() {
        let message = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Box::new(crate::openai::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some(&first.field),
            None,
            message,
        )));
    }
    Ok(body)
}

/// The run a `/v1` call is attributed to (`x-vorg-run-id`), checked to be the caller's.
async fn front_door_run(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
) -> Result<Option<i64>, Response> {
    let run_id = run_header(headers).map_err(|r| *r)?;
    if let Some(id) = run_id
        && let Err(message) = check_run(state, user, id).await
    {
        return Err(openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("x-vorg-run-id: {message}"),
        ));
    }
    Ok(run_id)
}

/// A token's model-token rate: refused (429, OpenAI's `tokens` rate error with
/// `Retry-After`) when this minute's count has reached it. The count grows by each call's
/// usage once it is known ([`count_tokens`]).
async fn tokens_gate(state: &AppState, user: &CurrentUser) -> Result<(), Response> {
    let (Some(limit), Some(token)) = (
        user.limits.as_ref().and_then(|l| l.tokens_per_minute),
        user.token_id(),
    ) else {
        return Ok(());
    };
    let now = chrono::Utc::now();
    let used = match state
        .store
        .token_rate(token, vorg_store::rate_minute(now))
        .await
    {
        Ok((_, used)) => used,
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    if u64::try_from(used).unwrap_or(0) < limit {
        return Ok(());
    }
    let retry = crate::access::seconds_to_next_minute(now);
    let mut response = crate::openai::error(
        StatusCode::TOO_MANY_REQUESTS,
        "tokens",
        None,
        Some("rate_limit_exceeded"),
        format!(
            "this API token may use {limit} model tokens a minute and has used {used}; retry in \
             {retry} s"
        ),
    );
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, retry.into());
    headers.insert("x-ratelimit-limit-tokens", limit.into());
    headers.insert("x-ratelimit-remaining-tokens", 0u64.into());
    if let Ok(v) = format!("{retry}s").parse() {
        headers.insert("x-ratelimit-reset-tokens", v);
    }
    Err(response)
}

/// Adds a call's tokens to its token's per-minute count (when the token has a token rate).
async fn count_tokens(state: &AppState, user: &CurrentUser, usage: vorg_llm::Usage) {
    let has_rate = user
        .limits
        .as_ref()
        .is_some_and(|l| l.tokens_per_minute.is_some());
    if let (true, Some(token)) = (has_rate, user.token_id()) {
        let minute = vorg_store::rate_minute(chrono::Utc::now());
        let used = usage.prompt_tokens + usage.completion_tokens;
        if let Err(e) = state.store.add_token_tokens(token, minute, used).await {
            tracing::error!(error = %e, token, "could not count a call's tokens");
        }
    }
}

/// What every `/v1` call checks before the gateway: the body and its required fields, the
/// run it is attributed to, the token's model-token rate. The body and the run, or the
/// OpenAI-shaped refusal.
async fn admit(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    bytes: &Bytes,
    required: &[Required],
) -> Result<(Map<String, Value>, Option<i64>), Box<Response>> {
    let body = front_door_body(bytes, required)?;
    let run_id = front_door_run(state, user, headers)
        .await
        .map_err(Box::new)?;
    tokens_gate(state, user).await.map_err(Box::new)?;
    Ok((body, run_id))
}

fn is_string(v: &Value) -> bool {
    v.is_string()
}

fn is_messages(v: &Value) -> bool {
    v.as_array().is_some_and(|m| !m.is_empty())
}

fn is_input(v: &Value) -> bool {
    v.is_string() || v.as_array().is_some_and(|a| !a.is_empty())
}

/// OpenAI Chat Completions, through vorg: `model` may be an alias, `provider/model`, or a
/// model of the default provider. Streaming with `stream: true` (usage in the last chunk
/// only with `stream_options.include_usage`, as OpenAI does; vorg always records the exact
/// usage). Every call is priced and recorded for the caller (and for the run named by
/// `x-vorg-run-id`). Errors are OpenAI's shape.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "llm",
    request_body(content = std::collections::HashMap<String, serde_json::Value>, description = "An OpenAI Chat Completions request"),
    params(("x-vorg-run-id" = Option<i64>, Header, description = "Attribute the call to this run")),
    responses((status = 200, description = "A `chat.completion`, or `text/event-stream` of chunks when `stream` is true")))]
pub async fn chat_completions(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let required: [Required; 2] = [
        ("model", is_string, "required, a string"),
        ("messages", is_messages, "required, a non-empty array"),
    ];
    let (body, run_id) = match admit(&state, &user, &headers, &body, &required).await {
        Ok(admitted) => admitted,
        Err(r) => return *r,
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let wants_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let req = ChatRequest { body };
    let ctx = context(&user, run_id);
    if !stream {
        return match state.llm.complete(&ctx, &req).await {
            Ok((resp, _, _)) => {
                count_tokens(&state, &user, resp.usage).await;
                Json(resp.body).into_response()
            }
            Err(e) => front_door_error(e),
        };
    }
    let chunks = match state.llm.stream(&ctx, &req).await {
        Ok((chunks, _, _)) => chunks,
        Err(e) => return front_door_error(e),
    };
    // vorg always asks upstream for usage (to account); the client sees it only if asked.
    let events = chunks
        .then(move |c| {
            let (state, user) = (state.clone(), user.clone());
            async move {
                if let Ok(v) = &c
                    && let Some(usage) = vorg_llm::Usage::from_openai(&v["usage"])
                {
                    count_tokens(&state, &user, usage).await;
                }
                c
            }
        })
        .filter_map(move |c| {
            std::future::ready(match c {
                Ok(mut v) if !wants_usage => {
                    let usage_only = v["choices"].as_array().is_some_and(Vec::is_empty)
                        && v.get("usage").is_some_and(|u| !u.is_null());
                    if let Some(obj) = v.as_object_mut() {
                        obj.remove("usage");
                    }
                    (!usage_only).then_some(Ok(v))
                }
                other => Some(other),
            })
        })
        .map(|c| {
            let data = match c {
                Ok(v) => v.to_string(),
                Err(e) => {
                    json!({ "error": { "message": e.to_string(), "type": "upstream_error" } })
                        .to_string()
                }
            };
            Ok::<_, Infallible>(Event::default().data(data))
        })
        .chain(futures_util::stream::once(async {
            Ok(Event::default().data("[DONE]"))
        }));
    let mut resp = Sse::new(events).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}

/// OpenAI Embeddings, through vorg: `input` is a string or an array of strings; `model` as
/// for chat (the simulated provider answers deterministic unit vectors). Priced, budgeted
/// and recorded like chat. Errors are OpenAI's shape.
#[utoipa::path(post, path = "/v1/embeddings", tag = "llm",
    request_body(content = std::collections::HashMap<String, serde_json::Value>, description = "An OpenAI Embeddings request"),
    params(("x-vorg-run-id" = Option<i64>, Header, description = "Attribute the call to this run")),
    responses((status = 200, description = "An OpenAI `list` of embeddings with `usage`")))]
pub async fn embeddings(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let required: [Required; 2] = [
        ("model", is_string, "required, a string"),
        ("input", is_input, "required, a string or a non-empty array"),
    ];
    let (body, run_id) = match admit(&state, &user, &headers, &body, &required).await {
        Ok(admitted) => admitted,
        Err(r) => return *r,
    };
    let req = ChatRequest { body };
    match state.llm.embed(&context(&user, run_id), &req).await {
        Ok((resp, _, _)) => {
            count_tokens(&state, &user, resp.usage).await;
            Json(resp.body).into_response()
        }
        Err(e) => front_door_error(e),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ModelList {
    object: &'static str,
    data: Vec<Value>,
}

/// The models the caller may name: aliases, each provider's default model, narrowed to
/// what the policies allow the caller's roles and the caller's token allows.
#[utoipa::path(get, path = "/v1/models", tag = "llm",
    responses((status = 200, description = "OpenAI-style model list", body = ModelList)))]
pub async fn list_models(State(state): State<AppState>, user: CurrentUser) -> Response {
    let ids = match state.llm.allowed_model_ids(&context(&user, None)).await {
        Ok(ids) => ids,
        Err(e) => return front_door_error(e),
    };
    let data = ids
        .into_iter()
        .map(|(id, owner)| json!({ "id": id, "object": "model", "created": 0, "owned_by": owner }))
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
    .into_response()
}
