//! Data and sessions survive a restart; the generated JWT secret is kept under the data dir.

use reqwest::StatusCode;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(tokens_and_data_survive_a_restart);

async fn tokens_and_data_survive_a_restart(backend: Backend) {
    // No JWT secret configured: one is generated into the data directory.
    let mut app = TestApp::spawn_with(backend, |s| s.jwt_secret = None).await;
    let secret_file = app.settings.data_dir.join("jwt_secret");
    assert!(secret_file.exists());
    let session = app.admin().await;
    let (_, created) = app
        .post(
            "/auth/tokens",
            Some(&session),
            serde_json::json!({ "name": "keep" }),
        )
        .await;
    let api_token = created["token"].as_str().unwrap().to_owned();
    let settings = app.settings.clone();
    app.stop().await;

    let mut again = TestApp::start(settings).await;
    assert_eq!(
        again.get("/auth/me", &session).await.0,
        StatusCode::OK,
        "session survives"
    );
    assert_eq!(
        again.get("/auth/me", &api_token).await.0,
        StatusCode::OK,
        "API token survives"
    );
    let (status, users) = again.get("/users", &session).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["items"][0]["email"], "admin@example.com");
    again.stop().await;
    drop(app);
}
