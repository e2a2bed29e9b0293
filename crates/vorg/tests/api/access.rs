//! The access table, walked for every role: a test generated from the table, not a
//! hand-picked few routes.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use vorg_api::access::{Access, ROUTES};
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(every_route_admits_exactly_the_roles_that_hold_its_permission);

async fn every_route_admits_exactly_the_roles_that_hold_its_permission(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.login_per_minute_per_ip = 1000).await;
    app.admin().await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let (_, token) = app
            .user_with(&format!("role-{role}@example.com"), &[role])
            .await;
        tokens.push((role, token));
    }
    for rule in ROUTES {
        let path = rule.path.replace("{id}", "1").replace("{role}", "viewer");
        let method = Method::from_bytes(rule.method.as_bytes()).unwrap();
        // Without credentials.
        let anon = app
            .client
            .request(method.clone(), app.url(&path))
            .send()
            .await
            .unwrap();
        match rule.access {
            Access::Public => assert_ne!(anon.status(), StatusCode::UNAUTHORIZED, "{path}"),
            Access::Requires(_) => assert_eq!(
                anon.status(),
                StatusCode::UNAUTHORIZED,
                "{} {path} without credentials",
                rule.method
            ),
        }
        for (role, token) in &tokens {
            // An empty JSON body: permission is checked before the body is read.
            let resp = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(token)
                .json(&Value::Object(Default::default()))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            // Only a refusal's body is read (an admitted stream never ends).
            let body = if status == StatusCode::FORBIDDEN {
                read(resp).await.1
            } else {
                Value::Null
            };
            let allowed = match rule.access {
                Access::Public => true,
                Access::Requires(p) => p.granted_to(&[*role]),
            };
            if allowed {
                // Past the permission gate a rule of the resource may still refuse (e.g.
                // cancelling someone else's run): that is `refused`, not `forbidden`.
                assert!(
                    body["code"] != "forbidden" && status != StatusCode::UNAUTHORIZED,
                    "{role} should reach {} {path}, got {status} {body}",
                    rule.method
                );
            } else if path.starts_with("/v1/") {
                // The OpenAI-compatible door refuses in OpenAI's shape.
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (StatusCode::FORBIDDEN, Some("missing_permission")),
                    "{role} on {} {path}",
                    rule.method
                );
            } else {
                assert_eq!(
                    (status, body["code"].as_str()),
                    (StatusCode::FORBIDDEN, Some("forbidden")),
                    "{role} on {} {path}",
                    rule.method
                );
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_and_the_access_table_list_the_same_routes() {
    let doc = serde_json::to_value(vorg_api::openapi_document()).unwrap();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.push((method.to_uppercase(), path.clone()));
            let rule = ROUTES
                .iter()
                .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
                .unwrap_or_else(|| panic!("{method} {path} is not in the access table"));
            let description = op["description"].as_str().unwrap_or_default();
            match rule.access {
                Access::Public => assert!(description.contains("public"), "{path}"),
                Access::Requires(p) => {
                    assert!(
                        description.contains(&format!("`{p}`")),
                        "{path}: {description}"
                    );
                    for role in p.roles() {
                        assert!(description.contains(role.as_str()), "{path} lacks {role}");
                    }
                    assert!(
                        op["responses"]["401"].is_object() && op["responses"]["403"].is_object()
                    );
                    assert_eq!(op["security"][0]["bearer"], serde_json::json!([]));
                }
            }
            assert!(op["responses"]["500"].is_object(), "{path}");
        }
    }
    for rule in ROUTES {
        assert!(
            documented.contains(&(rule.method.to_owned(), rule.path.to_owned())),
            "{} {} is in the table but not documented",
            rule.method,
            rule.path
        );
    }
    assert_eq!(doc["openapi"], "3.1.0");
}

both!(the_permissions_endpoint_serves_the_table);

async fn the_permissions_endpoint_serves_the_table(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, table) = app.get("/auth/permissions", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(table["routes"].as_array().unwrap().len(), ROUTES.len());
    let users = table["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/users" && r["method"] == "GET")
        .unwrap();
    assert_eq!(users["permission"], "manage_users");
    assert_eq!(users["roles"], serde_json::json!(["admin"]));
}

/// A known path with a method it does not have answers 405 with `Allow` (not a 403 and an
/// error line: anyone can send these), for callers with and without credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_method_on_a_known_path_is_405_with_allow() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.admin().await;
    for (method, path, allow) in [
        (Method::DELETE, "/schedules", "GET,POST"),
        (Method::PATCH, "/runs/1", "GET"),
        (Method::PUT, "/auth/login", "POST"),
    ] {
        for token in [None, Some(admin.as_str())] {
            let mut req = app.client.request(method.clone(), app.url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let got = resp.headers()["allow"].to_str().unwrap().replace(' ', "");
            let mut got: Vec<&str> = got.split(',').collect();
            got.sort();
            let mut want: Vec<&str> = allow.split(',').collect();
            want.sort();
            assert!(
                want.iter().all(|m| got.contains(m)),
                "{method} {path}: Allow {got:?}"
            );
        }
    }
}
