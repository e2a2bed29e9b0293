//! A deterministic `Runtime`: answers scripted per step (or per agent), everything recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use vorg_workflow::{Ask, BoxFuture, Checkpoint, Runtime, StepError};

#[derive(Debug, Clone)]
pub enum Reply {
    Text(&'static str),
    Fail(&'static str),
    /// Answers after sleeping this many ms.
    Slow(u64, &'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    pub step: String,
    pub agent: String,
    pub system: String,
    pub prompt: String,
}

#[derive(Default)]
pub struct Fake {
    pub script: Mutex<HashMap<String, VecDeque<Reply>>>,
    /// Every ask takes this long (for concurrency tests).
    pub delay_ms: u64,
    pub asks: Mutex<Vec<Asked>>,
    pub logs: Mutex<Vec<(String, String)>>,
    pub checkpoints: Mutex<Vec<Checkpoint>>,
    /// The checkpoint write with this number (1-based) fails, as if the worker died.
    pub crash_at_checkpoint: Option<usize>,
    /// Decisions by node; unlisted nodes are approved.
    pub decisions: HashMap<String, bool>,
    pub approval_requests: Mutex<Vec<(String, Value)>>,
    pub tool_calls: Mutex<Vec<(String, String, Value)>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

impl Fake {
    pub fn new() -> Fake {
        Fake::default()
    }

    /// Answers for `key` (a step/node/task name, or an agent id), in order; once they run
    /// out the answer is `"<step> by <agent>"`.
    pub fn script(self, key: &str, replies: Vec<Reply>) -> Fake {
        self.script
            .lock()
            .unwrap()
            .insert(key.to_owned(), replies.into());
        self
    }

    pub fn asks_for(&self, step: &str) -> Vec<Asked> {
        self.asks
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.step == step)
            .cloned()
            .collect()
    }

    pub fn max_concurrency(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    fn next_reply(&self, ask: &Ask<'_>) -> Option<Reply> {
        let mut script = self.script.lock().unwrap();
        for key in [ask.step, ask.agent] {
            if let Some(r) = script.get_mut(key).and_then(VecDeque::pop_front) {
                return Some(r);
            }
        }
        None
    }
}

impl Runtime for Fake {
    fn ask<'a>(&'a self, ask: Ask<'a>) -> BoxFuture<'a, Result<String, StepError>> {
        Box::pin(async move {
            self.asks.lock().unwrap().push(Asked {
                step: ask.step.into(),
                agent: ask.agent.into(),
                system: ask.system.into(),
                prompt: ask.prompt.into(),
            });
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let reply = self.next_reply(&ask);
            let delay = match reply {
                Some(Reply::Slow(ms, _)) => ms,
                _ => self.delay_ms,
            };
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            match reply {
                Some(Reply::Text(t) | Reply::Slow(_, t)) => Ok(t.to_owned()),
                Some(Reply::Fail(e)) => Err(StepError::Failed(e.to_owned())),
                None => Ok(format!("{} by {}", ask.step, ask.agent)),
            }
        })
    }

    fn log<'a>(&'a self, step: &'a str, message: &'a str) -> BoxFuture<'a, ()> {
        self.logs
            .lock()
            .unwrap()
            .push((step.into(), message.into()));
        Box::pin(async {})
    }

    fn checkpoint<'a>(
        &'a self,
        checkpoint: &'a Checkpoint,
    ) -> BoxFuture<'a, Result<(), StepError>> {
        let mut all = self.checkpoints.lock().unwrap();
        let result = if self.crash_at_checkpoint == Some(all.len() + 1) {
            Err(StepError::Failed("worker killed".into()))
        } else {
            all.push(checkpoint.clone());
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn wait_for_approval<'a>(
        &'a self,
        node: &'a str,
        request: &'a Value,
    ) -> BoxFuture<'a, Result<bool, StepError>> {
        self.approval_requests
            .lock()
            .unwrap()
            .push((node.into(), request.clone()));
        let decision = self.decisions.get(node).copied().unwrap_or(true);
        Box::pin(async move { Ok(decision) })
    }

    fn call_tool<'a>(
        &'a self,
        agent: &'a str,
        tool: &'a str,
        args: &'a Value,
    ) -> BoxFuture<'a, Result<Value, StepError>> {
        self.tool_calls
            .lock()
            .unwrap()
            .push((agent.into(), tool.into(), args.clone()));
        let result = if tool == "submit_approval" {
            Err(StepError::Forbidden(
                "not in the persona's permissions".into(),
            ))
        } else {
            Ok(json!({ "tool": tool, "ok": true }))
        };
        Box::pin(async move { result })
    }
}
