//! Client input past its bounds: documents refused by validation, renders that would grow
//! past their limit failing their step at once (no turn, no retry) in every engine.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::json;
use vorg_workflow::{
    GraphStatus, StepStatus, Termination, Workflow, run_chat, run_crew, run_dag, run_graph,
    validate, validate_value,
};

use crate::fake::Fake;

/// A 100 KB input and a prompt reading it 1,000 times: 100 MB once rendered.
fn big_input() -> serde_json::Value {
    json!({ "big": "x".repeat(100_000) })
}

fn refs(path: &str, n: usize) -> String {
    format!("{{{{ {path} }}}}").repeat(n)
}

const TOO_LONG: &str = "rendered text longer than 262144 bytes";

#[tokio::test]
async fn a_dag_step_whose_prompt_renders_too_long_fails_without_a_turn() {
    let text = format!(
        "engine: dag\nname: t\ninputs: {{ big: \"\" }}\nsteps:\n  - {{ id: a, agent: w, retries: 3, prompt: \"{}\" }}\n  - {{ id: b, agent: w, prompt: ok, depends_on: [a] }}\n",
        refs("inputs.big", 50)
    );
    let Ok(Workflow::Dag(wf)) = validate(&text) else {
        panic!("not a dag")
    };
    let rt = Fake::new();
    let run = run_dag(&wf, &big_input(), &rt).await;
    let a = &run.steps["a"];
    assert_eq!(a.status, StepStatus::Failed);
    assert_eq!(a.attempts, 0);
    assert!(a.error.as_deref().unwrap().contains(TOO_LONG), "{a:?}");
    assert_eq!(run.steps["b"].status, StepStatus::UpstreamFailed);
    assert!(rt.asks.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_graph_node_whose_prompt_or_args_render_too_long_fails_the_run() {
    let prompt = format!(
        "engine: graph\nname: g\nstate: {{ big: string }}\nstart: a\nnodes:\n  - {{ id: a, agent: w, retries: 3, prompt: \"{}\", next: END }}\n",
        refs("state.big", 50)
    );
    let Ok(Workflow::Graph(wf)) = validate(&prompt) else {
        panic!("not a graph")
    };
    let rt = Fake::new();
    let run = run_graph(&wf, &big_input(), &rt).await;
    assert_eq!(run.status, GraphStatus::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some(format!("a: invalid output: prompt: {TOO_LONG}").as_str())
    );
    assert!(rt.asks.lock().unwrap().is_empty());

    let args: Vec<String> = (0..12)
        .map(|i| format!("a{i}: \"{}\"", refs("state.big", 2)))
        .collect();
    let tool = format!(
        "engine: graph\nname: g\nstate: {{ big: string }}\nstart: t\nnodes:\n  - {{ id: t, kind: tool, tool: record_decision, retries: 3, args: {{ {} }}, next: END }}\n",
        args.join(", ")
    );
    let Ok(Workflow::Graph(wf)) = validate(&tool) else {
        panic!("not a graph")
    };
    let rt = Fake::new();
    let run = run_graph(&wf, &big_input(), &rt).await;
    assert_eq!(run.status, GraphStatus::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("t: invalid output: args: rendered arguments longer than 1048576 bytes in all")
    );
    assert!(rt.tool_calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn crew_and_chat_stop_at_a_task_that_renders_too_long() {
    let crew = format!(
        "engine: crew\nname: c\nprocess: sequential\ninputs: {{ big: \"\" }}\nagents: [{{ id: w, role: W, goal: g }}]\ntasks:\n  - {{ id: t, agent: w, expected_output: e, description: \"{}\" }}\n",
        refs("inputs.big", 50)
    );
    let Ok(Workflow::Crew(wf)) = validate(&crew) else {
        panic!("not a crew")
    };
    let rt = Fake::new();
    let run = run_crew(&wf, &big_input(), &rt).await;
    assert!(!run.succeeded);
    assert_eq!(
        run.tasks[0].error.as_deref(),
        Some(format!("invalid output: description: {TOO_LONG}").as_str())
    );
    assert!(rt.asks.lock().unwrap().is_empty());

    let chat = format!(
        "engine: chat\nname: c\ninputs: {{ big: \"\" }}\ntask: \"{}\"\nparticipants: [{{ id: a }}, {{ id: b }}]\nspeaker_selection: round_robin\nmax_rounds: 3\n",
        refs("inputs.big", 50)
    );
    let Ok(Workflow::Chat(wf)) = validate(&chat) else {
        panic!("not a chat")
    };
    let rt = Fake::new();
    let run = run_chat(&wf, &big_input(), &rt).await;
    assert_eq!(run.terminated_by, Termination::Error);
    assert_eq!(run.error, Some(format!("task: {TOO_LONG}")));
    assert!(rt.asks.lock().unwrap().is_empty());
}

fn problems(text: &str) -> Vec<String> {
    validate(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn templates_past_their_bounds_are_problems_at_their_field() {
    let text = format!(
        "engine: dag\nname: t\ninputs: {{ q: \"\" }}\nsteps:\n  - {{ id: a, agent: w, prompt: \"{}\" }}\n  - {{ id: b, agent: w, prompt: \"{}\" }}\n",
        refs("inputs.q", 65),
        "p".repeat(70_000)
    );
    assert_eq!(
        problems(&text),
        vec![
            "steps[0].prompt: more than 64 references in one template",
            "steps[1].prompt: template longer than 65536 bytes (70000 bytes)",
        ]
    );
}

#[test]
fn tool_arguments_are_checked_like_templates() {
    let text = "engine: graph\nname: g\nstate: { big: string }\nstart: t\nnodes:\n  - { id: t, kind: tool, tool: record_decision, args: { ok: \"{{ state.big }}\", bad: \"{{ state.nope }}\", list: [1, \"{{ inputs.x }}\"] }, next: END }\n";
    assert_eq!(
        problems(text),
        vec![
            r#"nodes[0].args.bad: undeclared state key "nope""#,
            r#"nodes[0].args.list[1]: unknown reference "inputs.x" (use state.<key>)"#,
        ]
    );
    // A JSON body (serde_json allows 128 levels) nesting its arguments past 64.
    let mut deep = json!("{{ state.big }}");
    for _ in 0..70 {
        deep = json!([deep]);
    }
    let doc = json!({
        "engine": "graph", "name": "g", "state": { "big": "string" }, "start": "t",
        "nodes": [{ "id": "t", "kind": "tool", "tool": "record_decision",
                    "args": { "deep": deep }, "next": "END" }],
    });
    let p = validate_value(&doc).unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, format!("nodes[0].args.deep{}", "[0]".repeat(63)));
    assert_eq!(p[0].message, "arguments nested deeper than 64 levels");
}

#[test]
fn documents_with_aliases_or_too_deep_are_one_problem_at_the_root() {
    // Before, this 1 KB document grew to a billion nodes while parsing.
    let mut laughs = String::from("engine: dag\nname: t\na0: &a0 [\"lol\"]\n");
    for i in 1..=9 {
        let r = vec![format!("*a{}", i - 1); 10].join(", ");
        laughs.push_str(&format!("a{i}: &a{i} [{r}]\n"));
    }
    laughs.push_str("steps: []\n");
    let started = Instant::now();
    let p = validate(&laughs).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "");
    assert!(
        p[0].message.contains("anchors (&name) and aliases"),
        "{p:?}"
    );

    let deep = format!(
        "engine: dag\nname: t\nsteps: {}{}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    assert_eq!(
        problems(&deep),
        vec!["line 3: document is nested deeper than 64 levels"]
    );
    let big = format!(
        "engine: dag\nname: t\nsteps: []\npad: \"{}\"\n",
        "x".repeat(300_000)
    );
    assert!(problems(&big)[0].contains("longer than 262144 bytes"));
}

/// A valid graph document to mutate.
const GRAPH: &str = r#"engine: graph
name: g
state: { n: integer, s: string, ok: boolean }
start: a
nodes:
  - id: a
    agent: w
    prompt: "Go {{ state.s }}"
    output: s
    branches:
      - { when: "state.n < 3 && !(state.ok || state.s == 'x')", to: b }
      - { to: END }
  - { id: b, kind: tool, tool: record_decision, args: { title: "{{ state.s }}", body: [1, { x: "{{ state.n }}" }] }, increment: [n], next: a }
"#;

/// Mutations: a character replaced, a nasty fragment inserted, or text cut short.
fn mutated() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: ".to_owned()),
        Just("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_owned()),
        Just("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!".to_owned()),
        Just("((((((((((((((((((((((((((((((((((((((".to_owned()),
        Just("{{ state.s }}{{ state.s }}".to_owned()),
        Just("{{".to_owned()),
        Just("\n  - ".to_owned()),
        Just(": ".to_owned()),
        Just("\"".to_owned()),
        any::<String>(),
    ];
    (0..GRAPH.len(), fragment, 0usize..3).prop_map(|(at, frag, how)| {
        let at = (0..=at)
            .rev()
            .find(|i| GRAPH.is_char_boundary(*i))
            .unwrap_or(0);
        match how {
            0 => format!("{}{frag}{}", &GRAPH[..at], &GRAPH[at..]),
            1 => format!("{}{frag}", &GRAPH[..at]),
            _ => {
                let end = (at + 1..=GRAPH.len())
                    .find(|i| GRAPH.is_char_boundary(*i))
                    .unwrap_or(GRAPH.len());
                format!("{}{frag}{}", &GRAPH[..at], &GRAPH[end..])
            }
        }
    })
}

/// Documents nested `depth` levels deep, with aliases, or long.
fn nasty() -> impl Strategy<Value = String> {
    (0usize..3, 0usize..2_000).prop_map(|(kind, n)| match kind {
        0 => format!(
            "engine: dag\nname: t\nsteps: {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        ),
        1 => format!(
            "engine: dag\nname: t\nx: &x [{}]\nsteps: [*x]\n",
            vec!["1"; n].join(",")
        ),
        _ => format!(
            "engine: dag\nname: t\nsteps:\n{}",
            "  - { id: a, agent: w, prompt: p }\n".repeat(n * 4)
        ),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn validate_returns_promptly_whatever_the_text(
        text in prop_oneof![mutated(), nasty(), any::<String>()],
    ) {
        let started = Instant::now();
        match validate(&text) {
            Ok(_) => {}
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                prop_assert!(problems.iter().all(|p| !p.message.is_empty()));
            }
        }
        prop_assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn the_unmutated_graph_is_valid() {
    assert!(validate(GRAPH).is_ok(), "{:?}", validate(GRAPH).err());
}
