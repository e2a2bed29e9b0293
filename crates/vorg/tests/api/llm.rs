//! The gateway over HTTP: /llm/generate, the OpenAI-compatible front door (driven by the
//! official `openai` Python client) and the usage API. No key is configured, so the
//! simulated provider answers, as on a fresh machine.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{both, helpers::*, sse::SseReader};

both!(
    generate_answers_offline_and_every_call_is_accounted,
    the_front_door_speaks_openai_streaming_included,
    the_official_openai_client_works_unchanged,
    compatible_servers_each_get_their_own_key,
);

/// An OpenAI-compatible server that answers only a request carrying `key`; returns its base
/// URL and the bearer keys it saw.
async fn keyed_server(
    key: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::{http::HeaderMap, routing::post};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let router = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                log.lock().unwrap().push(auth.clone());
                if auth != format!("Bearer {key}") {
                    let body = json!({ "error": { "message": "Invalid API Key",
                        "type": "invalid_request_error", "code": "invalid_api_key" } });
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(body));
                }
                let body = json!({ "id": "chatcmpl-1", "object": "chat.completion",
                    "created": 1741569952, "model": "m",
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": key },
                                  "finish_reason": "stop" }],
                    "usage": { "prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4 } });
                (axum::http::StatusCode::OK, axum::Json(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, seen)
}

async fn compatible_servers_each_get_their_own_key(backend: Backend) {
    let (groq, groq_seen) = keyed_server("gsk_groq_key").await;
    let (together, together_seen) = keyed_server("tgp_together_key").await;
    let app = TestApp::spawn_with(backend, move |s| {
        // Under the shipped budgets their models need a price.
        let pricing = s.data_dir.join("pricing.yaml");
        std::fs::create_dir_all(&s.data_dir).unwrap();
        std::fs::write(
            &pricing,
            "models:\n  groq/*: { input: 0.59, output: 0.79 }\n  \
             together/meta-llama/Llama-3-70b: { input: 0.88, output: 0.88 }\n",
        )
        .unwrap();
        s.pricing_file = Some(pricing);
        s.llm_compat = vec![
            vorg::CompatServer {
                name: "groq".into(),
                base_url: groq,
                key: Some(vorg_domain::Secret::new("gsk_groq_key")),
            },
            vorg::CompatServer {
                name: "together".into(),
                base_url: together,
                key: Some(vorg_domain::Secret::new("tgp_together_key")),
            },
        ];
    })
    .await;
    let admin = app.admin().await;
    for (model, key) in [
        ("groq/llama-3.3-70b-versatile", "gsk_groq_key"),
        ("together/meta-llama/Llama-3-70b", "tgp_together_key"),
    ] {
        let body = json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] });
        let (status, out) = app.post("/v1/chat/completions", Some(&admin), body).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        // Each server answered with the key it accepted.
        assert_eq!(out["choices"][0]["message"]["content"], key, "{out}");
    }
    assert_eq!(*groq_seen.lock().unwrap(), ["Bearer gsk_groq_key"]);
    assert_eq!(*together_seen.lock().unwrap(), ["Bearer tgp_together_key"]);
    // Priced by their own entries: 3 × 0.59 + 0.79 → 3 µ$; 3 × 0.88 + 0.88 → 4 µ$.
    let (_, usage) = app.get("/usage/events", &admin).await;
    let costs: Vec<(String, i64)> = usage["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["provider"].as_str().unwrap().to_owned(),
                u["cost_micro_usd"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(costs, [("together".to_owned(), 4), ("groq".to_owned(), 3)]);
}

async fn a_run(app: &TestApp, token: &str) -> i64 {
    let (_, run) = app
        .post(
            "/runs/start_demo",
            Some(token),
            json!({ "steps": 1, "step_ms": 0 }),
        )
        .await;
    run["run_id"].as_i64().unwrap()
}

async fn generate_answers_offline_and_every_call_is_accounted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let run = a_run(&app, &admin).await;
    let body = json!({ "prompt": "Give your standup update.", "system": "You are the CTO.", "run_id": run });
    let (status, out) = app.post("/llm/generate", Some(&admin), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["provider"], "simulated");
    assert!(
        out["text"]
            .as_str()
            .unwrap()
            .starts_with("[CTO] Yesterday:"),
        "{out}"
    );
    assert!(out["prompt_tokens"].as_i64().unwrap() > 0);
    assert_eq!(out["cost_micro_usd"], 0);
    let (_, again) = app.post("/llm/generate", Some(&admin), body).await;
    assert_eq!(again["text"], out["text"], "deterministic");

    let (status, problem) = app
        .post("/llm/generate", Some(&admin), json!({ "prompt": " " }))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    let (_, viewer) = app.user_with("v@example.com", &[Role::Viewer]).await;
    assert_eq!(
        app.post("/llm/generate", Some(&viewer), json!({ "prompt": "x" }))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let (status, events) = app.get("/usage/events", &viewer).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let rows = events["items"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["run_id"], run);
    assert_eq!(rows[0]["actor"], "admin@example.com");
    assert_eq!(rows[0]["priced"], true);
    let (status, summary) = app.get("/usage/summary?group_by=run", &admin).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["rows"][0]["key"], run.to_string());
    assert_eq!(summary["rows"][0]["calls"], 2);
    let (status, bad) = app
        .post(
            "/llm/generate",
            Some(&admin),
            json!({ "prompt": "x", "run_id": 999 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(field_names(&bad), ["run_id"]);
    let (status, bad) = app.get("/usage/summary?group_by=color", &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(field_names(&bad), ["query.group_by"]);
}

async fn agent_token(app: &TestApp) -> String {
    let (_, engineer) = app.user_with("agent@example.com", &[Role::Engineer]).await;
    let (status, token) = app
        .post("/auth/tokens", Some(&engineer), json!({ "name": "crew" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    token["token"].as_str().unwrap().to_owned()
}

async fn the_front_door_speaks_openai_streaming_included(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let token = agent_token(&app).await;
    // Calls are attributed only to the caller's own runs.
    let run = a_run(&app, &token).await;
    let request = json!({ "model": "default", "messages": [{ "role": "user", "content": "Brainstorm ideas" }] });
    let resp = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("x-vorg-run-id", run.to_string())
        .json(&request)
        .send()
        .await
        .unwrap();
    let (status, completion) = read(resp).await;
    assert_eq!(status, StatusCode::OK, "{completion}");
    assert_eq!(completion["object"], "chat.completion");
    let text = completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.starts_with("1. Improve"), "{text}");

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let resp = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&streamed)
        .send()
        .await
        .unwrap();
    let frames = SseReader::new(resp)
        .rest(std::time::Duration::from_secs(10))
        .await;
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(&f.data).unwrap())
        .collect();
    let joined: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(joined, text);
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null)),
        "usage only when asked"
    );

    let (_, usage) = app.get("/usage/events", &admin).await;
    let rows = usage["items"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["streamed"], true);
    assert!(
        rows[0]["completion_tokens"].as_i64().unwrap() > 0,
        "a stream's usage is recorded"
    );
    assert!(rows[0]["token_id"].is_i64(), "attributed to the API token");
    assert_eq!(rows[1]["run_id"], run);

    let resp = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&json!({ "model": "default" }))
        .send()
        .await
        .unwrap();
    let (status, err) = read(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages"),
        "{err}"
    );
    let (status, models) = app.get("/v1/models", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "default"),
        "{models}"
    );
    assert_eq!(
        app.client
            .post(app.url("/v1/chat/completions"))
            .json(&request)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The venv made by scripts/ensure-python-openai.sh (make test runs it first).
fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pyenv/bin/python");
    if std::path::Path::new(venv).exists() {
        return venv.to_owned();
    }
    panic!(
        "the openai Python client is missing: run `bash scripts/ensure-python-openai.sh` (make test does)"
    );
}

async fn the_official_openai_client_works_unchanged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let token = agent_token(&app).await;
    let run = a_run(&app, &token).await.to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py");
    let base = app.url("/v1");
    let run_arg = run.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .args([script, &base, &token, &run_arg])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    assert!(
        seen["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "default"),
        "{seen}"
    );
    assert!(
        seen["text"]
            .as_str()
            .unwrap()
            .starts_with("[CTO of vorg] Yesterday:"),
        "{seen}"
    );
    assert!(seen["usage"].as_i64().unwrap() > 0);
    assert!(
        seen["streamed_text"]
            .as_str()
            .unwrap()
            .starts_with("1. Improve"),
        "{seen}"
    );
    assert!(
        seen["stream_usage"].as_i64().unwrap() > 0,
        "include_usage honoured: {seen}"
    );
    assert_eq!(seen["empty_messages_error"], "BadRequestError");
    let (_, usage) = app.get("/usage/summary?group_by=run", &admin).await;
    assert_eq!(usage["rows"][0]["key"], run, "{usage}");
    assert_eq!(usage["rows"][0]["calls"], 2);
}
