//! Provider failures, classified for retry decisions. Messages never contain keys.

use std::time::Duration;

/// What kind of failure, which decides whether to retry or fall back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401/403: the key is wrong or lacks access. Not retried.
    Auth,
    /// 429 (rate limited or out of quota). Retried after `retry_after`.
    RateLimited,
    /// 5xx, or Anthropic's `overloaded_error` (529). Retried.
    Server,
    /// Other 4xx: the request itself is wrong. Not retried.
    BadRequest,
    /// No answer in time. Retried.
    Timeout,
    /// Could not connect, or the connection broke. Retried.
    Connect,
    /// The upstream answered something that is not its protocol. Not retried.
    Malformed,
}

/// A failed provider call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ProviderError {
    pub provider: String,
    pub kind: ErrorKind,
    /// Upstream HTTP status, when there was one.
    pub status: Option<u16>,
    /// From `Retry-After` (or the provider's own hint).
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl ProviderError {
    /// A failure whose message is redacted of anything that looks like a credential.
    pub fn new(provider: &str, kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            provider: provider.to_owned(),
            kind,
            status: None,
            retry_after: None,
            message: redact(&message.into()),
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Connect
        )
    }

    /// Classifies a transport error from reqwest, with any key-bearing text removed.
    pub fn from_reqwest(provider: &str, e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_decode() {
            ErrorKind::Malformed
        } else {
            ErrorKind::Connect
        };
        // reqwest's Display includes the URL; ours never carry keys, but leave it out anyway.
        let mut text = e.to_string();
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "[upstream]");
        }
        ProviderError::new(provider, kind, redact(&text))
    }

    /// Classifies an HTTP error answer.
    pub fn from_status(
        provider: &str,
        status: u16,
        retry_after: Option<Duration>,
        body: &str,
    ) -> Self {
        let kind = match status {
            401 | 403 => ErrorKind::Auth,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::BadRequest,
        };
        let detail = upstream_message(body);
        ProviderError {
            provider: provider.to_owned(),
            kind,
            status: Some(status),
            retry_after,
            message: redact(&format!("upstream answered {status}: {detail}")),
        }
    }
}

/// The human message in an OpenAI- or Anthropic-style error body, shortened.
fn upstream_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect());
    redact(&msg)
}

/// The shapes a credential takes in upstream text, each with the part to keep (`$1`).
/// Key prefixes (`sk-`, `sk-proj-`, `sk-ant-`, `rk-`, Google's `AIza…`), `Bearer …`,
/// `api_key=…` / `"api_key": "…"` / `x-api-key: …` and their kin, `?key=…` in URLs.
static SECRET_SHAPES: std::sync::LazyLock<Vec<(regex::Regex, &'static str)>> =
    std::sync::LazyLock::new(|| {
        [
            (r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{6,}", "${1}[redacted]"),
            (
                r#"(?i)((?:api[_-]?key|x-api-key|access[_-]?token|auth[_-]?token|secret[_-]?key|client[_-]?secret|password|authorization)["']?\s*[:=]\s*["']?)[^"'\s,;&}]{4,}"#,
                "${1}[redacted]",
            ),
            (r#"(?i)([?&](?:key|api_key|token)=)[^&\s"']+"#, "${1}[redacted]"),
            (r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{6,}", "[redacted]"),
            (r"\bAIza[0-9A-Za-z_\-]{20,}", "[redacted]"),
        ]
        .into_iter()
        .filter_map(|(pattern, keep)| regex::Regex::new(pattern).ok().map(|re| (re, keep)))
        .collect()
    });

/// Removes anything that looks like a credential from `text`: every path by which upstream
/// text reaches a caller or a usage row (a [`ProviderError`]'s message) goes through it.
pub fn redact(text: &str) -> String {
    SECRET_SHAPES
        .iter()
        .fold(text.to_owned(), |acc, (re, keep)| {
            re.replace_all(&acc, *keep).into_owned()
        })
}

/// Parses `Retry-After` as seconds (the form LLM APIs send).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The HTTP client of one provider: connect and read timeouts set.
pub fn http_client(
    provider: &str,
    connect: Duration,
    read: Duration,
) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .read_timeout(read)
        .build()
        .map_err(|e| ProviderError::from_reqwest(provider, &e))
}

/// Sends a request; a non-2xx answer becomes a classified error (with `Retry-After`).
pub async fn send_checked(
    provider: &str,
    builder: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let resp = builder
        .send()
        .await
        .map_err(|e| ProviderError::from_reqwest(provider, &e))?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let wait = retry_after(resp.headers());
    let body = resp.text().await.unwrap_or_default();
    Err(ProviderError::from_status(provider, status, wait, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_from_upstream_messages() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-proj-abcdef123456. Find yours at ..."}}"#;
        let e = ProviderError::from_status("openai", 401, None, body);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(!e.to_string().contains("abcdef123456"), "{e}");
        assert!(e.to_string().contains("[redacted]"), "{e}");
    }

    #[test]
    fn every_shape_of_credential_is_redacted_and_prose_is_left_alone() {
        let cases = [
            (
                "Incorrect API key provided: sk-proj-AbC123xyz_789.",
                "sk-proj-AbC123xyz_789",
            ),
            (
                "invalid x-api-key: sk-ant-api03-Zz9_yy-88",
                "sk-ant-api03-Zz9_yy-88",
            ),
            (
                "header was Authorization: Bearer eyJhbGciOi.J9x-y_z",
                "eyJhbGciOi.J9x-y_z",
            ),
            ("bad request api_key=abcd1234efgh&x=1", "abcd1234efgh"),
            (r#"{"api_key": "hunter2hunter2"}"#, "hunter2hunter2"),
            (
                "GET https://x.test/v1?key=AIzaSyA1234567890abcdefghij",
                "AIzaSyA1234567890",
            ),
            ("key sk-abcdef123456,then", "sk-abcdef123456"),
            ("token\"sk-svcacct-q1w2e3r4t5\"", "q1w2e3r4t5"),
            ("password: s3cr3t-value", "s3cr3t-value"),
        ];
        for (text, secret) in cases {
            let out = redact(text);
            assert!(!out.contains(secret), "{text:?} -> {out:?}");
            assert!(out.contains("[redacted]"), "{text:?} -> {out:?}");
        }
        for prose in [
            "The model is overloaded, try again later.",
            "max_tokens must be at most 4096 (got 100000)",
            "Invalid value for 'temperature': expected a number",
            "desk-top tasks are risky",
        ] {
            assert_eq!(redact(prose), prose);
        }
        let e = ProviderError::new(
            "openai",
            ErrorKind::Connect,
            "failed with Bearer abcdefgh1234",
        );
        assert!(!e.message.contains("abcdefgh1234"), "{e}");
    }

    #[test]
    fn statuses_are_classified_for_retries() {
        assert!(ProviderError::from_status("x", 429, None, "").retryable());
        assert!(ProviderError::from_status("x", 529, None, "").retryable());
        assert!(!ProviderError::from_status("x", 400, None, "").retryable());
        assert!(!ProviderError::from_status("x", 401, None, "").retryable());
    }
}
