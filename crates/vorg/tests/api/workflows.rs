//! Workflows end to end with the simulated provider: the original's orchestration routes on
//! each engine, saved and ad hoc definitions, interrupts decided by approvers, tools checked
//! against personas and policies, and a graph resuming from its checkpoint after its
//! worker process is killed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{
    both,
    helpers::{TestApp, assert_problem, field_names, scripted_messages},
    runs::{log_messages, wait_ended, wait_run},
};

both!(
    the_dag_meeting_cycle_runs_each_step_as_its_persona,
    the_graph_meeting_cycle_is_checkpointed_after_every_node,
    crew_and_chat_brainstorms_answer_with_their_results,
    saved_workflows_are_versioned_and_run_by_name,
    bad_definitions_get_every_problem_at_its_path,
    an_interrupt_waits_for_an_approver_then_continues,
    a_rejected_interrupt_takes_the_rejection_edge,
    tools_outside_the_personas_tools_or_forbidden_by_policy_are_refused,
    native_tool_calls_of_a_provider_run_the_tool,
    an_agent_files_a_linear_issue_once_in_the_runs_team,
);

/// The usage rows of run `id`, once `n` of them have been written (the writer batches).
async fn usage_of_run(app: &TestApp, token: &str, id: i64, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, page) = app.get("/usage/events?limit=200", token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let rows: Vec<Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["run_id"] == id)
            .cloned()
            .collect();
        if rows.len() >= n || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_dag_meeting_cycle_runs_each_step_as_its_persona(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, out) = app
        .post(
            "/orchestration/dag/meeting_cycle",
            Some(&admin),
            json!({ "topic": "pricing" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["engine"], "dag");
    let results = out["results"].as_object().unwrap();
    for step in [
        "brainstorm_product",
        "brainstorm_growth",
        "standup",
        "all_hands",
    ] {
        assert!(
            results[step].as_str().is_some_and(|s| !s.is_empty()),
            "{step}: {out}"
        );
    }
    let id = out["run_id"].as_i64().unwrap();
    let lines = log_messages(&app, &admin, id).await;
    // The all-hands step may call record_decision: the simulated provider calls it through
    // the text protocol, and the CEO's tools allow it.
    assert!(
        lines
            .iter()
            .any(|l| l == "ceo.org.v1 called record_decision"),
        "{lines:#?}"
    );
    let (_, decisions) = app.get("/artifacts?kind=decision", &admin).await;
    assert_eq!(
        decisions["items"].as_array().unwrap().len(),
        1,
        "{decisions}"
    );
    assert_eq!(decisions["items"][0]["run_id"], id);

    // Every call is attributed to the run and to the persona who spoke.
    let calls = out["llm_calls"].as_u64().unwrap() as usize;
    assert!(calls >= 5, "{out}");
    let usage = usage_of_run(&app, &admin, id, calls).await;
    assert_eq!(usage.len(), calls, "{usage:#?}");
    let mut actors: Vec<&str> = usage.iter().filter_map(|u| u["actor"].as_str()).collect();
    actors.sort();
    actors.dedup();
    assert_eq!(actors, vec!["ceo.org.v1", "cto.org.v1", "growth.lead.v1"]);
}

async fn the_graph_meeting_cycle_is_checkpointed_after_every_node(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, out) = app
        .post(
            "/orchestration/langgraph/meeting_cycle",
            Some(&admin),
            json!({ "topic": "onboarding", "week": 12 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["engine"], "graph");
    assert_eq!(out["results"]["topic"], "onboarding");
    assert!(
        out["results"]["allhands"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{out}"
    );
    let visited: Vec<String> = serde_json::from_value(out["outcome"]["visited"].clone()).unwrap();
    assert_eq!(visited.last().map(String::as_str), Some("allhands"));
    let id = out["run_id"].as_i64().unwrap();
    let (status, cps) = app.get(&format!("/runs/{id}/checkpoints"), &admin).await;
    assert_eq!(status, StatusCode::OK, "{cps}");
    let nodes: Vec<&str> = cps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, visited);
    let last = cps["items"].as_array().unwrap().last().unwrap();
    assert_eq!(last["next"], Value::Null);
    assert_eq!(last["state"], out["results"]);
    let (status, _) = app.get("/runs/999999/checkpoints", &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn crew_and_chat_brainstorms_answer_with_their_results(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, crew) = app
        .post(
            "/orchestration/crewai/brainstorm",
            Some(&admin),
            json!({ "idea": "a usage-based price" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{crew}");
    assert_eq!(crew["engine"], "crew");
    for task in ["research", "recommend"] {
        assert!(crew["results"][task].is_string(), "{crew}");
    }
    let tasks = crew["outcome"]["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["agent"], "growth", "{crew}");

    let (status, chat) = app
        .post(
            "/orchestration/autogen/brainstorm",
            Some(&admin),
            json!({ "idea": "a usage-based price" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{chat}");
    assert_eq!(chat["engine"], "chat");
    let transcript = chat["results"].as_array().unwrap();
    assert_eq!(transcript[0]["speaker"], "user");
    assert!(
        transcript[0]["content"]
            .as_str()
            .unwrap()
            .contains("a usage-based price")
    );
    assert!(transcript.len() > 1 && transcript.len() <= 9, "{chat}");
    let speakers = ["cto", "growth", "finance"];
    assert!(
        transcript[1..]
            .iter()
            .all(|m| speakers.contains(&m["speaker"].as_str().unwrap())),
        "{chat}"
    );

    let (status, problem) = app
        .post("/orchestration/crewai/brainstorm", Some(&admin), json!({}))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&problem), vec!["idea"]);
    let viewer = app.user_with("v@example.com", &[Role::Viewer]).await.1;
    let (status, _) = app
        .post(
            "/orchestration/autogen/brainstorm",
            Some(&viewer),
            json!({ "idea": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

const REVIEW: &str = r#"
engine: dag
name: review
description: A draft and its review.
inputs:
  topic: What to write about.
steps:
  - id: draft
    agent: cto
    prompt: "Draft a note about {{ inputs.topic }}."
  - id: review
    agent: ceo
    depends_on: [draft]
    prompt: "Review: {{ steps.draft.output }}"
"#;

pub async fn post_yaml(app: &TestApp, token: &str, path: &str, yaml: &str) -> (StatusCode, Value) {
    let resp = app
        .client
        .request(Method::POST, app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(yaml.to_owned())
        .send()
        .await
        .unwrap();
    crate::helpers::read(resp).await
}

async fn saved_workflows_are_versioned_and_run_by_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, v1) = post_yaml(&app, &admin, "/workflows", REVIEW).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(
        (v1["name"].as_str(), v1["version"].as_i64()),
        (Some("review"), Some(1))
    );
    let changed = REVIEW.replace("A draft and its review.", "Draft, then review.");
    let (status, v2) = post_yaml(&app, &admin, "/workflows", &changed).await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);

    let (_, list) = app.get("/workflows", &admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["version"], 2);
    assert_eq!(list["items"][0]["engine"], "dag");
    let (status, detail) = app.get("/workflows/review?version=1", &admin).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["description"], "A draft and its review.");
    assert_eq!(
        detail["definition"]["steps"][1]["depends_on"],
        json!(["draft"])
    );
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
    let (status, _) = app.get("/workflows/nothing", &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, started) = app
        .post(
            "/workflows/review/runs",
            Some(&admin),
            json!({ "inputs": { "topic": "hiring" } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["version"], 2);
    let id = started["run_id"].as_i64().unwrap();
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["version"], 2);
    assert!(run["output"]["results"]["review"].is_string(), "{run}");
    let lines = log_messages(&app, &admin, id).await;
    let started_at = |step: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(&format!("[{step}] started")))
    };
    assert!(
        started_at("draft").unwrap() < started_at("review").unwrap(),
        "{lines:#?}"
    );

    // Version 1 on request; an engineer may run workflows, a viewer may only read them.
    let engineer = app.user_with("e@example.com", &[Role::Engineer]).await.1;
    let (status, started) = app
        .post(
            "/workflows/review/runs",
            Some(&engineer),
            json!({ "version": 1, "inputs": { "topic": "x" } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["version"], 1);
    let viewer = app.user_with("v@example.com", &[Role::Viewer]).await.1;
    let (status, _) = app.get("/workflows", &viewer).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post_yaml(&app, &viewer, "/workflows", REVIEW).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn bad_definitions_get_every_problem_at_its_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let bad = r#"
engine: dag
name: broken
steps:
  - { id: draft, agent: cmo, prompt: "Draft" }
  - { id: edit, agent: ceo, prompt: "Edit", depends_on: [draft], tools: [launch_rockets] }
  - { id: publish, agent: ceo, prompt: "Publish", depends_on: [edit, review] }
"#;
    let (status, problem) = post_yaml(&app, &admin, "/workflows", bad).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    let fields = field_names(&problem);
    assert!(
        fields.contains(&"steps[1].tools[0]".to_owned()),
        "{problem}"
    );
    assert!(
        fields.contains(&"steps[2].depends_on".to_owned()),
        "{problem}"
    );
    let messages: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&r#"unknown step "review""#), "{problem}");

    // Structurally valid, but an agent names nobody in the organization.
    let (status, problem) = post_yaml(
        &app,
        &admin,
        "/workflows",
        &REVIEW.replace("agent: cto", "agent: cmo"),
    )
    .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&problem), vec!["steps[0].agent"]);
    // `eng` matches two personas.
    let (status, problem) = post_yaml(
        &app,
        &admin,
        "/workflows",
        &REVIEW.replace("agent: cto", "agent: eng"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("matches 2 personas")
    );

    let (status, problem) = post_yaml(&app, &admin, "/workflows", "engine: [").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let resp = app
        .client
        .post(app.url("/workflows"))
        .bearer_auth(&admin)
        .header("content-type", "image/png")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Ad hoc: the document's problems under `workflow.`, the inputs checked too.
    let (status, problem) = app
        .post("/workflows/run", Some(&admin), json!({ "workflow": bad }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(field_names(&problem).contains(&"workflow.steps[2].depends_on".to_owned()));
    let (status, problem) = app
        .post(
            "/workflows/run",
            Some(&admin),
            json!({ "workflow": REVIEW, "inputs": { "subject": "x" } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        field_names(&problem),
        vec!["inputs.topic", "inputs.subject"]
    );
    let (status, problem) = app
        .post("/workflows/run", Some(&admin), json!({ "workflow": 3 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(field_names(&problem), vec!["workflow"]);
    let (_, list) = app.get("/workflows", &admin).await;
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "nothing saved: {list}"
    );
}

const GATED: &str = r#"
engine: graph
name: gated
state: { topic: string, plan: string, approved: boolean, decision: object }
start: plan
nodes:
  - { id: plan, agent: cto, prompt: "Plan {{ state.topic }}", output: plan, next: approve }
  - id: approve
    kind: interrupt
    message: "Ship the plan for {{ state.topic }}?"
    output: approved
    next: record
    on_reject: END
  - id: record
    kind: tool
    agent: ceo
    tool: record_decision
    args: { title: "{{ state.topic }}", body: "{{ state.plan }}" }
    output: decision
    next: END
"#;

/// Starts GATED and returns the run id and its pending approval, once the run waits.
async fn gated_run_waiting(app: &TestApp, token: &str) -> (i64, Value) {
    let (status, started) = app
        .post(
            "/workflows/run",
            Some(token),
            json!({ "workflow": GATED, "inputs": { "topic": "launch" } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    wait_run(app, token, id, "waiting_approval", |r| {
        r["status"] == "waiting_approval"
    })
    .await;
    let (_, page) = app.get("/approvals?status=pending", token).await;
    let approval = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["run_id"] == id)
        .cloned()
        .expect("the interrupt's approval");
    assert_eq!(approval["kind"], "workflow_interrupt");
    assert_eq!(approval["tier"], "approver");
    assert_eq!(approval["description"], "Ship the plan for launch?");
    (id, approval)
}

async fn an_interrupt_waits_for_an_approver_then_continues(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let engineer = app.user_with("e@example.com", &[Role::Engineer]).await.1;
    let approver = app.user_with("a@example.com", &[Role::Approver]).await.1;
    let (id, approval) = gated_run_waiting(&app, &engineer).await;
    let aid = approval["id"].as_i64().unwrap();
    let (status, _) = app
        .post(
            &format!("/approvals/{aid}/approve"),
            Some(&engineer),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an engineer cannot decide");
    let (status, decided) = app
        .post(
            &format!("/approvals/{aid}/approve"),
            Some(&approver),
            json!({ "comment": "ship it" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let results = &run["output"]["results"];
    assert_eq!(results["approved"], true);
    assert!(results["decision"]["artifact_id"].is_i64(), "{run}");
    let lines = log_messages(&app, &admin, id).await;
    // The run was parked and resumed from its checkpoint: the plan was made once.
    assert_eq!(
        lines.iter().filter(|l| *l == "[plan] started").count(),
        1,
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "[approve] approved"),
        "{lines:#?}"
    );
    let (_, cps) = app.get(&format!("/runs/{id}/checkpoints"), &admin).await;
    let nodes: Vec<&str> = cps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, vec!["plan", "approve", "record"]);
}

async fn a_rejected_interrupt_takes_the_rejection_edge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (id, approval) = gated_run_waiting(&app, &admin).await;
    let aid = approval["id"].as_i64().unwrap();
    // The run asks for its starter: separation of duties keeps the starter from deciding.
    assert!(approval["requested_by"].is_i64(), "{approval}");
    let (status, refused) = app
        .post(
            &format!("/approvals/{aid}/reject"),
            Some(&admin),
            json!({ "comment": "not now" }),
        )
        .await;
    assert_problem(status, &refused, StatusCode::FORBIDDEN, "refused");
    let other_admin = app.user_with("admin2@example.com", &[Role::Admin]).await.1;
    let (status, decided) = app
        .post(
            &format!("/approvals/{aid}/reject"),
            Some(&other_admin),
            json!({ "comment": "not now" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["results"]["approved"], false);
    assert_eq!(run["output"]["results"]["decision"], json!({}));
    let visited = &run["output"]["outcome"]["visited"];
    assert_eq!(visited, &json!(["approve"]), "resumed after plan: {run}");
    let (_, decisions) = app.get("/artifacts?kind=decision", &admin).await;
    assert!(decisions["items"].as_array().unwrap().is_empty());
}

async fn tools_outside_the_personas_tools_or_forbidden_by_policy_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    // The backend engineer's tools are create_linear_issue and search_artifacts.
    let not_theirs = r#"
engine: dag
name: overreach
steps:
  - { id: decide, agent: eng.backend.v1, prompt: "Decide the stack.", tools: [record_decision] }
"#;
    let (status, started) = app
        .post(
            "/workflows/run",
            Some(&admin),
            json!({ "workflow": not_theirs }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    let run = wait_run(&app, &admin, id, "failed", |r| r["status"] == "failed").await;
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("\"record_decision\" is not in the tools of persona eng.backend.v1"),
        "{run}"
    );
    let lines = log_messages(&app, &admin, id).await;
    assert!(
        lines
            .iter()
            .any(|l| l == "eng.backend.v1 may not call record_decision: not in the persona's tools"),
        "{lines:#?}"
    );

    let forbidden = r#"
engine: graph
name: leak
state: { result: object }
start: share
nodes:
  - id: share
    kind: tool
    agent: ceo
    tool: submit_approval
    args: { description: "Send the customer list to a partner", amount_usd: 0, action: external_data_sharing_without_dpa }
    output: result
"#;
    let (status, started) = app
        .post(
            "/workflows/run",
            Some(&admin),
            json!({ "workflow": forbidden }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    let run = wait_run(&app, &admin, id, "failed", |r| r["status"] == "failed").await;
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("\"external_data_sharing_without_dpa\" is a forbidden action"),
        "{run}"
    );
    let (_, page) = app.get("/approvals", &admin).await;
    assert!(page["items"].as_array().unwrap().is_empty(), "{page}");

    // Allowed: the CEO submits a small spend, auto-approved under the policies.
    let allowed = forbidden
        .replace("name: leak", "name: spend")
        .replace(", action: external_data_sharing_without_dpa", "")
        .replace("amount_usd: 0", "amount_usd: 12.5");
    let (_, started) = app
        .post(
            "/workflows/run",
            Some(&admin),
            json!({ "workflow": allowed }),
        )
        .await;
    let id = started["run_id"].as_i64().unwrap();
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let result = &run["output"]["results"]["result"];
    assert_eq!(result["status"], "auto_approved", "{run}");
    assert_eq!(result["amount_usd"], 12.5);
}

async fn native_tool_calls_of_a_provider_run_the_tool(backend: Backend) {
    let call = json!({ "role": "assistant", "content": null, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": { "name": "record_decision",
            "arguments": "{\"title\": \"Usage pricing\", \"body\": \"We charge per run.\"}" } }] });
    let (upstream, url) = scripted_messages(vec![call, json!("Recorded: usage pricing.")]).await;
    let app = TestApp::spawn_with(backend, move |s| {
        s.openai_api_key = Some(vorg_domain::Secret::new("sk-test-0123456789abcdef"));
        s.openai_base_url = url;
        s.openai_model = "gpt-4o-mini".into();
    })
    .await;
    let admin = app.admin().await;
    let wf = r#"
engine: dag
name: decide
steps:
  - { id: decide, agent: ceo, prompt: "Decide how we price.", tools: [record_decision] }
"#;
    let (status, started) = app
        .post(
            "/workflows/run",
            Some(&admin),
            json!({ "workflow": wf, "model": "openai/gpt-4o-mini" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["output"]["results"]["decide"],
        "Recorded: usage pricing."
    );
    let seen = upstream.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["tools"][0]["type"], "function");
    assert_eq!(seen[0]["tools"][0]["function"]["name"], "record_decision");
    assert!(seen[0]["tools"][0]["function"]["parameters"]["required"].is_array());
    let second = seen[1]["messages"][1]["content"].as_str().unwrap();
    assert!(
        second.contains("TOOL RESULT record_decision: {\"artifact_id\""),
        "the result goes back to the model: {second}"
    );
    let (_, decisions) = app.get("/artifacts?kind=decision", &admin).await;
    let items = decisions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{decisions}");
    let aid = items[0]["id"].as_i64().unwrap();
    let resp = app
        .client
        .get(app.url(&format!("/artifacts/{aid}/content")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# Usage pricing") && text.contains("We charge per run."),
        "{text}"
    );
    assert!(text.contains("decided_by: ceo.org.v1"), "{text}");
}

async fn an_agent_files_a_linear_issue_once_in_the_runs_team(backend: Backend) {
    use vorg_linear::fake::{FAKE_API_KEY, FakeLinear, seed};
    let fake = FakeLinear::start().await;
    let url = fake.url();
    let app = TestApp::spawn_with(backend, move |s| {
        s.linear_api_key = Some(vorg_domain::Secret::new(FAKE_API_KEY));
        s.linear_api_url = url;
    })
    .await;
    let admin = app.admin().await;
    // The backend engineer may file issues; the simulated provider calls the tool once.
    let wf = r#"
engine: dag
name: file
steps:
  - { id: file, agent: eng.backend.v1, prompt: "File the bug.", tools: [create_linear_issue] }
"#;
    let (status, started) = app
        .post(
            "/workflows/run",
            Some(&admin),
            json!({ "workflow": wf, "linear_team_id": seed::TEAM_ENG }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(fake.created_issue_count(), 1);
    let issues = run["linear_issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{run}");
    assert!(
        issues[0]["identifier"]
            .as_str()
            .unwrap()
            .starts_with("ENG-"),
        "filed in the run's team: {run}"
    );
    let lines = log_messages(&app, &admin, id).await;
    assert!(
        lines
            .iter()
            .any(|l| l == "eng.backend.v1 called create_linear_issue"),
        "{lines:#?}"
    );
}
