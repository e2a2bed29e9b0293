//! Schedules: what to start, when (a cron expression in a time zone), for whom. A slot
//! fires by creating its run with the origin key `schedule:{id}:{slot}`, whose unique index
//! is the claim: no leader, and no slot fired twice however many processes look.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::BeginWrite;
use crate::{DEFAULT_ORG, Result, Store, StoreError, notify::Notice, with_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub target: Json<Value>,
    pub cron: String,
    pub timezone: String,
    pub catch_up: String,
    pub on_dst_gap: String,
    pub enabled: bool,
    pub owner_id: Option<i64>,
    /// `api` or `file` (declared in the config folder's `schedules.yaml`).
    pub source: String,
    pub version: i64,
    /// Slots after this instant (epoch ms) are due.
    pub anchor_ms: i64,
    pub last_slot_ms: Option<i64>,
    pub last_run_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A schedule as written (created or replaced).
#[derive(Debug, Clone)]
pub struct ScheduleWrite<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub target: &'a Value,
    pub cron: &'a str,
    pub timezone: &'a str,
    pub catch_up: &'a str,
    pub on_dst_gap: &'a str,
    pub enabled: bool,
    pub owner_id: Option<i64>,
    pub source: &'a str,
}

macro_rules! schedule_columns {
    () => {
        "id, name, description, target, cron, timezone, catch_up, on_dst_gap, \
     enabled, owner_id, source, version, anchor_ms, last_slot_ms, last_run_id, created_at, \
     updated_at"
    };
}

impl Store {
    pub async fn create_schedule(&self, w: &ScheduleWrite<'_>) -> Result<ScheduleRow> {
        let now = Utc::now();
        let row: ScheduleRow = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let row = sqlx::query_as(concat!(
                "INSERT INTO schedules (org_id, name, description, target, cron, timezone, \
                 catch_up, on_dst_gap, enabled, owner_id, source, version, anchor_ms, \
                 created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13, $13) \
                 RETURNING ",
                schedule_columns!(),
                ""
            ))
            .bind(DEFAULT_ORG)
            .bind(w.name)
            .bind(w.description)
            .bind(Json(w.target))
            .bind(w.cron)
            .bind(w.timezone)
            .bind(w.catch_up)
            .bind(w.on_dst_gap)
            .bind(w.enabled)
            .bind(w.owner_id)
            .bind(w.source)
            .bind(now.timestamp_millis())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            crate::notify::notify_in_tx!(self.db, tx, Notice::Schedules);
            tx.commit().await?;
            row
        });
        self.local_notify(&[Notice::Schedules]);
        Ok(row)
    }

    /// Replaces a schedule. When it is (re-)enabled or its timing changes, slots are counted
    /// from now: pausing a schedule does not queue up its missed slots.
    pub async fn update_schedule(&self, id: i64, w: &ScheduleWrite<'_>) -> Result<ScheduleRow> {
        let now = Utc::now();
        let row: Option<ScheduleRow> = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let row = sqlx::query_as(concat!(
                "UPDATE schedules SET anchor_ms = CASE WHEN $9 AND (NOT enabled OR cron <> $5 \
                   OR timezone <> $6) THEN (CASE WHEN anchor_ms > $12 THEN anchor_ms ELSE $12 END) ELSE anchor_ms END, \
                 name = $2, description = $3, target = $4, cron = $5, timezone = $6, \
                 catch_up = $7, on_dst_gap = $8, enabled = $9, owner_id = $10, source = $11, \
                 version = version + 1, updated_at = $13 \
                 WHERE id = $1 AND org_id = $14 RETURNING ",
                schedule_columns!(),
                ""
            ))
            .bind(id)
            .bind(w.name)
            .bind(w.description)
            .bind(Json(w.target))
            .bind(w.cron)
            .bind(w.timezone)
            .bind(w.catch_up)
            .bind(w.on_dst_gap)
            .bind(w.enabled)
            .bind(w.owner_id)
            .bind(w.source)
            .bind(now.timestamp_millis())
            .bind(now)
            .bind(DEFAULT_ORG)
            .fetch_optional(&mut *tx)
            .await?;
            crate::notify::notify_in_tx!(self.db, tx, Notice::Schedules);
            tx.commit().await?;
            row
        });
        self.local_notify(&[Notice::Schedules]);
        row.ok_or(StoreError::NotFound)
    }

    pub async fn delete_schedule(&self, id: i64) -> Result<()> {
        let n = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let n = sqlx::query("DELETE FROM schedules WHERE id = $1 AND org_id = $2")
                .bind(id)
                .bind(DEFAULT_ORG)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            crate::notify::notify_in_tx!(self.db, tx, Notice::Schedules);
            tx.commit().await?;
            n
        });
        self.local_notify(&[Notice::Schedules]);
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn get_schedule(&self, id: i64) -> Result<ScheduleRow> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE id = $1 AND org_id = $2"
        ))
        .bind(id)
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    pub async fn get_schedule_by_name(&self, name: &str) -> Result<ScheduleRow> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE name = $1 AND org_id = $2"
        ))
        .bind(name)
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    /// Every schedule, by id.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleRow>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE org_id = $1 ORDER BY id"
        ))
        .bind(DEFAULT_ORG)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Moves a schedule's anchor on to `slot_ms` (never back) after the slot fired
    /// (`run_id`) or was skipped (`None`).
    pub async fn advance_schedule(&self, id: i64, slot_ms: i64, run_id: Option<i64>) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE schedules SET anchor_ms = $2, \
             last_slot_ms = CASE WHEN $3 IS NULL THEN last_slot_ms ELSE $2 END, \
             last_run_id = COALESCE($3, last_run_id) \
             WHERE id = $1 AND anchor_ms < $2"
        )
        .bind(id)
        .bind(slot_ms)
        .bind(run_id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The runs one schedule or trigger started, newest first.
    pub async fn runs_of_origin(&self, kind: &str, id: i64, limit: i64) -> Result<Vec<crate::Run>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            crate::runs::run_columns!(),
            " FROM runs WHERE origin_kind = $1 AND origin_id = $2 AND org_id = $3 \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(kind)
        .bind(id)
        .bind(DEFAULT_ORG)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Records that `key` (an alert and its period) was sent; `false` when it already was.
    pub async fn mark_alert(&self, key: &str) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "INSERT INTO alert_marks (key, created_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO NOTHING"
        )
        .bind(key)
        .bind(Utc::now())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
