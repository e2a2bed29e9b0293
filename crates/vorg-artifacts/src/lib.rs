//! Artifact blob storage for vorg: bytes under a key, on local disk or in any
//! S3-compatible store (AWS S3, MinIO, Ceph, R2, ...), through one small API.
//!
//! [`Blobs`] is the only handle callers need: build it once at start-up with
//! [`Blobs::local`] or [`Blobs::s3`] (which fails right there if the bucket or the
//! credentials are wrong), clone it freely, and `put`/`get`/`delete` by key. Every key
//! passes [`validate_key`] first, so no key can escape the local root.
//!
//! What does not live here: which artifacts exist and who may read them (that is metadata
//! in vorg-store), streaming of very large objects, and listing.
//!
//! With the `test-s3` feature, [`testing::TestS3`] serves a real S3-protocol server
//! in-process for tests.

mod errors;
mod key;
mod s3;
#[cfg(feature = "test-s3")]
pub mod testing;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;

pub use key::{MAX_KEY_LEN, MAX_SEGMENT_LEN, validate_key};
pub use s3::S3Config;

/// What can go wrong with a blob operation.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key failed [`validate_key`]; the message names the key and the rule.
    #[error("invalid blob key {0}")]
    InvalidKey(String),
    /// No blob under this key.
    #[error("no blob under key {0:?}")]
    NotFound(String),
    /// The store could not be reached or refused us. The message says what to check
    /// (bucket name, endpoint, credentials) and never contains a secret.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// Any other failure of the store or the disk.
    #[error("blob store error: {0}")]
    Io(String),
}

/// Where a blob was written, as returned by [`Blobs::put`]; worth recording next to the
/// artifact's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredBlob {
    /// `"local"` or `"s3"`.
    pub backend: &'static str,
    /// The bucket, for S3.
    pub bucket: Option<String>,
    /// The key as given to `put`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// A cheap-to-clone handle on one blob store.
#[derive(Clone)]
pub struct Blobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
}

enum Backend {
    Local {
        root: PathBuf,
        /// The same store as `Inner::store`, kept concrete so tests can ask where a key lands.
        #[cfg_attr(not(test), allow(dead_code))]
        fs: Arc<LocalFileSystem>,
    },
    S3(s3::S3Target),
}

