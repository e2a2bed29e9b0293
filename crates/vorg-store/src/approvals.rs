//! Approvals: requests to spend or act, routed to a tier by policy and decided once.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::types::Json;
use vorg_domain::ApprovalStatus;

use crate::BeginWrite;
use crate::{
    DEFAULT_ORG, Page, Result, Store, StoreError, events::insert_event, notify::Notice, with_pool,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Approval {
    pub id: i64,
    pub description: String,
    pub amount_micro_usd: i64,
    pub justification: String,
    #[sqlx(try_from = "String")]
    pub status: ApprovalStatus,
    pub threshold_micro_usd: i64,
    pub kind: Option<String>,
    /// `approver` or `admin` for requests that need a decision.
    pub tier: Option<String>,
    pub rule: String,
    pub tags: Json<Vec<String>>,
    pub checks: Json<Vec<String>>,
    pub escalated_to: Json<Vec<String>>,
    pub run_id: Option<i64>,
    pub requested_by: Option<i64>,
    pub requested_by_label: String,
    pub decided_by: Option<i64>,
    pub decision_comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A request to store, already routed.
#[derive(Debug, Clone)]
pub struct NewApproval<'a> {
    pub description: &'a str,
    pub amount_micro_usd: i64,
    pub justification: &'a str,
    pub status: ApprovalStatus,
    pub threshold_micro_usd: i64,
    pub kind: Option<&'a str>,
    pub tier: Option<&'a str>,
    pub rule: &'a str,
    pub tags: Vec<String>,
    pub checks: Vec<String>,
    pub escalated_to: Vec<String>,
    pub run_id: Option<i64>,
    pub requested_by: Option<i64>,
    pub requested_by_label: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

macro_rules! approval_columns {
    () => {
        "id, description, amount_micro_usd, justification, status, threshold_micro_usd, kind, \
         tier, rule, tags, checks, escalated_to, run_id, requested_by, requested_by_label, \
         decided_by, decision_comment, created_at, decided_at, expires_at"
    };
}

impl Store {
    /// Stores a request and its `approval.submitted` event in one transaction.
    pub async fn create_approval(&self, a: NewApproval<'_>) -> Result<Approval> {
        let (row, event_id) = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let row: Approval = sqlx::query_as(concat!(
                "INSERT INTO approvals (org_id, description, amount_micro_usd, justification, \
                 status, threshold_micro_usd, kind, tier, rule, tags, checks, escalated_to, run_id, \
                 requested_by, requested_by_label, created_at, expires_at, decided_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 CASE WHEN $5 = 'auto_approved' THEN $16 END) RETURNING ",
                approval_columns!()
            ))
            .bind(DEFAULT_ORG)
            .bind(a.description)
            .bind(a.amount_micro_usd)
            .bind(a.justification)
            .bind(a.status.as_str())
            .bind(a.threshold_micro_usd)
            .bind(a.kind)
            .bind(a.tier)
            .bind(a.rule)
            .bind(Json(&a.tags))
            .bind(Json(&a.checks))
            .bind(Json(&a.escalated_to))
            .bind(a.run_id)
            .bind(a.requested_by)
            .bind(a.requested_by_label)
            .bind(Utc::now())
            .bind(a.expires_at)
            .fetch_one(&mut *tx)
            .await?;
            let data = json!({
                "approval_id": row.id,
                "status": row.status,
                "tier": row.tier,
                "amount_micro_usd": row.amount_micro_usd,
                "description": row.description,
            });
            let event = insert_event!(self.db, tx, "approval.submitted", row.run_id, &data);
            tx.commit().await?;
            (row, event.id)
        });
        self.local_notify(&[Notice::Event { id: event_id }]);
        Ok(row)
    }

    pub async fn get_approval(&self, id: i64) -> Result<Approval> {
        self.expire_approvals().await?;
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approvals WHERE org_id = $1 AND id = $2"
        ))
        .bind(DEFAULT_ORG)
        .bind(id)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    /// Approvals newest first, optionally of one status.
    pub async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
        page: Page,
    ) -> Result<Vec<Approval>> {
        self.expire_approvals().await?;
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approvals WHERE org_id = $1 AND ($2 IS NULL OR status = $2) \
             AND id < $3 ORDER BY id DESC LIMIT $4"
        ))
        .bind(DEFAULT_ORG)
        .bind(status.map(ApprovalStatus::as_str))
        .bind(page.before_or_max())
        .bind(page.limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Decides a pending approval, once: a decided (or expired) one is refused with
    /// `Refused`, an unknown one is `NotFound`. The `approval.decided` event commits with it.
    pub async fn decide_approval(
        &self,
        id: i64,
        approved: bool,
        decided_by: i64,
        comment: Option<&str>,
    ) -> Result<Approval> {
        self.expire_approvals().await?;
        let status = if approved {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        let (row, event_id) = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let row: Option<Approval> = sqlx::query_as(concat!(
                "UPDATE approvals SET status = $3, decided_by = $4, decision_comment = $5, \
                 decided_at = $6 WHERE org_id = $1 AND id = $2 AND status = 'pending' RETURNING ",
                approval_columns!()
            ))
            .bind(DEFAULT_ORG)
            .bind(id)
            .bind(status.as_str())
            .bind(decided_by)
            .bind(comment)
            .bind(Utc::now())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                let current: Option<String> = sqlx::query_scalar(
                    "SELECT status FROM approvals WHERE org_id = $1 AND id = $2",
                )
                .bind(DEFAULT_ORG)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                return Err(match current {
                    None => StoreError::NotFound,
                    Some(s) => StoreError::Refused(format!(
                        "approval {id} is already {s}; a decision cannot be changed"
                    )),
                });
            };
            let data = json!({
                "approval_id": row.id,
                "status": row.status,
                "decided_by": decided_by,
            });
            let event = insert_event!(self.db, tx, "approval.decided", row.run_id, &data);
            tx.commit().await?;
            (row, event.id)
        });
        self.local_notify(&[Notice::Event { id: event_id }]);
        if let Some(run_id) = row.run_id {
            // A run parked on this approval goes on.
            self.resume_parked(run_id).await?;
        }
        Ok(row)
    }

    /// Marks pending approvals whose time ran out as `expired` (and resumes runs parked on
    /// them, which then see the expiry).
    pub async fn expire_approvals(&self) -> Result<u64> {
        let (runs, events) = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
                "UPDATE approvals SET status = 'expired', decided_at = $2 \
                 WHERE org_id = $1 AND status = 'pending' AND expires_at IS NOT NULL \
                 AND expires_at <= $2 RETURNING id, run_id",
            )
            .bind(DEFAULT_ORG)
            .bind(Utc::now())
            .fetch_all(&mut *tx)
            .await?;
            let mut events = Vec::new();
            for (id, run_id) in &rows {
                let data = json!({ "approval_id": id, "status": "expired" });
                let e = insert_event!(self.db, tx, "approval.expired", *run_id, &data);
                events.push(Notice::Event { id: e.id });
            }
            tx.commit().await?;
            (rows.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), events)
        });
        self.local_notify(&events);
        for run_id in runs.iter().flatten() {
            self.resume_parked(*run_id).await?;
        }
        Ok(runs.len() as u64)
    }
}
