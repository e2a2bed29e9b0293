//! The audit log: one row per mutation, who did what to what and when.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::{DEFAULT_ORG, Page, Result, Store, with_pool};

/// A stored audit row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Json<Value>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What to record. `actor` is a readable label (an e-mail, `cli`, `system`).
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Value,
    pub request_id: Option<String>,
}

impl Store {
    pub async fn record_audit(&self, entry: NewAuditEntry) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO audit_log (org_id, actor_user_id, actor, action, target, detail, \
             request_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(DEFAULT_ORG)
        .bind(entry.actor_user_id)
        .bind(&entry.actor)
        .bind(entry.action)
        .bind(&entry.target)
        .bind(Json(&entry.detail))
        .bind(&entry.request_id)
        .bind(Utc::now())
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Audit rows of the org, newest first.
    pub async fn list_audit(&self, page: Page) -> Result<Vec<AuditEntry>> {
        let rows = with_pool!(self, |p| sqlx::query_as(
            "SELECT id, actor_user_id, actor, action, target, detail, request_id, created_at \
             FROM audit_log WHERE org_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        )
        .bind(DEFAULT_ORG)
        .bind(page.before_or_max())
        .bind(page.limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }
}
