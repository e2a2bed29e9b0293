//! The organization over HTTP: approvals routed by the governance policies, the policies
//! themselves (versioned, edited, rolled back), personas and the org chart, and the budgets
//! the gateway charges model calls to, against a fake OpenAI upstream. The original
//! system's data files must load unchanged.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, routing::post};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;
use vorg_domain::{Role, Secret};
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    approvals_route_at_the_policy_boundaries_and_bad_bodies_store_nothing,
    decisions_are_made_once_by_the_roles_the_tier_allows,
    governance_forbids_actions_requires_checks_and_escalates,
    policies_are_versioned_in_force_at_once_and_rolled_back,
    personas_are_validated_versioned_and_charted,
    a_config_dir_with_the_originals_files_loads_them_unchanged,
    a_call_whose_worst_case_passes_a_budget_is_refused_with_402,
    concurrent_calls_never_reserve_past_a_budget,
    a_budget_warning_is_emitted_once,
    persona_calls_are_charged_to_the_personas_max_spend,
);

/// The original system's data files (`VORG_SEED_DIR`, or `shared/seed/original` above the
/// checkout). Missing files fail the test: they are the compatibility contract.
fn seed_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VORG_SEED_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors() {
        let candidate = dir.join("shared/seed/original");
        if candidate.is_dir() {
            return candidate;
        }
    }
    let fallback = PathBuf::from("/work/shared/seed/original");
    assert!(
        fallback.is_dir(),
        "the original's data files were not found: set VORG_SEED_DIR to shared/seed/original"
    );
    fallback
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A shipped data file of the workspace (`governance/policies.yaml`).
fn shipped(name: &str) -> String {
    read_text(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(name),
    )
}

fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn spend(description: &str, amount: f64) -> Value {
    json!({ "description": description, "amount_usd": amount, "justification": "needed" })
}

