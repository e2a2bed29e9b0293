//! Every class of bad input is a 4xx problem that names the field; nothing a client sends
//! makes the server answer 5xx.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vorg_api::access::ROUTES;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    each_class_of_bad_input_gets_a_problem_naming_the_field,
    garbage_sent_to_every_route_never_gets_a_5xx,
);

async fn each_class_of_bad_input_gets_a_problem_naming_the_field(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.max_body_bytes = 4096).await;
    let admin = app.admin().await;
    let post_raw = |path: &str, ct: &str, body: String| {
        app.client
            .post(app.url(path))
            .bearer_auth(&admin)
            .header("content-type", ct)
            .body(body)
            .send()
    };

    // Malformed JSON.
    let resp = post_raw("/auth/tokens", "application/json", "{\"name\": ".into())
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let (status, body) = read(resp).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("body: malformed JSON"),
        "{body}"
    );

    // Wrong type.
    let (status, body) = app
        .post("/auth/tokens", Some(&admin), json!({ "name": 5 }))
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["name"]);

    // Missing field.
    let (status, body) = app.post("/auth/tokens", Some(&admin), json!({})).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["name"], "{body}");

    // Unknown field that would otherwise be dropped.
    let (status, body) = app
        .post(
            "/auth/tokens",
            Some(&admin),
            json!({ "name": "x", "scopes": ["all"] }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["scopes"], "{body}");

    // Nested wrong type names the element.
    let (status, body) = app
        .post(
            "/auth/tokens",
            Some(&admin),
            json!({ "name": "x", "roles": ["viewer", 3] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), ["roles[1]"], "{body}");

    // Body over the limit.
    let big = json!({ "name": "x".repeat(10_000) }).to_string();
    let (status, body) = read(
        post_raw("/auth/tokens", "application/json", big)
            .await
            .unwrap(),
    )
    .await;
    assert_problem(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    // Not JSON at all.
    let (status, body) = read(
        post_raw("/auth/tokens", "text/plain", "name=x".into())
            .await
            .unwrap(),
    )
    .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    // Bad ids in paths.
    let (status, body) = app
        .call(Method::DELETE, "/auth/tokens/abc", Some(&admin), None)
        .await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(body["detail"].as_str().unwrap().contains("id"), "{body}");
    let (status, body) = app
        .call(
            Method::DELETE,
            "/users/99999999999999999999/roles/admin",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .call(Method::DELETE, "/users/1/roles/king", Some(&admin), None)
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["role"]);

    // Bad query parameters.
    let (status, body) = app.get("/users?limit=0", &admin).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["query.limit"]);
    let (status, body) = app.get("/users?limit=abc", &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), ["query.limit"], "{body}");
    let (status, body) = app.get("/audit?cursor=xyz", &admin).await;
    assert_eq!(field_names(&body), ["query.cursor"], "{status} {body}");
    let (status, body) = app.get("/users?page=2", &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), ["query.page"], "{body}");

    // Unknown route.
    let (status, body) = app.get("/no/such/route", &admin).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
}

async fn garbage_sent_to_every_route_never_gets_a_5xx(backend: Backend) {
    // Linear configured (a fake that checks every document), so its routes see the garbage.
    let linear = vorg_linear::fake::FakeLinear::start().await;
    let url = linear.url();
    let app = TestApp::spawn_with(backend, move |s| {
        s.linear_api_key = Some(vorg_domain::Secret::new(vorg_linear::fake::FAKE_API_KEY));
        s.linear_api_url = url;
    })
    .await;
    let admin = app.admin().await;
    let bodies = [
        "".to_owned(),
        "null".to_owned(),
        "[]".to_owned(),
        "{\"a\":".to_owned(),
        json!({ "email": "x", "password": null, "user_id": "1", "role": [], "name": {} })
            .to_string(),
        json!({ "user_id": i64::MAX, "role": "admin" }).to_string(),
        json!({ "user_id": -1, "role": "admin", "name": "\u{0000}\u{ffff}" }).to_string(),
        "\u{feff}{}".to_owned(),
        json!({ "model": "default", "messages": [{ "role": "user", "content": 5 }], "stream": true }).to_string(),
        json!({ "model": "default", "messages": [{}], "stream_options": [], "max_tokens": -1 }).to_string(),
        json!({ "prompt": "p", "model": "", "provider": "nope", "run_id": -3 }).to_string(),
        "x".repeat(2 * 1024 * 1024),
    ];
    // Oversized bodies go on connections of their own: the server may answer early and close.
    let no_reuse = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for rule in ROUTES {
        let path = rule.path.replace("{id}", "-5").replace("{role}", "%00");
        let method = Method::from_bytes(rule.method.as_bytes()).unwrap();
        for body in &bodies {
            let client = if body.len() > 1024 * 1024 {
                &no_reuse
            } else {
                &app.client
            };
            let resp = client
                .request(method.clone(), app.url(&path))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let resp = match resp {
                Ok(resp) => resp,
                // The server may answer an oversized body early and close the connection.
                Err(_) if body.len() > 1024 * 1024 => continue,
                Err(e) => panic!("{} {path}: {e}", rule.method),
            };
            let status = resp.status();
            assert!(
                status.as_u16() < 500,
                "{} {path} with {:.40}: {status}",
                rule.method,
                body
            );
        }
    }
}
