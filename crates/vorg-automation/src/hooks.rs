//! Triggers: a signed delivery to `POST /hooks/{hook_id}`, or one of vorg's own events,
//! starts the trigger's target with values mapped from the delivery's JSON.
//!
//! A mapping is `{field: "/json/pointer"}`: each field of the target's body or inputs is
//! taken from the delivery at that pointer (absent pointers leave the field out). A
//! delivery starts one run: the origin key is the trigger and the sender's delivery id (or,
//! for events, the event). A run started by an event is one deeper than the run the event
//! was about; past the trigger's `max_depth`, nothing starts (a loop is cut).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use vorg_jobs::{BackgroundJob, JobContext, JobError};
use vorg_store::{Run, RunOrigin, Store, StoreError, TriggerRow};

use crate::{
    signature::{Scheme, VerifyError, verify},
    target::{Overlay, StartError, Target, owner_may, owner_requester},
};

/// The job kind that starts an event trigger's run.
pub const FIRE_JOB: &str = "trigger.fire";
/// Most fields a mapping may set.
pub const MAX_MAPPING: usize = 64;
/// Longest JSON pointer in a mapping.
pub const MAX_POINTER: usize = 256;

/// The fields a mapping sets, read from `source`.
pub fn apply_mapping(mapping: &Value, source: &Value) -> Overlay {
    let mut out = Map::new();
    if let Some(m) = mapping.as_object() {
        for (field, pointer) in m.iter().take(MAX_MAPPING) {
            if let Some(v) = pointer.as_str().and_then(|p| source.pointer(p)) {
                out.insert(field.clone(), v.clone());
            }
        }
    }
    out
}

/// What is wrong with a mapping (for the API).
pub fn mapping_problems(mapping: &Value) -> Vec<(String, String)> {
    let Some(m) = mapping.as_object() else {
        return vec![(
            "mapping".into(),
            "must be an object of field: \"/json/pointer\"".into(),
        )];
    };
    let mut out = Vec::new();
    if m.len() > MAX_MAPPING {
        out.push(("mapping".into(), format!("at most {MAX_MAPPING} fields")));
    }
    for (field, pointer) in m.iter().take(MAX_MAPPING) {
        let ok = pointer
            .as_str()
            .is_some_and(|p| (p.is_empty() || p.starts_with('/')) && p.len() <= MAX_POINTER);
        if !ok {
            out.push((
                format!("mapping.{field}"),
                format!(
                    "must be a JSON pointer (\"\" or starting with /, at most {MAX_POINTER} characters)"
                ),
            ));
        }
    }
    out
}

/// Why an inbound delivery started nothing.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("no such hook")]
    NotFound,
    #[error("{0}")]
    Unauthorized(VerifyError),
    #[error("the body is not JSON: {0}")]
    BadBody(String),
    #[error("the trigger's owner may not start it: {0}")]
    OwnerRefused(String),
    #[error(transparent)]
    Start(#[from] StartError),
}

impl From<StoreError> for HookError {
    fn from(e: StoreError) -> Self {
        HookError::Start(StartError::Store(e))
    }
}

