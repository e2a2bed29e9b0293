//! What can go wrong talking to Linear, and how an HTTP answer is classified into it.
//! Messages never contain the API key: upstream text is redacted before it is kept.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

/// A failed call to Linear.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinearError {
    /// 401, or `AUTHENTICATION_ERROR`: the key is missing, wrong, expired or revoked.
    #[error(
        "Linear refused the API key: check LINEAR_API_KEY (it may be wrong, expired or revoked): {message}"
    )]
    Auth { message: String },
    /// `RATELIMITED` (HTTP 400 or 429), after any retries that fitted the configured wait.
    #[error("Linear's rate limit is exhausted{}", reset_text(.reset_at, .retry_after))]
    RateLimited {
        /// When Linear said the budget refills (`X-RateLimit-*-Reset`, or now + `Retry-After`).
        reset_at: Option<DateTime<Utc>>,
        /// How long to wait from the moment the answer arrived.
        retry_after: Option<Duration>,
    },
    /// GraphQL `errors` (with HTTP 200, or 400 with `extensions.code`), e.g. `INVALID_INPUT`,
    /// `FORBIDDEN`, `GRAPHQL_VALIDATION_FAILED`.
    #[error("Linear answered with errors{}: {}", code_text(.code), .messages.join("; "))]
    GraphQl {
        status: u16,
        code: Option<String>,
        messages: Vec<String>,
    },
    /// The entity asked for does not exist or is not visible to this key.
    #[error("not found in Linear: {message}")]
    NotFound { message: String },
    /// No answer within the configured timeout.
    #[error("Linear did not answer in time")]
    Timeout,
    /// Could not connect, or the connection broke.
    #[error("could not reach Linear: {message}")]
    Transport { message: String },
    /// 5xx or another HTTP failure without a GraphQL error body.
    #[error("Linear failed with HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// The answer is not the GraphQL response our document asked for.
    #[error("Linear's answer was not understood: {0}")]
    InvalidResponse(String),
}

impl LinearError {
    /// The GraphQL `extensions.code`, when Linear gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            LinearError::GraphQl { code, .. } => code.as_deref(),
            LinearError::Auth { .. } => Some("AUTHENTICATION_ERROR"),
            LinearError::RateLimited { .. } => Some("RATELIMITED"),
            _ => None,
        }
    }

    /// Whether trying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LinearError::RateLimited { .. }
                | LinearError::Timeout
                | LinearError::Transport { .. }
                | LinearError::Http {
                    status: 500..=599,
                    ..
                }
        )
    }

    pub(crate) fn from_reqwest(e: &reqwest::Error, key: &str) -> Self {
        if e.is_timeout() {
            return LinearError::Timeout;
        }
        let mut text = e.to_string();
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "[linear]");
        }
        if e.is_decode() {
            LinearError::InvalidResponse(redact(&text, key))
        } else {
            LinearError::Transport {
                message: redact(&text, key),
            }
        }
    }
}

