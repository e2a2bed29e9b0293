//! Our own extractors: their rejections are [`ApiError`] problems that name the field,
//! never the framework's plain-text errors.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts};

use crate::error::{ApiError, FieldError};

/// JSON body extractor with problem rejections.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Path parameters extractor with problem rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query string extractor with problem rejections that name the parameter (`query.limit`),
/// also for type errors serde reports without a field name.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().to_string();
                let field = if path == "." {
                    // Missing and unknown parameters are named inside the message.
                    message.split('`').nth(1).unwrap_or("query").to_owned()
                } else {
                    path
                };
                ApiError::invalid(format!("query.{field}"), message)
            })
    }
}

/// Splits serde's "field: reason at line 1 column 9" into a field error.
fn serde_field_error(text: &str, fallback_field: &str) -> FieldError {
    // axum prefixes "Failed to deserialize the JSON body into the target type: ".
    let body = text.split_once(": ").map(|(_, rest)| rest).unwrap_or(text);
    let body = body.split(" at line ").next().unwrap_or(body);
    match body.split_once(": ") {
        Some((path, reason)) if !path.contains(' ') => FieldError::new(path, reason),
        _ => {
            // serde names missing and unknown fields inside the message itself.
            let field = body
                .split('`')
                .nth(1)
                .map(str::to_owned)
                .unwrap_or_else(|| fallback_field.to_owned());
            FieldError::new(field, body)
        }
    }
}

/// Parses a JSON body read by hand (e.g. one that may be empty) with the same problems as
/// [`ApiJson`]: malformed JSON is a 400, a bad field a 422 naming its path.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("body: malformed JSON ({inner})"));
        }
        let text = inner.to_string();
        let message = text.split(" at line ").next().unwrap_or(&text).to_owned();
        if path == "." {
            let field = message.split('`').nth(1).unwrap_or("body").to_owned();
            ApiError::invalid(field, message)
        } else {
            ApiError::invalid(path, message)
        }
    })
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                ApiError::Invalid(vec![serde_field_error(&e.body_text(), "body")])
            }
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!(
                "body: malformed JSON ({})",
                e.body_text()
                    .split_once(": ")
                    .map(|(_, r)| r.to_owned())
                    .unwrap_or_else(|| e.body_text())
            )),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "body: expected Content-Type: application/json".into(),
            ),
            JsonRejection::BytesRejection(e) => {
                let text = e.body_text();
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest(format!("body: {text}"))
                }
            }
            other => ApiError::BadRequest(format!("body: {}", other.body_text())),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => {
                let text = e.body_text();
                // axum: "Cannot parse `id` with value `abc` to a `i64`" and similar.
                let field = text.split('`').nth(1).unwrap_or("path").to_owned();
                ApiError::BadRequest(format!("path parameter {field}: {}", e.body_text()))
            }
            other => ApiError::BadRequest(format!("path: {}", other.body_text())),
        }
    }
}
