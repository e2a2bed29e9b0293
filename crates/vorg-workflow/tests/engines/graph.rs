use std::collections::HashMap;

use serde_json::json;
use vorg_workflow::{GraphStatus, GraphWorkflow, Workflow, resume_graph, run_graph, validate};

use crate::fake::{Fake, Reply};

fn graph(text: &str) -> GraphWorkflow {
    match validate(text) {
        Ok(Workflow::Graph(g)) => g,
        other => panic!("not a valid graph: {other:?}"),
    }
}

const REVISE_LOOP: &str = r#"
engine: graph
name: revise
state: { topic: string, draft: string, count: integer, verdict: string }
start: write
max_steps: MAX
nodes:
  - id: write
    agent: writer
    prompt: "Write about {{ state.topic }} (attempt {{ state.count }})"
    output: draft
    increment: [count]
    next: check
  - id: check
    kind: update
    branches:
      - { when: "state.verdict == \"good\" || state.count >= 3", to: END }
      - { to: grade }
  - id: grade
    agent: editor
    prompt: "Grade: {{ state.draft }}"
    format: json
    next: write
"#;

#[tokio::test]
async fn conditional_edges_loop_until_the_state_expression_holds() {
    let wf = graph(&REVISE_LOOP.replace("MAX", "50"));
    let rt = Fake::new().script(
        "grade",
        vec![
            Reply::Text(r#"{"verdict": "weak"}"#),
            Reply::Text("```json\n{\"verdict\": \"weak\"}\n```"),
        ],
    );

    let run = run_graph(&wf, &json!({ "topic": "pricing" }), &rt).await;

    assert_eq!(run.status, GraphStatus::Completed, "{:?}", run.error);
    assert_eq!(
        run.visited,
        vec![
            "write", "check", "grade", "write", "check", "grade", "write", "check"
        ]
    );
    assert_eq!(run.state["count"], json!(3));
    assert_eq!(run.state["verdict"], json!("weak"));
    assert_eq!(
        rt.asks_for("write")[2].prompt,
        "Write about pricing (attempt 2)"
    );
}

#[tokio::test]
async fn a_cycle_stops_at_max_steps() {
    let wf = graph(&REVISE_LOOP.replace("MAX", "4"));
    let rt = Fake::new().script("grade", vec![Reply::Text(r#"{"verdict": "weak"}"#); 5]);

    let run = run_graph(&wf, &json!({}), &rt).await;

    assert_eq!(run.status, GraphStatus::StepLimit);
    assert_eq!(run.steps, 4);
    assert_eq!(run.visited, vec!["write", "check", "grade", "write"]);
}

#[tokio::test]
async fn a_json_answer_of_the_wrong_type_is_retried_then_fails_the_run() {
    let wf = graph(
        &REVISE_LOOP
            .replace("MAX", "50")
            .replace("format: json", "format: json\n    retries: 1"),
    );
    let rt = Fake::new().script(
        "grade",
        vec![
            Reply::Text(r#"{"verdict": 3}"#),
            Reply::Text(r#"{"unknown": "x"}"#),
        ],
    );

    let run = run_graph(&wf, &json!({}), &rt).await;

    assert_eq!(run.status, GraphStatus::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some(r#"grade: invalid output: undeclared state key "unknown""#)
    );
    assert_eq!(rt.asks_for("grade").len(), 2);
}

#[tokio::test]
async fn a_checkpoint_is_written_after_every_node() {
    let wf = graph(&REVISE_LOOP.replace("MAX", "50"));
    let rt = Fake::new().script("grade", vec![Reply::Text(r#"{"verdict": "good"}"#)]);

    let run = run_graph(&wf, &json!({ "topic": "t" }), &rt).await;

    let cps = rt.checkpoints.lock().unwrap().clone();
    assert_eq!(
        run.visited,
        vec!["write", "check", "grade", "write", "check"]
    );
    assert_eq!(cps.len(), 5);
    let trail: Vec<(&str, Option<&str>, u32)> = cps
        .iter()
        .map(|c| (c.node.as_str(), c.next.as_deref(), c.steps))
        .collect();
    assert_eq!(
        trail,
        vec![
            ("write", Some("check"), 1),
            ("check", Some("grade"), 2),
            ("grade", Some("write"), 3),
            ("write", Some("check"), 4),
            ("check", None, 5),
        ]
    );
    assert_eq!(cps[2].state["verdict"], json!("good"));
    assert_eq!(cps.last().unwrap().state, run.state);
}

#[tokio::test]
async fn a_run_resumes_from_its_last_checkpoint_without_rerunning_nodes() {
    let wf = graph(&REVISE_LOOP.replace("MAX", "50"));
    let script = || {
        vec![
            Reply::Text(r#"{"verdict": "weak"}"#),
            Reply::Text(r#"{"verdict": "good"}"#),
        ]
    };
    let uninterrupted = run_graph(
        &wf,
        &json!({ "topic": "t" }),
        &Fake::new().script("grade", script()),
    )
    .await;
    // The worker dies while writing the 4th checkpoint: 3 nodes are safely done.
    let crashed = Fake {
        crash_at_checkpoint: Some(4),
        ..Fake::new()
    }
    .script("grade", script());
    let first = run_graph(&wf, &json!({ "topic": "t" }), &crashed).await;
    assert_eq!(first.status, GraphStatus::Failed);
    let last = crashed.checkpoints.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.node.as_str(), last.steps), ("grade", 3));

    let rt = Fake::new().script("grade", vec![Reply::Text(r#"{"verdict": "good"}"#)]);
    let resumed = resume_graph(&wf, &last, &rt).await;

    assert_eq!(resumed.status, GraphStatus::Completed);
    assert_eq!(
        resumed.visited,
        vec!["write", "check", "grade", "write", "check"]
    );
    assert_eq!(
        rt.asks_for("write").len(),
        2,
        "nodes before the checkpoint are not run again"
    );
    assert_eq!(resumed.steps, 3 + 5);
    assert_eq!(uninterrupted.steps, resumed.steps);
    assert_eq!(uninterrupted.state, resumed.state);
}

const ROUTED: &str = r#"
engine: graph
name: routed
state: { draft: string, approved: boolean, published: object }
start: draft
nodes:
  - { id: draft, agent: writer, prompt: "Draft", output: draft, next: triage }
  - id: triage
    kind: update
    route:
      agent: ceo
      prompt: "Publish or rewrite this? {{ state.draft }}"
      targets: [gate, draft]
  - { id: gate, kind: interrupt, message: "Publish {{ state.draft }}?", output: approved, next: publish, on_reject: archive }
  - { id: publish, kind: tool, agent: growth, tool: record_decision, args: { body: "{{ state.draft }}" }, output: published }
  - { id: archive, kind: update, set: { published: { archived: true } } }
"#;

#[tokio::test]
async fn an_llm_routing_decision_picks_the_next_node() {
    let wf = graph(ROUTED);
    let rt = Fake::new()
        .script("draft", vec![Reply::Text("v1"), Reply::Text("v2")])
        .script(
            "triage",
            vec![Reply::Text("Rewrite it: draft."), Reply::Text("gate")],
        );

    let run = run_graph(&wf, &json!({}), &rt).await;

    assert_eq!(
        run.visited,
        vec!["draft", "triage", "draft", "triage", "gate", "publish"]
    );
    assert!(
        rt.asks_for("triage")[0]
            .prompt
            .ends_with("Answer with exactly one of: gate, draft.")
    );
    assert_eq!(
        rt.asks_for("triage")[1].prompt.lines().next(),
        Some("Publish or rewrite this? v2")
    );
}

#[tokio::test]
async fn an_approved_interrupt_continues_on_its_edge() {
    let wf = graph(ROUTED);
    let rt = Fake::new().script("triage", vec![Reply::Text("gate")]);

    let run = run_graph(&wf, &json!({}), &rt).await;

    assert_eq!(run.status, GraphStatus::Completed);
    assert_eq!(run.visited, vec!["draft", "triage", "gate", "publish"]);
    assert_eq!(run.state["approved"], json!(true));
    assert_eq!(
        run.state["published"],
        json!({ "tool": "record_decision", "ok": true })
    );
    let requests = rt.approval_requests.lock().unwrap().clone();
    assert_eq!(requests[0].0, "gate");
    assert_eq!(requests[0].1["message"], json!("Publish draft by writer?"));
    let calls = rt.tool_calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![(
            "growth".into(),
            "record_decision".into(),
            json!({ "body": "draft by writer" })
        )]
    );
}

#[tokio::test]
async fn a_rejected_interrupt_takes_the_rejection_edge() {
    let wf = graph(ROUTED);
    let rt = Fake {
        decisions: HashMap::from([("gate".to_owned(), false)]),
        ..Fake::new()
    }
    .script("triage", vec![Reply::Text("gate")]);

    let run = run_graph(&wf, &json!({}), &rt).await;

    assert_eq!(run.status, GraphStatus::Completed);
    assert_eq!(run.visited, vec!["draft", "triage", "gate", "archive"]);
    assert_eq!(run.state["approved"], json!(false));
    assert_eq!(run.state["published"], json!({ "archived": true }));
    assert!(rt.tool_calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn inputs_of_the_wrong_type_fail_before_any_node() {
    let wf = graph(ROUTED);
    let rt = Fake::new();

    let run = run_graph(&wf, &json!({ "approved": "yes" }), &rt).await;

    assert_eq!(run.status, GraphStatus::Failed);
    assert!(
        run.error
            .unwrap()
            .starts_with("inputs: invalid output: \"approved\" must be Boolean")
    );
    assert!(rt.asks.lock().unwrap().is_empty());
}
