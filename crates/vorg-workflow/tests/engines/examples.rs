//! Every file of `examples/workflows/` is valid and runs to the end.

use serde_json::json;
use vorg_workflow::{GraphStatus, RunOutcome, Termination, run, validate};

use crate::fake::{Fake, Reply};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/workflows");

#[test]
fn every_example_is_a_valid_workflow_and_each_engine_has_one() {
    let mut engines = Vec::new();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let wf = validate(&text).unwrap_or_else(|p| panic!("{}: {p:#?}", path.display()));
        engines.push(wf.engine());
    }
    engines.sort();
    engines.dedup();
    assert_eq!(engines, vec!["chat", "crew", "dag", "graph"]);
}

async fn run_example(file: &str, rt: &Fake) -> RunOutcome {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).unwrap();
    let wf = validate(&text).unwrap();
    run(&wf, &json!({ "topic": "pricing" }), rt).await
}

#[tokio::test]
async fn the_examples_run_to_the_end() {
    let RunOutcome::Dag(dag) = run_example("meeting_cycle.dag.yaml", &Fake::new()).await else {
        panic!()
    };
    assert!(dag.succeeded(), "{dag:?}");

    let rt = Fake::new().script(
        "review",
        vec![
            Reply::Text(r#"{"verdict": "cheaper"}"#),
            Reply::Text(r#"{"verdict": "accept"}"#),
        ],
    );
    let RunOutcome::Graph(graph) = run_example("plan_review.graph.yaml", &rt).await else {
        panic!()
    };
    assert_eq!(graph.status, GraphStatus::Completed, "{graph:?}");
    assert_eq!(
        graph.visited,
        vec![
            "propose", "review", "propose", "review", "approve", "record"
        ]
    );
    assert_eq!(graph.state["rounds"], json!(2));

    let rt = Fake::new().script(
        "check",
        vec![
            Reply::Text(r#"{"blocked": true}"#),
            Reply::Text(r#"{"blocked": true}"#),
        ],
    );
    let RunOutcome::Graph(cycle) = run_example("meeting_cycle.graph.yaml", &rt).await else {
        panic!()
    };
    assert_eq!(cycle.status, GraphStatus::Completed, "{cycle:?}");
    // Blocked twice: the second time the round limit sends it on to the all-hands.
    assert_eq!(
        cycle.visited,
        vec![
            "brainstorm",
            "standup",
            "check",
            "brainstorm",
            "standup",
            "check",
            "allhands"
        ]
    );

    let rt = Fake::new().script(
        "ceo",
        vec![
            Reply::Text("APPROVE"),
            Reply::Text("cto"),
            Reply::Text("APPROVE"),
        ],
    );
    let RunOutcome::Crew(crew) = run_example("brainstorm.crew.yaml", &rt).await else {
        panic!()
    };
    assert!(crew.succeeded, "{crew:?}");
    assert_eq!(crew.output.as_deref(), Some("recommend by cto"));

    let rt = Fake::new()
        .script("ceo", vec![Reply::Text("finance"), Reply::Text("cto")])
        .script("cto", vec![Reply::Text("Agreed. TERMINATE")]);
    let RunOutcome::Chat(chat) = run_example("brainstorm.chat.yaml", &rt).await else {
        panic!()
    };
    assert_eq!(chat.terminated_by, Termination::Keyword);
    assert_eq!(chat.transcript.len(), 3);
}
