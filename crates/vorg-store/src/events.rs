//! The org-wide event log behind `/streams/events`: run status changes, approvals, budget
//! warnings. Inserts are serialised on PostgreSQL (one advisory lock) so ids commit in order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::BeginWrite;
use crate::{DEFAULT_ORG, Result, Store, notify::Notice, with_pool};

/// Advisory-lock key of the org event log (run logs use odd keys).
pub(crate) const EVENTS_LOCK_KEY: i64 = 2;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgEvent {
    pub id: i64,
    pub kind: String,
    pub run_id: Option<i64>,
    pub data: Json<Value>,
    pub created_at: DateTime<Utc>,
}

/// Inserts an org event inside the transaction `$tx` (serialised on PostgreSQL, with its
/// `pg_notify`) and evaluates to the row. Callers send the in-process notice after commit.
macro_rules! insert_event {
    ($db:expr, $tx:expr, $kind:expr, $run_id:expr, $data:expr) => {{
        let pg = matches!($db, $crate::Db::Postgres(_));
        if pg {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind($crate::events::EVENTS_LOCK_KEY)
                .execute(&mut *$tx)
                .await?;
        }
        let event: $crate::events::OrgEvent = sqlx::query_as(
            "INSERT INTO events (org_id, kind, run_id, data, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, kind, run_id, data, created_at",
        )
        .bind($crate::DEFAULT_ORG)
        .bind($kind)
        .bind($run_id)
        .bind(sqlx::types::Json($data))
        .bind(chrono::Utc::now())
        .fetch_one(&mut *$tx)
        .await?;
        if pg {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind($crate::notify::CHANNEL)
                .bind($crate::notify::Notice::Event { id: event.id }.encode())
                .execute(&mut *$tx)
                .await?;
        }
        event
    }};
}
pub(crate) use insert_event;

impl Store {
    pub async fn record_event(
        &self,
        kind: &str,
        run_id: Option<i64>,
        data: Value,
    ) -> Result<OrgEvent> {
        let event: OrgEvent = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let event = insert_event!(self.db, tx, kind, run_id, &data);
            tx.commit().await?;
            event
        });
        self.local_notify(&[Notice::Event { id: event.id }]);
        Ok(event)
    }

    /// Org events after `after` (exclusive), oldest first.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<OrgEvent>> {
        let rows = with_pool!(self, |p| sqlx::query_as(
            "SELECT id, kind, run_id, data, created_at FROM events \
             WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )
        .bind(DEFAULT_ORG)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// The id of the newest org event (0 when none).
    pub async fn last_event_id(&self) -> Result<i64> {
        let id: Option<i64> = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT MAX(id) FROM events WHERE org_id = $1"
        )
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(id.unwrap_or(0))
    }
}