fn reset_text(reset_at: &Option<DateTime<Utc>>, retry_after: &Option<Duration>) -> String {
    match (reset_at, retry_after) {
        (Some(at), Some(wait)) => format!(
            "; it resets at {} (in {} s)",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            wait.as_secs_f64().ceil()
        ),
        (Some(at), None) => format!(
            "; it resets at {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        (None, Some(wait)) => format!("; retry in {} s", wait.as_secs_f64().ceil()),
        (None, None) => String::new(),
    }
}

fn code_text(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
}

/// Replaces `key` and anything shaped like a Linear token (`lin_api_…`, `lin_oauth_…`).
pub(crate) fn redact(text: &str, key: &str) -> String {
    let mut out = if key.len() >= 4 {
        text.replace(key, "[redacted]")
    } else {
        text.to_owned()
    };
    for prefix in ["lin_api_", "lin_oauth_"] {
        let mut from = 0;
        while let Some(pos) = out[from..].find(prefix).map(|p| p + from) {
            let end = out[pos..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(out.len(), |e| e + pos);
            out.replace_range(pos..end, "[redacted]");
            from = pos + "[redacted]".len();
        }
    }
    out
}

/// The rate-limit headers Linear sends on every answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RateLimitHeaders {
    pub requests_remaining: Option<u64>,
    pub requests_reset: Option<DateTime<Utc>>,
    pub complexity_remaining: Option<u64>,
    pub complexity_reset: Option<DateTime<Utc>>,
    pub retry_after: Option<Duration>,
}

impl RateLimitHeaders {
    pub fn parse(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let number = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        let instant = |name: &str| number(name).and_then(epoch_to_time);
        RateLimitHeaders {
            requests_remaining: number("x-ratelimit-requests-remaining"),
            requests_reset: instant("x-ratelimit-requests-reset"),
            complexity_remaining: number("x-ratelimit-complexity-remaining"),
            complexity_reset: instant("x-ratelimit-complexity-reset"),
            retry_after: text("retry-after")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64),
        }
    }

    /// The moment the exhausted budget refills: the exhausted bucket's reset (the later one
    /// when both are), else whichever reset Linear sent.
    fn reset_at(&self) -> Option<DateTime<Utc>> {
        let requests_out = self.requests_remaining == Some(0);
        let complexity_out = self.complexity_remaining == Some(0);
        match (requests_out, complexity_out) {
            (true, true) => self.requests_reset.max(self.complexity_reset),
            (false, true) => self.complexity_reset.or(self.requests_reset),
            _ => self.requests_reset.or(self.complexity_reset),
        }
    }

    pub fn into_error(self, now: DateTime<Utc>) -> LinearError {
        let reset_at = self.reset_at();
        let until_reset = reset_at.map(|at| (at - now).to_std().unwrap_or(Duration::ZERO));
        let retry_after = self.retry_after.or(until_reset);
        let reset_at = reset_at.or_else(|| {
            self.retry_after
                .and_then(|w| chrono::Duration::from_std(w).ok())
                .map(|w| now + w)
        });
        LinearError::RateLimited {
            reset_at,
            retry_after,
        }
    }
}

/// Linear sends epoch milliseconds; a value small enough to be seconds is read as seconds.
fn epoch_to_time(n: u64) -> Option<DateTime<Utc>> {
    let millis = if n < 100_000_000_000 {
        n.checked_mul(1000)?
    } else {
        n
    };
    Utc.timestamp_millis_opt(i64::try_from(millis).ok()?)
        .single()
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<WireError>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<Value>,
}

impl WireError {
    fn ext(&self, name: &str) -> Option<&str> {
        self.extensions.as_ref()?.get(name)?.as_str()
    }

    fn is(&self, code: &str, kind: &str) -> bool {
        self.ext("code") == Some(code) || self.ext("type") == Some(kind)
    }
}

