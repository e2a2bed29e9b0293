//! What each tool does: the REST calls behind it.

use axum::http::Method;
use rmcp::{Peer, RoleServer, model::ProgressToken};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    backend::{Call, Caller},
    server::{ToolError, VorgMcp, as_object},
    tools::{arg_int, arg_str, query},
};

type Progress = Option<(Peer<RoleServer>, ProgressToken)>;

fn need_int(args: &Map<String, Value>, name: &str) -> Result<i64, ToolError> {
    arg_int(args, name).ok_or_else(|| ToolError(format!("{name}: required, an integer")))
}

fn need_str<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, ToolError> {
    arg_str(args, name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ToolError(format!("{name}: required, a non-empty string")))
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The arguments without the tool's own (`wait`, path arguments): the route's body.
fn body_of(args: &Map<String, Value>, own: &[&str]) -> Value {
    Value::Object(
        args.iter()
            .filter(|(k, _)| !own.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

async fn get(
    server: &VorgMcp,
    caller: &Caller,
    tool: &str,
    path: String,
) -> Result<Value, ToolError> {
    server.rest(caller, Call::get(path).for_tool(tool)).await
}

async fn post(
    server: &VorgMcp,
    caller: &Caller,
    tool: &str,
    path: String,
    body: Value,
) -> Result<Value, ToolError> {
    server
        .rest(
            caller,
            Call::send(Method::POST, path, Some(&body)).for_tool(tool),
        )
        .await
}

/// Runs tool `name` for `caller`.
pub(crate) async fn run(
    server: &VorgMcp,
    caller: &Caller,
    name: &str,
    args: &Map<String, Value>,
    progress: Progress,
    ct: &CancellationToken,
) -> Result<Value, ToolError> {
    let get = |path: String| get(server, caller, name, path);
    let post = |path: String, body: Value| post(server, caller, name, path, body);
    let start = |path: &'static str, body: Value| {
        start_run(
            server,
            caller,
            name,
            path.to_owned(),
            body,
            args,
            progress.clone(),
            ct,
        )
    };
    let value = match name {
        "hold_standup" => start("/meetings/standup", body_of(args, &["wait"])).await?,
        "hold_brainstorm" => start("/meetings/brainstorm", body_of(args, &["wait"])).await?,
        "hold_allhands" => start("/meetings/allhands", body_of(args, &["wait"])).await?,
        "plan_hiring" => start("/hiring/plan", body_of(args, &["wait"])).await?,
        "run_workflow" => start("/workflows/run", body_of(args, &["wait"])).await?,
        "start_workflow" => {
            let path = format!("/workflows/{}/runs", seg(need_str(args, "name")?));
            let body = body_of(args, &["wait", "name"]);
            start_run(server, caller, name, path, body, args, progress, ct).await?
        }
        "get_run" => get(format!("/runs/{}", need_int(args, "run_id")?)).await?,
        "read_run_log" => {
            let id = need_int(args, "run_id")?;
            get(format!(
                "/runs/{id}/logs{}",
                query(args, &["after", "limit"])
            ))
            .await?
        }
        "list_runs" => {
            get(format!(
                "/runs{}",
                query(args, &["status", "type", "limit"])
            ))
            .await?
        }
        "cancel_run" => {
            let id = need_int(args, "run_id")?;
            post(format!("/runs/{id}/cancel"), json!({})).await?
        }
        "list_approvals" => get(format!("/approvals{}", query(args, &["status"]))).await?,
        "decide_approval" => {
            let id = need_int(args, "approval_id")?;
            let verb = match args.get("approved").and_then(Value::as_bool) {
                Some(true) => "approve",
                Some(false) => "reject",
                None => return Err(ToolError("approved: required, true or false".into())),
            };
            post(
                format!("/approvals/{id}/{verb}"),
                body_of(args, &["approval_id", "approved"]),
            )
            .await?
        }
        "submit_approval" => post("/approvals/submit".into(), Value::Object(args.clone())).await?,
        "apply_hiring_plan" => {
            let id = need_int(args, "run_id")?;
            post(format!("/hiring/plans/{id}/apply"), json!({})).await?
        }
        "list_personas" => get("/personas".into()).await?,
        "get_persona" => get(format!("/personas/{}", seg(need_str(args, "persona_id")?))).await?,
        "propose_persona_edit" => {
            let id = seg(need_str(args, "persona_id")?);
            let doc = args
                .get("document")
                .filter(|d| d.is_object())
                .ok_or_else(|| {
                    ToolError("document: required, the persona document (an object)".into())
                })?;
            server
                .rest(
                    caller,
                    Call::send(Method::PUT, format!("/personas/{id}"), Some(doc)).for_tool(name),
                )
                .await?
        }
        "get_usage" => {
            get(format!(
                "/usage/summary{}",
                query(args, &["group_by", "from", "to"])
            ))
            .await?
        }
        "get_budgets" => get("/budgets".into()).await?,
        "search_artifacts" => {
            get(format!("/artifacts/search{}", query(args, &["q", "limit"]))).await?
        }
        "read_artifact" => {
            let id = need_int(args, "artifact_id")?;
            let mut meta = get(format!("/artifacts/{id}")).await?;
            let content = server
                .backend()
                .call(caller, Call::get(format!("/artifacts/{id}/content")))
                .await
                .map_err(ToolError)?;
            meta["content"] = match content.body {
                Value::String(text) => Value::String(text),
                other => Value::String(other.to_string()),
            };
            meta
        }
        "create_linear_issue" => post("/linear/issues".into(), Value::Object(args.clone())).await?,
        "get_constitution" => get("/governance/constitution".into()).await?,
        "get_policies" => get("/governance/policies".into()).await?,
        other => return Err(ToolError(format!("unknown tool {other:?}"))),
    };
    Ok(as_object(value))
}

/// Starts a run with `path` and, unless `wait` is false, follows it to its end.
#[allow(clippy::too_many_arguments)]
async fn start_run(
    server: &VorgMcp,
    caller: &Caller,
    tool: &str,
    path: String,
    body: Value,
    args: &Map<String, Value>,
    progress: Progress,
    ct: &CancellationToken,
) -> Result<Value, ToolError> {
    let started = server
        .rest(
            caller,
            Call::send(Method::POST, path, Some(&body))
                .for_tool(tool)
                .respond_async(),
        )
        .await?;
    let run_id = started["run_id"]
        .as_i64()
        .ok_or_else(|| ToolError(format!("vorg did not say which run it started: {started}")))?;
    let resource = format!("vorg://runs/{run_id}");
    if args.get("wait").and_then(Value::as_bool) == Some(false) {
        return Ok(json!({
            "run_id": run_id,
            "status": started["status"].as_str().unwrap_or("queued"),
            "resource": resource,
        }));
    }
    let run = server.follow(caller, run_id, progress, ct).await?;
    let mut out = json!({
        "run_id": run_id,
        "status": run["status"],
        "resource": resource,
        "output": run["output"],
        "error": run["error"],
    });
    for key in ["cost_usd", "llm_calls"] {
        if let Some(v) = run.get(key) {
            out[key] = v.clone();
        }
    }
    if let Some(artifact) = run["output"]["artifact_id"].as_i64() {
        out["minutes_resource"] = json!(format!("vorg://artifacts/{artifact}"));
    }
    Ok(out)
}
