//! The dispatcher: reads the org event log after its cursor and turns each event into its
//! public types (`run.failed`, `approval.requested`, …), a delivery per subscription that
//! wants it, and a `trigger.fire` job per event trigger that listens for it. The cursor
//! moves in the transaction that creates them, by compare-and-set, so with any number of
//! processes each event is dispatched once. Woken by event notices; idle, it sleeps.

use std::time::Duration;

use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_domain::Role;
use vorg_store::{NewDelivery, Notice, OrgEvent, Page, Store, StoreError, TriggerRow};

use crate::hooks::{FIRE_JOB, TriggerFire};

/// The cursor's name in `event_cursors`.
pub const CURSOR: &str = "dispatch";
/// Events read per batch.
const BATCH: i64 = 200;

/// Every event type a subscription may ask for.
pub const EVENT_TYPES: [&str; 18] = [
    "run.started",
    "run.succeeded",
    "run.failed",
    "run.cancelled",
    "approval.requested",
    "approval.decided",
    "approval.expired",
    "budget.warning",
    "budget.exceeded",
    "budget.forecast",
    "minutes.created",
    "hiring_plan.ready",
    "persona.changed",
    "policy.changed",
    "schedule.refused",
    "trigger.refused",
    "webhook.disabled",
    "webhook.test",
];

/// Whether `t` is a known event type (or `*`).
pub fn is_event_type(t: &str) -> bool {
    t == "*" || EVENT_TYPES.contains(&t)
}

/// With nothing listening, the cursor moves at most this often…
const IDLE_ADVANCE: Duration = Duration::from_secs(30);
/// …or once this far behind.
const IDLE_ADVANCE_EVENTS: i64 = 500;

pub struct Dispatcher {
    store: Store,
    public_url: String,
    idle_advance: std::sync::Mutex<std::time::Instant>,
}

