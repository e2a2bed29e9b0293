//! How to reach Linear: key, endpoint, timeouts and retry bounds. The key never prints.

use std::{fmt, time::Duration};

/// Linear's production GraphQL endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.linear.app/graphql";

/// Settings of a [`LinearClient`](crate::LinearClient).
///
/// `Debug` prints `[redacted]` in place of the key; nothing else here is secret.
#[derive(Clone)]
pub struct LinearConfig {
    /// A personal API key (`lin_api_…`), sent bare in `Authorization` as Linear expects.
    pub api_key: String,
    /// The GraphQL endpoint (default [`DEFAULT_ENDPOINT`]).
    pub endpoint: String,
    /// Time allowed for one HTTP request, from connect to the last byte.
    pub timeout: Duration,
    /// How many times a rate-limited request is tried again before giving up.
    pub max_retries: u32,
    /// The longest wait for a rate-limit reset that is worth retrying; a later reset fails
    /// at once with [`LinearError::RateLimited`](crate::LinearError::RateLimited).
    pub max_retry_wait: Duration,
}

impl LinearConfig {
    /// The defaults (production endpoint, 30 s timeout, 3 retries within 10 s) for `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        LinearConfig {
            api_key: api_key.into(),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(10),
        }
    }

    /// The same settings against another endpoint (a fake, a proxy).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }
}

impl Default for LinearConfig {
    /// The defaults with no key (every call then fails with `Auth`).
    fn default() -> Self {
        LinearConfig::new("")
    }
}

impl fmt::Debug for LinearConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinearConfig")
            .field("api_key", &"[redacted]")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .finish()
    }
}
