//! Turning a document into a [`Workflow`]: YAML/JSON parsing, the JSON Schema, then the
//! checks a schema cannot express (references, cycles, state keys, expressions). Every
//! problem is reported at once, each with its path.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::definition::*;
use crate::expr::Expr;
pub use crate::problem::Problem;
use crate::template;

/// Parses a YAML or JSON workflow document and checks it; every problem comes back. The
/// text is a client's: it is parsed with [`vorg_domain::yaml::parse_untrusted`] (at most
/// 256 KiB, 64 levels, no anchors or aliases), whose refusal is one problem at the root.
pub fn validate(text: &str) -> Result<Workflow, Vec<Problem>> {
    let doc = vorg_domain::yaml::parse_untrusted(text)
        .map_err(|e| vec![Problem::new("", e.to_string())])?;
    validate_value(&doc)
}

/// [`validate`] for a document already parsed (an API request body).
pub fn validate_value(doc: &Value) -> Result<Workflow, Vec<Problem>> {
    let mut problems = crate::schema::problems(doc);
    // A document with schema problems is still checked further when it has the shape of a
    // workflow (e.g. an unknown tool name), so one answer lists every problem.
    let workflow = match serde_json::from_value::<Workflow>(doc.clone()) {
        Ok(w) => w,
        Err(_) if !problems.is_empty() => return Err(problems),
        Err(e) => return Err(vec![Problem::new("", e.to_string())]),
    };
    for p in semantic_problems(&workflow) {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        Ok(workflow)
    } else {
        Err(problems)
    }
}

/// The checks beyond the schema, for a workflow built in code.
pub fn semantic_problems(workflow: &Workflow) -> Vec<Problem> {
    let mut p = Vec::new();
    match workflow {
        Workflow::Dag(w) => check_dag(w, &mut p),
        Workflow::Graph(w) => check_graph(w, &mut p),
        Workflow::Crew(w) => check_crew(w, &mut p),
        Workflow::Chat(w) => check_chat(w, &mut p),
    }
    p
}

fn duplicates<'a>(
    kind: &str,
    list: &str,
    ids: impl Iterator<Item = &'a str>,
    p: &mut Vec<Problem>,
) -> HashMap<&'a str, usize> {
    let mut seen = HashMap::new();
    for (i, id) in ids.enumerate() {
        if seen.insert(id, i).is_some() {
            p.push(Problem::new(
                format!("{list}[{i}].id"),
                format!("duplicate {kind} \"{id}\""),
            ));
        }
    }
    seen
}

/// Checks `{{ ... }}` references; `other` judges the non-`inputs` ones.
fn check_template(
    path: &str,
    text: &str,
    inputs: Option<&Inputs>,
    p: &mut Vec<Problem>,
    mut other: impl FnMut(&[&str]) -> Option<String>,
) {
    let refs = match template::references(text) {
        Ok(r) => r,
        Err(e) => return p.push(Problem::new(path, e)),
    };
    for r in refs {
        let segs: Vec<&str> = r.split('.').collect();
        let problem = match (segs.as_slice(), inputs) {
            (["inputs", name], Some(inputs)) => {
                (!inputs.contains_key(*name)).then(|| format!("unknown input \"{name}\""))
            }
            _ => other(&segs),
        };
        if let Some(msg) = problem {
            p.push(Problem::new(path, msg));
        }
    }
}

fn check_dag(w: &DagWorkflow, p: &mut Vec<Problem>) {
    let index = duplicates("step", "steps", w.steps.iter().map(|s| s.id.as_str()), p);
    for (i, step) in w.steps.iter().enumerate() {
        for dep in &step.depends_on {
            if !index.contains_key(dep.as_str()) {
                p.push(Problem::new(
                    format!("steps[{i}].depends_on"),
                    format!("unknown step \"{dep}\""),
                ));
            }
        }
    }
    let deps: BTreeMap<&str, Vec<&str>> = w
        .steps
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    for cycle in cycles(&deps) {
        p.push(Problem::new(
            "steps",
            format!("cycle {}", cycle.join(" → ")),
        ));
    }
    for (i, step) in w.steps.iter().enumerate() {
        let ancestors = ancestors(&deps, &step.id);
        check_template(
            &format!("steps[{i}].prompt"),
            &step.prompt,
            Some(&w.inputs),
            p,
            |segs| match segs {
                ["steps", id, "output"] if !index.contains_key(id) => {
                    Some(format!("unknown step \"{id}\""))
                }
                ["steps", id, "output"] if !ancestors.contains(id) => {
                    Some(format!("step \"{id}\" is not among its dependencies"))
                }
                ["steps", _, "output"] => None,
                _ => Some(format!(
                    "unknown reference \"{}\" (use inputs.<name> or steps.<id>.output)",
                    segs.join(".")
                )),
            },
        );
    }
}

