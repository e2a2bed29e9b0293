//! A real S3-protocol server for tests (feature `test-s3`): s3s-fs over a temporary
//! directory, with static credentials enforced by s3s's SigV4 check, served over HTTP/1
//! on 127.0.0.1 and a random port inside the test's own tokio runtime.
//!
//! ```ignore
//! let s3 = TestS3::start("artifacts").await;
//! let blobs = Blobs::s3(s3.config()).await?;
//! ```
//!
//! Not for production: s3s-fs is an experimental server.
#![allow(
    clippy::expect_used,
    reason = "a test server that cannot start should fail the test loudly"
)]

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::S3Config;

/// A running in-process S3 server with one bucket. Dropping it stops the server and
/// removes its files.
pub struct TestS3 {
    /// `http://127.0.0.1:PORT`, for path-style requests.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
    /// The only access key the server accepts.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    root: tempfile::TempDir,
    server: JoinHandle<()>,
}

impl TestS3 {
    /// Starts a server with an empty bucket named `bucket`. Must run inside a tokio
    /// runtime (e.g. `#[tokio::test]`); the server lives on that runtime.
    pub async fn start(bucket: &str) -> TestS3 {
        let root = tempfile::tempdir().expect("temporary directory for the test S3 server");
        std::fs::create_dir(root.path().join(bucket)).expect("create the test bucket");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs over the temp dir");

        let access_key = "vorg-test-access-key".to_owned();
        let secret_key = format!("vorg-test-secret-{}", std::process::id());
        let mut service = S3ServiceBuilder::new(fs);
        service.set_auth(SimpleAuth::from_single(
            access_key.clone(),
            secret_key.clone(),
        ));
        let service = service.build();

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test S3 server");
        let addr = listener.local_addr().expect("test S3 server address");

        #[allow(
            clippy::disallowed_methods,
            reason = "test server; its tasks end with the test's runtime or on drop"
        )]
        let server = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                #[allow(
                    clippy::disallowed_methods,
                    reason = "one connection of the test server"
                )]
                tokio::spawn(async move {
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service);
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "test S3 connection ended");
                    }
                });
            }
        });

        TestS3 {
            endpoint: format!("http://{addr}"),
            bucket: bucket.to_owned(),
            access_key,
            secret_key,
            root,
            server,
        }
    }

    /// A configuration that reaches this server's bucket with valid credentials.
    pub fn config(&self) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            region: "us-east-1".to_owned(),
            endpoint: Some(self.endpoint.clone()),
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            allow_http: true,
        }
    }

    /// Creates another empty bucket.
    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir(self.root.path().join(bucket)).expect("create a test bucket");
    }

    /// Where the server keeps `bucket/key` on disk, to check what really got stored.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.path().join(&self.bucket).join(Path::new(key))
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        self.server.abort();
    }
}
