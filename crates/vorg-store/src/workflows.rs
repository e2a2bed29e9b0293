//! Saved workflow definitions (versioned by name), the checkpoints `graph` runs resume
//! from, and the approvals their interrupt nodes wait on.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::BeginWrite;
use crate::{DEFAULT_ORG, Result, Store, with_pool};

const WORKFLOW_LOCK_KEY: i64 = 8;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: i64,
    pub engine: String,
    pub description: Option<String>,
    /// The document as it was sent (YAML or JSON).
    pub source: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewWorkflowVersion<'a> {
    pub name: &'a str,
    pub engine: &'a str,
    pub description: Option<&'a str>,
    pub source: &'a str,
    pub created_by: Option<i64>,
}

/// The state of a `graph` run after `node` completed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckpointRow {
    pub run_id: i64,
    pub steps: i64,
    pub node: String,
    pub next: Option<String>,
    pub state: Json<Value>,
    pub created_at: DateTime<Utc>,
}

macro_rules! workflow_columns {
    () => {
        "name, version, engine, description, source, created_by, created_at"
    };
}

macro_rules! checkpoint_columns {
    () => {
        "run_id, steps, node, next, state, created_at"
    };
}

impl Store {
    /// Stores `w` as the next version of its name.
    pub async fn save_workflow(&self, w: NewWorkflowVersion<'_>) -> Result<WorkflowVersion> {
        let row = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            crate::org::lock_xact!(self.db, tx, WORKFLOW_LOCK_KEY);
            let row: WorkflowVersion = sqlx::query_as(concat!(
                "INSERT INTO workflows (org_id, name, version, engine, description, source, \
                 created_by, created_at) \
                 SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6, $7 \
                 FROM workflows WHERE org_id = $1 AND name = $2 RETURNING ",
                workflow_columns!()
            ))
            .bind(DEFAULT_ORG)
            .bind(w.name)
            .bind(w.engine)
            .bind(w.description)
            .bind(w.source)
            .bind(w.created_by)
            .bind(Utc::now())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            row
        });
        Ok(row)
    }

    /// The latest version of every saved workflow, by name.
    pub async fn list_workflows(&self) -> Result<Vec<WorkflowVersion>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflows w WHERE org_id = $1 AND version = \
             (SELECT MAX(version) FROM workflows x WHERE x.org_id = w.org_id AND x.name = w.name) \
             ORDER BY name"
        ))
        .bind(DEFAULT_ORG)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Every version of `name`, newest first (empty when there is no such workflow).
    pub async fn workflow_versions(&self, name: &str) -> Result<Vec<WorkflowVersion>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflows WHERE org_id = $1 AND name = $2 ORDER BY version DESC"
        ))
        .bind(DEFAULT_ORG)
        .bind(name)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// `version` of `name`, or its latest version.
    pub async fn get_workflow(&self, name: &str, version: Option<i64>) -> Result<WorkflowVersion> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            workflow_columns!(),
            " FROM workflows WHERE org_id = $1 AND name = $2 AND ($3 IS NULL OR version = $3) \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(DEFAULT_ORG)
        .bind(name)
        .bind(version)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    /// Records the checkpoint after `steps` nodes (idempotent: a rewrite of the same
    /// position replaces it).
    pub async fn save_checkpoint(
        &self,
        run_id: i64,
        steps: i64,
        node: &str,
        next: Option<&str>,
        state: &Value,
    ) -> Result<()> {
        let _hot = self.hot_write().await;
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO workflow_checkpoints (run_id, steps, node, next, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (run_id, steps) DO UPDATE SET node = excluded.node, \
             next = excluded.next, state = excluded.state, created_at = excluded.created_at"
        )
        .bind(run_id)
        .bind(steps)
        .bind(node)
        .bind(next)
        .bind(Json(state))
        .bind(Utc::now())
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The run's last checkpoint, if any.
    pub async fn last_checkpoint(&self, run_id: i64) -> Result<Option<CheckpointRow>> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            checkpoint_columns!(),
            " FROM workflow_checkpoints WHERE run_id = $1 ORDER BY steps DESC LIMIT 1"
        ))
        .bind(run_id)
        .fetch_optional(p)
        .await)?;
        Ok(row)
    }

    /// The run's checkpoints in order: at most `limit`, those after step `after`.
    pub async fn list_checkpoints(
        &self,
        run_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<CheckpointRow>> {
        let rows = with_pool!(self, |p| {
            sqlx::query_as(concat!(
            "SELECT ",
            checkpoint_columns!(),
            " FROM workflow_checkpoints WHERE run_id = $1 AND steps > $2 ORDER BY steps LIMIT $3"
        ))
        .bind(run_id)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await
        })?;
        Ok(rows)
    }

    /// The approval an interrupt (`key`) of the run waits on, if one was requested.
    pub async fn interrupt_approval(&self, run_id: i64, key: &str) -> Result<Option<i64>> {
        let id = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT approval_id FROM workflow_interrupts WHERE run_id = $1 AND key = $2"
        )
        .bind(run_id)
        .bind(key)
        .fetch_optional(p)
        .await)?;
        Ok(id)
    }

    /// Ties `approval_id` to the interrupt; when one is already tied, that one stands and is
    /// returned.
    pub async fn link_interrupt(&self, run_id: i64, key: &str, approval_id: i64) -> Result<i64> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO workflow_interrupts (run_id, key, approval_id) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id, key) DO NOTHING"
        )
        .bind(run_id)
        .bind(key)
        .bind(approval_id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(self
            .interrupt_approval(run_id, key)
            .await?
            .unwrap_or(approval_id))
    }
}