/// Dependency cycles as `a → b → a`, read "a depends on b, which depends on a".
fn cycles<'a>(deps: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut HashMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        out: &mut Vec<Vec<&'a str>>,
    ) {
        marks.insert(node, Mark::Open);
        stack.push(node);
        for &dep in deps.get(node).into_iter().flatten() {
            match marks.get(dep) {
                Some(Mark::Open) => {
                    let from = stack.iter().rposition(|n| *n == dep).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[from..].to_vec();
                    cycle.push(cycle[0]);
                    out.push(cycle);
                }
                Some(Mark::Done) => {}
                None if deps.contains_key(dep) => visit(dep, deps, marks, stack, out),
                None => {}
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
    }
    let mut marks = HashMap::new();
    let mut out = Vec::new();
    for &node in deps.keys() {
        if !marks.contains_key(node) {
            visit(node, deps, &mut marks, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn ancestors<'a>(deps: &BTreeMap<&'a str, Vec<&'a str>>, id: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = deps.get(id).cloned().unwrap_or_default();
    while let Some(n) = todo.pop() {
        if seen.insert(n) {
            todo.extend(deps.get(n).into_iter().flatten());
        }
    }
    seen
}

fn check_graph(w: &GraphWorkflow, p: &mut Vec<Problem>) {
    let index = duplicates("node", "nodes", w.nodes.iter().map(|n| n.id.as_str()), p);
    if w.nodes.iter().any(|n| n.id == END) {
        p.push(Problem::new(
            "nodes",
            format!("\"{END}\" is reserved for the end of the run"),
        ));
    }
    let target_ok = |t: &str| t == END || index.contains_key(t);
    if !index.contains_key(w.start.as_str()) {
        p.push(Problem::new(
            "start",
            format!("unknown node \"{}\"", w.start),
        ));
    }
    let state_ref = |segs: &[&str]| match segs {
        ["state", key, ..] if w.state.contains_key(*key) => None,
        ["state", key, ..] => Some(format!("undeclared state key \"{key}\"")),
        _ => Some(format!(
            "unknown reference \"{}\" (use state.<key>)",
            segs.join(".")
        )),
    };
    for (i, node) in w.nodes.iter().enumerate() {
        let at = |field: &str| format!("nodes[{i}].{field}");
        let target = |field: String, t: &str, p: &mut Vec<Problem>| {
            if !target_ok(t) {
                p.push(Problem::new(field, format!("unknown node \"{t}\"")));
            }
        };
        if let Some(t) = &node.next {
            target(at("next"), t, p);
        }
        for (j, b) in node.branches.iter().enumerate() {
            target(at(&format!("branches[{j}].to")), &b.to, p);
            if let Some(when) = &b.when {
                let path = at(&format!("branches[{j}].when"));
                match Expr::parse(when) {
                    Err(e) => p.push(Problem::new(path, e)),
                    Ok(e) => {
                        for key in e.keys() {
                            if !w.state.contains_key(key) {
                                p.push(Problem::new(
                                    &path,
                                    format!("undeclared state key \"{key}\""),
                                ));
                            }
                        }
                    }
                }
            }
        }
        if let Some(args) = &node.args {
            for (path, text) in arg_strings(&at("args"), args, p) {
                check_template(&path, text, None, p, state_ref);
            }
        }
        if let Some(route) = &node.route {
            for (k, t) in route.targets.iter().enumerate() {
                target(at(&format!("route.targets[{k}]")), t, p);
            }
            check_template(&at("route.prompt"), &route.prompt, None, p, state_ref);
        }
        match (&node.on_reject, node.kind) {
            (Some(t), NodeKind::Interrupt) => target(at("on_reject"), t, p),
            (Some(_), _) => p.push(Problem::new(
                at("on_reject"),
                "only interrupt nodes have on_reject",
            )),
            (None, _) => {}
        }
        for (field, text) in [("prompt", &node.prompt), ("message", &node.message)] {
            if let Some(text) = text {
                check_template(&at(field), text, None, p, state_ref);
            }
        }
        if let Some(key) = &node.output {
            match (w.state.get(key), node.kind) {
                (None, _) => p.push(Problem::new(
                    at("output"),
                    format!("undeclared state key \"{key}\""),
                )),
                (Some(t), NodeKind::Interrupt) if *t != StateType::Boolean => p.push(Problem::new(
                    at("output"),
                    format!("\"{key}\" must be boolean to hold an approval"),
                )),
                (Some(t), NodeKind::Agent)
                    if node.format == OutputFormat::Text && *t != StateType::String =>
                {
                    p.push(Problem::new(
                        at("output"),
                        format!("\"{key}\" must be a string to hold a text answer"),
                    ))
                }
                _ => {}
            }
        }
        for (key, value) in &node.set {
            match w.state.get(key) {
                None => p.push(Problem::new(
                    at("set"),
                    format!("undeclared state key \"{key}\""),
                )),
                Some(t) if !t.admits(value) => p.push(Problem::new(
                    at(&format!("set.{key}")),
                    format!(
                        "not a {}",
                        serde_json::to_string(t)
                            .unwrap_or_default()
                            .trim_matches('"')
                    ),
                )),
                Some(_) => {}
            }
        }
        for (k, key) in node.increment.iter().enumerate() {
            if !matches!(
                w.state.get(key),
                Some(StateType::Integer | StateType::Number)
            ) {
                p.push(Problem::new(
                    at(&format!("increment[{k}]")),
                    format!("\"{key}\" is not a declared number or integer"),
                ));
            }
        }
    }
    // Nodes no edge leads to are almost always a typo in an edge.
    let mut reached = BTreeSet::new();
    let mut todo = vec![w.start.as_str()];
    while let Some(id) = todo.pop() {
        let Some(&i) = index.get(id) else { continue };
        if !reached.insert(id) {
            continue;
        }
        let n = &w.nodes[i];
        todo.extend(n.next.as_deref());
        todo.extend(n.branches.iter().map(|b| b.to.as_str()));
        todo.extend(
            n.route
                .iter()
                .flat_map(|r| r.targets.iter().map(String::as_str)),
        );
        todo.extend(n.on_reject.as_deref());
    }
    for (i, n) in w.nodes.iter().enumerate() {
        if index.get(n.id.as_str()) == Some(&i) && !reached.contains(n.id.as_str()) {
            p.push(Problem::new(
                format!("nodes[{i}]"),
                format!("node \"{}\" is unreachable from start", n.id),
            ));
        }
    }
}

/// Every string of a tool's `args` with its path (`nodes[0].args.items[1]`), walked without
/// recursion; a problem where they nest deeper than rendering allows.
fn arg_strings<'a>(at: &str, args: &'a Value, p: &mut Vec<Problem>) -> Vec<(String, &'a str)> {
    let mut out = Vec::new();
    let mut todo = vec![(at.to_owned(), args, 1)];
    while let Some((path, value, depth)) = todo.pop() {
        let children: Vec<(String, &Value)> = match value {
            Value::String(s) => {
                out.push((path, s.as_str()));
                continue;
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), v))
                .collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (format!("{path}.{k}"), v))
                .collect(),
            _ => continue,
        };
        if depth > template::MAX_RENDER_DEPTH {
            p.push(Problem::new(
                path,
                format!(
                    "arguments nested deeper than {} levels",
                    template::MAX_RENDER_DEPTH
                ),
            ));
            continue;
        }
        todo.extend(children.into_iter().rev().map(|(q, v)| (q, v, depth + 1)));
    }
    out
}

