use vorg_workflow::{Workflow, validate};

fn problems(text: &str) -> Vec<String> {
    validate(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn an_unknown_dependency_is_reported_with_its_path() {
    let text = r#"
engine: dag
name: t
steps:
  - { id: draft, agent: writer, prompt: "Draft" }
  - { id: edit, agent: editor, prompt: "Edit", depends_on: [draft] }
  - { id: publish, agent: editor, prompt: "Publish", depends_on: [edit, review] }
"#;
    assert_eq!(
        problems(text),
        vec![r#"steps[2].depends_on: unknown step "review""#]
    );
}

#[test]
fn a_dependency_cycle_is_rejected_naming_the_cycle() {
    let text = r#"
engine: dag
name: t
steps:
  - { id: draft, agent: writer, prompt: "Draft", depends_on: [review] }
  - { id: review, agent: editor, prompt: "Review", depends_on: [draft] }
  - { id: solo, agent: editor, prompt: "Alone", depends_on: [solo] }
"#;
    assert_eq!(
        problems(text),
        vec![
            "steps: cycle draft → review → draft",
            "steps: cycle solo → solo"
        ]
    );
}

#[test]
fn every_schema_problem_comes_back_at_once() {
    let text = r#"
engine: dag
name: t
max_parallel: 0
steps:
  - { id: draft, agnet: writer, prompt: "Draft" }
  - { id: "bad id", agent: writer, prompt: "x", retries: -1 }
"#;
    let p = problems(text);
    let paths: Vec<&str> = p.iter().map(|s| s.split(':').next().unwrap()).collect();
    assert!(paths.contains(&"max_parallel"), "{p:?}");
    assert!(paths.contains(&"steps[0].agent"), "{p:?}");
    assert!(
        p.iter()
            .any(|s| s.starts_with("steps[0]:") && s.contains("agnet")),
        "{p:?}"
    );
    assert!(paths.contains(&"steps[1].id"), "{p:?}");
    assert!(paths.contains(&"steps[1].retries"), "{p:?}");
}

#[test]
fn an_unknown_engine_and_a_missing_name_are_problems() {
    let p = problems("engine: pipeline\nsteps: []\n");
    assert!(p.iter().any(|s| s.starts_with("engine:")), "{p:?}");
    assert!(p.contains(&"name: required".to_owned()), "{p:?}");
}

#[test]
fn prompts_may_only_read_inputs_and_outputs_of_dependencies() {
    let text = r#"
engine: dag
name: t
inputs: { topic: "what to write about" }
steps:
  - { id: a, agent: w, prompt: "{{ inputs.topic }} {{ inputs.tone }}" }
  - { id: b, agent: w, prompt: "{{ steps.a.output }}" }
  - { id: c, agent: w, prompt: "{{ steps.b.output }} {{ steps.zz.output }} {{ whatever }}", depends_on: [a] }
"#;
    assert_eq!(
        problems(text),
        vec![
            r#"steps[0].prompt: unknown input "tone""#,
            r#"steps[1].prompt: step "a" is not among its dependencies"#,
            r#"steps[2].prompt: step "b" is not among its dependencies"#,
            r#"steps[2].prompt: unknown step "zz""#,
            r#"steps[2].prompt: unknown reference "whatever" (use inputs.<name> or steps.<id>.output)"#,
        ]
    );
}

#[test]
fn graph_references_expressions_and_state_keys_are_checked() {
    let text = r#"
engine: graph
name: g
state: { count: integer, draft: string, ok: boolean }
start: write
nodes:
  - id: write
    agent: writer
    prompt: "Write {{ state.topic }}"
    output: count
    branches:
      - { when: "state.count < 3 &&", to: write }
      - { when: "state.missing", to: publish }
      - { to: END }
  - { id: gate, kind: interrupt, message: "ok?", output: draft, on_reject: nowhere }
  - { id: lonely, kind: update, set: { count: "three" }, increment: [draft], on_reject: write }
"#;
    assert_eq!(
        problems(text),
        vec![
            r#"nodes[0].branches[0].when: unexpected end of expression"#,
            r#"nodes[0].branches[1].to: unknown node "publish""#,
            r#"nodes[0].branches[1].when: undeclared state key "missing""#,
            r#"nodes[0].prompt: undeclared state key "topic""#,
            r#"nodes[0].output: "count" must be a string to hold a text answer"#,
            r#"nodes[1].on_reject: unknown node "nowhere""#,
            r#"nodes[1].output: "draft" must be boolean to hold an approval"#,
            r#"nodes[2].on_reject: only interrupt nodes have on_reject"#,
            r#"nodes[2].set.count: not a integer"#,
            r#"nodes[2].increment[0]: "draft" is not a declared number or integer"#,
            r#"nodes[1]: node "gate" is unreachable from start"#,
            r#"nodes[2]: node "lonely" is unreachable from start"#,
        ]
    );
}

#[test]
fn a_graph_node_with_two_kinds_of_edges_fails_the_schema() {
    let text = r#"
engine: graph
name: g
state: {}
start: a
nodes:
  - { id: a, agent: w, prompt: p, next: END, branches: [{ to: END }] }
  - { id: b, kind: tool }
"#;
    let p = problems(text);
    assert!(p.iter().any(|s| s.starts_with("nodes[0]:")), "{p:?}");
    assert!(p.contains(&"nodes[1].tool: required".to_owned()), "{p:?}");
}

#[test]
fn crew_and_chat_references_are_checked() {
    let crew = r#"
engine: crew
name: c
process: sequential
agents: [{ id: cto, role: CTO, goal: build }]
tasks:
  - { id: plan, description: "Plan {{ tasks.review.output }}", expected_output: a plan, agent: cfo }
  - { id: review, description: Review, expected_output: notes }
"#;
    assert_eq!(
        problems(crew),
        vec![
            r#"tasks[0].agent: unknown agent "cfo""#,
            r#"tasks[0].description: task "review" does not run before this one"#,
            r#"tasks[1].agent: required with process sequential"#,
        ]
    );
    let chat = r#"
engine: chat
name: c
task: go
participants: [{ id: a }, { id: b }]
speaker_selection: manual
order: [a, c]
max_rounds: 3
"#;
    assert_eq!(problems(chat), vec![r#"order[1]: unknown participant "c""#]);
    let hierarchical_without_manager = crew.replace("sequential", "hierarchical");
    assert!(problems(&hierarchical_without_manager).contains(&"manager: required".to_owned()));
}

#[test]
fn json_documents_are_accepted_too() {
    let text = r#"{"engine": "dag", "name": "t", "steps": [{"id": "a", "agent": "w", "prompt": "p", "timeout_ms": 10}]}"#;
    let Workflow::Dag(dag) = validate(text).unwrap() else {
        panic!("not a dag")
    };
    assert_eq!(dag.max_parallel, 4);
    assert_eq!(dag.steps[0].timeout_ms, Some(10));
}

#[test]
fn text_that_is_not_yaml_is_one_problem_at_the_root() {
    let p = validate("engine: [dag").unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "");
}

#[test]
fn only_built_in_tools_can_be_named() {
    let text = r#"
engine: dag
name: t
steps:
  - { id: a, agent: ceo, prompt: "Go", tools: [record_decision, launch_rockets] }
"#;
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("steps[0].tools[1]: "), "{p:?}");
    assert!(vorg_workflow::tools::tool("record_decision").is_some());
}

#[test]
fn expressions_past_their_bounds_are_problems_at_their_field() {
    let graph = format!(
        r#"
engine: graph
name: g
state: {{ ok: boolean }}
start: a
nodes:
  - id: a
    kind: update
    branches:
      - {{ when: "{}state.ok", to: END }}
      - {{ to: END }}
"#,
        "!".repeat(4_000)
    );
    assert_eq!(
        problems(&graph),
        vec!["nodes[0].branches[0].when: expression is nested deeper than 32 levels"]
    );
    let chat = format!(
        r#"
engine: chat
name: c
task: go
participants: [{{ id: a }}, {{ id: b }}]
speaker_selection: round_robin
max_rounds: 3
terminate_when: "{}state.rounds > 1{}"
"#,
        "(".repeat(5_000),
        ")".repeat(5_000)
    );
    assert_eq!(
        problems(&chat),
        vec!["terminate_when: expression longer than 4096 bytes (10016 bytes)"]
    );
}
