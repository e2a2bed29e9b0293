//! Meetings, hiring plans and artifacts: runs whose minutes and plans are stored and served.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vorg_domain::{Role, Secret};
use vorg_linear::fake::{FAKE_API_KEY, FakeLinear, seed};
use vorg_store::Backend;

use crate::{
    both,
    helpers::{TestApp, assert_problem, field_names, scripted},
};

both!(
    a_standup_with_content_is_rendered_as_given_and_stored,
    personas_hold_each_meeting_when_no_content_is_sent,
    respond_async_answers_202_with_the_run,
    the_originals_templates_render_unchanged,
    action_items_become_linear_issues_once,
    a_hiring_plan_is_validated_stored_and_applied_behind_an_approval,
    an_invalid_plan_is_repaired_by_reasking_then_fails_with_the_errors,
    bad_meeting_bodies_name_the_field,
    personas_speak_with_their_context_pack_and_model,
);

async fn personas_speak_with_their_context_pack_and_model(backend: Backend) {
    let answer = r#"{"yesterday": ["a"], "today": ["b"], "blockers": [], "summary": "s", "action_items": []}"#;
    let (upstream, url) = scripted(&[answer]).await;
    let app = TestApp::spawn_with(backend, move |s| {
        s.openai_api_key = Some(Secret::new("sk-test-0123456789abcdef"));
        s.openai_base_url = url;
        s.openai_model = "gpt-4o-mini".into();
    })
    .await;
    let admin = app.admin().await;
    let (status, out) = app
        .post(
            "/meetings/standup",
            Some(&admin),
            json!({ "participants": ["ceo.org.v1"], "model": "openai/gpt-4o-mini" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let seen = upstream.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    let system = seen[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("Maya Okafor"),
        "the persona speaks: {system}"
    );
    assert!(
        system.contains("## constitution") && system.contains("Who decides"),
        "{system}"
    );
    assert!(
        system.contains("## policies") && system.contains("auto_approve_usd"),
        "{system}"
    );
    assert_eq!(seen[0]["model"], "gpt-4o-mini");
    assert_eq!(out["minutes"]["summary"], "s");
}

/// The front matter of minutes, parsed.
fn front_matter(markdown: &str) -> Value {
    let rest = markdown.strip_prefix("---\n").expect("front matter");
    let (yaml, _) = rest.split_once("\n---\n").expect("end of front matter");
    serde_yaml::from_str(yaml).expect("front matter is YAML")
}

async fn content(app: &TestApp, token: &str, id: i64) -> (StatusCode, String, String) {
    let resp = app
        .client
        .get(app.url(&format!("/artifacts/{id}/content")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

async fn a_standup_with_content_is_rendered_as_given_and_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let body = json!({
        "date": "2026-11-29", "attendees": ["Avery", "Jordan"],
        "yesterday": ["shipped the approvals API"], "today": ["write the console"],
        "blockers": ["waiting on design"], "decisions": ["adopt uPlot"],
    });
    let (status, out) = app.post("/meetings/standup", Some(&admin), body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    for key in [
        "markdown_path",
        "json_path",
        "markdown",
        "minutes",
        "run_id",
    ] {
        assert!(!out[key].is_null(), "{key} missing: {out}");
    }
    let markdown = out["markdown"].as_str().unwrap();
    for text in [
        "shipped the approvals API",
        "write the console",
        "waiting on design",
        "adopt uPlot",
        "Avery, Jordan",
    ] {
        assert!(markdown.contains(text), "{text:?} missing:\n{markdown}");
    }
    let front = front_matter(markdown);
    assert_eq!(front["meeting"], "standup");
    assert_eq!(front["date"], "2026-11-29");
    assert_eq!(front["run_id"], out["run_id"]);
    assert_eq!(front["generated_by"], "caller");
    assert_eq!(out["llm_calls"], 0, "content sent: no model call");

    let (_, minutes) = app.get("/ops/minutes", &admin).await;
    let entry = &minutes[0];
    assert_eq!(entry["id"], out["artifact_id"], "{minutes}");
    for key in ["id", "name", "path", "download", "created_at"] {
        assert!(!entry[key].is_null(), "{key}: {entry}");
    }
    let id = out["artifact_id"].as_i64().unwrap();
    let (status, ct, text) = content(&app, &admin, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/markdown"), "{ct}");
    assert_eq!(text, markdown);
    let (_, json_list) = app.get("/artifacts?kind=minutes_json", &admin).await;
    assert_eq!(json_list["items"][0]["id"], out["json_artifact_id"]);
    let (_, hits) = app.get("/artifacts/search?q=uPlot%20ADOPT", &admin).await;
    let hit = &hits["items"][0];
    assert!(hit["snippet"].as_str().unwrap().contains("uPlot"), "{hits}");
    let (_, none) = app
        .get("/artifacts/search?q=uPlot%20kubernetes", &admin)
        .await;
    assert!(
        none["items"].as_array().unwrap().is_empty(),
        "every word must match: {none}"
    );
    let (status, body) = app.get("/artifacts/search?q=", &admin).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    let (status, _) = app.get("/artifacts/999999/content", &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A viewer reads minutes but holds no meetings.
    let (_, viewer) = app.user_with("viewer@example.com", &[Role::Viewer]).await;
    let (status, _) = app.get(&format!("/artifacts/{id}"), &viewer).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post("/meetings/standup", Some(&viewer), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn personas_hold_each_meeting_when_no_content_is_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, out) = app.post("/meetings/standup", Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let front = front_matter(out["markdown"].as_str().unwrap());
    assert_eq!(front["generated_by"], "personas");
    assert_eq!(front["run_id"], out["run_id"]);
    let participants = front["participants"].as_array().unwrap();
    assert!(participants.len() >= 2, "{front:?}");
    assert_eq!(&front["participants"], &out["participants"]);
    assert!(out["llm_calls"].as_i64().unwrap() > participants.len() as i64);
    assert_eq!(
        out["minutes"]["updates"].as_array().unwrap().len(),
        participants.len()
    );
    // Every call is accounted to the run.
    let run = out["run_id"].as_i64().unwrap();
    let (_, usage) = app.get("/usage/events?limit=200", &admin).await;
    let for_run = usage["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["run_id"] == run)
        .count();
    assert_eq!(for_run as i64, out["llm_calls"].as_i64().unwrap());
    let (_, logs) = app.get(&format!("/runs/{run}/logs"), &admin).await;
    assert!(logs.to_string().contains("spoke (simulated/"), "{logs}");

    let (status, out) = app
        .post(
            "/meetings/brainstorm",
            Some(&admin),
            json!({ "topic": "Onboarding for new organizations", "participants": ["ceo.org.v1", "growth.lead.v1", "cto.org.v1"], "rounds": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let minutes = &out["minutes"];
    assert!(
        !minutes["ideas"].as_array().unwrap().is_empty(),
        "{minutes}"
    );
    assert!(!minutes["top3"].as_array().unwrap().is_empty(), "{minutes}");
    assert_eq!(minutes["topic"], "Onboarding for new organizations");
    assert_eq!(
        front_matter(out["markdown"].as_str().unwrap())["participants"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let (status, out) = app
        .post("/meetings/allhands", Some(&admin), json!({ "week": 48 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let minutes = &out["minutes"];
    assert!(
        !minutes["updates"].as_object().unwrap().is_empty(),
        "{minutes}"
    );
    assert!(
        !minutes["questions"].as_array().unwrap().is_empty(),
        "{minutes}"
    );
    assert_eq!(minutes["week"], 48);
    assert!(
        out["markdown"]
            .as_str()
            .unwrap()
            .contains("All-hands — week 48")
    );
}

async fn respond_async_answers_202_with_the_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let resp = app
        .client
        .post(app.url("/meetings/standup"))
        .bearer_auth(&admin)
        .header("Prefer", "respond-async")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = resp.json().await.unwrap();
    let run = body["run_id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, r) = app.get(&format!("/runs/{run}"), &admin).await;
        if r["status"] == "succeeded" {
            assert!(
                r["output"]["markdown"]
                    .as_str()
                    .unwrap()
                    .starts_with("---\n")
            );
            break;
        }
        assert!(r["status"] != "failed", "{r}");
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn seed_templates() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var("VORG_SEED_DIR")
        .map(PathBuf::from)
        .ok()
        .or_else(|| {
            manifest
                .ancestors()
                .map(|d| d.join("shared/seed/original"))
                .find(|d| d.is_dir())
        })
        .unwrap_or_else(|| PathBuf::from("/work/shared/seed/original"))
        .join("meetings/templates")
}

async fn the_originals_templates_render_unchanged(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        let dir = s.data_dir.join("config/meetings/templates");
        std::fs::create_dir_all(&dir).unwrap();
        for t in ["standup.md", "brainstorm.md", "allhands.md"] {
            std::fs::copy(seed_templates().join(t), dir.join(t)).expect("the original's templates");
        }
        s.config_dir = Some(s.data_dir.join("config"));
    })
    .await;
    let admin = app.admin().await;
    let (status, out) = app
        .post(
            "/meetings/standup",
            Some(&admin),
            json!({ "date": "2026-11-30", "attendees": ["Avery", "Sam"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let md = out["markdown"].as_str().unwrap();
    assert!(md.contains("Stand-up Template"), "{md}");
    assert!(md.contains("**Date:** 2026-11-30"), "{md}");
    assert!(md.contains("**Attendees:** Avery, Sam"), "{md}");
    assert_eq!(front_matter(md)["meeting"], "standup");
}

async fn action_items_become_linear_issues_once(backend: Backend) {
    let fake = FakeLinear::start().await;
    let url = fake.url();
    let app = TestApp::spawn_with(backend, move |s| {
        s.linear_api_key = Some(Secret::new(FAKE_API_KEY));
        s.linear_api_url = url;
    })
    .await;
    let admin = app.admin().await;
    let (status, out) = app
        .post(
            "/meetings/brainstorm",
            Some(&admin),
            json!({ "topic": "Pricing", "rounds": 1, "linear_team_id": seed::TEAM_ENG }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let items = out["action_items"].as_array().unwrap();
    assert!(!items.is_empty(), "{out}");
    let filed = out["linear_issues"].as_array().unwrap();
    assert_eq!(filed.len(), items.len(), "{out}");
    assert_eq!(fake.created_issue_count() as usize, items.len());
    let run = out["run_id"].as_i64().unwrap();
    let (_, detail) = app.get(&format!("/runs/{run}"), &admin).await;
    assert_eq!(
        detail["linear_issues"].as_array().unwrap().len(),
        items.len(),
        "{detail}"
    );
}

async fn a_hiring_plan_is_validated_stored_and_applied_behind_an_approval(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let body = json!({ "idea": "An AI bookkeeping service", "budget_usd": 2000, "deadline_days": 30,
                       "goal": "First ten paying customers" });
    let (status, plan) = app.post("/hiring/plan", Some(&admin), body).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    for key in [
        "roles",
        "workstreams",
        "llm_output",
        "inputs",
        "run_id",
        "plan_id",
    ] {
        assert!(!plan[key].is_null(), "{key}: {plan}");
    }
    let original: Value = serde_json::from_str(
        &std::fs::read_to_string(seed_templates().join("../../schemas/hiring_plan.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema_validator(&original);
    let doc = json!({ "roles": plan["roles"], "workstreams": plan["workstreams"] });
    assert!(
        validator(&doc),
        "the plan is valid under the original's schema: {doc}"
    );
    assert_eq!(plan["inputs"]["idea"], "An AI bookkeeping service");
    let id = plan["plan_id"].as_i64().unwrap();
    let (_, artifact) = app.get(&format!("/artifacts/{id}"), &admin).await;
    assert_eq!(artifact["kind"], "hiring_plan");

    // Apply: above the auto-approve threshold it needs an approval first.
    let cost = plan["estimated_monthly_cost_usd"].as_f64().unwrap();
    let (status, first) = app
        .post(
            &format!("/hiring/plans/{id}/apply"),
            Some(&admin),
            json!({}),
        )
        .await;
    let roles = plan["roles"].as_array().unwrap().len();
    let created = if cost > 50.0 {
        assert_eq!(status, StatusCode::ACCEPTED, "{first}");
        let approval = first["approval_id"].as_i64().unwrap();
        let (_, approver) = app
            .user_with("approver@example.com", &[Role::Approver, Role::Admin])
            .await;
        let (status, decided) = app
            .post(
                &format!("/approvals/{approval}/approve"),
                Some(&approver),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{decided}");
        let (status, done) = app
            .post(
                &format!("/hiring/plans/{id}/apply"),
                Some(&admin),
                json!({ "approval_id": approval, "reports_to": "ceo.org.v1" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{done}");
        done
    } else {
        assert_eq!(status, StatusCode::CREATED, "{first}");
        first
    };
    assert_eq!(
        created["created"].as_array().unwrap().len(),
        roles,
        "{created}"
    );
    let new_id = created["created"][0].as_str().unwrap();
    let (status, persona) = app.get(&format!("/personas/{new_id}"), &admin).await;
    assert_eq!(status, StatusCode::OK, "{persona}");
    let (status, body) = app
        .post("/hiring/plans/999999/apply", Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// A validator closure for `schema` (the jsonschema crate through vorg-org's wrapper).
fn jsonschema_validator(schema: &Value) -> impl Fn(&Value) -> bool {
    let s = vorg_org::Schema::compile("test", &schema.to_string()).unwrap();
    move |doc| s.problems(doc).is_empty()
}

async fn an_invalid_plan_is_repaired_by_reasking_then_fails_with_the_errors(backend: Backend) {
    let invalid = r#"{"roles": [{"role_id": "pm"}]}"#;
    let valid = r#"{"roles": [{"role_id": "pm", "mission": "own the roadmap", "deliverables": ["PRD"], "monthly_cost_usd": 20}], "workstreams": [{"name": "mvp", "owner": "pm", "milestone": "beta"}]}"#;
    let (upstream, url) = scripted(&["not json at all", invalid, valid]).await;
    let app = TestApp::spawn_with(backend, move |s| {
        s.openai_api_key = Some(Secret::new("sk-test-0123456789abcdef"));
        s.openai_base_url = url;
        s.openai_model = "gpt-4o-mini".into();
    })
    .await;
    let admin = app.admin().await;
    let body = json!({ "idea": "x", "budget_usd": 100, "deadline_days": 10, "goal": "y", "provider": "openai" });
    let (status, plan) = app.post("/hiring/plan", Some(&admin), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["repairs"], 2);
    assert_eq!(plan["roles"][0]["mission"], "own the roadmap");
    assert_eq!(plan["estimated_monthly_cost_usd"], 20.0);
    let seen = upstream.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let last_prompt = seen[2]["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        last_prompt.contains("mission") && last_prompt.contains("workstreams"),
        "the errors are sent back: {last_prompt}"
    );

    let (_, url) = scripted(&[invalid]).await;
    let app = TestApp::spawn_with(backend, move |s| {
        s.openai_api_key = Some(Secret::new("sk-test-0123456789abcdef"));
        s.openai_base_url = url;
        s.openai_model = "gpt-4o-mini".into();
    })
    .await;
    let admin = app.admin().await;
    let (status, problem) = app.post("/hiring/plan", Some(&admin), body).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("stayed invalid") && detail.contains("workstreams"),
        "{detail}"
    );
}

async fn bad_meeting_bodies_name_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let cases = [
        (
            "/meetings/standup",
            json!({ "attendees": "everyone" }),
            "attendees",
        ),
        (
            "/meetings/standup",
            json!({ "participants": ["nobody.v1"] }),
            "participants[0]",
        ),
        ("/meetings/brainstorm", json!({ "rounds": 9 }), "rounds"),
        ("/meetings/allhands", json!({ "metrics": [1] }), "metrics"),
        ("/meetings/allhands", json!({ "surprise": 1 }), "surprise"),
        (
            "/hiring/plan",
            json!({ "idea": "", "budget_usd": -1, "deadline_days": 0, "goal": "g" }),
            "idea",
        ),
    ];
    for (path, body, field) in cases {
        let (status, problem) = app.post(path, Some(&admin), body).await;
        assert_problem(
            status,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        );
        assert!(
            field_names(&problem).iter().any(|f| f == field),
            "{path}: {problem}"
        );
    }
    let (_, runs) = app.get("/runs", &admin).await;
    assert!(
        runs["items"].as_array().unwrap().is_empty(),
        "bad bodies start no run: {runs}"
    );
}
