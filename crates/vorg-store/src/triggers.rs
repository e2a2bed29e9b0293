//! Triggers: runs started by an inbound hook (`POST /hooks/{hook_id}`) or by vorg's own
//! events. A delivery or an event starts at most one run: its origin key is unique.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::{DEFAULT_ORG, Result, Store, StoreError, with_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TriggerRow {
    pub id: i64,
    pub hook_id: String,
    pub name: String,
    /// `webhook` or `event`.
    pub kind: String,
    /// `standard_webhooks`, `github`, `linear` or `secret` (webhook triggers).
    pub auth: String,
    pub secret: String,
    /// Comma-separated event types (event triggers).
    pub events: String,
    pub filter: Json<Value>,
    pub max_depth: i64,
    pub target: Json<Value>,
    pub mapping: Json<Value>,
    pub enabled: bool,
    pub owner_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct TriggerWrite<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub auth: &'a str,
    pub events: &'a str,
    pub filter: &'a Value,
    pub max_depth: i64,
    pub target: &'a Value,
    pub mapping: &'a Value,
    pub enabled: bool,
    pub owner_id: Option<i64>,
}

macro_rules! trigger_columns {
    () => {
        "id, hook_id, name, kind, auth, secret, events, filter, max_depth, \
     target, mapping, enabled, owner_id, created_at, updated_at"
    };
}

impl Store {
    pub async fn create_trigger(
        &self,
        w: &TriggerWrite<'_>,
        hook_id: &str,
        secret: &str,
    ) -> Result<TriggerRow> {
        let now = Utc::now();
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "INSERT INTO triggers (org_id, hook_id, name, kind, auth, secret, events, filter, \
             max_depth, target, mapping, enabled, owner_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) \
             RETURNING ",
            trigger_columns!(),
            ""
        ))
        .bind(DEFAULT_ORG)
        .bind(hook_id)
        .bind(w.name)
        .bind(w.kind)
        .bind(w.auth)
        .bind(secret)
        .bind(w.events)
        .bind(Json(w.filter))
        .bind(w.max_depth)
        .bind(Json(w.target))
        .bind(Json(w.mapping))
        .bind(w.enabled)
        .bind(w.owner_id)
        .bind(now)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    pub async fn update_trigger(&self, id: i64, w: &TriggerWrite<'_>) -> Result<TriggerRow> {
        let row: Option<TriggerRow> = with_pool!(self, |p| sqlx::query_as(concat!(
            "UPDATE triggers SET name = $2, kind = $3, auth = $4, events = $5, filter = $6, \
             max_depth = $7, target = $8, mapping = $9, enabled = $10, owner_id = $11, \
             updated_at = $12 WHERE id = $1 AND org_id = $13 RETURNING ",
            trigger_columns!(),
            ""
        ))
        .bind(id)
        .bind(w.name)
        .bind(w.kind)
        .bind(w.auth)
        .bind(w.events)
        .bind(Json(w.filter))
        .bind(w.max_depth)
        .bind(Json(w.target))
        .bind(Json(w.mapping))
        .bind(w.enabled)
        .bind(w.owner_id)
        .bind(Utc::now())
        .bind(DEFAULT_ORG)
        .fetch_optional(p)
        .await)?;
        row.ok_or(StoreError::NotFound)
    }

    pub async fn delete_trigger(&self, id: i64) -> Result<()> {
        let n = with_pool!(self, |p| sqlx::query(
            "DELETE FROM triggers WHERE id = $1 AND org_id = $2"
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

    pub async fn get_trigger(&self, id: i64) -> Result<TriggerRow> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            trigger_columns!(),
            " FROM triggers WHERE id = $1 AND org_id = $2"
        ))
        .bind(id)
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    pub async fn get_trigger_by_hook(&self, hook_id: &str) -> Result<TriggerRow> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            trigger_columns!(),
            " FROM triggers WHERE hook_id = $1"
        ))
        .bind(hook_id)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    pub async fn list_triggers(&self) -> Result<Vec<TriggerRow>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            trigger_columns!(),
            " FROM triggers WHERE org_id = $1 ORDER BY id"
        ))
        .bind(DEFAULT_ORG)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }
}
