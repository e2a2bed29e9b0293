use bytes::Bytes;
use vorg_artifacts::Blobs;

use crate::contract;

fn blobs() -> (tempfile::TempDir, Blobs) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(dir.path().join("artifacts")).unwrap();
    (dir, blobs)
}

#[tokio::test]
async fn local_put_get_delete_round_trip() {
    let (_dir, blobs) = blobs();
    contract::put_get_delete_round_trip(&blobs).await;
}

#[tokio::test]
async fn local_missing_key_is_not_found() {
    let (_dir, blobs) = blobs();
    contract::a_missing_key_is_not_found(&blobs).await;
}

#[tokio::test]
async fn local_empty_blob_round_trips() {
    let (_dir, blobs) = blobs();
    contract::an_empty_blob_round_trips(&blobs).await;
}

#[tokio::test]
async fn local_traversal_attempts_are_rejected_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(dir.path().join("root")).unwrap();
    contract::traversal_attempts_are_rejected(&blobs).await;
    // Nothing was written anywhere in the parent of the root.
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the root itself: {entries:?}");
}

#[tokio::test]
async fn local_blobs_are_plain_files_under_the_root() {
    let (dir, blobs) = blobs();
    blobs
        .put("a/b/c.txt", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let on_disk = std::fs::read(dir.path().join("artifacts/a/b/c.txt")).unwrap();
    assert_eq!(on_disk, b"hello");
    assert!(
        blobs.describe().starts_with("local:/"),
        "{}",
        blobs.describe()
    );
    assert_eq!(blobs.put("x", Bytes::new()).await.unwrap().bucket, None);
}

#[test]
fn local_creates_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("deep/er/root");
    Blobs::local(&root).unwrap();
    assert!(root.is_dir());
}