/// Turns one HTTP answer into the `data` object, or the error it means.
pub(crate) fn classify(
    status: u16,
    headers: &HeaderMap,
    body: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Value, LinearError> {
    let parsed: Option<Body> = serde_json::from_str(body).ok();
    let errors = parsed.as_ref().map_or(&[][..], |b| &b.errors[..]);
    let first_message = || {
        errors
            .first()
            .map(|e| redact(&e.message, key))
            .unwrap_or_else(|| format!("HTTP {status}"))
    };

    if status == 401
        || errors
            .iter()
            .any(|e| e.is("AUTHENTICATION_ERROR", "authentication error"))
    {
        return Err(LinearError::Auth {
            message: first_message(),
        });
    }
    if status == 429 || errors.iter().any(|e| e.is("RATELIMITED", "ratelimited")) {
        return Err(RateLimitHeaders::parse(headers).into_error(now));
    }
    if let Some(e) = errors
        .iter()
        .find(|e| e.message.starts_with("Entity not found"))
    {
        return Err(LinearError::NotFound {
            message: redact(&e.message, key),
        });
    }
    if !errors.is_empty() {
        return Err(LinearError::GraphQl {
            status,
            code: errors.iter().find_map(|e| e.ext("code")).map(str::to_owned),
            messages: errors.iter().map(|e| redact(&e.message, key)).collect(),
        });
    }
    if !(200..300).contains(&status) {
        let snippet: String = body.chars().take(300).collect();
        return Err(LinearError::Http {
            status,
            message: redact(&snippet, key),
        });
    }
    match parsed.and_then(|b| b.data) {
        Some(data) if data.is_object() => Ok(data),
        _ => Err(LinearError::InvalidResponse(
            "the answer has no `data` object".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "lin_api_secret0123456789";

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_401_without_a_body_is_an_auth_error_naming_the_setting() {
        let e = classify(401, &HeaderMap::new(), "Unauthorized", KEY, Utc::now()).unwrap_err();
        assert!(matches!(e, LinearError::Auth { .. }), "{e:?}");
        assert!(e.to_string().contains("LINEAR_API_KEY"), "{e}");
    }

    #[test]
    fn keys_in_upstream_messages_are_redacted() {
        let body = format!(r#"{{"errors":[{{"message":"bad key {KEY} and lin_api_other99"}}]}}"#);
        let e = classify(400, &HeaderMap::new(), &body, KEY, Utc::now()).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("secret0123456789"), "{text}");
        assert!(!text.contains("other99"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn the_reset_of_the_exhausted_bucket_decides_the_wait() {
        let now = Utc::now();
        let ms = |secs: i64| {
            (now + chrono::Duration::seconds(secs))
                .timestamp_millis()
                .to_string()
        };
        let h = headers(&[
            ("x-ratelimit-requests-remaining", "12".into()),
            ("x-ratelimit-requests-reset", ms(3600)),
            ("x-ratelimit-complexity-remaining", "0".into()),
            ("x-ratelimit-complexity-reset", ms(5)),
        ]);
        let body =
            r#"{"errors":[{"message":"Rate limit exceeded","extensions":{"code":"RATELIMITED"}}]}"#;
        let LinearError::RateLimited { retry_after, .. } =
            classify(400, &h, body, KEY, now).unwrap_err()
        else {
            panic!("not rate limited")
        };
        let wait = retry_after.unwrap();
        assert!(
            wait <= Duration::from_secs(5) && wait >= Duration::from_secs(4),
            "{wait:?}"
        );
    }

    #[test]
    fn retry_after_wins_over_the_reset_headers() {
        let h = headers(&[("retry-after", "2".into())]);
        let e = classify(429, &h, "", KEY, Utc::now()).unwrap_err();
        let LinearError::RateLimited {
            retry_after,
            reset_at,
        } = e
        else {
            panic!("not rate limited")
        };
        assert_eq!(retry_after, Some(Duration::from_secs(2)));
        assert!(reset_at.is_some());
    }

    #[test]
    fn entity_not_found_is_not_found_and_other_errors_keep_their_code() {
        let body = r#"{"errors":[{"message":"Entity not found: Issue","extensions":{"type":"invalid input","code":"INPUT_ERROR"}}],"data":null}"#;
        let e = classify(200, &HeaderMap::new(), body, KEY, Utc::now()).unwrap_err();
        assert!(matches!(e, LinearError::NotFound { .. }), "{e:?}");

        let body = r#"{"errors":[{"message":"Argument Validation Error","extensions":{"code":"INVALID_INPUT"}}]}"#;
        let e = classify(400, &HeaderMap::new(), body, KEY, Utc::now()).unwrap_err();
        assert_eq!(e.code(), Some("INVALID_INPUT"));
    }

    #[test]
    fn a_5xx_page_is_an_http_error_and_transient() {
        let e = classify(
            502,
            &HeaderMap::new(),
            "<html>bad gateway</html>",
            KEY,
            Utc::now(),
        )
        .unwrap_err();
        assert!(matches!(e, LinearError::Http { status: 502, .. }), "{e:?}");
        assert!(e.is_transient());
    }
}
