//! Artifacts: what runs produce (minutes, hiring plans, …). The bytes live in blob storage
//! (local disk or S3); the row keeps where, what type, and the text for search.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::{DEFAULT_ORG, Page, Result, Store, with_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Artifact {
    pub id: i64,
    pub kind: String,
    pub name: String,
    /// The blob key.
    pub path: Option<String>,
    /// `local` or `s3`.
    pub storage: String,
    pub s3_bucket: Option<String>,
    pub meta: Json<Value>,
    pub run_id: Option<i64>,
    pub content_type: String,
    pub size: i64,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewArtifact<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub key: &'a str,
    pub storage: &'a str,
    pub s3_bucket: Option<&'a str>,
    pub meta: Value,
    pub run_id: Option<i64>,
    pub content_type: &'a str,
    pub size: i64,
    /// Searchable text (the markdown or JSON itself, for text artifacts).
    pub body_text: &'a str,
    pub created_by: Option<i64>,
}

/// A search hit: the artifact and a snippet around the first match.
#[derive(Debug, Clone)]
pub struct ArtifactHit {
    pub artifact: Artifact,
    pub snippet: String,
}

macro_rules! artifact_columns {
    () => {
        "id, kind, name, path, storage, s3_bucket, meta, run_id, content_type, size, \
         created_by, created_at"
    };
}

impl Store {
    pub async fn create_artifact(&self, a: NewArtifact<'_>) -> Result<Artifact> {
        let (row, event) = with_pool!(self, |p| {
            let mut tx = crate::BeginWrite::begin_write(p).await?;
            let row: Artifact = sqlx::query_as(concat!(
            "INSERT INTO artifacts (org_id, kind, name, path, storage, s3_bucket, s3_key, meta, \
             run_id, content_type, size, body_text, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $4, $7, $8, $9, $10, $11, $12, $13) RETURNING ",
            artifact_columns!()
        ))
        .bind(DEFAULT_ORG)
        .bind(a.kind)
        .bind(a.name)
        .bind(a.key)
        .bind(a.storage)
        .bind(a.s3_bucket)
        .bind(Json(&a.meta))
        .bind(a.run_id)
        .bind(a.content_type)
        .bind(a.size)
        .bind(a.body_text)
        .bind(a.created_by)
        .bind(Utc::now())
        .fetch_one(&mut *tx)
        .await?;
            let mut event = None;
            if row.kind == "minutes" {
                let data = serde_json::json!({ "artifact_id": row.id, "name": row.name });
                let e =
                    crate::events::insert_event!(self.db, tx, "minutes.created", row.run_id, &data);
                event = Some(e.id);
            }
            tx.commit().await?;
            (row, event)
        });
        if let Some(id) = event {
            self.local_notify(&[crate::Notice::Event { id }]);
        }
        Ok(row)
    }

    pub async fn get_artifact(&self, id: i64) -> Result<Artifact> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            artifact_columns!(),
            " FROM artifacts WHERE org_id = $1 AND id = $2"
        ))
        .bind(DEFAULT_ORG)
        .bind(id)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    /// Artifacts newest first, optionally of one kind or one run.
    pub async fn list_artifacts(
        &self,
        kind: Option<&str>,
        run_id: Option<i64>,
        page: Page,
    ) -> Result<Vec<Artifact>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            artifact_columns!(),
            " FROM artifacts WHERE org_id = $1 AND ($2 IS NULL OR kind = $2) \
             AND ($3 IS NULL OR run_id = $3) AND id < $4 ORDER BY id DESC LIMIT $5"
        ))
        .bind(DEFAULT_ORG)
        .bind(kind)
        .bind(run_id)
        .bind(page.before_or_max())
        .bind(page.limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Artifacts whose name or text contains every word of `query` (case-insensitive),
    /// newest first, each with a snippet around its first match.
    pub async fn search_artifacts(&self, query: &str, limit: i64) -> Result<Vec<ArtifactHit>> {
        let words: Vec<String> = query
            .split_whitespace()
            .take(8)
            .map(|w| format!("%{}%", escape_like(&w.to_lowercase())))
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(concat!(
            "SELECT ",
            artifact_columns!(),
            ", body_text FROM artifacts WHERE org_id = $1"
        ));
        for i in 0..words.len() {
            sql.push_str(&format!(
                " AND (LOWER(body_text) LIKE ${n} ESCAPE '\\' OR LOWER(name) LIKE ${n} ESCAPE '\\')",
                n = i + 2
            ));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", words.len() + 2));
        let rows: Vec<(Artifact, String)> = with_pool!(self, |p| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(DEFAULT_ORG);
            for w in &words {
                q = q.bind(w);
            }
            let rows = q.bind(limit).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                use sqlx::{FromRow, Row};
                let artifact = Artifact::from_row(row)?;
                let text: String = row.try_get("body_text")?;
                out.push((artifact, text));
            }
            out
        });
        let first = query.split_whitespace().next().unwrap_or("").to_lowercase();
        Ok(rows
            .into_iter()
            .map(|(artifact, text)| ArtifactHit {
                snippet: snippet(&text, &first),
                artifact,
            })
            .collect())
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Up to ~160 characters of `text` around the first occurrence of `word`.
fn snippet(text: &str, word: &str) -> String {
    let lower = text.to_lowercase();
    let chars: Vec<char> = text.chars().collect();
    let at = lower
        .find(word)
        .map(|byte| lower[..byte].chars().count())
        .unwrap_or(0)
        .min(chars.len());
    let start = at.saturating_sub(60);
    let end = (at + 100).min(chars.len());
    let mut s: String = chars[start..end].iter().collect();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if start > 0 {
        s.insert(0, '…');
    }
    if end < chars.len() {
        s.push('…');
    }
    s
}
