//! One error type for every handler, rendered as `application/problem+json` (RFC 9457).
//!
//! The error travels in the response extensions so the request-logging middleware logs it
//! once, inside the request span. Internal details never leave the server.

use std::sync::Arc;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;
use vorg_domain::Permission;
use vorg_store::StoreError;

/// A field-level reason for refusing input.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is: a body field (`email`), a path or query parameter.
    pub field: String,
    /// Why it was refused.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("forbidden: requires {0}")]
    Forbidden(Permission),
    #[error("{0}")]
    Refused(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("body: larger than this server accepts (setting VORG_MAX_BODY_BYTES)")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A cap is full: open streams, an API token's rate (429, naming the cap; `code` says
    /// which).
    #[error("{detail}")]
    Throttled {
        code: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    /// A budget would be passed (402, naming the budget).
    #[error("{0}")]
    BudgetExceeded(Box<vorg_llm::BudgetExceeded>),
    /// An upstream (a model provider) failed.
    #[error("{0}")]
    BadGateway(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The problem document every error answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` style tags under `urn:vorg:problem:`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable machine-readable code, e.g. `invalid_input`, `forbidden`.
    pub code: &'static str,
    /// Field-level reasons, for `invalid_input`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The budget that refused the call, for `budget_exceeded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub budget: Option<serde_json::Value>,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Refused(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } | ApiError::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BudgetExceeded(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Refused(_) => "refused",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Invalid(_) => "invalid_input",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Throttled { code, .. } => code,
            ApiError::Unavailable(_) => "unavailable",
            ApiError::BudgetExceeded(_) => "budget_exceeded",
            ApiError::BadGateway(_) => "upstream_failed",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ApiError::Forbidden(p) => {
                let roles: Vec<&str> = p.roles().iter().map(|r| r.as_str()).collect();
                format!(
                    "this needs the permission {p}, held by the roles: {}",
                    roles.join(", ")
                )
            }
            ApiError::Invalid(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            ApiError::RateLimited { retry_after_secs } => {
                format!("too many attempts; retry after {retry_after_secs} s")
            }
            ApiError::Internal(_) => "an internal error occurred; it has been logged".into(),
            other => other.to_string(),
        }
    }
}

/// Carried in response extensions so the logging middleware can log the cause once.
#[derive(Clone)]
pub struct LoggedError(pub Arc<ApiError>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let problem = Problem {
            kind: format!("urn:vorg:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            code: self.code(),
            errors: match &self {
                ApiError::Invalid(errors) => errors.clone(),
                _ => Vec::new(),
            },
            budget: match &self {
                ApiError::BudgetExceeded(b) => Some(budget_json(b)),
                _ => None,
            },
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Throttled {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
            .extensions_mut()
            .insert(LoggedError(Arc::new(self)));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(what) => ApiError::Conflict(format!("already exists ({what})")),
            StoreError::Rule(rule) => ApiError::Conflict(rule.to_owned()),
            StoreError::Refused(m) => ApiError::Conflict(m),
            StoreError::Invalid { field, reason } => ApiError::invalid(field, reason),
            other => ApiError::Internal(anyhow::Error::new(other).context("store")),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The budget of a refusal, in dollars (and exact micro-dollars).
pub fn budget_json(b: &vorg_llm::BudgetExceeded) -> serde_json::Value {
    use vorg_domain::money::micro_to_usd;
    serde_json::json!({
        "scope": b.scope,
        "subject": b.subject,
        "period": b.period,
        "limit_usd": micro_to_usd(b.limit_micro_usd),
        "spent_usd": micro_to_usd(b.spent_micro_usd),
        "reserved_usd": micro_to_usd(b.reserved_micro_usd),
        "call_worst_case_usd": micro_to_usd(b.call_worst_case_micro_usd),
        "limit_micro_usd": b.limit_micro_usd,
        "spent_micro_usd": b.spent_micro_usd,
        "reserved_micro_usd": b.reserved_micro_usd,
        "call_worst_case_micro_usd": b.call_worst_case_micro_usd,
        "resets_at": b.resets_at,
    })
}
