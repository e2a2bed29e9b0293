//! The OpenAI-compatible door answers errors exactly as OpenAI does: every error under
//! `/v1/` is `{"error": {"message", "type", "param", "code"}}` with OpenAI's status codes,
//! so the official SDKs raise their matching exception (`AuthenticationError`,
//! `NotFoundError`, `BadRequestError`, `RateLimitError`, …) with vorg's message.

use axum::{
    Json,
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::error::{ApiError, LoggedError};

/// An OpenAI error answer.
pub fn error(
    status: StatusCode,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
    message: String,
) -> Response {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    (status, Json(body)).into_response()
}

/// A budget refusal: 402 with the budget named in the message and in `error.budget`, and
/// `x-should-retry: false`, so the official SDKs do not retry what only a new period or a
/// higher limit can fix.
pub fn budget_refusal(b: &vorg_llm::BudgetExceeded) -> Response {
    let mut body = json!({ "error": {
        "message": format!("budget exceeded: {b}"),
        "type": "budget_exceeded", "param": null, "code": "budget_exceeded",
    }});
    body["error"]["budget"] = crate::error::budget_json(b);
    let mut response = (StatusCode::PAYMENT_REQUIRED, Json(body)).into_response();
    response
        .headers_mut()
        .insert("x-should-retry", HeaderValue::from_static("false"));
    response
}

/// The OpenAI shape of an error vorg raised before the handler (authentication, access,
/// rates, body limits): status, type, param and code.
fn shape(
    e: &ApiError,
) -> (
    StatusCode,
    &'static str,
    Option<String>,
    Option<&'static str>,
) {
    match e {
        ApiError::Unauthenticated(_) => (
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        ApiError::Forbidden(_) => (
            StatusCode::FORBIDDEN,
            "permission_error",
            None,
            Some("missing_permission"),
        ),
        ApiError::Refused(_) => (StatusCode::FORBIDDEN, "permission_error", None, None),
        ApiError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            None,
            Some("not_found"),
        ),
        ApiError::Invalid(errors) => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            errors.first().map(|f| f.field.clone()),
            None,
        ),
        ApiError::BadRequest(_) | ApiError::UnsupportedMediaType(_) => {
            (StatusCode::BAD_REQUEST, "invalid_request_error", None, None)
        }
        ApiError::PayloadTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            None,
            Some("request_too_large"),
        ),
        ApiError::RateLimited { .. } | ApiError::Throttled { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            None,
            Some("rate_limit_exceeded"),
        ),
        ApiError::BudgetExceeded(_) => (
            StatusCode::PAYMENT_REQUIRED,
            "budget_exceeded",
            None,
            Some("budget_exceeded"),
        ),
        other => (other.status(), "server_error", None, None),
    }
}

/// Renders every error answer under `/v1/` in OpenAI's shape (keeping `Retry-After` and the
/// rate headers); answers already in that shape pass untouched.
pub async fn errors(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let (status, kind, param, code, message) =
        match parts.extensions.get::<LoggedError>().map(|l| l.0.clone()) {
            Some(e) => {
                let (status, kind, param, code) = shape(&e);
                let message = match &*e {
                    ApiError::Invalid(errors) => errors
                        .iter()
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                    other => other.detail(),
                };
                (status, kind, param, code, message)
            }
            None => {
                // Refused by a layer before any handler (e.g. the body limit): its text.
                let bytes = axum::body::to_bytes(body, 64 * 1024)
                    .await
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                let message = if text.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    text
                };
                (status, "invalid_request_error", None, None, message)
            }
        };
    let body =
        json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}
