use std::time::Instant;

use serde_json::json;
use vorg_workflow::{DagWorkflow, StepStatus, Workflow, run_dag, validate};

use crate::fake::{Fake, Reply};

fn dag(text: &str) -> DagWorkflow {
    match validate(text) {
        Ok(Workflow::Dag(d)) => d,
        other => panic!("not a valid dag: {other:?}"),
    }
}

#[tokio::test]
async fn later_prompts_read_earlier_outputs_by_name() {
    let wf = dag(r#"
engine: dag
name: t
inputs: { topic: "" }
steps:
  - { id: draft, agent: writer, prompt: "Draft about {{ inputs.topic }}" }
  - { id: review, agent: editor, prompt: "Review: {{ steps.draft.output }}", depends_on: [draft] }
"#);
    let rt = Fake::new().script("draft", vec![Reply::Text("the first draft")]);

    let run = run_dag(&wf, &json!({ "topic": "pricing" }), &rt).await;

    assert!(run.succeeded());
    assert_eq!(rt.asks_for("draft")[0].prompt, "Draft about pricing");
    assert_eq!(rt.asks_for("review")[0].prompt, "Review: the first draft");
    assert_eq!(rt.asks_for("review")[0].agent, "editor");
    assert_eq!(
        run.steps["review"].output.as_deref(),
        Some("review by editor")
    );
    assert_eq!(run.steps["review"].attempts, 1);
}

const SIX_BRANCHES: &str = r#"
engine: dag
name: t
max_parallel: MAX
steps:
  - { id: a, agent: w, prompt: p }
  - { id: b, agent: w, prompt: p }
  - { id: c, agent: w, prompt: p }
  - { id: d, agent: w, prompt: p }
  - { id: e, agent: w, prompt: p }
  - { id: f, agent: w, prompt: p }
  - { id: join, agent: w, prompt: p, depends_on: [a, b, c, d, e, f] }
"#;

#[tokio::test]
async fn independent_branches_overlap_up_to_max_parallel() {
    for (max, expected) in [(2, 2), (6, 6), (1, 1)] {
        let wf = dag(&SIX_BRANCHES.replace("MAX", &max.to_string()));
        let rt = Fake {
            delay_ms: 40,
            ..Fake::new()
        };

        let started = Instant::now();
        let run = run_dag(&wf, &json!({}), &rt).await;

        assert!(run.succeeded());
        assert_eq!(rt.max_concurrency(), expected, "max_parallel {max}");
        // The join runs after every branch, alone.
        assert_eq!(rt.asks.lock().unwrap().last().unwrap().step, "join");
        if max == 6 {
            assert!(
                started.elapsed().as_millis() < 6 * 40,
                "branches did not overlap"
            );
        }
    }
}

#[tokio::test]
async fn a_step_is_retried_until_it_succeeds_within_its_retries() {
    let wf = dag(r#"
engine: dag
name: t
steps:
  - { id: flaky, agent: w, prompt: p, retries: 2 }
  - { id: fragile, agent: w, prompt: p, retries: 1 }
"#);
    let rt = Fake::new()
        .script(
            "flaky",
            vec![Reply::Fail("503"), Reply::Fail("503"), Reply::Text("ok")],
        )
        .script(
            "fragile",
            vec![
                Reply::Fail("503"),
                Reply::Fail("still 503"),
                Reply::Text("too late"),
            ],
        );

    let run = run_dag(&wf, &json!({}), &rt).await;

    assert_eq!(run.steps["flaky"].status, StepStatus::Succeeded);
    assert_eq!(run.steps["flaky"].attempts, 3);
    assert_eq!(run.steps["flaky"].output.as_deref(), Some("ok"));
    assert_eq!(run.steps["fragile"].status, StepStatus::Failed);
    assert_eq!(run.steps["fragile"].attempts, 2);
    assert_eq!(run.steps["fragile"].error.as_deref(), Some("still 503"));
}

#[tokio::test]
async fn a_step_over_its_timeout_fails_without_waiting_for_the_model() {
    let wf = dag(r#"
engine: dag
name: t
steps:
  - { id: slow, agent: w, prompt: p, timeout_ms: 30, retries: 1 }
"#);
    let rt = Fake::new().script(
        "slow",
        vec![Reply::Slow(5_000, "late"), Reply::Slow(5_000, "late")],
    );

    let started = Instant::now();
    let run = run_dag(&wf, &json!({}), &rt).await;

    assert!(started.elapsed().as_millis() < 1_000);
    assert_eq!(run.steps["slow"].status, StepStatus::Failed);
    assert_eq!(run.steps["slow"].attempts, 2);
    assert_eq!(
        run.steps["slow"].error.as_deref(),
        Some("timed out after 30 ms")
    );
}

#[tokio::test]
async fn a_failed_step_fails_its_dependants_while_independent_branches_finish() {
    let wf = dag(r#"
engine: dag
name: t
steps:
  - { id: report, agent: w, prompt: "{{ steps.research.output }}", depends_on: [research] }
  - { id: research, agent: w, prompt: p }
  - { id: publish, agent: w, prompt: p, depends_on: [report] }
  - { id: budget, agent: w, prompt: p }
  - { id: memo, agent: w, prompt: p, depends_on: [budget] }
"#);
    let rt = Fake::new().script("research", vec![Reply::Fail("provider down")]);

    let run = run_dag(&wf, &json!({}), &rt).await;

    assert!(!run.succeeded());
    assert_eq!(run.with_status(StepStatus::Failed), vec!["research"]);
    assert_eq!(
        run.with_status(StepStatus::UpstreamFailed),
        vec!["publish", "report"]
    );
    assert_eq!(
        run.with_status(StepStatus::Succeeded),
        vec!["budget", "memo"]
    );
    assert_eq!(
        run.steps["report"].error.as_deref(),
        Some(r#"dependency "research" failed"#)
    );
    assert_eq!(
        run.steps["publish"].error.as_deref(),
        Some(r#"dependency "report" failed"#)
    );
    assert_eq!(run.steps["publish"].attempts, 0);
    assert!(rt.asks_for("report").is_empty());
}

#[tokio::test]
async fn agents_call_listed_tools_through_the_text_protocol() {
    let wf = dag(r#"
engine: dag
name: t
steps:
  - { id: decide, agent: ceo, prompt: "Decide", tools: [record_decision] }
  - { id: sneaky, agent: intern, prompt: "Try", tools: [record_decision, submit_approval] }
"#);
    let rt = Fake::new()
        .script(
            "decide",
            vec![
                Reply::Text("TOOL record_decision {\"title\": \"ship\"}"),
                Reply::Text("TOOL create_linear_issue {}"),
                Reply::Text("Decided: ship"),
            ],
        )
        .script("sneaky", vec![Reply::Text("TOOL submit_approval {}")]);

    let run = run_dag(&wf, &json!({}), &rt).await;

    assert_eq!(run.steps["decide"].output.as_deref(), Some("Decided: ship"));
    let calls = rt.tool_calls.lock().unwrap().clone();
    assert_eq!(
        calls[0],
        (
            "ceo".into(),
            "record_decision".into(),
            json!({ "title": "ship" })
        )
    );
    let asks = rt.asks_for("decide");
    assert!(
        asks[1]
            .prompt
            .contains("TOOL RESULT record_decision: {\"ok\":true,\"tool\":\"record_decision\"}")
    );
    assert!(
        asks[2]
            .prompt
            .contains("TOOL ERROR create_linear_issue: not available in this step")
    );
    assert_eq!(run.steps["sneaky"].status, StepStatus::Failed);
    assert!(
        run.steps["sneaky"]
            .error
            .as_deref()
            .unwrap()
            .starts_with("forbidden: intern may not call submit_approval")
    );
}

/// A host whose log takes a lock and holds it across an await, as a database transaction
/// on a run's stream does: the engine must keep polling every branch while it logs.
struct LockingLog {
    lock: tokio::sync::Mutex<()>,
}

impl vorg_workflow::Runtime for LockingLog {
    fn ask<'a>(
        &'a self,
        ask: vorg_workflow::Ask<'a>,
    ) -> vorg_workflow::BoxFuture<'a, Result<String, vorg_workflow::StepError>> {
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            if ask.agent == "broken" {
                return Err(vorg_workflow::StepError::Failed("down".into()));
            }
            Ok("ok".to_owned())
        })
    }

    fn log<'a>(&'a self, _step: &'a str, _message: &'a str) -> vorg_workflow::BoxFuture<'a, ()> {
        Box::pin(async move {
            let _held = self.lock.lock().await;
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        })
    }
}

#[tokio::test]
async fn logging_never_waits_on_a_branch_it_does_not_poll() {
    let mut text = String::from("engine: dag\nname: wide\nmax_parallel: 4\nsteps:\n");
    for i in 0..12 {
        let dep = if i >= 4 {
            format!(", depends_on: [s{}]", i - 4)
        } else {
            String::new()
        };
        text.push_str(&format!("  - {{ id: s{i}, agent: a, prompt: p{dep} }}\n"));
    }
    // A failing step whose dependants are failed (and logged) while others run.
    text.push_str("  - { id: bad, agent: broken, prompt: p }\n");
    text.push_str("  - { id: after_bad, agent: a, prompt: p, depends_on: [bad] }\n");
    let wf = dag(&text);
    let rt = LockingLog {
        lock: tokio::sync::Mutex::new(()),
    };
    let run = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        run_dag(&wf, &json!({}), &rt),
    )
    .await
    .expect("the engine deadlocked on its own log");
    assert_eq!(run.steps["s11"].status, StepStatus::Succeeded);
    assert_eq!(run.steps["after_bad"].status, StepStatus::UpstreamFailed);
}
