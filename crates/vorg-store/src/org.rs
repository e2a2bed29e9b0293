//! The organization's records: policy versions and personas (every change kept).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::BeginWrite;
use crate::{DEFAULT_ORG, Result, Store, StoreError, with_pool};

/// Advisory-lock keys (even; run logs use odd keys, the event log 2).
const POLICY_LOCK_KEY: i64 = 4;
const PERSONA_LOCK_KEY: i64 = 6;

/// Takes a transaction-scoped advisory lock on PostgreSQL (SQLite has one writer anyway).
macro_rules! lock_xact {
    ($db:expr, $tx:expr, $key:expr) => {
        if matches!($db, $crate::Db::Postgres(_)) {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind($key)
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(crate) use lock_xact;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyVersion {
    pub version: i64,
    pub body: String,
    /// `file`, `api` or `rollback`.
    pub source: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonaRow {
    pub id: String,
    pub doc: Json<Value>,
    pub reports_to: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonaVersion {
    pub persona_id: String,
    pub version: i64,
    /// `None` for the version that deleted the persona.
    pub doc: Option<Json<Value>>,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

/// How a persona write treats an existing persona of the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonaWrite {
    /// Refuse when it exists (409).
    Create,
    /// Refuse when it does not exist (404).
    Update,
    /// Create or update.
    Upsert,
}

macro_rules! policy_columns {
    () => {
        "version, body, source, author, created_at"
    };
}
macro_rules! persona_columns {
    () => {
        "id, doc, reports_to, version, created_at, updated_at"
    };
}

impl Store {
    /// The policy version in force: the newest.
    pub async fn current_policy(&self) -> Result<Option<PolicyVersion>> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            policy_columns!(),
            " FROM policy_versions WHERE org_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(DEFAULT_ORG)
        .fetch_optional(p)
        .await)?;
        Ok(row)
    }

    /// The newest version number (0 when there is none): a cheap freshness check.
    pub async fn current_policy_version(&self) -> Result<i64> {
        let v: Option<i64> = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT CAST(MAX(version) AS BIGINT) FROM policy_versions WHERE org_id = $1"
        )
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(v.unwrap_or(0))
    }

    /// The newest version that came from the policies file.
    pub async fn last_file_policy(&self) -> Result<Option<PolicyVersion>> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            policy_columns!(),
            " FROM policy_versions WHERE org_id = $1 AND source = 'file' \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(DEFAULT_ORG)
        .fetch_optional(p)
        .await)?;
        Ok(row)
    }

    pub async fn policy_version(&self, version: i64) -> Result<PolicyVersion> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            policy_columns!(),
            " FROM policy_versions WHERE org_id = $1 AND version = $2"
        ))
        .bind(DEFAULT_ORG)
        .bind(version)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    /// Every version, newest first.
    pub async fn policy_history(&self, limit: i64) -> Result<Vec<PolicyVersion>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            policy_columns!(),
            " FROM policy_versions WHERE org_id = $1 ORDER BY version DESC LIMIT $2"
        ))
        .bind(DEFAULT_ORG)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Stores `body` as the next version (it takes effect at once).
    pub async fn add_policy_version(
        &self,
        body: &str,
        source: &str,
        author: &str,
    ) -> Result<PolicyVersion> {
        let row = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            lock_xact!(self.db, tx, POLICY_LOCK_KEY);
            let row: PolicyVersion = sqlx::query_as(concat!(
                "INSERT INTO policy_versions (org_id, version, body, source, author, created_at) \
                 SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5 \
                 FROM policy_versions WHERE org_id = $1 RETURNING ",
                policy_columns!()
            ))
            .bind(DEFAULT_ORG)
            .bind(body)
            .bind(source)
            .bind(author)
            .bind(Utc::now())
            .fetch_one(&mut *tx)
            .await?;
            let data =
                serde_json::json!({ "version": row.version, "source": source, "author": author });
            let event =
                crate::events::insert_event!(self.db, tx, "policy.changed", None::<i64>, &data);
            tx.commit().await?;
            (row, event.id)
        });
        let (row, event_id) = row;
        self.local_notify(&[crate::Notice::Event { id: event_id }]);
        Ok(row)
    }

    pub async fn list_personas(&self) -> Result<Vec<PersonaRow>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            persona_columns!(),
            " FROM personas WHERE org_id = $1 ORDER BY id"
        ))
        .bind(DEFAULT_ORG)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    pub async fn count_personas(&self) -> Result<i64> {
        let n = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM personas WHERE org_id = $1"
        )
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(n)
    }

    /// Whether any persona version was ever written (the default org is loaded only once).
    pub async fn personas_ever_written(&self) -> Result<bool> {
        let n: i64 = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM persona_versions WHERE org_id = $1"
        )
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(n > 0)
    }

    pub async fn get_persona(&self, id: &str) -> Result<PersonaRow> {
        let row = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            persona_columns!(),
            " FROM personas WHERE org_id = $1 AND id = $2"
        ))
        .bind(DEFAULT_ORG)
        .bind(id)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }

    /// A persona as the gateway reads it on every call that speaks for one: from memory,
    /// forgotten whenever any process writes a persona (a notice on PostgreSQL). `None` when
    /// there is no such persona.
    pub async fn persona_cached(&self, id: &str) -> Result<Option<Arc<PersonaRow>>> {
        if let Some(known) = self.personas.get(id) {
            return Ok(known);
        }
        let generation = self.personas.generation();
        let row = match self.get_persona(id).await {
            Ok(row) => Some(Arc::new(row)),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        self.personas.put(id, row.clone(), generation);
        Ok(row)
    }

    /// Writes a persona and a new version of its history. `reports_to` must name another
    /// existing persona and must not make a reporting cycle; both are checked under a lock,
    /// so concurrent writes cannot build a cycle together.
    pub async fn save_persona(
        &self,
        id: &str,
        doc: &Value,
        reports_to: Option<&str>,
        author: &str,
        mode: PersonaWrite,
    ) -> Result<PersonaRow> {
        let row = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            lock_xact!(self.db, tx, PERSONA_LOCK_KEY);
            let edges: Vec<(String, Option<String>)> =
                sqlx::query_as("SELECT id, reports_to FROM personas WHERE org_id = $1")
                    .bind(DEFAULT_ORG)
                    .fetch_all(&mut *tx)
                    .await?;
            let managers: HashMap<String, Option<String>> = edges.into_iter().collect();
            let exists = managers.contains_key(id);
            match mode {
                PersonaWrite::Create if exists => {
                    return Err(StoreError::Refused(format!(
                        "persona {id:?} already exists"
                    )));
                }
                PersonaWrite::Update if !exists => return Err(StoreError::NotFound),
                _ => {}
            }
            if let Some(manager) = reports_to {
                check_reporting_line(&managers, id, manager)?;
            }
            let now = Utc::now();
            let row: PersonaRow = sqlx::query_as(concat!(
                "INSERT INTO personas (org_id, id, doc, reports_to, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, COALESCE((SELECT MAX(version) FROM persona_versions \
                 WHERE org_id = $1 AND persona_id = $2), 0) + 1, $5, $5) \
                 ON CONFLICT (org_id, id) DO UPDATE SET doc = excluded.doc, \
                 reports_to = excluded.reports_to, version = personas.version + 1, \
                 updated_at = excluded.updated_at RETURNING ",
                persona_columns!()
            ))
            .bind(DEFAULT_ORG)
            .bind(id)
            .bind(Json(doc))
            .bind(reports_to)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO persona_versions (org_id, persona_id, version, doc, author, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(DEFAULT_ORG)
            .bind(id)
            .bind(row.version)
            .bind(Json(doc))
            .bind(author)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let data = serde_json::json!({ "persona_id": id, "version": row.version, "change": if row.version == 1 { "created" } else { "updated" }, "author": author });
            let event =
                crate::events::insert_event!(self.db, tx, "persona.changed", None::<i64>, &data);
            crate::notify::notify_in_tx!(self.db, tx, crate::Notice::Personas);
            tx.commit().await?;
            (row, event.id)
        });
        let (row, event_id) = row;
        self.personas.forget_all();
        self.local_notify(&[crate::Notice::Event { id: event_id }]);
        Ok(row)
    }

    /// Deletes a persona (its history stays). Refused while others report to it.
    pub async fn delete_persona(&self, id: &str, author: &str) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            lock_xact!(self.db, tx, PERSONA_LOCK_KEY);
            let reports: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM personas WHERE org_id = $1 AND reports_to = $2 ORDER BY id",
            )
            .bind(DEFAULT_ORG)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            if !reports.is_empty() {
                return Err(StoreError::Refused(format!(
                    "persona {id:?} is the manager of {}; reassign them first",
                    reports.join(", ")
                )));
            }
            let version: i64 = sqlx::query_scalar(
                "DELETE FROM personas WHERE org_id = $1 AND id = $2 RETURNING version",
            )
            .bind(DEFAULT_ORG)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO persona_versions (org_id, persona_id, version, doc, author, created_at) \
                 VALUES ($1, $2, $3, NULL, $4, $5)",
            )
            .bind(DEFAULT_ORG)
            .bind(id)
            .bind(version + 1)
            .bind(author)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
            let data = serde_json::json!({ "persona_id": id, "version": version + 1, "change": "deleted", "author": author });
            let event =
                crate::events::insert_event!(self.db, tx, "persona.changed", None::<i64>, &data);
            crate::notify::notify_in_tx!(self.db, tx, crate::Notice::Personas);
            tx.commit().await?;
            self.personas.forget_all();
            self.local_notify(&[crate::Notice::Event { id: event.id }]);
        });
        Ok(())
    }

    /// A persona's versions, newest first (also after it was deleted).
    pub async fn persona_history(&self, id: &str) -> Result<Vec<PersonaVersion>> {
        let rows = with_pool!(self, |p| sqlx::query_as(
            "SELECT persona_id, version, doc, author, created_at FROM persona_versions \
             WHERE org_id = $1 AND persona_id = $2 ORDER BY version DESC"
        )
        .bind(DEFAULT_ORG)
        .bind(id)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }
}

/// Refuses a `reports_to` that names an unknown persona, the persona itself, or one of the
/// persona's own reports (a cycle), naming the cycle.
fn check_reporting_line(
    managers: &HashMap<String, Option<String>>,
    id: &str,
    manager: &str,
) -> Result<()> {
    if manager == id {
        return Err(StoreError::Invalid {
            field: "reports_to",
            reason: format!("{id:?} cannot report to itself"),
        });
    }
    if !managers.contains_key(manager) {
        return Err(StoreError::Invalid {
            field: "reports_to",
            reason: format!("unknown persona {manager:?}"),
        });
    }
    let mut chain = vec![id.to_owned(), manager.to_owned()];
    let mut at = manager;
    while let Some(Some(next)) = managers.get(at) {
        if chain.len() > managers.len() + 1 {
            break;
        }
        chain.push(next.clone());
        if next == id {
            return Err(StoreError::Invalid {
                field: "reports_to",
                reason: format!("reporting cycle: {}", chain.join(" → ")),
            });
        }
        at = next;
    }
    Ok(())
}
