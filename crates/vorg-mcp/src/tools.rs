//! The tools: everything an operator does, each one REST route (or a start and a follow),
//! described for a model to read — what it does, when to use it, what it costs — with a
//! precise input schema and an output schema for its structured content.

use serde_json::{Map, Value, json};
use vorg_domain::Permission;

use crate::schema::{Components, any_object, boolean, int, object, string, with_props};

/// One tool as listed.
pub struct ToolDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// What the caller's token must hold for the tool to be listed and callable.
    pub permission: Permission,
    /// Reads only: changes nothing and costs nothing.
    pub read_only: bool,
    pub input: fn(&Components) -> Value,
    pub output: fn() -> Value,
}

const WAIT: &str = "Wait for the run to finish (default true): progress notifications report \
                    each log line; a client cancel cancels the run. False: answer at once with \
                    the run id (follow it with get_run or by subscribing to its resource).";

fn wait_prop() -> (&'static str, Value) {
    ("wait", boolean(WAIT))
}

fn run_id_input(_: &Components) -> Value {
    object(&[("run_id", int("The run's id."))], &["run_id"])
}

fn no_input(_: &Components) -> Value {
    object(&[], &[])
}

/// What a tool that starts a run answers.
fn started_run_output() -> Value {
    object(
        &[
            ("run_id", int("The run.")),
            (
                "status",
                string("queued, running, waiting_approval, succeeded, failed or cancelled."),
            ),
            (
                "resource",
                string(
                    "The run's MCP resource (`vorg://runs/{id}`): its state and log; subscribe to it for updates.",
                ),
            ),
            (
                "output",
                json!({ "description": "What the finished run produced (its shape is the run type's)." }),
            ),
            (
                "error",
                json!({ "description": "Why the run failed, when it did." }),
            ),
            (
                "cost_usd",
                json!({ "type": "number", "description": "What the run's model calls cost so far." }),
            ),
            ("llm_calls", int("Model calls the run made.")),
            (
                "minutes_resource",
                string(
                    "A meeting's minutes (markdown with YAML front matter) as a resource, once held.",
                ),
            ),
        ],
        &["run_id", "status", "resource"],
    )
}

fn run_output() -> Value {
    object(
        &[
            ("id", int("The run.")),
            (
                "run_type",
                string("demo, meeting, hiring_plan, workflow, …"),
            ),
            (
                "status",
                string("queued, running, waiting_approval, succeeded, failed or cancelled."),
            ),
            (
                "summary",
                json!({ "description": "A one-line description." }),
            ),
            (
                "input",
                json!({ "description": "The run's input (its shape is the run type's)." }),
            ),
            (
                "output",
                json!({ "description": "What a succeeded run produced." }),
            ),
            ("error", json!({ "description": "Why it failed." })),
            (
                "cost_usd",
                json!({ "type": "number", "description": "What its model calls cost." }),
            ),
            ("llm_calls", int("Model calls made.")),
        ],
        &["id", "status"],
    )
}

fn items_output() -> Value {
    object(
        &[(
            "items",
            json!({ "type": "array", "description": "The rows, newest first unless said otherwise." }),
        )],
        &["items"],
    )
}

fn any_output() -> Value {
    json!({ "type": "object" })
}

fn meeting_input(component: &'static str) -> impl Fn(&Components) -> Value {
    move |c: &Components| with_props(c.inlined(component), &[wait_prop()])
}

fn standup_input(c: &Components) -> Value {
    meeting_input("StandupBody")(c)
}

fn brainstorm_input(c: &Components) -> Value {
    meeting_input("BrainstormBody")(c)
}

fn allhands_input(c: &Components) -> Value {
    meeting_input("AllhandsBody")(c)
}

fn saved_workflow_input(c: &Components) -> Value {
    with_props(
        c.inlined("RunOptions"),
        &[
            (
                "name",
                string("The saved workflow's name (see the workflows list)."),
            ),
            wait_prop(),
        ],
    )
    .pipe_required(&["name"])
}

fn adhoc_workflow_input(c: &Components) -> Value {
    with_props(c.inlined("AdhocRun"), &[wait_prop()])
}

fn hiring_input(c: &Components) -> Value {
    with_props(c.inlined("HiringRequest"), &[wait_prop()])
}

fn log_input(_: &Components) -> Value {
    object(
        &[
            ("run_id", int("The run's id.")),
            (
                "after",
                int(
                    "Only log rows after this id (the previous answer's last id); default: from the start.",
                ),
            ),
            ("limit", int("Rows, 1 to 1000 (default 200).")),
        ],
        &["run_id"],
    )
}

fn list_runs_input(_: &Components) -> Value {
    object(
        &[
            (
                "status",
                string(
                    "Only runs in this status: queued, running, waiting_approval, succeeded, failed or cancelled.",
                ),
            ),
            (
                "type",
                string("Only runs of this type, e.g. meeting, workflow, hiring_plan."),
            ),
            ("limit", int("Runs, 1 to 200 (default 50).")),
        ],
        &[],
    )
}

