//! API tokens: shown once, stored hashed, a subset of the owner's roles, revocable.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    an_api_token_authenticates_with_its_roles_until_revoked,
    a_token_cannot_carry_a_role_its_owner_lacks,
    tokens_are_listed_without_secrets_and_only_to_their_owner,
);

async fn an_api_token_authenticates_with_its_roles_until_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, created) = app
        .post(
            "/auth/tokens",
            Some(&admin),
            json!({ "name": "ci bot", "roles": ["admin"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("vorg_") && secret.len() > 40);
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));

    let (status, me) = app.get("/auth/me", &secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["credential"], "api_token");
    assert_eq!(me["token_id"], created["id"]);
    assert_eq!(
        app.get("/users", &secret).await.0,
        StatusCode::OK,
        "admin role carried"
    );

    // A narrower token is refused what its roles do not allow.
    let (_, narrow) = app
        .post(
            "/auth/tokens",
            Some(&admin),
            json!({ "name": "reader", "roles": ["admin"] }),
        )
        .await;
    let (status, _) = app
        .post("/users/1/roles", Some(&admin), json!({ "role": "viewer" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, viewer_token) = app
        .post(
            "/auth/tokens",
            Some(&admin),
            json!({ "name": "viewer", "roles": ["viewer"] }),
        )
        .await;
    let viewer_secret = viewer_token["token"].as_str().unwrap();
    let (status, body) = app.get("/users", viewer_secret).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        body["detail"].as_str().unwrap().contains("manage_users"),
        "{body}"
    );
    assert!(narrow["token"].is_string());

    // Revoked: refused at once.
    let path = format!("/auth/tokens/{}", created["id"]);
    let (status, _) = app.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/auth/me", &secret).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (status, _) = app.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already revoked");

    // A made-up token of the right shape.
    assert_eq!(
        app.get("/auth/me", "vorg_madeup").await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_token_cannot_carry_a_role_its_owner_lacks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.admin().await;
    let (_, eng) = app.user_with("eng@example.com", &[Role::Engineer]).await;
    let (status, body) = app
        .post(
            "/auth/tokens",
            Some(&eng),
            json!({ "name": "x", "roles": ["engineer", "admin"] }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["roles[1]"]);
    let (status, body) = app
        .post(
            "/auth/tokens",
            Some(&eng),
            json!({ "name": " ", "roles": [], "expires_in_days": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&body), ["name", "expires_in_days"], "{body}");
    let (status, body) = app
        .post(
            "/auth/tokens",
            Some(&eng),
            json!({ "name": "ok", "expires_in_days": 30 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["roles"],
        json!(["engineer"]),
        "defaults to the owner's roles"
    );
    assert!(body["expires_at"].is_string());
}

async fn tokens_are_listed_without_secrets_and_only_to_their_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, other) = app.user_with("other@example.com", &[Role::Viewer]).await;
    let (_, created) = app
        .post("/auth/tokens", Some(&admin), json!({ "name": "mine" }))
        .await;
    let secret = created["token"].as_str().unwrap();
    app.get("/auth/me", secret).await;

    let (status, list) = app.get("/auth/tokens", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret), "secret listed");
    assert!(list["items"][0]["last_used_at"].is_string(), "{list}");
    assert!(list["items"][0].get("token").is_none());

    let (_, theirs) = app.get("/auth/tokens", &other).await;
    assert_eq!(theirs["items"], json!([]));
    let path = format!("/auth/tokens/{}", created["id"]);
    let (status, _) = app.call(Method::DELETE, &path, Some(&other), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "cannot revoke someone else's token"
    );
    assert_eq!(app.get("/auth/me", secret).await.0, StatusCode::OK);
}
