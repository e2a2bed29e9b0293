//! Resources: runs (`vorg://runs/{id}`, with their log), artifacts such as minutes
//! (`vorg://artifacts/{id}`), personas (`vorg://personas/{id}`), the constitution and the
//! policies. A run can be subscribed to: the client hears each time its log grows.

use rmcp::{
    ErrorData as McpError,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde_json::{Value, json};
use vorg_domain::{Permission, Permissions};

use crate::{
    backend::{Call, Caller},
    server::{VorgMcp, problem_text},
};

const CONSTITUTION: &str = "vorg://governance/constitution";
const POLICIES: &str = "vorg://governance/policies";

/// The run id of a `vorg://runs/{id}` URI.
pub fn run_id(uri: &str) -> Option<i64> {
    uri.strip_prefix("vorg://runs/")?.parse().ok()
}

fn id_of<'a>(uri: &'a str, kind: &str) -> Option<&'a str> {
    uri.strip_prefix("vorg://")?
        .strip_prefix(kind)?
        .strip_prefix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("vorg://runs/{id}", "run")
            .with_title("A run")
            .with_description(
                "A run's state, output, cost and log (JSON). Subscribe to hear when its log grows.",
            )
            .with_mime_type("application/json"),
        ResourceTemplate::new("vorg://artifacts/{id}", "artifact")
            .with_title("An artifact")
            .with_description("An artifact's content: minutes are markdown with YAML front matter.")
            .with_mime_type("text/markdown"),
        ResourceTemplate::new("vorg://personas/{id}", "persona")
            .with_title("A persona")
            .with_description("A persona's document (JSON).")
            .with_mime_type("application/json"),
    ]
}

/// What the caller may read: the governance documents, recent runs, recent minutes and the
/// personas.
pub async fn list(server: &VorgMcp, caller: &Caller, held: Permissions) -> Vec<Resource> {
    let mut out = Vec::new();
    let get = |path: &'static str| async move {
        match server.backend().call(caller, Call::get(path)).await {
            Ok(r) if r.ok() => r.body,
            _ => Value::Null,
        }
    };
    if held.contains(Permission::ViewOrg) {
        out.push(
            Resource::new(CONSTITUTION, "constitution")
                .with_title("The constitution")
                .with_mime_type("text/markdown"),
        );
        out.push(
            Resource::new(POLICIES, "policies")
                .with_title("The governance policies")
                .with_mime_type("application/json"),
        );
        for m in get("/ops/minutes")
            .await
            .as_array()
            .into_iter()
            .flatten()
            .take(20)
        {
            if let Some(id) = m["artifact_id"].as_i64().or(m["id"].as_i64()) {
                let name = m["name"]
                    .as_str()
                    .or(m["path"].as_str())
                    .unwrap_or("minutes");
                out.push(
                    Resource::new(format!("vorg://artifacts/{id}"), name)
                        .with_mime_type("text/markdown"),
                );
            }
        }
        let personas = get("/personas").await;
        for p in personas
            .as_array()
            .or(personas["items"].as_array())
            .into_iter()
            .flatten()
        {
            if let Some(id) = p["id"].as_str() {
                out.push(
                    Resource::new(format!("vorg://personas/{id}"), id)
                        .with_mime_type("application/json"),
                );
            }
        }
    }
    if held.contains(Permission::ViewRuns) {
        for r in get("/runs?limit=20").await["items"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(id) = r["id"].as_i64() {
                let summary = r["summary"]
                    .as_str()
                    .or(r["run_type"].as_str())
                    .unwrap_or("run");
                out.push(
                    Resource::new(format!("vorg://runs/{id}"), format!("run {id}"))
                        .with_description(summary)
                        .with_mime_type("application/json"),
                );
            }
        }
    }
    out
}

async fn fetch(
    server: &VorgMcp,
    caller: &Caller,
    path: String,
    uri: &str,
) -> Result<Value, McpError> {
    let reply = server
        .backend()
        .call(caller, Call::get(path))
        .await
        .map_err(|e| McpError::internal_error(e, None))?;
    match reply.status {
        200..=299 => Ok(reply.body),
        404 => Err(McpError::resource_not_found(
            format!("no resource {uri}"),
            None,
        )),
        _ => Err(McpError::invalid_request(
            format!("{uri}: {}", problem_text(&reply.body)),
            None,
        )),
    }
}

fn text(body: &Value) -> String {
    match body {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

pub async fn read(
    server: &VorgMcp,
    caller: &Caller,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    let (body, mime) = if let Some(id) = run_id(uri) {
        let mut run = fetch(server, caller, format!("/runs/{id}"), uri).await?;
        let log = fetch(server, caller, format!("/runs/{id}/logs?limit=1000"), uri).await?;
        run["log"] = log.get("items").cloned().unwrap_or(log);
        (run, "application/json")
    } else if let Some(id) = id_of(uri, "artifacts").and_then(|id| id.parse::<i64>().ok()) {
        let meta = fetch(server, caller, format!("/artifacts/{id}"), uri).await?;
        let content = fetch(server, caller, format!("/artifacts/{id}/content"), uri).await?;
        let mime = if meta["content_type"]
            .as_str()
            .is_some_and(|c| c.contains("json"))
        {
            "application/json"
        } else {
            "text/markdown"
        };
        (content, mime)
    } else if let Some(id) = id_of(uri, "personas") {
        let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        (
            fetch(server, caller, format!("/personas/{id}"), uri).await?,
            "application/json",
        )
    } else if uri == CONSTITUTION {
        let c = fetch(server, caller, "/governance/constitution".into(), uri).await?;
        let body = c
            .get("text")
            .or(c.get("constitution"))
            .cloned()
            .unwrap_or(c);
        (body, "text/markdown")
    } else if uri == POLICIES {
        (
            fetch(server, caller, "/governance/policies".into(), uri).await?,
            "application/json",
        )
    } else {
        return Err(McpError::resource_not_found(
            format!(
                "no resource {uri}: vorg serves vorg://runs/{{id}}, vorg://artifacts/{{id}}, vorg://personas/{{id}}, {CONSTITUTION} and {POLICIES}"
            ),
            Some(json!({ "uri": uri })),
        ));
    };
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text(&body), uri).with_mime_type(mime),
    ]))
}

/// The run a subscription follows, once the caller is known to be able to read it.
pub async fn subscribable(server: &VorgMcp, caller: &Caller, uri: &str) -> Result<i64, McpError> {
    let id = run_id(uri).ok_or_else(|| {
        McpError::invalid_params(
            format!("only runs (vorg://runs/{{id}}) can be subscribed to, not {uri}"),
            None,
        )
    })?;
    fetch(server, caller, format!("/runs/{id}"), uri).await?;
    Ok(id)
}