impl Blobs {
    /// Blobs under `dir` on local disk; creates the directory if needed.
    pub fn local(dir: impl Into<PathBuf>) -> Result<Blobs, BlobError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| {
            BlobError::Io(format!(
                "cannot create the artifact directory {}: {e}",
                dir.display()
            ))
        })?;
        let root = std::fs::canonicalize(&dir).map_err(|e| {
            BlobError::Io(format!(
                "cannot resolve the artifact directory {}: {e}",
                dir.display()
            ))
        })?;
        let fs = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| BlobError::Io(format!("cannot open {}: {e}", root.display())))?
            .with_automatic_cleanup(true);
        let fs = Arc::new(fs);
        tracing::info!(root = %root.display(), "artifact blobs on local disk");
        Ok(Blobs {
            inner: Arc::new(Inner {
                store: fs.clone(),
                backend: Backend::Local { root, fs },
            }),
        })
    }

    /// Blobs in an S3 bucket. Uses path-style requests when `cfg.endpoint` is set.
    ///
    /// Checks at once that the bucket exists and the credentials work (a list of at most
    /// one key), so a wrong `S3_BUCKET`, `S3_ENDPOINT` or AWS credential fails here with
    /// [`BlobError::Unavailable`] rather than at the first write.
    pub async fn s3(cfg: S3Config) -> Result<Blobs, BlobError> {
        Self::s3_with_probe_timeout(cfg, s3::PROBE_TIMEOUT).await
    }

    async fn s3_with_probe_timeout(
        cfg: S3Config,
        probe_timeout: std::time::Duration,
    ) -> Result<Blobs, BlobError> {
        let (store, target) = s3::connect(cfg, probe_timeout).await?;
        tracing::info!(store = %target.describe(), "artifact blobs in S3");
        Ok(Blobs {
            inner: Arc::new(Inner {
                store,
                backend: Backend::S3(target),
            }),
        })
    }

    /// `"local"` or `"s3"`.
    pub fn backend(&self) -> &'static str {
        match self.inner.backend {
            Backend::Local { .. } => "local",
            Backend::S3(_) => "s3",
        }
    }

    /// `local:/path` or `s3://bucket (endpoint)`, for logs and health output; no secrets.
    pub fn describe(&self) -> String {
        match &self.inner.backend {
            Backend::Local { root, .. } => format!("local:{}", root.display()),
            Backend::S3(target) => target.describe(),
        }
    }

    /// Stores `bytes` under `key`, replacing any blob already there. Atomic: a reader sees
    /// the old blob or the new one, never part of one.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<StoredBlob, BlobError> {
        let path = store_path(key)?;
        let size = bytes.len() as u64;
        self.inner
            .store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| self.error(key, "write", e))?;
        tracing::debug!(key, size, store = %self.describe(), "blob stored");
        Ok(StoredBlob {
            backend: self.backend(),
            bucket: match &self.inner.backend {
                Backend::S3(target) => Some(target.bucket.clone()),
                Backend::Local { .. } => None,
            },
            key: key.to_owned(),
            size,
        })
    }

    /// The blob under `key`, or [`BlobError::NotFound`].
    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let path = store_path(key)?;
        let read = async { self.inner.store.get(&path).await?.bytes().await };
        read.await.map_err(|e| self.error(key, "read", e))
    }

    /// Removes the blob under `key`. Deleting a missing key succeeds, as it does in S3.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = store_path(key)?;
        match self.inner.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                tracing::debug!(key, store = %self.describe(), "blob deleted");
                Ok(())
            }
            Err(e) => Err(self.error(key, "delete", e)),
        }
    }

    fn error(&self, key: &str, action: &str, err: object_store::Error) -> BlobError {
        let (is_s3, secret) = match &self.inner.backend {
            Backend::S3(target) => (true, target.secret.as_deref()),
            Backend::Local { .. } => (false, None),
        };
        errors::classify(&self.describe(), is_s3, key, action, err, secret)
    }

    /// Where `key` lands on disk, for the local backend.
    #[cfg(test)]
    fn local_path(&self, key: &str) -> Option<PathBuf> {
        match &self.inner.backend {
            Backend::Local { fs, .. } => fs.path_to_filesystem(&store_path(key).ok()?).ok(),
            Backend::S3(_) => None,
        }
    }
}

impl fmt::Debug for Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Blobs").field(&self.describe()).finish()
    }
}

/// A validated key as object_store's path. Our alphabet needs no encoding, so the object
/// name in S3 and the file name on disk are the key itself.
fn store_path(key: &str) -> Result<StorePath, BlobError> {
    validate_key(key)?;
    StorePath::parse(key).map_err(|e| BlobError::InvalidKey(format!("{key:?}: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn every_valid_key_resolves_under_the_local_root() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path().join("blobs")).unwrap();
        let root = std::fs::canonicalize(dir.path().join("blobs")).unwrap();

        for key in ["a", "runs/1/out.json", "...", "a/..b/c..", ".x/y"] {
            let path = blobs.local_path(key).unwrap();
            assert!(path.starts_with(&root), "{key} -> {}", path.display());
            assert_ne!(path, root);
            // No component may climb out once the path is taken literally.
            assert!(
                path.components()
                    .all(|c| !matches!(c, std::path::Component::ParentDir)),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn keys_that_would_escape_never_reach_the_store() {
        for key in ["../x", "a/../../b", "/etc/passwd", "..", "a/./b"] {
            assert!(matches!(store_path(key), Err(BlobError::InvalidKey(_))));
        }
    }

    #[test]
    fn describe_names_the_local_root() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(blobs.backend(), "local");
        assert_eq!(blobs.describe(), format!("local:{}", root.display()));
    }
}
