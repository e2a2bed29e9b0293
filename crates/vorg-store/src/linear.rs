//! Links from Linear issues vorg created to the run or artifact that produced them, keyed
//! by the caller's idempotency key.

use chrono::{DateTime, Utc};

use crate::{DEFAULT_ORG, Result, Store, with_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinearLink {
    pub id: i64,
    pub idempotency_key: Option<String>,
    pub linear_issue_id: String,
    pub identifier: String,
    pub title: String,
    pub url: String,
    pub team_id: String,
    pub run_id: Option<i64>,
    pub artifact_id: Option<i64>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewLinearLink<'a> {
    pub idempotency_key: Option<&'a str>,
    pub linear_issue_id: &'a str,
    pub identifier: &'a str,
    pub title: &'a str,
    pub url: &'a str,
    pub team_id: &'a str,
    pub run_id: Option<i64>,
    pub artifact_id: Option<i64>,
    pub created_by: Option<i64>,
}

macro_rules! link_columns {
    () => {
        "id, idempotency_key, linear_issue_id, identifier, title, url, team_id, run_id, \
         artifact_id, created_by, created_at"
    };
}

impl Store {
    /// Stores a link; with a key already used, the first link stands and is returned.
    pub async fn link_linear_issue(&self, l: NewLinearLink<'_>) -> Result<LinearLink> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO linear_issue_links (org_id, idempotency_key, linear_issue_id, identifier, \
             title, url, team_id, run_id, artifact_id, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (org_id, idempotency_key) DO NOTHING"
        )
        .bind(DEFAULT_ORG)
        .bind(l.idempotency_key)
        .bind(l.linear_issue_id)
        .bind(l.identifier)
        .bind(l.title)
        .bind(l.url)
        .bind(l.team_id)
        .bind(l.run_id)
        .bind(l.artifact_id)
        .bind(l.created_by)
        .bind(Utc::now())
        .execute(p)
        .await
        .map(|_| ()))?;
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            link_columns!(),
            " FROM linear_issue_links WHERE org_id = $1 AND \
             (($2 IS NOT NULL AND idempotency_key = $2) OR ($2 IS NULL AND linear_issue_id = $3)) \
             ORDER BY id LIMIT 1"
        ))
        .bind(DEFAULT_ORG)
        .bind(l.idempotency_key)
        .bind(l.linear_issue_id)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    pub async fn linear_link_by_key(&self, key: &str) -> Result<Option<LinearLink>> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            link_columns!(),
            " FROM linear_issue_links WHERE org_id = $1 AND idempotency_key = $2"
        ))
        .bind(DEFAULT_ORG)
        .bind(key)
        .fetch_optional(p)
        .await)?;
        Ok(row)
    }

    /// The issues a run produced, oldest first.
    pub async fn linear_links_for_run(&self, run_id: i64) -> Result<Vec<LinearLink>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            link_columns!(),
            " FROM linear_issue_links WHERE org_id = $1 AND run_id = $2 ORDER BY id"
        ))
        .bind(DEFAULT_ORG)
        .bind(run_id)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }
}