fn approvals_input(_: &Components) -> Value {
    object(
        &[(
            "status",
            string("pending, approved or rejected (default: all)."),
        )],
        &[],
    )
}

fn decide_input(_: &Components) -> Value {
    object(
        &[
            ("approval_id", int("The approval's id.")),
            ("approved", boolean("true approves, false rejects.")),
            ("comment", string("Why (recorded with the decision).")),
            (
                "checks",
                json!({ "type": "array", "items": { "type": "string" }, "description": "Required checks you attest passed (e.g. unit_tests_pass)." }),
            ),
        ],
        &["approval_id", "approved"],
    )
}

fn submit_input(c: &Components) -> Value {
    c.inlined("SubmitRequest")
}

fn persona_id_input(_: &Components) -> Value {
    object(
        &[("persona_id", string("The persona's id, e.g. cto.org.v1."))],
        &["persona_id"],
    )
}

fn persona_edit_input(_: &Components) -> Value {
    object(
        &[
            ("persona_id", string("The persona's id, e.g. cto.org.v1.")),
            (
                "document",
                any_object(
                    "The whole persona document as it should be (read it with get_persona first and change what you need): it is validated against the persona schema and saved as a new version.",
                ),
            ),
        ],
        &["persona_id", "document"],
    )
}

fn usage_input(_: &Components) -> Value {
    object(
        &[
            (
                "group_by",
                json!({ "type": "string", "enum": ["provider", "model", "actor", "run", "day"], "description": "How to group spend (default provider)." }),
            ),
            (
                "from",
                string("RFC 3339 start, inclusive (default: 30 days ago)."),
            ),
            ("to", string("RFC 3339 end, exclusive (default: now).")),
        ],
        &[],
    )
}

fn search_input(_: &Components) -> Value {
    object(
        &[
            (
                "q",
                string("Words that must all appear in the artifact's text or name."),
            ),
            ("limit", int("Hits, 1 to 100 (default 20).")),
        ],
        &["q"],
    )
}

fn artifact_input(_: &Components) -> Value {
    object(
        &[("artifact_id", int("The artifact's id."))],
        &["artifact_id"],
    )
}

fn linear_input(c: &Components) -> Value {
    c.inlined("IssueRequest")
}

fn apply_input(_: &Components) -> Value {
    object(
        &[("run_id", int("The hiring_plan run whose plan to apply."))],
        &["run_id"],
    )
}

/// `required` for a schema built by [`with_props`].
trait PipeRequired {
    fn pipe_required(self, names: &[&str]) -> Value;
}

impl PipeRequired for Value {
    fn pipe_required(mut self, names: &[&str]) -> Value {
        let mut required: Vec<Value> = self["required"].as_array().cloned().unwrap_or_default();
        required.extend(names.iter().map(|n| json!(n)));
        self["required"] = Value::Array(required);
        self
    }
}

