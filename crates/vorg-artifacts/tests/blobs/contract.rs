//! Behaviour every backend must show; each backend module calls these.

use bytes::Bytes;
use vorg_artifacts::{BlobError, Blobs};

pub async fn put_get_delete_round_trip(blobs: &Blobs) {
    let key = "runs/0193/step-1/report.json";
    let body = Bytes::from_static(b"{\"ok\":true}");

    let stored = blobs.put(key, body.clone()).await.unwrap();
    assert_eq!(stored.backend, blobs.backend());
    assert_eq!(stored.key, key);
    assert_eq!(stored.size, body.len() as u64);
    assert_eq!(blobs.get(key).await.unwrap(), body);

    // A second put replaces the blob.
    let newer = Bytes::from(vec![7u8; 70_000]);
    blobs.put(key, newer.clone()).await.unwrap();
    assert_eq!(blobs.get(key).await.unwrap(), newer);

    blobs.delete(key).await.unwrap();
    assert!(
        matches!(blobs.get(key).await, Err(BlobError::NotFound(k)) if k == key),
        "a deleted blob must be gone"
    );
    // Deleting again is not an error, as in S3.
    blobs.delete(key).await.unwrap();
}

pub async fn a_missing_key_is_not_found(blobs: &Blobs) {
    let err = blobs.get("never/written.bin").await.unwrap_err();
    assert!(
        matches!(&err, BlobError::NotFound(k) if k == "never/written.bin"),
        "{err:?}"
    );
}

pub async fn an_empty_blob_round_trips(blobs: &Blobs) {
    let stored = blobs.put("empty", Bytes::new()).await.unwrap();
    assert_eq!(stored.size, 0);
    assert!(blobs.get("empty").await.unwrap().is_empty());
}

pub async fn traversal_attempts_are_rejected(blobs: &Blobs) {
    for key in ["../x", "a/../../b", "/etc/passwd", "a//b", "a\\b", "", ".."] {
        let put = blobs.put(key, Bytes::from_static(b"x")).await;
        assert!(
            matches!(put, Err(BlobError::InvalidKey(_))),
            "put {key:?}: {put:?}"
        );
        let get = blobs.get(key).await;
        assert!(
            matches!(get, Err(BlobError::InvalidKey(_))),
            "get {key:?}: {get:?}"
        );
        let delete = blobs.delete(key).await;
        assert!(
            matches!(delete, Err(BlobError::InvalidKey(_))),
            "delete {key:?}: {delete:?}"
        );
    }
}
