//! Artifact storage on S3, end to end: minutes land in a real S3-protocol server (s3s-fs,
//! in-process) and are served back; a wrong bucket, wrong credentials or a missing bucket
//! stop the start with a message that says what to fix and carries no secret.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::json;
use vorg::{Application, Settings};
use vorg_artifacts::testing::TestS3;
use vorg_domain::Secret;
use vorg_store::{Backend, testing::TestDb};

use crate::{
    both,
    helpers::{JWT_SECRET, TestApp, test_settings},
};

both!(
    minutes_are_stored_in_s3_and_served_back,
    a_missing_bucket_or_wrong_credentials_stop_the_start_without_the_secret,
    store_to_s3_without_a_bucket_stops_the_start_naming_s3_bucket,
);

/// Points `settings` at `s3` with its valid credentials.
fn use_s3(settings: &mut Settings, s3: &TestS3) {
    settings.store_to_s3 = true;
    settings.s3_bucket = Some(s3.bucket.clone());
    settings.s3_endpoint = Some(s3.endpoint.clone());
    settings.s3_access_key_id = Some(Secret::new(s3.access_key.clone()));
    settings.s3_secret_access_key = Some(Secret::new(s3.secret_key.clone()));
}

fn temp_data_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vorg-storage-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The whole error chain of a failed start.
async fn start_error(settings: Settings) -> String {
    let dir = settings.data_dir.clone();
    let result = Application::build(settings).await;
    let _ = std::fs::remove_dir_all(dir);
    match result {
        Ok(_) => panic!("the application started"),
        Err(e) => format!("{e:#}"),
    }
}

async fn minutes_are_stored_in_s3_and_served_back(backend: Backend) {
    let s3 = TestS3::start("vorg-artifacts").await;
    let app = TestApp::spawn_with(backend, |s| use_s3(s, &s3)).await;
    let admin = app.admin().await;

    let body = json!({ "date": "2026-11-29", "attendees": ["Avery"],
                       "yesterday": ["moved artifacts to S3"], "today": ["read them back"] });
    let (status, out) = app.post("/meetings/standup", Some(&admin), body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let markdown = out["markdown"].as_str().unwrap();
    assert!(markdown.contains("moved artifacts to S3"), "{markdown}");

    let id = out["artifact_id"].as_i64().unwrap();
    let (status, artifact) = app.get(&format!("/artifacts/{id}"), &admin).await;
    assert_eq!(status, StatusCode::OK, "{artifact}");
    assert_eq!(artifact["storage"], "s3", "{artifact}");
    let key = artifact["path"].as_str().unwrap();

    let resp = app
        .client
        .get(app.url(&format!("/artifacts/{id}/content")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let served = resp.bytes().await.unwrap();
    assert_eq!(served.as_ref(), markdown.as_bytes());

    let object = s3.object_path(key);
    let stored = std::fs::read(&object)
        .unwrap_or_else(|e| panic!("no object {key} in the bucket ({}): {e}", object.display()));
    assert_eq!(stored, markdown.as_bytes());
    assert!(
        !app.settings.data_dir.join("artifacts").exists(),
        "nothing is written to local disk when S3 is configured"
    );
}

async fn a_missing_bucket_or_wrong_credentials_stop_the_start_without_the_secret(backend: Backend) {
    let s3 = TestS3::start("vorg-artifacts").await;
    let db = TestDb::new(backend).await;

    let mut settings = test_settings(&db, temp_data_dir("bucket"));
    use_s3(&mut settings, &s3);
    settings.s3_bucket = Some("no-such-bucket".into());
    let message = start_error(settings).await;
    assert!(
        message.contains("\"no-such-bucket\" does not exist") && message.contains("S3_BUCKET"),
        "{message}"
    );
    assert!(
        !message.contains(&s3.secret_key),
        "secret printed: {message}"
    );

    let wrong = "wrong-secret-0123456789abcdef";
    let mut settings = test_settings(&db, temp_data_dir("credentials"));
    use_s3(&mut settings, &s3);
    settings.s3_secret_access_key = Some(Secret::new(wrong));
    let message = start_error(settings).await;
    assert!(
        message.contains("refused our credentials")
            && message.contains("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"),
        "{message}"
    );
    assert!(!message.contains(wrong), "secret printed: {message}");
    assert!(
        !message.contains(&s3.secret_key),
        "secret printed: {message}"
    );
}

async fn store_to_s3_without_a_bucket_stops_the_start_naming_s3_bucket(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = temp_data_dir("no-bucket");
    let vars = [
        ("STORE_TO_S3", "true"),
        ("DATABASE_URL", db.url.as_str()),
        ("VORG_DATA_DIR", dir.to_str().unwrap()),
        ("VORG_BIND", "127.0.0.1:0"),
        ("JWT_SECRET", JWT_SECRET),
    ];
    let settings = Settings::load(None, |k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    assert!(settings.store_to_s3);
    let message = start_error(settings).await;
    assert!(message.contains("needs S3_BUCKET"), "{message}");
}
