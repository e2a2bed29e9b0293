//! The S3 backend: configuration, building the object_store client, and the start-up
//! probe that proves the bucket and the credentials before anything is written.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use serde::Deserialize;

use crate::BlobError;
use crate::errors::{self, Cause};

/// How long the start-up probe may take before the store counts as unreachable.
/// object_store retries connection failures for much longer than a start-up should wait.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// Where the S3 bucket is and how to sign requests to it.
///
/// With both keys `None`, the standard AWS environment is used instead (AWS_ACCESS_KEY_ID,
/// AWS_SESSION_TOKEN, web identity, container or instance credentials). `Debug` prints
/// the secret as `[redacted]`; the type is deliberately not `Serialize`.
#[derive(Clone, Deserialize)]
pub struct S3Config {
    /// Bucket name (S3_BUCKET).
    pub bucket: String,
    /// Region used for signing; `us-east-1` by default, which MinIO and most
    /// S3-compatible servers accept.
    #[serde(default = "default_region")]
    pub region: String,
    /// Base URL of an S3-compatible server (S3_ENDPOINT), e.g. `http://127.0.0.1:9000`.
    /// When set, requests are path-style (`endpoint/bucket/key`); when not, they go to
    /// AWS with virtual-hosted-style URLs.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// AWS_ACCESS_KEY_ID.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// AWS_SECRET_ACCESS_KEY.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint (local MinIO, tests).
    #[serde(default)]
    pub allow_http: bool,
}

impl S3Config {
    /// A configuration for `bucket` on AWS in `us-east-1`, with credentials from the
    /// environment; set the other fields as needed.
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            ..S3Config::default()
        }
    }
}

impl Default for S3Config {
    fn default() -> S3Config {
        S3Config {
            bucket: String::new(),
            region: default_region(),
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_deref().map(redact_userinfo))
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "[redacted]"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// What a connected S3 `Blobs` remembers about its bucket.
pub(crate) struct S3Target {
    pub(crate) bucket: String,
    region: String,
    endpoint: Option<String>,
    /// Only to scrub it from error messages.
    pub(crate) secret: Option<String>,
}

impl S3Target {
    /// `s3://bucket (endpoint)`, or the AWS region when there is no endpoint.
    pub(crate) fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("s3://{} ({})", self.bucket, redact_userinfo(endpoint)),
            None => format!("s3://{} (AWS {})", self.bucket, self.region),
        }
    }
}

/// Builds the client and proves, with one list request of at most one key, that the
/// bucket exists and the credentials are accepted.
pub(crate) async fn connect(
    cfg: S3Config,
    probe_timeout: Duration,
) -> Result<(Arc<dyn ObjectStore>, S3Target), BlobError> {
    let bucket = cfg.bucket.trim().to_owned();
    if bucket.is_empty() {
        return Err(BlobError::Unavailable(
            "no S3 bucket configured: set S3_BUCKET".to_owned(),
        ));
    }
    let builder = match (&cfg.access_key_id, &cfg.secret_access_key) {
        (Some(id), Some(secret)) => AmazonS3Builder::new()
            .with_access_key_id(id)
            .with_secret_access_key(secret),
        (None, None) => AmazonS3Builder::from_env(),
        _ => {
            return Err(BlobError::Unavailable(
                "only one of the AWS credentials is set: set both AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or neither to use the environment's AWS credentials"
                    .to_owned(),
            ));
        }
    };
    let mut builder = builder
        .with_bucket_name(&bucket)
        .with_region(&cfg.region)
        .with_allow_http(cfg.allow_http)
        .with_virtual_hosted_style_request(cfg.endpoint.is_none());
    if let Some(endpoint) = &cfg.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let target = S3Target {
        bucket,
        region: cfg.region.clone(),
        endpoint: cfg.endpoint.clone(),
        secret: builder.get_config_value(&AmazonS3ConfigKey::SecretAccessKey),
    };
    let secret = target.secret.as_deref();
    let store = builder.build().map_err(|e| {
        BlobError::Unavailable(format!(
            "invalid S3 configuration for {}: {}; check S3_BUCKET, S3_ENDPOINT and the region",
            target.describe(),
            errors::redact(&e.to_string(), secret)
        ))
    })?;

    let probe = store.list_paginated(
        None,
        PaginatedListOptions {
            max_keys: Some(1),
            ..PaginatedListOptions::default()
        },
    );
    match tokio::time::timeout(probe_timeout, probe).await {
        Ok(Ok(_)) => Ok((Arc::new(store), target)),
        Ok(Err(e)) => Err(startup_error(&target, &e)),
        Err(_elapsed) => Err(BlobError::Unavailable(format!(
            "could not reach {} within {} s: check S3_ENDPOINT and that the server is running \
             and reachable",
            target.describe(),
            probe_timeout.as_secs_f32()
        ))),
    }
}

