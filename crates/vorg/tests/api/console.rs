//! The console's serving (embedded assets, client-side routes, a strict policy) and the
//! browser session: an HttpOnly cookie the API accepts like a bearer token, a CSRF header
//! on requests that change state, logout revoking it.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use vorg_store::Backend;

use crate::{
    both,
    helpers::{PASSWORD, TestApp, read},
};

both!(a_cookie_session_works_like_a_token_needs_the_csrf_header_and_ends_at_logout);

async fn cookie_login(app: &TestApp, forwarded_https: bool) -> (String, String, Value) {
    let mut req = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({ "email": "admin@example.com", "password": PASSWORD, "cookie": true }));
    if forwarded_https {
        req = req.header("x-forwarded-proto", "https");
    }
    let resp = req.send().await.unwrap();
    let set_cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    (pair, set_cookie, body)
}

async fn a_cookie_session_works_like_a_token_needs_the_csrf_header_and_ends_at_logout(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, status) = app
        .call(reqwest::Method::GET, "/auth/status", None, None)
        .await;
    assert_eq!(status["setup_required"], true);
    let admin = app.admin().await;
    let (_, status) = app
        .call(reqwest::Method::GET, "/auth/status", None, None)
        .await;
    assert_eq!(status["setup_required"], false);

    let (cookie, set_cookie, body) = cookie_login(&app, false).await;
    assert!(cookie.starts_with("vorg_session=vorg_"), "{set_cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(part), "{part}: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    assert_eq!(body["token_type"], "cookie");
    assert_eq!(
        body["access_token"], "",
        "no bearer token for the page's scripts"
    );
    let (_, https_cookie, _) = cookie_login(&app, true).await;
    assert!(https_cookie.contains("; Secure"), "{https_cookie}");

    let me = app
        .client
        .get(app.url("/auth/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let (status, me) = read(me).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["credential"], "session");
    assert_eq!(me["email"], "admin@example.com");

    // Changing state with the cookie needs the CSRF header; a bearer token does not.
    let submit = json!({ "description": "laptops", "amount_usd": 10 });
    let resp = app
        .client
        .post(app.url("/approvals/submit"))
        .header(header::COOKIE, &cookie)
        .json(&submit)
        .send()
        .await
        .unwrap();
    let (status, problem) = read(resp).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("x-vorg-csrf"));
    let resp = app
        .client
        .post(app.url("/approvals/submit"))
        .header(header::COOKIE, &cookie)
        .header("x-vorg-csrf", "1")
        .json(&submit)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = app.post("/approvals/submit", Some(&admin), submit).await;
    assert_eq!(status, StatusCode::OK);

    // EventSource sends the cookie: streams work with no token in the URL.
    let (_, run) = app.post("/runs/start_demo", Some(&admin), json!({})).await;
    let id = run["run_id"].as_i64().unwrap();
    let resp = app
        .client
        .get(app.url(&format!("/streams/runs/{id}")))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(resp);

    // The session is listed with the user's tokens; logout revokes it and clears the cookie.
    let (_, tokens) = app.get("/auth/tokens", &admin).await;
    assert!(
        tokens["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "console session"),
        "{tokens}"
    );
    let resp = app
        .client
        .post(app.url("/auth/logout"))
        .header(header::COOKIE, &cookie)
        .header("x-vorg-csrf", "1")
        .send()
        .await
        .unwrap();
    let cleared = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ended_session"], true);
    let resp = app
        .client
        .get(app.url("/auth/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_from_the_binary_under_a_strict_policy() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(resp.headers()[header::LOCATION], "/console/");

    let built = vorg_api::console::built();
    if std::env::var_os("CI").is_some() {
        assert!(built, "make test builds the console before the tests");
    }
    let page = |path: &str| {
        let client = client.clone();
        let url = app.url(path);
        async move { client.get(url).send().await.unwrap() }
    };
    for path in ["/console/", "/console/runs/12", "/console/approvals"] {
        let resp = page(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            vorg_api::console::CONTENT_SECURITY_POLICY
        );
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        let html = resp.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no CDN: {html}"
        );
        if built {
            assert!(html.contains("/console/assets/"), "{html}");
        } else {
            assert!(html.contains("The console is not built"), "{html}");
        }
    }
    for path in ["/console/assets/missing-0000.js", "/console/favicon.ico"] {
        assert_eq!(page(path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    if built {
        let html = page("/console/").await.text().await.unwrap();
        let asset = html
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("the app's script")
            .to_owned();
        let resp = client
            .get(app.url(&asset))
            .header(header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(
            h[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        let plain = client.get(app.url(&asset)).send().await.unwrap();
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(plain.bytes().await.unwrap().len() > 1000);
    }
}
