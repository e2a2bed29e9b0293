use serde_json::json;
use vorg_workflow::{ChatWorkflow, Termination, Workflow, run_chat, validate};

use crate::fake::{Fake, Reply};

fn chat(selection: &str, extra: &str) -> ChatWorkflow {
    let text = format!(
        r#"
engine: chat
name: brainstorm
inputs: {{ topic: "" }}
task: "Brainstorm {{{{ inputs.topic }}}}"
participants:
  - {{ id: cto, description: builds things }}
  - {{ id: cmo, description: sells things }}
  - {{ id: cfo, description: counts things }}
speaker_selection: {selection}
max_rounds: 5
{extra}
"#
    );
    match validate(&text) {
        Ok(Workflow::Chat(c)) => c,
        other => panic!("not a valid chat: {other:?}"),
    }
}

fn speakers(run: &vorg_workflow::ChatRun) -> Vec<&str> {
    run.transcript.iter().map(|m| m.speaker.as_str()).collect()
}

#[tokio::test]
async fn round_robin_stops_at_max_rounds() {
    let wf = chat("round_robin", "");
    let rt = Fake::new();

    let run = run_chat(&wf, &json!({ "topic": "pricing" }), &rt).await;

    assert_eq!(run.terminated_by, Termination::MaxRounds);
    assert_eq!(
        speakers(&run),
        vec!["user", "cto", "cmo", "cfo", "cto", "cmo"]
    );
    assert_eq!(run.transcript[0].content, "Brainstorm pricing");
    let second = &rt.asks.lock().unwrap()[1];
    assert!(
        second
            .prompt
            .starts_with("user: Brainstorm pricing\n\ncto: round 1 by cto")
    );
    assert_eq!(second.system, "You are cmo in a group chat. sells things");
}

#[tokio::test]
async fn a_message_with_the_keyword_ends_the_chat() {
    let wf = chat("round_robin", "termination_keyword: DONE");
    let rt = Fake::new().script("cmo", vec![Reply::Text("Agreed: usage pricing. DONE")]);

    let run = run_chat(&wf, &json!({ "topic": "pricing" }), &rt).await;

    assert_eq!(run.terminated_by, Termination::Keyword);
    assert_eq!(speakers(&run), vec!["user", "cto", "cmo"]);
    assert!(
        rt.asks.lock().unwrap()[0]
            .prompt
            .ends_with("Say DONE when the task is done.")
    );
}

#[tokio::test]
async fn manual_order_repeats() {
    let wf = chat("manual", "order: [cfo, cto]");

    let run = run_chat(&wf, &json!({ "topic": "x" }), &Fake::new()).await;

    assert_eq!(
        speakers(&run),
        vec!["user", "cfo", "cto", "cfo", "cto", "cfo"]
    );
}

#[tokio::test]
async fn a_selector_picks_each_speaker_from_the_transcript() {
    let wf = chat("selector", "selector: ceo");
    let rt = Fake::new()
        .script(
            "ceo",
            vec![
                Reply::Text("cfo"),
                Reply::Text("The CMO, cmo."),
                Reply::Text("nobody"),
                Reply::Text("cto"),
                Reply::Text("cfo"),
            ],
        )
        .script("cmo", vec![Reply::Text("TERMINATE")]);

    let run = run_chat(&wf, &json!({ "topic": "x" }), &rt).await;

    // "nobody" names no participant: the round-robin speaker for round 3 (cfo) speaks.
    assert_eq!(speakers(&run), vec!["user", "cfo", "cmo"]);
    assert_eq!(run.terminated_by, Termination::Keyword);
    let selector_asks: Vec<_> = rt
        .asks
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.agent == "ceo")
        .cloned()
        .collect();
    assert_eq!(selector_asks.len(), 2);
    assert!(selector_asks[1].prompt.contains("cfo: round 1 by cfo"));
    assert!(selector_asks[1].prompt.contains("- cmo: sells things"));
}

#[tokio::test]
async fn a_condition_ends_the_chat() {
    let wf = chat(
        "round_robin",
        r#"terminate_when: 'state.last.speaker == "cfo" && state.rounds >= 3'"#,
    );
    let rt = Fake::new();

    let run = run_chat(&wf, &json!({ "topic": "pricing" }), &rt).await;

    assert_eq!(run.terminated_by, Termination::Condition);
    assert_eq!(speakers(&run), vec!["user", "cto", "cmo", "cfo"]);
}

#[test]
fn a_condition_over_unknown_keys_is_refused() {
    let text = r#"
engine: chat
name: c
task: t
participants: [{ id: a }, { id: b }]
speaker_selection: round_robin
max_rounds: 3
terminate_when: 'state.mood == "done"'
"#;
    let problems = validate(text).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.path == "terminate_when" && p.message.contains("state.rounds")),
        "{problems:?}"
    );
}