fn startup_error(target: &S3Target, err: &object_store::Error) -> BlobError {
    let store = target.describe();
    let detail = errors::detail(err, target.secret.as_deref());
    let message = match errors::cause(err) {
        Cause::MissingBucket => format!(
            "bucket {:?} does not exist at {store}: check S3_BUCKET (and S3_ENDPOINT), or \
             create the bucket ({detail})",
            target.bucket
        ),
        Cause::Credentials => format!(
            "{store} refused our credentials: check the AWS credentials (AWS_ACCESS_KEY_ID / \
             AWS_SECRET_ACCESS_KEY) and that they may list the bucket ({detail})"
        ),
        Cause::Unreachable => format!(
            "could not reach {store}: check S3_ENDPOINT and that the server is running and \
             reachable ({detail})"
        ),
        Cause::Other => format!(
            "{store} failed the start-up check: check S3_BUCKET, S3_ENDPOINT and the AWS \
             credentials ({detail})"
        ),
    };
    BlobError::Unavailable(message)
}

/// `https://user:pass@host` → `https://[redacted]@host`: an endpoint URL may carry
/// credentials, and `describe()` ends up in logs.
fn redact_userinfo(endpoint: &str) -> String {
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, endpoint),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return endpoint.to_owned();
    };
    let host_and_path = &rest[at + 1..];
    match scheme {
        Some(scheme) => format!("{scheme}://[redacted]@{host_and_path}"),
        None => format!("[redacted]@{host_and_path}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::Blobs;

    #[test]
    fn debug_never_prints_the_secret() {
        let cfg = S3Config {
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("wJalrXUtnFEMI-secret".into()),
            endpoint: Some("http://user:pw@minio:9000".into()),
            ..S3Config::new("artifacts")
        };
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("wJalrXUtnFEMI-secret"), "{printed}");
        assert!(!printed.contains("pw@"), "{printed}");
        assert!(printed.contains("artifacts") && printed.contains("[redacted]"));
    }

    #[test]
    fn the_region_defaults_to_us_east_1() {
        assert_eq!(S3Config::new("b").region, "us-east-1");
        assert_eq!(S3Config::default().region, "us-east-1");
    }

    #[test]
    fn endpoint_userinfo_is_redacted() {
        assert_eq!(
            redact_userinfo("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            redact_userinfo("https://a:b@s3.example.com/x"),
            "https://[redacted]@s3.example.com/x"
        );
    }

    #[tokio::test]
    async fn a_missing_bucket_name_fails_before_any_request() {
        let err = Blobs::s3(S3Config::default()).await.unwrap_err();
        assert!(
            matches!(&err, BlobError::Unavailable(m) if m.contains("S3_BUCKET")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn half_a_credential_pair_is_refused() {
        let cfg = S3Config {
            access_key_id: Some("AKID".into()),
            ..S3Config::new("b")
        };
        let err = Blobs::s3(cfg).await.unwrap_err();
        assert!(
            matches!(&err, BlobError::Unavailable(m) if m.contains("AWS_SECRET_ACCESS_KEY")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_endpoint_nobody_listens_on_fails_at_start_naming_s3_endpoint() {
        // Bind then drop to get a local port that refuses connections.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = S3Config {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("not-a-real-secret".into()),
            allow_http: true,
            ..S3Config::new("artifacts")
        };
        let err = Blobs::s3_with_probe_timeout(cfg, Duration::from_secs(2))
            .await
            .unwrap_err();
        let BlobError::Unavailable(message) = &err else {
            panic!("expected Unavailable, got {err:?}");
        };
        assert!(message.contains("S3_ENDPOINT"), "{message}");
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(!message.contains("not-a-real-secret"), "{message}");
    }
}