async fn submit(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, answer) = app.post("/approvals/submit", Some(token), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// Submits a request that must wait for a decision; returns its id.
async fn pending(app: &TestApp, token: &str, amount: f64) -> i64 {
    let answer = submit(app, token, spend("equipment", amount)).await;
    assert_eq!(answer["status"], "pending", "{answer}");
    answer["id"].as_i64().unwrap()
}

async fn patch(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    app.call(Method::PATCH, path, Some(token), None).await
}

pub async fn put_yaml(app: &TestApp, token: &str, text: &str) -> (StatusCode, Value) {
    let resp = app
        .client
        .put(app.url("/governance/policies"))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(text.to_owned())
        .send()
        .await
        .unwrap();
    read(resp).await
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

fn messages(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

async fn approvals_route_at_the_policy_boundaries_and_bad_bodies_store_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, engineer) = app.user_with("eng@example.com", &[Role::Engineer]).await;

    let cases = [
        (50.0, "auto_approved", None, "auto_approve_usd"),
        (50.01, "pending", Some("approver"), "human_review_usd"),
        (500.0, "pending", Some("approver"), "human_review_usd"),
        (500.01, "pending", Some("admin"), "executive_review_usd"),
    ];
    let mut submitted = Vec::new();
    for (amount, status, tier, rule) in cases {
        let answer = submit(&app, &engineer, spend("laptops", amount)).await;
        assert!(answer["id"].is_i64(), "{answer}");
        assert_eq!(answer["status"], status, "{amount}: {answer}");
        assert_eq!(answer["threshold"].as_f64(), Some(50.0), "{answer}");
        assert_eq!(answer["tier"].as_str(), tier, "{amount}: {answer}");
        assert!(
            answer["rule"].as_str().unwrap().contains(rule),
            "{amount}: {answer}"
        );
        submitted.push(answer["id"].as_i64().unwrap());
    }

    let (status, listed) = app.get("/ops/approvals", &admin).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    submitted.reverse();
    assert_eq!(ids(&listed), submitted, "newest first");
    let newest = &listed[0];
    for key in ["id", "description", "amount_usd", "status", "created_at"] {
        assert!(!newest[key].is_null(), "{key} missing: {newest}");
    }
    assert_eq!(
        newest["amount_usd"].as_f64(),
        Some(500.01),
        "exact: {newest}"
    );
    assert_eq!(newest["description"], "laptops");
    assert_eq!(listed[3]["status"], "auto_approved");

    let bad = [
        (
            json!({ "description": "x", "amount_usd": -1, "justification": "" }),
            "amount_usd",
        ),
        (
            json!({ "amount_usd": 10, "justification": "" }),
            "description",
        ),
        (
            json!({ "description": "x", "amount_usd": "10", "justification": "" }),
            "amount_usd",
        ),
        (
            json!({ "description": "  ", "amount_usd": 10, "justification": "" }),
            "description",
        ),
    ];
    for (body, field) in bad {
        let (status, problem) = app
            .post("/approvals/submit", Some(&engineer), body.clone())
            .await;
        assert_problem(
            status,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        );
        assert_eq!(field_names(&problem), [field], "{body}: {problem}");
    }
    let (_, after) = app.get("/ops/approvals", &admin).await;
    assert_eq!(after, listed, "a refused request stores nothing");
}

async fn decisions_are_made_once_by_the_roles_the_tier_allows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (approver_id, approver) = app
        .user_with("approver@example.com", &[Role::Approver])
        .await;
    let (_, engineer) = app.user_with("eng@example.com", &[Role::Engineer]).await;

    // The original's route: decided once, and only once.
    let id = pending(&app, &engineer, 100.0).await;
    let path = format!("/approvals/{id}/decision?approved=true");
    let (status, decided) = patch(&app, &path, &approver).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided, json!({ "id": id, "status": "approved" }));
    let again = format!("/approvals/{id}/decision?approved=false");
    let (status, problem) = patch(&app, &again, &admin).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "conflict");
    let (status, problem) = patch(&app, "/approvals/999999/decision?approved=true", &admin).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    let undecided = pending(&app, &engineer, 60.0).await;
    let maybe = format!("/approvals/{undecided}/decision?approved=maybe");
    let (status, problem) = patch(&app, &maybe, &approver).await;
    assert!(status.is_client_error(), "{status} {problem}");
    assert_eq!(field_names(&problem), ["query.approved"], "{problem}");

    // Separation of duties: not even an admin decides their own request.
    let own = pending(&app, &admin, 100.0).await;
    let (status, problem) = patch(
        &app,
        &format!("/approvals/{own}/decision?approved=true"),
        &admin,
    )
    .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "refused");
    assert!(problem["detail"].as_str().unwrap().contains("your own"));
    let (status, decided) = patch(
        &app,
        &format!("/approvals/{own}/decision?approved=false"),
        &approver,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "rejected");

    // The admin tier: an approver may not decide it, an admin may.
    let big = pending(&app, &engineer, 600.0).await;
    let big_path = format!("/approvals/{big}/decision?approved=true");
    let (status, problem) = patch(&app, &big_path, &approver).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "refused");
    assert!(problem["detail"].as_str().unwrap().contains("admin tier"));
    let (status, decided) = patch(&app, &big_path, &admin).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "approved");

    // An engineer holds no decide permission, on any decide route.
    let open = pending(&app, &admin, 75.0).await;
    let decide_paths = [
        (
            Method::PATCH,
            format!("/approvals/{open}/decision?approved=true"),
        ),
        (Method::POST, format!("/approvals/{open}/approve")),
        (Method::POST, format!("/approvals/{open}/reject")),
    ];
    for (method, path) in decide_paths {
        let (status, problem) = app.call(method, &path, Some(&engineer), None).await;
        assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    }

    // vorg's routes, with a comment.
    let (status, approved) = app
        .post(
            &format!("/approvals/{open}/approve"),
            Some(&approver),
            json!({ "comment": "fine for Q3" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decision_comment"], "fine for Q3");
    assert_eq!(approved["decided_by"], approver_id);
    let refused = pending(&app, &engineer, 80.0).await;
    let (status, rejected) = app
        .post(
            &format!("/approvals/{refused}/reject"),
            Some(&approver),
            json!({ "comment": "not this quarter" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["decision_comment"], "not this quarter");
    let (status, problem) = app
        .post(
            &format!("/approvals/{refused}/approve"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "conflict");

    let (status, page) = app.get("/approvals?status=pending", &engineer).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page["items"]), [undecided], "{page}");
    let (_, page) = app.get("/approvals?status=approved", &engineer).await;
    assert_eq!(ids(&page["items"]), [open, big, id], "{page}");
    let (_, page) = app.get("/approvals?status=rejected", &engineer).await;
    assert_eq!(ids(&page["items"]), [refused, own], "{page}");
    let (status, problem) = app.get("/approvals?status=maybe", &engineer).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(field_names(&problem), ["query.status"]);

    let (_, listed) = app.get("/ops/approvals", &engineer).await;
    assert_eq!(
        ids(&listed),
        [refused, open, big, own, undecided, id],
        "newest first"
    );

    // Two deciders at once: one decision lands, the other is told it came too late.
    let raced = pending(&app, &engineer, 90.0).await;
    let approve = format!("/approvals/{raced}/decision?approved=true");
    let reject = format!("/approvals/{raced}/decision?approved=false");
    let (a, b) = tokio::join!(
        patch(&app, &approve, &approver),
        patch(&app, &reject, &admin)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let decided = app.store.events_after(0, 1000).await.unwrap();
    let decided = decided
        .iter()
        .filter(|e| e.kind == "approval.decided" && e.data.0["approval_id"] == raced)
        .count();
    assert_eq!(decided, 1);
}

const DEPLOY_CHECKS: [&str; 3] = ["unit_tests_pass", "license_scan_clean", "security_scan_low"];

async fn governance_forbids_actions_requires_checks_and_escalates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, approver) = app
        .user_with("approver@example.com", &[Role::Approver])
        .await;
    let (_, engineer) = app.user_with("eng@example.com", &[Role::Engineer]).await;

    // forbidden_actions, whatever the amount and however it is spelled.
    for body in [
        json!({ "description": "launch", "amount_usd": 0, "action": "mass_email_without_unsubscribe" }),
        json!({ "description": "share", "amount_usd": 1, "action": "External_Data_Sharing_Without_DPA" }),
    ] {
        let (status, problem) = app.post("/approvals/submit", Some(&engineer), body).await;
        assert_problem(status, &problem, StatusCode::FORBIDDEN, "refused");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("forbidden_actions"),
            "{problem}"
        );
    }
    let (_, listed) = app.get("/ops/approvals", &admin).await;
    assert_eq!(listed, json!([]), "a forbidden request is not stored");

    // required_checks: approval waits until every check is attested.
    let deploy = |amount: f64, checks: &[&str]| json!({ "description": "deploy v2", "amount_usd": amount, "kind": "code_deploy", "checks": checks });
    let answer = submit(&app, &engineer, deploy(120.0, &[])).await;
    assert_eq!(answer["status"], "pending");
    assert_eq!(answer["missing_checks"], json!(DEPLOY_CHECKS));
    let id = answer["id"].as_i64().unwrap();
    let approve = format!("/approvals/{id}/approve");
    let (status, problem) = app.post(&approve, Some(&approver), json!({})).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "conflict");
    let detail = problem["detail"].as_str().unwrap();
    assert!(DEPLOY_CHECKS.iter().all(|c| detail.contains(c)), "{detail}");
    let (status, problem) = patch(
        &app,
        &format!("/approvals/{id}/decision?approved=true"),
        &approver,
    )
    .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "conflict");
    let (status, problem) = app
        .post(
            &approve,
            Some(&approver),
            json!({ "checks": ["unit_tests_pass", "license_scan_clean"] }),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "conflict");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("security_scan_low") && !detail.contains("unit_tests_pass"),
        "{detail}"
    );
    let (status, approved) = app
        .post(
            &approve,
            Some(&approver),
            json!({ "checks": DEPLOY_CHECKS }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "approved");

    // Under the auto threshold, missing checks still need a human; attested ones do not.
    let small = submit(&app, &engineer, deploy(10.0, &[])).await;
    assert_eq!(small["status"], "pending", "{small}");
    assert_eq!(small["tier"], "approver");
    assert!(
        small["rule"].as_str().unwrap().contains("required_checks"),
        "{small}"
    );
    let attested = submit(&app, &engineer, deploy(10.0, &DEPLOY_CHECKS)).await;
    assert_eq!(attested["status"], "auto_approved", "{attested}");
    // A rejection needs no checks.
    let (status, rejected) = app
        .post(
            &format!("/approvals/{}/reject", small["id"]),
            Some(&approver),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");

    // escalation_matrix: legal goes to GeneralCounsel's persona, decided by them or an admin.
    let legal = submit(
        &app,
        &engineer,
        json!({ "description": "contract", "amount_usd": 100, "tags": ["legal"] }),
    )
    .await;
    assert_eq!(
        legal["escalated_to"],
        json!(["legal.counsel.v1"]),
        "{legal}"
    );
    let untagged = submit(
        &app,
        &engineer,
        json!({ "description": "ads", "amount_usd": 100, "tags": ["marketing"] }),
    )
    .await;
    assert_eq!(untagged["escalated_to"], json!([]));
    let approve = format!("/approvals/{}/approve", legal["id"]);
    let (status, problem) = app.post(&approve, Some(&approver), json!({})).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "refused");
    assert!(problem["detail"].as_str().unwrap().contains("escalated"));
    let (status, approved) = app.post(&approve, Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["escalated_to"], json!(["legal.counsel.v1"]));
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

async fn policies_are_versioned_in_force_at_once_and_rolled_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, approver) = app
        .user_with("approver@example.com", &[Role::Approver])
        .await;
    let (_, engineer) = app.user_with("eng@example.com", &[Role::Engineer]).await;
    let file = shipped("governance/policies.yaml");

    let (status, charter) = app.get("/governance/constitution", &engineer).await;
    assert_eq!(status, StatusCode::OK, "{charter}");
    assert_eq!(charter["markdown"], shipped("governance/constitution.md"));
    let (status, current) = app.get("/governance/policies", &engineer).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(current["version"], 1);
    assert_eq!(current["source"], "file");
    assert_eq!(current["text"], file.as_str());
    assert_eq!(
        current["policies"]["spend_thresholds"]["auto_approve_usd"],
        50
    );
    assert_eq!(current["policies"]["budgets"]["actor_daily_usd"], 50);

    let tighter = file.replace("auto_approve_usd: 50", "auto_approve_usd: 10");
    assert_ne!(tighter, file);
    let (status, problem) = put_yaml(&app, &approver, &tighter).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, put) = put_yaml(&app, &admin, &tighter).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["version"], 2);
    assert_eq!(put["source"], "api");
    assert_eq!(put["author"], "admin@example.com");
    assert_eq!(put["policies"]["spend_thresholds"]["auto_approve_usd"], 10);
    let answer = submit(&app, &engineer, spend("monitor", 20.0)).await;
    assert_eq!(answer["status"], "pending", "in force at once: {answer}");
    assert_eq!(answer["threshold"].as_f64(), Some(10.0));

    // Broken documents are refused with their line, and change nothing.
    let unterminated = "spend_thresholds:\n  auto_approve_usd: 10\n  human_review_usd: [1, 2\n";
    let (status, problem) = put_yaml(&app, &admin, unterminated).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    // The flow sequence opened on line 3 is still open when the text ends on line 4.
    assert_eq!(field_names(&problem), ["body"]);
    assert!(messages(&problem)[0].starts_with("line 4: "), "{problem}");
    let negative = file.replace("auto_approve_usd: 50", "auto_approve_usd: -5");
    let (status, problem) = put_yaml(&app, &admin, &negative).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&problem), ["spend_thresholds.auto_approve_usd"]);
    let line = line_of(&negative, "auto_approve_usd: -5");
    assert!(
        messages(&problem)[0].contains(&format!("line {line}")),
        "{problem}"
    );
    let resp = app
        .client
        .put(app.url("/governance/policies"))
        .bearer_auth(&admin)
        .header("content-type", "text/html")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, current) = app.get("/governance/policies", &engineer).await;
    assert_eq!(current["version"], 2, "refused documents are not stored");

    let (status, history) = app.get("/governance/policies/history", &engineer).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let items = history["items"].as_array().unwrap();
    let seen: Vec<(i64, &str, &str)> = items
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["source"].as_str().unwrap(),
                v["author"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [(2, "api", "admin@example.com"), (1, "file", "built-in")]
    );

    let (status, problem) = app
        .post(
            "/governance/policies/rollback",
            Some(&approver),
            json!({ "version": 1 }),
        )
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, problem) = app
        .post(
            "/governance/policies/rollback",
            Some(&admin),
            json!({ "version": 42 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(field_names(&problem), ["version"]);
    let (status, rolled) = app
        .post(
            "/governance/policies/rollback",
            Some(&admin),
            json!({ "version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_eq!(rolled["version"], 3);
    assert_eq!(rolled["source"], "rollback");
    assert_eq!(
        rolled["policies"]["spend_thresholds"]["auto_approve_usd"],
        50
    );
    let answer = submit(&app, &engineer, spend("monitor", 20.0)).await;
    assert_eq!(answer["status"], "auto_approved", "{answer}");
    assert_eq!(answer["threshold"].as_f64(), Some(50.0));
}

async fn post_raw(app: &TestApp, path: &str, token: &str, body: String) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    read(resp).await
}

fn persona_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

const SHIPPED_PERSONAS: [&str; 8] = [
    "ceo.org.v1",
    "cto.org.v1",
    "eng.backend.v1",
    "eng.frontend.v1",
    "finance.approver.v1",
    "growth.lead.v1",
    "legal.counsel.v1",
    "security.ciso.v1",
];

fn chart_node<'a>(nodes: &'a Value, id: &str) -> &'a Value {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {nodes}"))
}

async fn personas_are_validated_versioned_and_charted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, approver) = app
        .user_with("approver@example.com", &[Role::Approver])
        .await;

    let (status, list) = app.get("/personas", &approver).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(persona_ids(&list), SHIPPED_PERSONAS, "the default org");

    // The original's format, byte for byte.
    let text = read_text(&seed_dir().join("personas/ceo_prod_v1.json"));
    let original: Value = serde_json::from_str(&text).unwrap();
    let (status, problem) = post_raw(&app, "/personas", &approver, text.clone()).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, created) = post_raw(&app, "/personas", &admin, text.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "ceo.prod.v1");
    assert_eq!(created["version"], 1);
    assert_eq!(created["persona"], original);
    let (status, problem) = post_raw(&app, "/personas", &admin, text).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "conflict");

    let broken =
        json!({ "id": "broken.v1", "skills": "python", "risk_limits": { "max_spend": -5 } });
    let (status, problem) = app.post("/personas", Some(&admin), broken).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    let fields = field_names(&problem);
    for field in ["name", "skills", "risk_limits.max_spend"] {
        assert!(fields.iter().any(|f| f == field), "{field}: {problem}");
    }
    let (status, _) = app.get("/personas/broken.v1", &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A new version, its diff, and a rollback.
    let mut renamed = original.clone();
    renamed["name"] = json!("Avery Chen, CEO");
    let (status, updated) = app
        .call(
            Method::PUT,
            "/personas/ceo.prod.v1",
            Some(&admin),
            Some(renamed),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["persona"]["name"], "Avery Chen, CEO");
    let (status, problem) = app
        .call(
            Method::PUT,
            "/personas/cto.org.v1",
            Some(&admin),
            Some(original.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(field_names(&problem), ["id"]);
    let mut stranger = original.clone();
    stranger["id"] = json!("nobody.v1");
    let (status, _) = app
        .call(
            Method::PUT,
            "/personas/nobody.v1",
            Some(&admin),
            Some(stranger),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, history) = app.get("/personas/ceo.prod.v1/history", &approver).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["version"], 2);
    assert_eq!(items[0]["author"], "admin@example.com");
    assert_eq!(
        items[0]["changes"],
        json!([{ "field": "name", "op": "changed", "from": "Avery Chen, Product/CEO", "to": "Avery Chen, CEO" }])
    );
    let (status, rolled) = app
        .post(
            "/personas/ceo.prod.v1/rollback",
            Some(&admin),
            json!({ "version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_eq!(rolled["version"], 3);
    assert_eq!(rolled["persona"], original);

    // Reporting lines: no cycles, no unknown managers, no orphaned reports.
    let (_, ceo) = app.get("/personas/ceo.org.v1", &admin).await;
    let mut looped = ceo["persona"].clone();
    looped["reports_to"] = json!("eng.backend.v1");
    let (status, problem) = app
        .call(
            Method::PUT,
            "/personas/ceo.org.v1",
            Some(&admin),
            Some(looped),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(field_names(&problem), ["reports_to"]);
    let reason = &messages(&problem)[0];
    for id in ["ceo.org.v1", "eng.backend.v1", "cto.org.v1"] {
        assert!(reason.contains(id), "{reason}");
    }
    let mut orphan = ceo["persona"].clone();
    orphan["reports_to"] = json!("ghost.v1");
    let (status, problem) = app
        .call(
            Method::PUT,
            "/personas/ceo.org.v1",
            Some(&admin),
            Some(orphan),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(field_names(&problem), ["reports_to"]);
    let (_, unchanged) = app.get("/personas/ceo.org.v1", &admin).await;
    assert_eq!(unchanged["version"], 1);
    assert_eq!(unchanged["reports_to"], Value::Null);

    let (status, problem) = app
        .call(Method::DELETE, "/personas/cto.org.v1", Some(&admin), None)
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "conflict");
    let (status, _) = app
        .call(
            Method::DELETE,
            "/personas/eng.frontend.v1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get("/personas/eng.frontend.v1", &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            Method::DELETE,
            "/personas/eng.frontend.v1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, history) = app.get("/personas/eng.frontend.v1/history", &admin).await;
    assert_eq!(history["items"][0]["persona"], Value::Null, "{history}");

    let (status, chart) = app.get("/org/chart", &approver).await;
    assert_eq!(status, StatusCode::OK, "{chart}");
    assert_eq!(chart["count"], 8);
    let roots = &chart["roots"];
    let root_ids: Vec<&str> = roots
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(root_ids, ["ceo.org.v1", "ceo.prod.v1"], "{chart}");
    let ceo = chart_node(roots, "ceo.org.v1");
    assert_eq!(ceo["name"], "Maya Okafor");
    let cto = chart_node(&ceo["reports"], "cto.org.v1");
    let below_cto: Vec<&str> = cto["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(below_cto, ["eng.backend.v1", "security.ciso.v1"]);

    // A deleted persona comes back from its history.
    let (status, back) = app
        .post(
            "/personas/eng.frontend.v1/rollback",
            Some(&admin),
            json!({ "version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["version"], 3);
    assert_eq!(back["reports_to"], "cto.org.v1");
    let (status, problem) = app
        .post(
            "/personas/eng.frontend.v1/rollback",
            Some(&admin),
            json!({ "version": 2 }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the deletion has no content: {problem}"
    );
    assert_eq!(field_names(&problem), ["version"]);
}

async fn a_config_dir_with_the_originals_files_loads_them_unchanged(backend: Backend) {
    let seed = seed_dir();
    let originals = ["ceo_prod_v1.json", "cto_core_v1.json", "cxo_design_v1.json"];
    let policies = read_text(&seed.join("governance/policies.yaml"));
    let app = TestApp::spawn_with(backend, |s| {
        let dir = s.data_dir.join("config");
        for name in originals {
            let text = read_text(&seed.join("personas").join(name));
            write_file(&dir.join("personas").join(name), &text);
        }
        write_file(&dir.join("governance/policies.yaml"), &policies);
        s.config_dir = Some(dir);
    })
    .await;
    let admin = app.admin().await;
    let (_, engineer) = app.user_with("eng@example.com", &[Role::Engineer]).await;

    let (status, list) = app.get("/personas", &admin).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids = persona_ids(&list);
    for id in ["ceo.prod.v1", "cto.core.v1", "cxo.design.v1", "ceo.org.v1"] {
        assert!(ids.iter().any(|i| i == id), "{id} missing: {ids:?}");
    }
    assert_eq!(ids.len(), 11);
    for name in originals {
        let doc: Value =
            serde_json::from_str(&read_text(&seed.join("personas").join(name))).unwrap();
        let (status, stored) = app
            .get(
                &format!("/personas/{}", doc["id"].as_str().unwrap()),
                &admin,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{stored}");
        assert_eq!(stored["persona"], doc, "{name} as written");
        assert_eq!(stored["reports_to"], Value::Null);
    }

    let (_, current) = app.get("/governance/policies", &admin).await;
    assert_eq!(current["version"], 1);
    assert_eq!(current["source"], "file");
    assert_eq!(current["text"], policies.as_str());
    assert!(
        current["author"]
            .as_str()
            .unwrap()
            .ends_with("governance/policies.yaml"),
        "{current}"
    );
    assert!(current["policies"].get("budgets").is_none());
    for (amount, tier) in [
        (50.0, None),
        (50.01, Some("approver")),
        (500.01, Some("admin")),
    ] {
        let answer = submit(&app, &engineer, spend("x", amount)).await;
        assert_eq!(answer["tier"].as_str(), tier, "{amount}: {answer}");
    }
    let (_, budgets) = app.get("/budgets", &engineer).await;
    assert_eq!(budgets["items"], json!([]), "the original sets no budgets");
}

/// An OpenAI-compatible upstream that answers every completion with a fixed usage. While
/// its gate is closed, requests are counted on arrival and held.
#[derive(Clone)]
pub(crate) struct Upstream {
    pub(crate) url: String,
    calls: Arc<AtomicUsize>,
    /// `(prompt_tokens, completion_tokens)` of every answer.
    pub(crate) usage: Arc<Mutex<(i64, i64)>>,
    gate: Arc<watch::Sender<bool>>,
}

impl Upstream {
    pub(crate) async fn start() -> Upstream {
        let mut up = Upstream {
            url: String::new(),
            calls: Arc::default(),
            usage: Arc::new(Mutex::new((10, 20))),
            gate: Arc::new(watch::channel(true).0),
        };
        let router = Router::new()
            .route("/v1/chat/completions", post(upstream_chat))
            .with_state(up.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        up.url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        up
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn upstream_chat(State(up): State<Upstream>) -> axum::Json<Value> {
    up.calls.fetch_add(1, Ordering::SeqCst);
    let mut gate = up.gate.subscribe();
    gate.wait_for(|open| *open).await.unwrap();
    let (prompt, completion) = *up.usage.lock().unwrap();
    axum::Json(json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
        "created": 1741569952, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Done.",
            "refusal": null, "annotations": [] }, "logprobs": null, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion },
        "service_tier": "default", "system_fingerprint": "fp_06737a9306"
    }))
}

/// $0.01 a day per actor; a warning at half of it.
const BUDGET_POLICIES: &str = "spend_thresholds:
  auto_approve_usd: 50
budgets:
  actor_daily_usd: 0.01
  default_max_tokens: 1000
  warn_at: 0.5
";

/// An app whose default model is gpt-4o-mini on `upstream`, under [`BUDGET_POLICIES`].
async fn budget_app(backend: Backend, upstream: &Upstream) -> TestApp {
    budget_app_with(backend, upstream, |_| {}).await
}

/// [`budget_app`] with more settings.
pub(crate) async fn budget_app_with(
    backend: Backend,
    upstream: &Upstream,
    tweak: impl FnOnce(&mut vorg::Settings),
) -> TestApp {
    let url = upstream.url.clone();
    TestApp::spawn_with(backend, move |s| {
        tweak(s);
        let dir = s.data_dir.join("config");
        write_file(&dir.join("governance/policies.yaml"), BUDGET_POLICIES);
        s.config_dir = Some(dir);
        s.openai_api_key = Some(Secret::new("sk-test-0123456789abcdef"));
        s.openai_base_url = url;
        s.openai_model = "gpt-4o-mini".into();
        s.llm_max_retries = 0;
    })
    .await
}

/// A one-character prompt: estimated at 5 tokens, so its worst case on gpt-4o-mini ($0.15
/// and $0.60 per million) is `(5 × 0.15 + max_tokens × 0.60)` micro-dollars, rounded.
fn call(max_tokens: u64) -> Value {
    json!({ "prompt": "x", "max_tokens": max_tokens })
}

/// The caller's `actor` budget from GET /budgets.
async fn actor_budget(app: &TestApp, token: &str) -> Value {
    let (status, budgets) = app.get("/budgets", token).await;
    assert_eq!(status, StatusCode::OK, "{budgets}");
    let items = budgets["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{budgets}");
    assert_eq!(items[0]["scope"], "actor");
    items[0].clone()
}

fn micro(usd: &Value) -> i64 {
    (usd.as_f64().unwrap() * 1e6).round() as i64
}

async fn a_call_whose_worst_case_passes_a_budget_is_refused_with_402(backend: Backend) {
    let upstream = Upstream::start().await;
    let app = budget_app(backend, &upstream).await;
    let admin = app.admin().await;

    let resp = app
        .client
        .post(app.url("/llm/generate"))
        .bearer_auth(&admin)
        .json(&call(1_000_000))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "{resp:?}"
    );
    let (status, problem) = read(resp).await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYMENT_REQUIRED,
        "budget_exceeded",
    );
    let budget = &problem["budget"];
    assert_eq!(budget["scope"], "actor", "{problem}");
    assert_eq!(budget["subject"], "admin@example.com");
    assert_eq!(budget["limit_usd"].as_f64(), Some(0.01));
    assert_eq!(budget["spent_usd"].as_f64(), Some(0.0));
    assert_eq!(budget["call_worst_case_micro_usd"], 600_001);
    let resets: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(budget["resets_at"].clone()).unwrap();
    let now = chrono::Utc::now();
    assert!(
        resets > now && resets - now <= chrono::Duration::days(1),
        "{resets}"
    );
    assert_eq!(
        resets.time(),
        chrono::NaiveTime::MIN,
        "a day ends at midnight"
    );
    assert_eq!(
        upstream.calls(),
        0,
        "a refused call never reaches the model"
    );

    // The same call on the simulated provider costs nothing and is never refused.
    let mut free = call(1_000_000);
    free["provider"] = json!("simulated");
    let (status, out) = app.post("/llm/generate", Some(&admin), free).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["provider"], "simulated");

    // A call that fits is made and charged what it cost: 10 × 0.15 + 20 × 0.60 = 13.5 µ$.
    let (status, out) = app.post("/llm/generate", Some(&admin), call(20)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["provider"], "openai");
    assert_eq!(out["cost_micro_usd"], 14);
    assert_eq!(upstream.calls(), 1);
    let budget = actor_budget(&app, &admin).await;
    assert_eq!(micro(&budget["spent_usd"]), 14, "{budget}");
    assert_eq!(micro(&budget["reserved_usd"]), 0, "{budget}");
    assert_eq!(budget["limit_usd"].as_f64(), Some(0.01));
    assert_eq!(budget["subject"], "admin@example.com");

    // The OpenAI front door, with an API token: OpenAI's error shape, plus the budget.
    let (_, engineer) = app.user_with("agent@example.com", &[Role::Engineer]).await;
    let (status, token) = app
        .post("/auth/tokens", Some(&engineer), json!({ "name": "crew" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let token = token["token"].as_str().unwrap().to_owned();
    let request = |max_tokens: Option<u64>| {
        let mut r = json!({ "model": "default", "messages": [{ "role": "user", "content": "x" }] });
        if let Some(m) = max_tokens {
            r["max_tokens"] = json!(m);
        }
        r
    };
    let (status, err) = app
        .post(
            "/v1/chat/completions",
            Some(&token),
            request(Some(1_000_000)),
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{err}");
    assert_eq!(err["error"]["code"], "budget_exceeded");
    assert_eq!(err["error"]["type"], "budget_exceeded");
    assert!(err["error"]["message"].as_str().unwrap().contains("budget"));
    assert_eq!(err["error"]["budget"]["scope"], "actor");
    assert_eq!(err["error"]["budget"]["subject"], "agent@example.com");
    assert!(err["error"]["budget"]["resets_at"].is_string(), "{err}");
    assert_eq!(upstream.calls(), 1);
    // Without max_tokens the policies' default_max_tokens (1000) is the worst case: it fits.
    let (status, completion) = app
        .post("/v1/chat/completions", Some(&token), request(None))
        .await;
    assert_eq!(status, StatusCode::OK, "{completion}");
    assert_eq!(upstream.calls(), 2);
}

async fn concurrent_calls_never_reserve_past_a_budget(backend: Backend) {
    const N: usize = 20;
    // Worst case 5 × 0.15 + 4000 × 0.60 = 2400.75 → 2401 µ$: four fit in 10 000, five do not.
    const K: usize = 4;
    const WORST: i64 = 2401;
    let upstream = Upstream::start().await;
    let app = Arc::new(budget_app(backend, &upstream).await);
    let admin = app.admin().await;

    upstream.gate.send_replace(false);
    let answered = Arc::new(AtomicUsize::new(0));
    let mut calls = Vec::new();
    for _ in 0..N {
        let (app, admin, answered) = (app.clone(), admin.clone(), answered.clone());
        calls.push(tokio::spawn(async move {
            let out = app.post("/llm/generate", Some(&admin), call(4000)).await;
            answered.fetch_add(1, Ordering::SeqCst);
            out
        }));
    }
    // Every call is either held by the upstream (admitted) or already answered (refused).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while upstream.calls() + answered.load(Ordering::SeqCst) < N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} admitted, {} answered",
            upstream.calls(),
            answered.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        upstream.calls(),
        K,
        "exactly the calls that fit were admitted"
    );
    let held = actor_budget(&app, &admin).await;
    assert_eq!(micro(&held["reserved_usd"]), K as i64 * WORST, "{held}");
    assert_eq!(micro(&held["spent_usd"]), 0, "{held}");

    upstream.gate.send_replace(true);
    let mut ok = 0;
    for c in calls {
        let (status, body) = c.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::PAYMENT_REQUIRED => {
                assert_eq!(body["budget"]["scope"], "actor", "{body}");
                let b = &body["budget"];
                assert!(
                    b["spent_micro_usd"].as_i64().unwrap()
                        + b["reserved_micro_usd"].as_i64().unwrap()
                        + WORST
                        > 10_000,
                    "refused although it fitted: {body}"
                );
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(ok, K);
    let settled = actor_budget(&app, &admin).await;
    assert_eq!(micro(&settled["spent_usd"]), K as i64 * 14, "{settled}");
    assert_eq!(micro(&settled["reserved_usd"]), 0, "{settled}");
    assert!(micro(&settled["spent_usd"]) <= micro(&settled["limit_usd"]));
    let (_, usage) = app.get("/usage/events", &admin).await;
    assert_eq!(usage["items"].as_array().unwrap().len(), K, "{usage}");
}

/// The `budget.warning` events so far (reading `/budgets` first: it waits for the
/// settlements still queued in the writer).
async fn warnings(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, _) = app.get("/budgets", token).await;
    assert_eq!(status, StatusCode::OK);
    let events = app.store.events_after(0, 1000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.kind == "budget.warning")
        .map(|e| e.data.0)
        .collect()
}

async fn a_budget_warning_is_emitted_once(backend: Backend) {
    let upstream = Upstream::start().await;
    // Each call costs 10 × 0.15 + 5000 × 0.60 = 3001.5 → 3002 µ$ (30% of the budget).
    *upstream.usage.lock().unwrap() = (10, 5000);
    let app = budget_app(backend, &upstream).await;
    let admin = app.admin().await;

    let (status, out) = app.post("/llm/generate", Some(&admin), call(5000)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["cost_micro_usd"], 3002);
    assert_eq!(
        warnings(&app, &admin).await,
        Vec::<Value>::new(),
        "30% is below warn_at"
    );
    for _ in 0..2 {
        let (status, out) = app.post("/llm/generate", Some(&admin), call(5000)).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    let (status, problem) = app.post("/llm/generate", Some(&admin), call(5000)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{problem}");
    assert_eq!(problem["budget"]["spent_micro_usd"], 9006);

    let seen = warnings(&app, &admin).await;
    assert_eq!(seen.len(), 1, "once per period: {seen:?}");
    assert_eq!(seen[0]["scope"], "actor");
    assert_eq!(seen[0]["subject"], "admin@example.com");
    assert_eq!(
        seen[0]["spent_micro_usd"], 6004,
        "the call that crossed 50%"
    );
    assert_eq!(seen[0]["limit_micro_usd"], 10_000);
}

async fn persona_calls_are_charged_to_the_personas_max_spend(backend: Backend) {
    let upstream = Upstream::start().await;
    let app = budget_app(backend, &upstream).await;
    let admin = app.admin().await;
    let intern = json!({ "id": "intern.v1", "name": "Intern", "skills": ["notes"],
                         "reports_to": "cto.org.v1", "risk_limits": { "max_spend": 0.001 } });
    let (status, created) = app.post("/personas", Some(&admin), intern).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let as_intern = |max_tokens: u64| {
        let mut c = call(max_tokens);
        c["persona"] = json!("intern.v1");
        c
    };
    // 601 µ$ worst case fits the persona's 1000 µ$; it costs 14.
    let (status, out) = app
        .post("/llm/generate", Some(&admin), as_intern(1000))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    // 1201 µ$ does not fit the persona's budget, though it fits the actor's.
    let (status, problem) = app
        .post("/llm/generate", Some(&admin), as_intern(2000))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYMENT_REQUIRED,
        "budget_exceeded",
    );
    let budget = &problem["budget"];
    assert_eq!(budget["scope"], "persona", "{problem}");
    assert_eq!(budget["subject"], "intern.v1");
    assert_eq!(budget["limit_usd"].as_f64(), Some(0.001));
    assert_eq!(budget["spent_micro_usd"], 14, "the first call was charged");
    let (status, out) = app.post("/llm/generate", Some(&admin), call(2000)).await;
    assert_eq!(status, StatusCode::OK, "the same call as nobody: {out}");
    assert_eq!(upstream.calls(), 2);

    let mut unknown = call(10);
    unknown["persona"] = json!("ghost.v1");
    let (status, problem) = app.post("/llm/generate", Some(&admin), unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(field_names(&problem), ["persona"]);
}
