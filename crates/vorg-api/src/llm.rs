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
        GatewayError::ModelNotAllowed { .. } | GatewayError::Unpriced { .. } => {
            ApiError::Refused(e.to_string())
        }
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
    let (cost, _) = state
        .llm
        .pricing()
        .cost_micro_usd(&provider, &model, resp.usage);
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
    match state.store.get_run(run_id).await {
        Ok(run) if run.requested_by == Some(user.id) || user.is_admin() => Ok(()),
        Ok(_) => Err(format!(
            "run {run_id} was started by someone else; calls may be attributed only to your own runs"
        )),
        Err(vorg_store::StoreError::NotFound) => Err(format!("no run with id {run_id}")),
        Err(e) => Err(format!("could not check the run: {e}")),
    }
}

/// An OpenAI-style error body, which OpenAI clients show as the exception's message.
fn openai_error(status: StatusCode, kind: &str, message: String) -> Response {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": null } });
    (status, Json(body)).into_response()
}

fn front_door_error(e: GatewayError) -> Response {
    match e {
        GatewayError::UnknownModel(_) => openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            e.to_string(),
        ),
        GatewayError::Budget(b) => {
            let mut body = json!({ "error": {
                "message": format!("budget exceeded: {b}"),
                "type": "budget_exceeded", "param": null, "code": "budget_exceeded",
            }});
            body["error"]["budget"] = crate::error::budget_json(&b);
            (StatusCode::PAYMENT_REQUIRED, Json(body)).into_response()
        }
        GatewayError::ModelNotAllowed { .. } | GatewayError::Unpriced { .. } => {
            openai_error(StatusCode::FORBIDDEN, "permission_error", e.to_string())
        }
        GatewayError::Governance(m) => openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            format!("budgets could not be checked: {m}"),
        ),
        GatewayError::Provider(p) => {
            let (status, kind) = match p.kind {
                ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "invalid_request_error"),
                ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
                _ => (StatusCode::BAD_GATEWAY, "upstream_error"),
            };
            openai_error(status, kind, p.to_string())
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

/// OpenAI Chat Completions, through vorg: `model` may be an alias, `provider/model`, or a
/// model of the default provider. Streaming with `stream: true` (usage in the last chunk
/// with `stream_options.include_usage`). Every call is priced and recorded for the caller
/// (and for the run named by `x-vorg-run-id`).
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
    let body: Map<String, Value> = match parse_json(&body) {
        Ok(b) => b,
        Err(e) => {
            return openai_error(StatusCode::BAD_REQUEST, "invalid_request_error", e.detail());
        }
    };
    let mut problems = Vec::new();
    if !body.get("model").is_some_and(Value::is_string) {
        problems.push(FieldError::new("model", "required, a string"));
    }
    if body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        problems.push(FieldError::new("messages", "required, a non-empty array"));
    }
    if !problems.is_empty() {
        let message = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ");
        return openai_error(StatusCode::BAD_REQUEST, "invalid_request_error", message);
    }
    let run_id = match run_header(&headers) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if let Some(id) = run_id
        && let Err(message) = check_run(&state, &user, id).await
    {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("x-vorg-run-id: {message}"),
        );
    }
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
            Ok((resp, _, _)) => Json(resp.body).into_response(),
            Err(e) => front_door_error(e),
        };
    }
    let chunks = match state.llm.stream(&ctx, &req).await {
        Ok((chunks, _, _)) => chunks,
        Err(e) => return front_door_error(e),
    };
    // OpenAI sends the usage chunk only when asked; vorg always asks upstream (to account).
    let events = chunks
        .filter(move |c| {
            let is_usage_only = matches!(c, Ok(v) if v["choices"].as_array().is_some_and(Vec::is_empty) && v.get("usage").is_some_and(|u| !u.is_null()));
            std::future::ready(wants_usage || !is_usage_only)
        })
        .map(|c| {
            let data = match c {
                Ok(v) => v.to_string(),
                Err(e) => json!({ "error": { "message": e.to_string(), "type": "upstream_error" } }).to_string(),
            };
            Ok::<_, Infallible>(Event::default().data(data))
        })
        .chain(futures_util::stream::once(async { Ok(Event::default().data("[DONE]")) }));
    let mut resp = Sse::new(events).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}

#[derive(Serialize, ToSchema)]
pub struct ModelList {
    object: &'static str,
    data: Vec<Value>,
}

/// The models callers may name: aliases, each provider's priced models, and the simulated one.
#[utoipa::path(get, path = "/v1/models", tag = "llm",
    responses((status = 200, description = "OpenAI-style model list", body = ModelList)))]
pub async fn list_models(State(state): State<AppState>, _user: CurrentUser) -> Json<ModelList> {
    let data = state
        .llm
        .model_ids()
        .into_iter()
        .map(|(id, owner)| json!({ "id": id, "object": "model", "created": 0, "owned_by": owner }))
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}