fn check_crew(w: &CrewWorkflow, p: &mut Vec<Problem>) {
    let agents = duplicates("agent", "agents", w.agents.iter().map(|a| a.id.as_str()), p);
    let mut earlier = BTreeSet::new();
    let tasks = duplicates("task", "tasks", w.tasks.iter().map(|t| t.id.as_str()), p);
    for (i, task) in w.tasks.iter().enumerate() {
        match (&task.agent, w.process) {
            (Some(a), _) if !agents.contains_key(a.as_str()) => p.push(Problem::new(
                format!("tasks[{i}].agent"),
                format!("unknown agent \"{a}\""),
            )),
            (None, Process::Sequential) => p.push(Problem::new(
                format!("tasks[{i}].agent"),
                "required with process sequential",
            )),
            _ => {}
        }
        check_template(
            &format!("tasks[{i}].description"),
            &task.description,
            Some(&w.inputs),
            p,
            |segs| match segs {
                ["tasks", id, "output"] if earlier.contains(id) => None,
                ["tasks", id, "output"] if tasks.contains_key(id) => {
                    Some(format!("task \"{id}\" does not run before this one"))
                }
                ["tasks", id, "output"] => Some(format!("unknown task \"{id}\"")),
                _ => Some(format!(
                    "unknown reference \"{}\" (use inputs.<name> or tasks.<id>.output)",
                    segs.join(".")
                )),
            },
        );
        earlier.insert(task.id.as_str());
    }
}

fn check_chat(w: &ChatWorkflow, p: &mut Vec<Problem>) {
    let ids = duplicates(
        "participant",
        "participants",
        w.participants.iter().map(|x| x.id.as_str()),
        p,
    );
    for (i, who) in w.order.iter().enumerate() {
        if !ids.contains_key(who.as_str()) {
            p.push(Problem::new(
                format!("order[{i}]"),
                format!("unknown participant \"{who}\""),
            ));
        }
    }
    if let Some(src) = &w.terminate_when {
        match Expr::parse(src) {
            Err(e) => p.push(Problem::new("terminate_when", e)),
            Ok(e) => {
                for key in e.keys() {
                    if !["rounds", "last"].contains(&key) {
                        p.push(Problem::new(
                            "terminate_when",
                            format!("unknown key \"{key}\" (use state.rounds, state.last.speaker, state.last.content)"),
                        ));
                    }
                }
            }
        }
    }
    check_template("task", &w.task, Some(&w.inputs), p, |segs| {
        Some(format!(
            "unknown reference \"{}\" (use inputs.<name>)",
            segs.join(".")
        ))
    });
}
