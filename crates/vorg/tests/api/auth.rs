//! The seed's auth routes, answered as the original did, plus vorg's stricter rules.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    the_first_user_becomes_admin_and_later_signups_are_refused,
    open_signup_gives_viewers,
    the_admin_secret_makes_an_admin_and_a_wrong_one_is_refused,
    registering_the_same_email_twice_returns_409,
    short_passwords_are_refused_with_a_422_that_says_so,
    login_answers_a_token_with_the_seed_claims_and_refuses_wrong_passwords,
    every_kind_of_bad_jwt_is_a_401,
    assign_role_grants_a_role_and_answers_ok_true,
);

async fn the_first_user_becomes_admin_and_later_signups_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app.register("First@Example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["roles"], json!(["admin"]));
    let token = body["access_token"].as_str().unwrap();
    let (status, me) = app.get("/auth/me", token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "first@example.com");
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["credential"], "jwt");

    let (status, body) = app.register("second@example.com", PASSWORD).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "refused");
    assert_eq!(body["detail"], "signups disabled");
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}

async fn open_signup_gives_viewers(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.allow_signup = Some(true)).await;
    app.admin().await;
    let (status, body) = app.register("v@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["viewer"]));
}

async fn the_admin_secret_makes_an_admin_and_a_wrong_one_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.admin_signup_secret = Some(vorg_domain::Secret::new("let-me-in"))
    })
    .await;
    app.admin().await;
    let with = |secret: &str| json!({ "email": "boss@example.com", "password": PASSWORD, "admin_secret": secret });
    let (status, body) = app.post("/auth/register", None, with("nope")).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "refused");
    assert!(
        !body.to_string().contains("let-me-in"),
        "secret leaked: {body}"
    );
    let (status, body) = app.post("/auth/register", None, with("let-me-in")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["admin"]));
}

async fn registering_the_same_email_twice_returns_409(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.allow_signup = Some(true)).await;
    app.admin().await;
    assert_eq!(
        app.register("dup@example.com", PASSWORD).await.0,
        StatusCode::OK
    );
    let (status, body) = app.register("DUP@example.com", PASSWORD).await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["detail"].as_str().unwrap().starts_with("email:"),
        "{body}"
    );
}

async fn short_passwords_are_refused_with_a_422_that_says_so(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app.register("a@example.com", "1234567").await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(body["errors"][0]["field"], "password");
    assert_eq!(
        body["errors"][0]["message"],
        "must be at least 8 characters"
    );
    let (status, body) = app.register("not-an-email", "1234").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&body), ["email", "password"]);
    assert_eq!(app.store.count_users().await.unwrap(), 0, "nothing stored");
}

async fn login_answers_a_token_with_the_seed_claims_and_refuses_wrong_passwords(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.admin().await;
    let (status, body) = app.login("admin@example.com", "wrong password").await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (status, unknown) = app.login("nobody@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown["detail"], body["detail"],
        "same answer for unknown accounts"
    );

    let (status, body) = app.login("ADMIN@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&["vo-console"]);
    v.set_issuer(&["vo-api"]);
    let claims = decode::<Value>(token, &DecodingKey::from_secret(JWT_SECRET.as_bytes()), &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], body["user_id"].to_string());
    assert_eq!(claims["adm"], true);
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 120 * 60);
    let user = app
        .store
        .find_user_by_email("admin@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.user.last_login_at.is_some());
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn every_kind_of_bad_jwt_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let good = app.admin().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |f: &dyn Fn(&mut Value)| {
        let mut c = json!({ "iss": "vo-api", "aud": "vo-console", "sub": "1", "adm": true,
                            "iat": now, "exp": now + 600 });
        f(&mut c);
        c
    };
    // alg: none, with a valid payload.
    let payload = good.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let cases: Vec<(&str, String)> = vec![
        ("alg none", none),
        (
            "wrong key",
            sign(&claims(&|_| {}), "another-secret-another-secret-0000"),
        ),
        (
            "expired",
            sign(
                &claims(&|c| {
                    c["exp"] = json!(now - 3600);
                    c["iat"] = json!(now - 7200)
                }),
                JWT_SECRET,
            ),
        ),
        (
            "wrong issuer",
            sign(&claims(&|c| c["iss"] = json!("evil")), JWT_SECRET),
        ),
        (
            "wrong audience",
            sign(&claims(&|c| c["aud"] = json!("evil")), JWT_SECRET),
        ),
        (
            "no exp",
            sign(
                &claims(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                JWT_SECRET,
            ),
        ),
        ("malformed", "not.a.jwt".to_owned()),
        ("garbage", "%%%".to_owned()),
        (
            "unknown user",
            sign(&claims(&|c| c["sub"] = json!("999")), JWT_SECRET),
        ),
        (
            "non-numeric sub",
            sign(&claims(&|c| c["sub"] = json!("root")), JWT_SECRET),
        ),
    ];
    for (name, token) in cases {
        let (status, body) = app.get("/auth/me", &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body["code"], "unauthenticated", "{name}");
    }
    // Missing header and a non-bearer scheme.
    let (status, _) = app.call(Method::GET, "/auth/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    // And the good one works.
    assert_eq!(app.get("/auth/me", &good).await.0, StatusCode::OK);
}

async fn assign_role_grants_a_role_and_answers_ok_true(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (id, token) = app.user_with("eng@example.com", &[Role::Viewer]).await;
    let (status, body) = app
        .post(
            "/auth/assign-role",
            Some(&admin),
            json!({ "user_id": id, "role": "engineer" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "ok": true }));
    let (_, me) = app.get("/auth/me", &token).await;
    assert_eq!(
        me["roles"],
        json!(["engineer", "viewer"]),
        "in force at once"
    );
    let (status, body) = app
        .post(
            "/auth/assign-role",
            Some(&admin),
            json!({ "user_id": id, "role": "king" }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["role"]);
    let (status, _) = app
        .post(
            "/auth/assign-role",
            Some(&admin),
            json!({ "user_id": 4242, "role": "viewer" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
