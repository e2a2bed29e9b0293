//! Password guessing is slowed: per account and per client IP, 429 with Retry-After.

use reqwest::StatusCode;
use serde_json::json;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    guessing_one_accounts_password_is_rate_limited,
    one_client_ip_is_rate_limited_across_accounts
);

async fn guessing_one_accounts_password_is_rate_limited(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.login_per_minute_per_account = 3).await;
    app.admin().await;
    for _ in 0..3 {
        assert_eq!(
            app.login("admin@example.com", "guess guess").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({ "email": "Admin@Example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (_, body) = read(resp).await;
    assert_eq!(body["code"], "rate_limited");
    // Another account from the same client is not affected.
    assert_eq!(
        app.login("someone@example.com", "guess guess").await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn one_client_ip_is_rate_limited_across_accounts(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.login_per_minute_per_ip = 4).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(
            app.login(&format!("u{i}@example.com"), "guess guess")
                .await
                .0,
        );
    }
    assert_eq!(&statuses[..4], [StatusCode::UNAUTHORIZED; 4]);
    assert_eq!(&statuses[4..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    let (status, _) = app.register("new@example.com", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "register shares the per-IP budget"
    );
}
