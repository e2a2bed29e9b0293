use serde_json::json;
use vorg_workflow::{CrewWorkflow, Workflow, run_crew, validate};

use crate::fake::{Fake, Reply};

fn crew(process: &str) -> CrewWorkflow {
    let text = r#"
engine: crew
name: launch
inputs: { product: "" }
process: PROCESS
manager: ceo
max_revisions: 1
agents:
  - { id: researcher, role: Market researcher, goal: find the buyers, backstory: Ten years in B2B SaaS. }
  - { id: writer, role: Copywriter, goal: write the launch post }
tasks:
  - { id: research, description: "Who buys {{ inputs.product }}?", expected_output: three segments, agent: researcher }
  - { id: post, description: "Write the post from {{ tasks.research.output }}", expected_output: a post, AGENT }
"#
    .replace("PROCESS", process)
    .replace("AGENT", if process == "sequential" { "agent: writer" } else { "expected_output: a post" })
    .replace("expected_output: a post, expected_output: a post", "expected_output: a post");
    match validate(&text) {
        Ok(Workflow::Crew(c)) => c,
        other => panic!("not a valid crew: {other:?}"),
    }
}

#[tokio::test]
async fn a_sequential_crew_hands_each_task_the_earlier_outputs() {
    let wf = crew("sequential");
    let rt = Fake::new().script("research", vec![Reply::Text("SMBs, agencies, schools")]);

    let run = run_crew(&wf, &json!({ "product": "vorg" }), &rt).await;

    assert!(run.succeeded);
    let research = &rt.asks_for("research")[0];
    assert_eq!(
        research.system,
        "You are Market researcher. Your goal: find the buyers.\nTen years in B2B SaaS."
    );
    assert_eq!(
        research.prompt,
        "Task: Who buys vorg?\nExpected output: three segments"
    );
    let post = &rt.asks_for("post")[0];
    assert!(
        post.prompt
            .starts_with("Task: Write the post from SMBs, agencies, schools")
    );
    assert!(
        post.prompt
            .ends_with("Context from earlier tasks:\n### research\nSMBs, agencies, schools")
    );
    assert_eq!(run.output.as_deref(), Some("post by writer"));
    assert!(
        rt.asks.lock().unwrap().iter().all(|a| a.agent != "ceo"),
        "no manager in a sequential crew"
    );
}

#[tokio::test]
async fn a_hierarchical_manager_delegates_reviews_and_sends_work_back_a_bounded_number_of_times() {
    let wf = crew("hierarchical");
    let rt = Fake::new()
        .script(
            "researcher",
            vec![Reply::Text("segments v1"), Reply::Text("segments v2")],
        )
        .script(
            "writer",
            vec![
                Reply::Text("post v1"),
                Reply::Text("post v2"),
                Reply::Text("post v3"),
            ],
        )
        .script(
            "ceo",
            vec![
                Reply::Text("REVISE: add schools"),  // research, first review
                Reply::Text("APPROVE"),              // research, second review
                Reply::Text("writer"),               // who does `post`
                Reply::Text("REVISE: shorter"),      // post, first review
                Reply::Text("REVISE: even shorter"), // over the limit: kept
            ],
        );

    let run = run_crew(&wf, &json!({ "product": "vorg" }), &rt).await;

    assert!(run.succeeded);
    assert_eq!(run.tasks[0].output.as_deref(), Some("segments v2"));
    assert_eq!(run.tasks[0].revisions, 1);
    assert_eq!(run.tasks[1].agent.as_deref(), Some("writer"));
    assert_eq!(run.tasks[1].output.as_deref(), Some("post v2"));
    assert_eq!(run.tasks[1].revisions, 1);
    let research = rt.asks_for("research");
    let redo = research
        .iter()
        .filter(|a| a.agent == "researcher")
        .nth(1)
        .unwrap();
    assert!(redo.prompt.ends_with(
        "Your previous answer:\nsegments v1\n\nThe manager asks for changes:\nadd schools"
    ));
    assert_eq!(
        rt.asks_for("post")
            .iter()
            .filter(|a| a.agent == "writer")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_failed_task_stops_the_crew() {
    let wf = crew("sequential");
    let rt = Fake::new().script("research", vec![Reply::Fail("provider down")]);

    let run = run_crew(&wf, &json!({ "product": "vorg" }), &rt).await;

    assert!(!run.succeeded);
    assert_eq!(run.tasks.len(), 1);
    assert_eq!(run.tasks[0].error.as_deref(), Some("provider down"));
    assert!(rt.asks_for("post").is_empty());
}
