//! Outbound webhooks: subscriptions, their deliveries (one per subscription and event,
//! however many dispatchers look) and every attempt at one. A delivery's attempts are
//! jobs: the next one is queued in the transaction that records the last.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::types::Json;

use crate::BeginWrite;
use crate::{
    DEFAULT_ORG, Page, Result, Store, StoreError, events::insert_event, notify::Notice, with_pool,
};

/// Inserts a queued job inside the transaction `$tx`, due at `$due_ms`.
macro_rules! insert_job {
    ($tx:expr, $kind:expr, $payload:expr, $due_ms:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO jobs (kind, payload, status, max_attempts, run_at_ms, created_at, \
             updated_at) VALUES ($1, $2, 'queued', 3, $3, $4, $4)",
        )
        .bind($kind)
        .bind(Json(&$payload))
        .bind($due_ms)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    };
}

/// The job kind that makes one attempt at a delivery.
pub const DELIVER_JOB: &str = "webhook.deliver";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: i64,
    pub name: String,
    pub url: String,
    /// Comma-separated event types (`*` for all).
    pub events: String,
    /// `standard` (Standard Webhooks) or `slack` (an incoming-webhook message).
    pub format: String,
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failure_streak: i64,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl WebhookRow {
    /// Whether the subscription wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.split(',').any(|t| t == "*" || t == event_type)
    }
}

#[derive(Debug, Clone)]
pub struct WebhookWrite<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub events: &'a str,
    pub format: &'a str,
    pub enabled: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: Option<i64>,
    pub event_type: String,
    pub msg_id: String,
    pub payload: Json<Value>,
    /// `pending`, `delivered`, `failed` (attempts exhausted or subscription disabled).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: i64,
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub response_excerpt: String,
    pub error: Option<String>,
}

/// A delivery to create for an event.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub webhook_id: i64,
    pub event_id: Option<i64>,
    pub event_type: String,
    pub msg_id: String,
    pub payload: Value,
}

/// What one attempt found.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub delivery_id: i64,
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    pub response_excerpt: &'a str,
    pub error: Option<&'a str>,
}

/// How the delivery goes on after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered,
    /// Another attempt, due at this epoch-ms.
    RetryAt(i64),
    /// No more attempts; the delivery failed.
    GiveUp,
    /// The receiver answered 410 Gone: the subscription is disabled.
    Gone,
}

/// Why a subscription was turned off by vorg.
pub const DISABLED_GONE: &str = "the receiver answered 410 Gone";

macro_rules! hook_columns {
    () => {
        "id, name, url, events, format, secret, enabled, disabled_reason, \
     failure_streak, created_by, created_at, updated_at, last_success_at, last_failure_at"
    };
}
macro_rules! delivery_columns {
    () => {
        "id, webhook_id, event_id, event_type, msg_id, payload, status, \
     attempts, next_attempt_at, last_status, last_error, created_at, updated_at, delivered_at"
    };
}

