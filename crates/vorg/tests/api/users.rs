//! Admin endpoints: users, roles, the last-admin rule and the audit log.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    the_last_admin_cannot_be_demoted,
    users_are_listed_newest_first_a_page_at_a_time,
    every_mutation_writes_an_audit_row_that_admins_can_page_through,
);

async fn the_last_admin_cannot_be_demoted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, body) = app
        .call(Method::DELETE, "/users/1/roles/admin", Some(&admin), None)
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");
    assert_eq!(body["detail"], "the last admin cannot be demoted");
    assert_eq!(
        app.get("/users", &admin).await.0,
        StatusCode::OK,
        "still admin"
    );

    let (id, _) = app.user_with("second@example.com", &[Role::Viewer]).await;
    let (status, user) = app
        .post(
            &format!("/users/{id}/roles"),
            Some(&admin),
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["roles"], json!(["admin", "viewer"]));
    let (status, user) = app
        .call(Method::DELETE, "/users/1/roles/admin", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["roles"], json!([]));
    assert_eq!(user["is_admin"], false);
    // The demoted admin's session no longer carries admin rights.
    assert_eq!(app.get("/users", &admin).await.0, StatusCode::FORBIDDEN);
    let (_, second) = app.login("second@example.com", PASSWORD).await;
    let second = second["access_token"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::DELETE,
            "/users/999/roles/viewer",
            Some(second),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn users_are_listed_newest_first_a_page_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let hasher = vorg_api::PasswordHasher::new().unwrap();
    let hash = hasher.hash(PASSWORD).await.unwrap();
    for i in 0..7 {
        app.store
            .create_user(&format!("u{i}@example.com"), &hash, &[Role::Viewer], false)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/users?limit=3&cursor={c}"),
            None => "/users?limit=3".to_owned(),
        };
        let (status, page) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for u in page["items"].as_array().unwrap() {
            seen.push(u["email"].as_str().unwrap().to_owned());
            assert!(u.get("password_hash").is_none());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut want: Vec<String> = (0..7).rev().map(|i| format!("u{i}@example.com")).collect();
    want.push("admin@example.com".into());
    assert_eq!(seen, want);
}

async fn every_mutation_writes_an_audit_row_that_admins_can_page_through(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (id, viewer) = app.user_with("v@example.com", &[Role::Viewer]).await;
    app.post(
        "/auth/assign-role",
        Some(&admin),
        json!({ "user_id": id, "role": "growth" }),
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/users/{id}/roles/growth"),
        Some(&admin),
        None,
    )
    .await;
    let (_, token) = app
        .post("/auth/tokens", Some(&admin), json!({ "name": "t" }))
        .await;
    app.call(
        Method::DELETE,
        &format!("/auth/tokens/{}", token["id"]),
        Some(&admin),
        None,
    )
    .await;

    let (status, page) = app.get("/audit?limit=3", &admin).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["token.revoke", "token.create", "user.role.revoke"]
    );
    let row = &page["items"][2];
    assert_eq!(row["actor"], "admin@example.com");
    assert_eq!(row["target"], format!("user:{id}"));
    assert_eq!(row["detail"]["role"], "growth");
    assert!(
        row["request_id"].as_str().is_some_and(|r| r.len() >= 32),
        "{row}"
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app.get(&format!("/audit?cursor={cursor}"), &admin).await;
    let actions: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.role.grant", "user.register"]);
    assert!(rest["next_cursor"].is_null());

    assert_eq!(app.get("/audit", &viewer).await.0, StatusCode::FORBIDDEN);
}
