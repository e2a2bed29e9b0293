//! What every engine does around one unit of work: retries, a timeout per attempt, and an
//! agent turn that may call tools.
//!
//! Tool text protocol (for providers without native tool calling, e.g. the simulated one):
//! an answer line `TOOL <name> <json object>` asks for a call. The engine calls the tool
//! through [`Runtime::call_tool`] (the host checks the persona's permissions), appends
//! `TOOL RESULT <name>: <json>` (or `TOOL ERROR <name>: <reason>`) to the prompt and asks
//! again, at most [`MAX_TOOL_CALLS`] times per turn. Tools not listed for the step are
//! refused without reaching the host. Native tool calling stays inside the host's `ask`.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::runtime::{Ask, Runtime, StepError};

/// Tool calls allowed in one agent turn.
pub const MAX_TOOL_CALLS: usize = 4;

/// Runs `attempt` up to `retries + 1` times, each bounded by `timeout_ms`; returns the
/// last result and the number of attempts made. `Forbidden` is never retried.
pub(crate) async fn with_retries<T, F, Fut>(
    rt: &dyn Runtime,
    step: &str,
    retries: u32,
    timeout_ms: Option<u64>,
    mut attempt: F,
) -> (Result<T, StepError>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StepError>>,
{
    let mut n = 0;
    loop {
        n += 1;
        let result = match timeout_ms {
            Some(ms) => tokio::time::timeout(Duration::from_millis(ms), attempt())
                .await
                .unwrap_or(Err(StepError::Timeout(ms))),
            None => attempt().await,
        };
        match result {
            Ok(v) => return (Ok(v), n),
            Err(e) if n > retries || e.is_final() => return (Err(e), n),
            Err(e) => {
                rt.log(step, &format!("attempt {n} failed: {e}; retrying"))
                    .await;
            }
        }
    }
}

/// One agent turn with the tool protocol above; `tools` empty means no tool calls.
pub(crate) async fn turn(
    rt: &dyn Runtime,
    step: &str,
    agent: &str,
    system: &str,
    prompt: &str,
    tools: &[String],
    schema: Option<&Value>,
) -> Result<String, StepError> {
    let mut prompt = prompt.to_owned();
    let mut calls = 0;
    let system = if tools.is_empty() {
        system.to_owned()
    } else {
        format!("{system}\n\n{}", crate::tools::protocol_text(tools))
    };
    loop {
        let answer = rt
            .ask(Ask {
                step,
                agent,
                system: &system,
                prompt: &prompt,
                schema,
                tools,
            })
            .await?;
        let call = if tools.is_empty() {
            None
        } else {
            tool_call(&answer)
        };
        let Some((name, args)) = call else {
            return Ok(answer);
        };
        if calls == MAX_TOOL_CALLS {
            return Err(StepError::Invalid(format!(
                "more than {MAX_TOOL_CALLS} tool calls in one turn"
            )));
        }
        calls += 1;
        let line = match args {
            Err(e) => format!("TOOL ERROR {name}: arguments are not a JSON object: {e}"),
            Ok(_) if !tools.contains(&name) => {
                format!("TOOL ERROR {name}: not available in this step")
            }
            Ok(args) => {
                rt.log(step, &format!("{agent} calls {name} {args}")).await;
                match rt.call_tool(agent, &name, &args).await {
                    Ok(v) => format!("TOOL RESULT {name}: {v}"),
                    Err(StepError::Halted(why)) => return Err(StepError::Halted(why)),
                    Err(StepError::Forbidden(why)) => {
                        return Err(StepError::Forbidden(format!(
                            "{agent} may not call {name}: {why}"
                        )));
                    }
                    Err(e) => format!("TOOL ERROR {name}: {e}"),
                }
            }
        };
        rt.log(step, &line).await;
        prompt = format!("{prompt}\n\n{answer}\n{line}");
    }
}

/// The first `TOOL <name> <json>` line of `answer`.
fn tool_call(answer: &str) -> Option<(String, Result<Value, String>)> {
    answer.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("TOOL ")?;
        let (name, args) = rest.split_once(' ').unwrap_or((rest, "{}"));
        let args = serde_json::from_str::<Value>(args)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                if v.is_object() {
                    Ok(v)
                } else {
                    Err("not an object".into())
                }
            });
        Some((name.to_owned(), args))
    })
}