impl Store {
    pub async fn create_webhook(
        &self,
        w: &WebhookWrite<'_>,
        secret: &str,
        created_by: Option<i64>,
    ) -> Result<WebhookRow> {
        let now = Utc::now();
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "INSERT INTO webhooks (org_id, name, url, events, format, secret, enabled, \
             created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING ",
            hook_columns!(),
            ""
        ))
        .bind(DEFAULT_ORG)
        .bind(w.name)
        .bind(w.url)
        .bind(w.events)
        .bind(w.format)
        .bind(secret)
        .bind(w.enabled)
        .bind(created_by)
        .bind(now)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    /// Replaces a subscription's settings; enabling it clears the failure streak and the
    /// reason it was disabled.
    pub async fn update_webhook(&self, id: i64, w: &WebhookWrite<'_>) -> Result<WebhookRow> {
        let row: Option<WebhookRow> = with_pool!(self, |p| sqlx::query_as(concat!(
            "UPDATE webhooks SET name = $2, url = $3, events = $4, format = $5, \
             failure_streak = CASE WHEN $6 THEN 0 ELSE failure_streak END, \
             disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END, \
             enabled = $6, updated_at = $7 WHERE id = $1 AND org_id = $8 RETURNING ",
            hook_columns!(),
            ""
        ))
        .bind(id)
        .bind(w.name)
        .bind(w.url)
        .bind(w.events)
        .bind(w.format)
        .bind(w.enabled)
        .bind(Utc::now())
        .bind(DEFAULT_ORG)
        .fetch_optional(p)
        .await)?;
        row.ok_or(StoreError::NotFound)
    }

    pub async fn delete_webhook(&self, id: i64) -> Result<()> {
        let n = with_pool!(self, |p| sqlx::query(
            "DELETE FROM webhooks WHERE id = $1 AND org_id = $2"
        )
        .bind(id)
        .bind(DEFAULT_ORG)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn get_webhook(&self, id: i64) -> Result<WebhookRow> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            hook_columns!(),
            " FROM webhooks WHERE id = $1 AND org_id = $2"
        ))
        .bind(id)
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    pub async fn list_webhooks(&self) -> Result<Vec<WebhookRow>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            hook_columns!(),
            " FROM webhooks WHERE org_id = $1 ORDER BY id"
        ))
        .bind(DEFAULT_ORG)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    pub async fn get_delivery(&self, id: i64) -> Result<DeliveryRow> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    /// A subscription's deliveries, newest first.
    pub async fn list_deliveries(&self, webhook_id: i64, page: Page) -> Result<Vec<DeliveryRow>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE webhook_id = $1 \
             AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(webhook_id)
        .bind(page.before_or_max())
        .bind(page.limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// A delivery's attempts, oldest first.
    pub async fn list_attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRow>> {
        let rows = with_pool!(self, |p| sqlx::query_as(
            "SELECT id, delivery_id, attempt, started_at, duration_ms, status_code, \
             response_excerpt, error FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id"
        )
        .bind(delivery_id)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// The position of the consumer `name` in the org event log; a new consumer starts at
    /// the newest event (history is not replayed to subscribers that did not exist).
    pub async fn event_cursor(&self, name: &str) -> Result<i64> {
        let known: Option<i64> = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT last_id FROM event_cursors WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(p)
        .await)?;
        if let Some(id) = known {
            return Ok(id);
        }
        let last = self.last_event_id().await?;
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO event_cursors (name, last_id, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING"
        )
        .bind(name)
        .bind(last)
        .bind(Utc::now())
        .execute(p)
        .await
        .map(|_| ()))?;
        let id = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT last_id FROM event_cursors WHERE name = $1"
        )
        .bind(name)
        .fetch_one(p)
        .await)?;
        Ok(id)
    }

    /// Moves consumer `name` from `from` to `to` and, in the same transaction, creates
    /// `deliveries` (each with its first attempt's job) and queues `jobs`. `false` (and
    /// nothing written) when another process moved the cursor first: it dispatched these
    /// events.
    pub async fn dispatch_events(
        &self,
        name: &str,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        jobs: &[(&str, Value)],
    ) -> Result<bool> {
        let now = Utc::now();
        let queued = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let moved = sqlx::query(
                "UPDATE event_cursors SET last_id = $3, updated_at = $4 \
                 WHERE name = $1 AND last_id = $2",
            )
            .bind(name)
            .bind(from)
            .bind(to)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            let mut queued = false;
            for d in deliveries {
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, msg_id, \
                     payload, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) \
                     ON CONFLICT (webhook_id, event_id, event_type) DO NOTHING RETURNING id",
                )
                .bind(d.webhook_id)
                .bind(d.event_id)
                .bind(&d.event_type)
                .bind(&d.msg_id)
                .bind(Json(&d.payload))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(id) = id {
                    insert_job!(
                        tx,
                        DELIVER_JOB,
                        json!({ "delivery_id": id, "attempt": 1 }),
                        now.timestamp_millis(),
                        now
                    );
                    queued = true;
                }
            }
            for (kind, payload) in jobs {
                insert_job!(tx, *kind, payload, now.timestamp_millis(), now);
                queued = true;
            }
            if queued {
                crate::notify::notify_in_tx!(self.db, tx, Notice::JobQueued);
            }
            tx.commit().await?;
            queued
        });
        if queued {
            self.local_notify(&[Notice::JobQueued]);
        }
        Ok(true)
    }

    /// Creates one delivery outside the event log (a test ping) with its first attempt.
    pub async fn create_delivery(&self, d: &NewDelivery) -> Result<DeliveryRow> {
        let now = Utc::now();
        let row: DeliveryRow = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let row: DeliveryRow = sqlx::query_as(concat!(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, msg_id, \
                 payload, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) RETURNING ",
                delivery_columns!(),
                ""
            ))
            .bind(d.webhook_id)
            .bind(d.event_id)
            .bind(&d.event_type)
            .bind(&d.msg_id)
            .bind(Json(&d.payload))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            insert_job!(
                tx,
                DELIVER_JOB,
                json!({ "delivery_id": row.id, "attempt": 1 }),
                now.timestamp_millis(),
                now
            );
            crate::notify::notify_in_tx!(self.db, tx, Notice::JobQueued);
            tx.commit().await?;
            row
        });
        self.local_notify(&[Notice::JobQueued]);
        Ok(row)
    }

    /// Queues a delivery again (a manual redeliver): same `webhook-id`, a new attempt now.
    pub async fn redeliver(&self, delivery_id: i64) -> Result<DeliveryRow> {
        let now = Utc::now();
        let row: Option<DeliveryRow> = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let row: Option<DeliveryRow> = sqlx::query_as(concat!(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $2, \
                 updated_at = $2 WHERE id = $1 RETURNING ",
                delivery_columns!(),
                ""
            ))
            .bind(delivery_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = &row {
                let payload = json!({ "delivery_id": row.id, "attempt": row.attempts + 1 });
                insert_job!(tx, DELIVER_JOB, payload, now.timestamp_millis(), now);
                crate::notify::notify_in_tx!(self.db, tx, Notice::JobQueued);
            }
            tx.commit().await?;
            row
        });
        self.local_notify(&[Notice::JobQueued]);
        row.ok_or(StoreError::NotFound)
    }

    /// Records one attempt and what follows, in one transaction: the next attempt's job,
    /// or the end of the delivery; the subscription's failure streak; and, when the streak
    /// reaches `disable_after` or the receiver answered 410, the subscription disabled with
    /// a `webhook.disabled` event and an audit row. `false` when this attempt was already
    /// recorded (a re-run after a crash): nothing is written twice.
    pub async fn record_attempt(
        &self,
        a: &AttemptRecord<'_>,
        outcome: &AttemptOutcome,
        disable_after: i64,
    ) -> Result<bool> {
        let now = Utc::now();
        let status = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "pending",
            AttemptOutcome::GiveUp | AttemptOutcome::Gone => "failed",
        };
        let next_at = match outcome {
            AttemptOutcome::RetryAt(ms) => DateTime::<Utc>::from_timestamp_millis(*ms),
            _ => None,
        };
        let notices = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let webhook_id: Option<i64> = sqlx::query_scalar(
                "UPDATE webhook_deliveries SET attempts = $2, status = $3, next_attempt_at = $4, \
                 last_status = $5, last_error = $6, updated_at = $7, \
                 delivered_at = CASE WHEN $3 = 'delivered' THEN $7 ELSE delivered_at END \
                 WHERE id = $1 AND attempts < $2 RETURNING webhook_id",
            )
            .bind(a.delivery_id)
            .bind(a.attempt)
            .bind(status)
            .bind(next_at)
            .bind(a.status_code.map(i64::from))
            .bind(a.error)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(webhook_id) = webhook_id else {
                tx.rollback().await?;
                return Ok(false);
            };
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, \
                 status_code, response_excerpt, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(a.delivery_id)
            .bind(a.attempt)
            .bind(a.started_at)
            .bind(a.duration_ms)
            .bind(a.status_code.map(i64::from))
            .bind(a.response_excerpt)
            .bind(a.error)
            .execute(&mut *tx)
            .await?;
            let mut notices = Vec::new();
            if let (AttemptOutcome::RetryAt(due), Some(_)) = (outcome, next_at) {
                let payload = json!({ "delivery_id": a.delivery_id, "attempt": a.attempt + 1 });
                insert_job!(tx, DELIVER_JOB, payload, *due, now);
                crate::notify::notify_in_tx!(self.db, tx, Notice::JobQueued);
                notices.push(Notice::JobQueued);
            }
            let streak: i64 = if *outcome == AttemptOutcome::Delivered {
                sqlx::query_scalar(
                    "UPDATE webhooks SET failure_streak = 0, last_success_at = $2 \
                     WHERE id = $1 RETURNING failure_streak",
                )
                .bind(webhook_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(0)
            } else {
                sqlx::query_scalar(
                    "UPDATE webhooks SET failure_streak = failure_streak + 1, \
                     last_failure_at = $2 WHERE id = $1 RETURNING failure_streak",
                )
                .bind(webhook_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(0)
            };
            let reason = match outcome {
                AttemptOutcome::Gone => Some(DISABLED_GONE.to_owned()),
                AttemptOutcome::Delivered => None,
                _ if streak >= disable_after => Some(format!("{streak} attempts in a row failed")),
                _ => None,
            };
            if let Some(reason) = reason {
                let disabled = sqlx::query(
                    "UPDATE webhooks SET enabled = FALSE, disabled_reason = $2, updated_at = $3 \
                     WHERE id = $1 AND enabled = TRUE",
                )
                .bind(webhook_id)
                .bind(&reason)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if disabled {
                    // Pending deliveries of a disabled subscription end now.
                    sqlx::query(
                        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, \
                         last_error = $2, updated_at = $3 WHERE webhook_id = $1 AND status = 'pending'",
                    )
                    .bind(webhook_id)
                    .bind(format!("the subscription was disabled: {reason}"))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let data = json!({ "webhook_id": webhook_id, "reason": reason });
                    let event = insert_event!(self.db, tx, "webhook.disabled", None::<i64>, &data);
                    sqlx::query(
                        "INSERT INTO audit_log (org_id, actor_user_id, actor, action, target, \
                         detail, request_id, created_at) VALUES ($1, NULL, 'system', \
                         'webhook.disable', $2, $3, NULL, $4)",
                    )
                    .bind(DEFAULT_ORG)
                    .bind(format!("webhook:{webhook_id}"))
                    .bind(Json(&data))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    notices.push(Notice::Event { id: event.id });
                }
            }
            tx.commit().await?;
            notices
        });
        self.local_notify(&notices);
        Ok(true)
    }

    /// Ends a delivery without an attempt (its subscription is gone or disabled).
    pub async fn end_delivery(&self, delivery_id: i64, reason: &str) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, \
             last_error = $2, updated_at = $3 WHERE id = $1 AND status = 'pending'"
        )
        .bind(delivery_id)
        .bind(reason)
        .bind(Utc::now())
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}