/// Every tool, in the order listed.
pub fn all() -> Vec<ToolDef> {
    use Permission::*;
    let t = |name,
             title,
             description,
             permission,
             read_only,
             input: fn(&Components) -> Value,
             output: fn() -> Value| ToolDef {
        name,
        title,
        description,
        permission,
        read_only,
        input,
        output,
    };
    vec![
        t(
            "hold_standup",
            "Hold a stand-up",
            "Holds a stand-up meeting. Without content the personas hold it (each speaks through the model: this costs model calls, charged to your key's budgets); with yesterday/today/blockers it renders what you give. Leaves minutes (markdown with YAML front matter) as an artifact. Use it for a daily status round.",
            HoldMeetings,
            false,
            standup_input,
            started_run_output,
        ),
        t(
            "hold_brainstorm",
            "Hold a brainstorm",
            "Holds a brainstorm on a topic: the personas propose ideas and vote (model calls, charged to your budgets), or it renders the ideas you give. Leaves minutes with decisions and action items.",
            HoldMeetings,
            false,
            brainstorm_input,
            started_run_output,
        ),
        t(
            "hold_allhands",
            "Hold an all-hands",
            "Holds an all-hands: announcements and questions answered by the personas (model calls), or rendered from what you give. Leaves minutes.",
            HoldMeetings,
            false,
            allhands_input,
            started_run_output,
        ),
        t(
            "start_workflow",
            "Start a saved workflow",
            "Starts a saved workflow (by name) with inputs. Its agents' model calls are charged to your budgets; a step may park the run waiting for an approval.",
            StartRuns,
            false,
            saved_workflow_input,
            started_run_output,
        ),
        t(
            "run_workflow",
            "Run an ad hoc workflow",
            "Runs a workflow definition you pass inline (dag, graph, crew or chat engine) with inputs, without saving it. Same costs as start_workflow.",
            StartRuns,
            false,
            adhoc_workflow_input,
            started_run_output,
        ),
        t(
            "get_run",
            "Get a run",
            "A run's status, input, output, error and what its model calls cost. Free. Use it to check on a run you started.",
            ViewRuns,
            true,
            run_id_input,
            run_output,
        ),
        t(
            "read_run_log",
            "Read a run's log",
            "A page of a run's log (status changes and log lines), after a log id. Free. Call again with `after` = the last id to read on.",
            ViewRuns,
            true,
            log_input,
            items_output,
        ),
        t(
            "list_runs",
            "List runs",
            "Recent runs, newest first, optionally by status or type. Free.",
            ViewRuns,
            true,
            list_runs_input,
            items_output,
        ),
        t(
            "cancel_run",
            "Cancel a run",
            "Cancels a queued or running run (yours, or anyone's for an admin). Model calls already made stay charged.",
            CancelRuns,
            false,
            run_id_input,
            run_output,
        ),
        t(
            "list_approvals",
            "List approvals",
            "Approval requests (spend and actions awaiting a human or an approver), newest first. Free.",
            ViewOrg,
            true,
            approvals_input,
            items_output,
        ),
        t(
            "decide_approval",
            "Decide an approval",
            "Approves or rejects a pending approval request, within the tier the policies allow your role. A run waiting for it continues (or fails) at once.",
            DecideApprovals,
            false,
            decide_input,
            any_output,
        ),
        t(
            "submit_approval",
            "Submit an approval request",
            "Asks for an approval before spending money or taking a guarded action. Small amounts may be auto-approved by the policies; the answer says which tier decides.",
            SubmitApprovals,
            false,
            submit_input,
            any_output,
        ),
        t(
            "plan_hiring",
            "Plan hiring",
            "Generates a hiring plan for a goal: the roles the organization lacks and draft personas for them (model calls, charged to your budgets). Read the plan from the run's output; apply it with apply_hiring_plan.",
            StartRuns,
            false,
            hiring_input,
            started_run_output,
        ),
        t(
            "apply_hiring_plan",
            "Apply a hiring plan",
            "Creates the personas of a finished hiring plan, or submits the approval it needs first when hiring costs money beyond the auto-approval threshold.",
            ManagePersonas,
            false,
            apply_input,
            any_output,
        ),
        t(
            "list_personas",
            "List personas",
            "The organization's personas (the agents): id, name, role, manager, model. Free.",
            ViewOrg,
            true,
            no_input,
            items_output,
        ),
        t(
            "get_persona",
            "Read a persona",
            "One persona's whole document: role, goals, tools, model, risk limits. Free.",
            ViewOrg,
            true,
            persona_id_input,
            any_output,
        ),
        t(
            "propose_persona_edit",
            "Edit a persona",
            "Saves a new version of a persona: the document is validated against the persona schema (a 422-style error names each bad field) and versioned (roll back over the API). Free.",
            ManagePersonas,
            false,
            persona_edit_input,
            any_output,
        ),
        t(
            "get_usage",
            "Read usage",
            "Model spend and tokens grouped by provider, model, actor, run or day over a window. Free.",
            ViewUsage,
            true,
            usage_input,
            any_output,
        ),
        t(
            "get_budgets",
            "Read budgets",
            "Every budget that applies (org month, actors, personas, API tokens, runs) with its limit, spend, reservations and headroom. Free. Check it before expensive work.",
            ViewUsage,
            true,
            no_input,
            any_output,
        ),
        t(
            "search_artifacts",
            "Search artifacts",
            "Finds minutes, plans and other artifacts whose text or name holds all the words. Free. Read a hit with read_artifact or as the resource vorg://artifacts/{id}.",
            ViewOrg,
            true,
            search_input,
            any_output,
        ),
        t(
            "read_artifact",
            "Read an artifact",
            "An artifact's metadata and its text content (minutes are markdown with YAML front matter). Free.",
            ViewOrg,
            true,
            artifact_input,
            any_output,
        ),
        t(
            "create_linear_issue",
            "Create a Linear issue",
            "Files an issue in Linear (title, description, team, priority). Needs Linear configured on the server.",
            CreateLinearIssues,
            false,
            linear_input,
            any_output,
        ),
        t(
            "get_constitution",
            "Read the constitution",
            "The organization's constitution: its mission and the rules every agent follows. Free.",
            ViewOrg,
            true,
            no_input,
            any_output,
        ),
        t(
            "get_policies",
            "Read the policies",
            "The governance policies in force: spend thresholds and approval tiers, budgets, model allow-lists, forbidden actions, required checks. Free.",
            ViewOrg,
            true,
            no_input,
            any_output,
        ),
    ]
}

/// A string argument.
pub fn arg_str<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

/// An integer argument.
pub fn arg_int(args: &Map<String, Value>, name: &str) -> Option<i64> {
    args.get(name).and_then(Value::as_i64)
}

/// A query string from the arguments that are set (`?a=1&b=x`, or nothing).
pub fn query(args: &Map<String, Value>, names: &[&str]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for name in names {
        let value = match args.get(*name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => continue,
        };
        q.append_pair(name, &value);
        any = true;
    }
    if any {
        format!("?{}", q.finish())
    } else {
        String::new()
    }
}
