//! vorg's own job kinds: the demo run of the original API and a no-op for benchmarks.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{BoxFuture, JobContext, JobError, JobHandler, Registry};

/// `demo`: a few steps, each a log line and a pause, so a client can watch a run stream.
/// Input (all optional): `steps` (1–1000, default 5), `step_ms` (0–60000, default 400),
/// `fail_at` (a step that fails with a retryable error on every attempt).
pub struct Demo;

fn field(input: &Value, name: &str, default: u64, max: u64) -> Result<u64, JobError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= max)
            .ok_or_else(|| JobError::Fatal(format!("{name}: must be an integer from 0 to {max}"))),
    }
}

impl JobHandler for Demo {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(async move {
            let steps = field(ctx.input(), "steps", 5, 1000)?.max(1);
            let step_ms = field(ctx.input(), "step_ms", 400, 60_000)?;
            let fail_at = ctx.input().get("fail_at").and_then(Value::as_u64);
            ctx.log(
                "info",
                &format!("demo run started on worker {}", ctx.worker_id),
                json!({ "steps": steps, "worker": ctx.worker_id }),
            )
            .await?;
            for step in 1..=steps {
                ctx.checkpoint().await?;
                ctx.sleep(Duration::from_millis(step_ms)).await?;
                if fail_at == Some(step) {
                    return Err(JobError::Retryable(format!(
                        "step {step} failed (as asked)"
                    )));
                }
                ctx.log(
                    "info",
                    &format!("step {step} of {steps} done"),
                    json!({ "step": step }),
                )
                .await?;
            }
            Ok(json!({ "steps": steps }))
        })
    }
}

/// `noop`: does nothing; measures the queue itself.
pub struct Noop;

impl JobHandler for Noop {
    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(async { Ok(Value::Null) })
    }
}

/// The registry with every built-in kind.
pub fn registry() -> Registry {
    Registry::new()
        .register("demo", Demo)
        .register("noop", Noop)
}
