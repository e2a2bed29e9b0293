use bytes::Bytes;
use vorg_artifacts::testing::TestS3;
use vorg_artifacts::{BlobError, Blobs, S3Config};

use crate::contract;

async fn blobs() -> (TestS3, Blobs) {
    let server = TestS3::start("artifacts").await;
    let blobs = Blobs::s3(server.config()).await.unwrap();
    (server, blobs)
}

#[tokio::test]
async fn s3_put_get_delete_round_trip() {
    let (_server, blobs) = blobs().await;
    contract::put_get_delete_round_trip(&blobs).await;
}

#[tokio::test]
async fn s3_missing_key_is_not_found() {
    let (_server, blobs) = blobs().await;
    contract::a_missing_key_is_not_found(&blobs).await;
}

#[tokio::test]
async fn s3_empty_blob_round_trips() {
    let (_server, blobs) = blobs().await;
    contract::an_empty_blob_round_trips(&blobs).await;
}

#[tokio::test]
async fn s3_traversal_attempts_are_rejected() {
    let (_server, blobs) = blobs().await;
    contract::traversal_attempts_are_rejected(&blobs).await;
}

#[tokio::test]
async fn s3_put_lands_in_the_bucket_and_reports_it() {
    let (server, blobs) = blobs().await;
    let stored = blobs
        .put("runs/1/out.txt", Bytes::from_static(b"out"))
        .await
        .unwrap();
    assert_eq!(stored.backend, "s3");
    assert_eq!(stored.bucket.as_deref(), Some("artifacts"));
    assert_eq!(
        std::fs::read(server.object_path("runs/1/out.txt")).unwrap(),
        b"out"
    );
    assert_eq!(
        blobs.describe(),
        format!("s3://artifacts ({})", server.endpoint)
    );
}

#[tokio::test]
async fn s3_start_fails_clearly_when_the_bucket_does_not_exist() {
    let server = TestS3::start("artifacts").await;
    let cfg = S3Config {
        bucket: "no-such-bucket".into(),
        ..server.config()
    };

    let err = Blobs::s3(cfg).await.unwrap_err();

    let BlobError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}")
    };
    assert!(message.contains("no-such-bucket"), "{message}");
    assert!(message.contains("S3_BUCKET"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains(&server.secret_key), "{message}");
}

#[tokio::test]
async fn s3_start_fails_clearly_with_a_wrong_secret_and_never_shows_it() {
    let server = TestS3::start("artifacts").await;
    let wrong = "definitely-the-wrong-secret-0123456789";
    let cfg = S3Config {
        secret_access_key: Some(wrong.into()),
        ..server.config()
    };

    let err = Blobs::s3(cfg).await.unwrap_err();

    let BlobError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}")
    };
    assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
    assert!(message.contains("refused"), "{message}");
    assert!(!message.contains(wrong), "{message}");
    assert!(!message.contains(&server.secret_key), "{message}");
    assert!(!format!("{err:?}").contains(wrong));
}

#[tokio::test]
async fn s3_start_fails_clearly_with_an_unknown_access_key() {
    let server = TestS3::start("artifacts").await;
    let cfg = S3Config {
        access_key_id: Some("nobody".into()),
        ..server.config()
    };

    let err = Blobs::s3(cfg).await.unwrap_err();

    let BlobError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}")
    };
    assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
    assert!(!message.contains(&server.secret_key), "{message}");
}

#[tokio::test]
async fn s3_blobs_are_shared_between_handles_on_the_same_bucket() {
    let (server, first) = blobs().await;
    let second = Blobs::s3(server.config()).await.unwrap();
    first.put("shared", Bytes::from_static(b"1")).await.unwrap();
    assert_eq!(
        second.get("shared").await.unwrap(),
        Bytes::from_static(b"1")
    );
    let clone = second.clone();
    clone.delete("shared").await.unwrap();
    assert!(matches!(
        first.get("shared").await,
        Err(BlobError::NotFound(_))
    ));
}