/// Handles a delivery to `/hooks/{hook_id}` at `now_ms`: verified, mapped and started
/// once. Answers the run and whether this delivery created it.
pub async fn receive(
    store: &Store,
    hook_id: &str,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<(TriggerRow, Run, bool), HookError> {
    let trigger = match store.get_trigger_by_hook(hook_id).await {
        Ok(t) if t.kind == "webhook" && t.enabled => t,
        Ok(_) | Err(StoreError::NotFound) => return Err(HookError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let scheme: Scheme = trigger.auth.parse().map_err(|_| HookError::NotFound)?;
    let delivery =
        verify(scheme, &trigger.secret, headers, body, now_ms).map_err(HookError::Unauthorized)?;
    let json: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| HookError::BadBody(e.to_string()))?
    };
    let target = Target::from_value(&trigger.target.0, "target")?;
    let owner = trigger
        .owner_id
        .ok_or_else(|| HookError::OwnerRefused("the trigger has no owner".into()))?;
    if !owner_may(store, owner, &target).await? {
        return Err(HookError::OwnerRefused(format!(
            "its owner does not hold {}",
            target.permission().as_str()
        )));
    }
    let overlay = apply_mapping(&trigger.mapping.0, &json);
    let delivery = delivery.unwrap_or_else(|| {
        // No sender id: every delivery is its own.
        let n: u64 = rand::random();
        format!("vorg-{n:016x}")
    });
    let key = format!("trigger:{}:{delivery}", trigger.id);
    let origin = RunOrigin {
        kind: "trigger",
        id: trigger.id,
        key: &key,
        depth: 0,
    };
    let summary = format!("{} (trigger {})", target.describe(), trigger.name);
    let (run, created) = target
        .start(
            store,
            Some(&overlay),
            owner_requester(owner),
            origin,
            &summary,
        )
        .await?;
    Ok((trigger, run, created))
}

/// The `trigger.fire` job: starts event trigger `trigger_id` for event `event_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerFire {
    pub trigger_id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub data: Value,
}

impl BackgroundJob for TriggerFire {
    const KIND: &'static str = FIRE_JOB;
    const MAX_ATTEMPTS: i64 = 3;
    type Output = ();
    type Context = ();

    async fn run(self, _: &(), job: &JobContext) -> Result<(), JobError> {
        let retry = |e: StoreError| JobError::Retryable(format!("firing a trigger: {e}"));
        let store = &job.store;
        let trigger = match store.get_trigger(self.trigger_id).await {
            Ok(t) if t.enabled => t,
            Ok(_) | Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(retry(e)),
        };
        let parent_depth = match self.data.get("run_id").and_then(Value::as_i64) {
            Some(run_id) => match store.get_run(run_id).await {
                Ok(run) => run.trigger_depth,
                Err(StoreError::NotFound) => 0,
                Err(e) => return Err(retry(e)),
            },
            None => 0,
        };
        let depth = parent_depth + 1;
        let name = trigger.name.clone();
        let refuse = |reason: String| {
            let data = json!({
                "trigger_id": trigger.id, "name": trigger.name, "event_id": self.event_id,
                "event_type": self.event_type, "reason": reason,
            });
            let name = name.clone();
            async move {
                tracing::warn!(trigger = %name, reason = %data["reason"], "an event trigger started nothing");
                store
                    .record_event("trigger.refused", None, data)
                    .await
                    .map(|_| ())
            }
        };
        if depth > trigger.max_depth {
            return refuse(format!(
                "a run started by an event may start others only {} deep (loop protection)",
                trigger.max_depth
            ))
            .await
            .map_err(retry);
        }
        let target = match Target::from_value(&trigger.target.0, "target") {
            Ok(t) => t,
            Err(e) => return refuse(e.to_string()).await.map_err(retry),
        };
        let Some(owner) = trigger.owner_id else {
            return refuse("the trigger has no owner".into())
                .await
                .map_err(retry);
        };
        if !owner_may(store, owner, &target).await.map_err(retry)? {
            let why = format!("its owner does not hold {}", target.permission().as_str());
            return refuse(why).await.map_err(retry);
        }
        let source = json!({ "type": self.event_type, "data": self.data });
        let overlay = apply_mapping(&trigger.mapping.0, &source);
        let key = format!(
            "trigger:{}:event:{}:{}",
            trigger.id, self.event_id, self.event_type
        );
        let origin = RunOrigin {
            kind: "trigger",
            id: trigger.id,
            key: &key,
            depth,
        };
        let summary = format!(
            "{} (trigger {} on {})",
            target.describe(),
            trigger.name,
            self.event_type
        );
        match target
            .start(
                store,
                Some(&overlay),
                owner_requester(owner),
                origin,
                &summary,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(StartError::Invalid(p)) => refuse(StartError::Invalid(p).to_string())
                .await
                .map_err(retry),
            Err(StartError::Store(e)) => Err(retry(e)),
        }
    }
}