impl Dispatcher {
    pub fn new(store: Store, public_url: String) -> Self {
        Dispatcher {
            store,
            public_url,
            idle_advance: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    pub fn spawn(self, tracker: &TaskTracker, shutdown: CancellationToken) {
        tracker.spawn(self.run(shutdown));
    }

    async fn run(self, shutdown: CancellationToken) {
        let mut notices = self.store.subscribe();
        loop {
            if let Err(e) = self.drain().await {
                tracing::warn!(error = %e, "dispatching org events; retrying");
            }
            // Events are rows first: a missed notice is caught by the next one or the
            // minute's safety pass.
            let wake = async {
                loop {
                    match notices.recv().await {
                        Ok(Notice::Event { .. } | Notice::Resync) | Err(RecvError::Lagged(_)) => {
                            return true;
                        }
                        Ok(_) => {}
                        Err(RecvError::Closed) => return false,
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                open = wake => if !open { return },
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    }

    /// Dispatches every event after the cursor; answers how many were read.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut read = 0;
        loop {
            let hooks: Vec<_> = self
                .store
                .list_webhooks()
                .await?
                .into_iter()
                .filter(|h| h.enabled)
                .collect();
            let triggers: Vec<TriggerRow> = self
                .store
                .list_triggers()
                .await?
                .into_iter()
                .filter(|t| t.enabled && t.kind == "event")
                .collect();
            let from = self.store.event_cursor(CURSOR).await?;
            let events = self.store.events_after(from, BATCH).await?;
            let Some(last) = events.last().map(|e| e.id) else {
                return Ok(read);
            };
            if hooks.is_empty() && triggers.is_empty() {
                // Nothing listens: the cursor moves on now and then, not per event (a
                // subscription made later gets only events after it was made).
                let behind = last - from;
                let idle = {
                    let mut at = self.idle_advance.lock().unwrap_or_else(|e| e.into_inner());
                    let due = behind >= IDLE_ADVANCE_EVENTS || at.elapsed() >= IDLE_ADVANCE;
                    if due {
                        *at = std::time::Instant::now();
                    }
                    due
                };
                if idle {
                    self.store
                        .dispatch_events(CURSOR, from, last, &[], &[])
                        .await?;
                }
                return Ok(read);
            }
            let mut deliveries = Vec::new();
            let mut jobs = Vec::new();
            for event in &events {
                for (kind, data) in self.public(event).await? {
                    let payload = json!({
                        "type": kind,
                        "timestamp": event.created_at.to_rfc3339(),
                        "data": data,
                    });
                    let after = |made: &chrono::DateTime<chrono::Utc>| event.created_at >= *made;
                    for h in hooks
                        .iter()
                        .filter(|h| h.wants(&kind) && after(&h.created_at))
                    {
                        deliveries.push(NewDelivery {
                            webhook_id: h.id,
                            event_id: Some(event.id),
                            event_type: kind.clone(),
                            msg_id: new_msg_id(),
                            payload: payload.clone(),
                        });
                    }
                    for t in triggers
                        .iter()
                        .filter(|t| listens(t, &kind, &data) && after(&t.created_at))
                    {
                        let fire = TriggerFire {
                            trigger_id: t.id,
                            event_id: event.id,
                            event_type: kind.clone(),
                            data: data.clone(),
                        };
                        jobs.push((FIRE_JOB, serde_json::to_value(fire).unwrap_or_default()));
                    }
                }
            }
            let moved = self
                .store
                .dispatch_events(CURSOR, from, last, &deliveries, &jobs)
                .await?;
            if moved {
                read += events.len();
            }
            if moved && events.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                return Ok(read);
            }
        }
    }

    /// The public events an org event is, with their data (ids and links). A budget
    /// refusal is `budget.exceeded` once per budget and period.
    async fn public(&self, event: &OrgEvent) -> Result<Vec<(String, Value)>, StoreError> {
        let data = &event.data.0;
        let mut out = Vec::new();
        let mut with_links = |kind: &str, mut d: Map<String, Value>| {
            if let Some(run_id) = d.get("run_id").and_then(Value::as_i64).or(event.run_id) {
                d.insert("run_id".into(), json!(run_id));
                d.insert(
                    "links".into(),
                    json!({
                        "api": format!("{}/runs/{run_id}", self.public_url),
                        "console": format!("{}/console/runs/{run_id}", self.public_url),
                    }),
                );
            }
            out.push((kind.to_owned(), Value::Object(d)));
        };
        let obj = data.as_object().cloned().unwrap_or_default();
        match event.kind.as_str() {
            "run.status" => {
                let kind = match data["status"].as_str() {
                    Some("running") => "run.started",
                    Some("succeeded") => "run.succeeded",
                    Some("failed") => "run.failed",
                    Some("cancelled") => "run.cancelled",
                    _ => return Ok(out),
                };
                let mut d = obj;
                if let Some(run_id) = event.run_id
                    && let Ok(run) = self.store.get_run(run_id).await
                {
                    d.insert("run_type".into(), json!(run.run_type));
                    d.insert("summary".into(), json!(run.summary));
                    d.insert("error".into(), json!(run.error));
                    d.insert("trigger_depth".into(), json!(run.trigger_depth));
                }
                let hiring = kind == "run.succeeded" && d["run_type"] == "hiring_plan";
                with_links(kind, d.clone());
                if hiring {
                    with_links("hiring_plan.ready", d);
                }
            }
            "approval.submitted" => {
                let mut d = obj;
                let micro = d["amount_micro_usd"].as_i64().unwrap_or(0);
                d.insert("amount_usd".into(), json!(micro as f64 / 1e6));
                let admin_only = d["tier"].as_str() == Some("admin");
                d.insert("approvers".into(), json!(self.approvers(admin_only).await?));
                // Auto-approved requests need no one: they are decided at once.
                if d["status"].as_str() == Some("pending") {
                    with_links("approval.requested", d);
                } else {
                    with_links("approval.decided", d);
                }
            }
            "approval.decided" => with_links("approval.decided", obj),
            "approval.expired" => with_links("approval.expired", obj),
            "budget.warning" => with_links("budget.warning", money(obj)),
            "budget.refused" => {
                let b = &data["budget"];
                let key = format!(
                    "budget.exceeded:{}:{}:{}",
                    b["scope"].as_str().unwrap_or(""),
                    b["subject"].as_str().unwrap_or(""),
                    b["period"].as_str().unwrap_or("")
                );
                if self.store.mark_alert(&key).await? {
                    let d = b.as_object().cloned().unwrap_or_default();
                    with_links("budget.exceeded", money(d));
                }
            }
            kind if EVENT_TYPES.contains(&kind) => with_links(kind, obj),
            _ => {}
        }
        Ok(out)
    }

    /// The e-mails of those who may decide an approval of a tier (at most 50).
    async fn approvers(&self, admin_only: bool) -> Result<Vec<String>, StoreError> {
        let users = self
            .store
            .list_users(Page {
                limit: 200,
                before: None,
            })
            .await?;
        Ok(users
            .into_iter()
            .filter(|u| {
                u.roles.contains(&Role::Admin) || (!admin_only && u.roles.contains(&Role::Approver))
            })
            .map(|u| u.user.email)
            .take(50)
            .collect())
    }
}

/// Adds USD amounts beside micro-USD ones.
fn money(mut d: Map<String, Value>) -> Map<String, Value> {
    for (micro, usd) in [
        ("limit_micro_usd", "limit_usd"),
        ("spent_micro_usd", "spent_usd"),
        ("projected_micro_usd", "projected_usd"),
    ] {
        if let Some(m) = d.get(micro).and_then(Value::as_i64) {
            d.insert(usd.into(), json!(m as f64 / 1e6));
        }
    }
    d
}

/// Whether event trigger `t` wants an event of `kind` with `data`: its type is listed and
/// every key of its filter equals the data's.
pub fn listens(t: &TriggerRow, kind: &str, data: &Value) -> bool {
    t.events.split(',').any(|e| e == kind)
        && t.filter
            .0
            .as_object()
            .is_none_or(|f| f.iter().all(|(k, v)| data.get(k) == Some(v)))
}

/// A new Standard Webhooks message id (`msg_` and 96 random bits).
pub fn new_msg_id() -> String {
    let bytes: [u8; 12] = rand::rng().random();
    format!("msg_{}", hex::encode(bytes))
}

/// A new, unguessable id for `/hooks/{hook_id}` (`hk_` and 128 random bits).
pub fn new_hook_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    format!("hk_{}", hex::encode(bytes))
}
