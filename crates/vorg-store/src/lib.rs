//! vorg's store: one schema and one query set on SQLite and on PostgreSQL.
//!
//! [`Store`] wraps a typed pool per backend; [`with_pool!`] runs the same portable SQL
//! (`$N` placeholders, `RETURNING`) on whichever pool the URL chose. Only the few
//! dialect-specific statements fork (see ADR 0002). Higher layers never see sqlx.

mod approvals;
mod artifacts;
mod audit;
mod budgets;
mod enrolments;
mod error;
mod events;
mod job_end;
mod jobs;
mod linear;
mod memo;
mod notify;
mod org;
mod roles_cache;
mod runs;
mod schedules;
pub mod testing;
mod tokens;
mod triggers;
mod usage;
mod users;
mod webhooks;
mod workflows;

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use approvals::{Approval, NewApproval};
pub use artifacts::{Artifact, ArtifactHit, NewArtifact};
pub use audit::{AuditEntry, NewAuditEntry};
pub use budgets::{BudgetBalance, BudgetCheck, BudgetKey, BudgetRefusal, Lease, UsageCharge};
pub use enrolments::{Enrolled, Enrolment, NewEnrolment};
pub use error::StoreError;
pub use events::OrgEvent;
pub use job_end::JobEnd;
pub use jobs::{AbandonedJob, Job};
pub use linear::{LinearLink, NewLinearLink};
pub use notify::Notice;
pub use org::{PersonaRow, PersonaVersion, PersonaWrite, PolicyVersion};
pub use roles_cache::ROLES_TTL;
pub use runs::{NewRun, Run, RunFilter, RunLog, RunOrigin};
pub use schedules::{ScheduleRow, ScheduleWrite};
/// The database driver's error, for [`StoreError::Other`].
pub use sqlx::Error as SqlxError;
pub use tokens::{
    ApiToken, NewApiToken, PermissionColumn, TokenOwner, narrow as narrow_token, rate_minute,
};
pub use triggers::{TriggerRow, TriggerWrite};
pub use usage::{NewUsage, UsageEvent, UsageGroup, UsageTotals};
pub use users::{User, UserWithRoles};
pub use webhooks::{
    AttemptOutcome, AttemptRecord, AttemptRow, DELIVER_JOB, DISABLED_GONE, DeliveryRow,
    NewDelivery, WebhookRow, WebhookWrite,
};
pub use workflows::{CheckpointRow, NewWorkflowVersion, WorkflowVersion};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The id of the one organization that exists today.
pub const DEFAULT_ORG: i64 = 1;

/// Runs `$body` with `$p` bound to whichever typed pool `$db` (a `&Db`) holds.
macro_rules! with_db {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite($p) => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_db;

/// Runs `$body` with `$p` bound to whichever typed pool backs the store.
macro_rules! with_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        $crate::with_db!(&$store.db, |$p| $body)
    };
}
pub(crate) use with_pool;

/// How the store opens a transaction that writes. On SQLite, `BEGIN IMMEDIATE`: the write
/// lock is taken at the start, so a transaction that reads before it writes waits for
/// another writer (up to the busy timeout) instead of failing with `SQLITE_BUSY` when that
/// writer committed in between, which a deferred `BEGIN` cannot retry. On PostgreSQL, a
/// plain `BEGIN` (row locks and advisory locks serialise what must be).
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;

    fn begin_write(
        &self,
    ) -> impl std::future::Future<
        Output = std::result::Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>,
    > + Send;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;

    fn begin_write(
        &self,
    ) -> impl std::future::Future<
        Output = std::result::Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error>,
    > + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;

    fn begin_write(
        &self,
    ) -> impl std::future::Future<
        Output = std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>,
    > + Send {
        sqlx::Pool::begin(self)
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The handle every layer above uses to reach the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// For the job queue's claims and completions: on PostgreSQL a small pool whose
    /// sessions commit without waiting for the WAL flush (see `jobs.rs`); on SQLite `db`.
    queue_db: Db,
    roles: Arc<roles_cache::RolesCache>,
    tokens: Arc<tokens::TokenCache>,
    /// On SQLite, the hot write paths (budget ledger, usage) queue here instead of meeting
    /// each other in SQLite's busy handler, which sleeps in whole milliseconds.
    hot_writes: Arc<tokio::sync::Mutex<()>>,
    notices: tokio::sync::broadcast::Sender<Notice>,
    /// Personas read by the gateway (emptied on any persona write, here or elsewhere).
    personas: Arc<memo::Memo<String, Option<Arc<PersonaRow>>>>,
    /// Who requested each run (a run's requester never changes).
    run_owners: Arc<memo::Memo<i64, Option<i64>>>,
}

/// How many database connections one process may hold (`VORG_DB_MAX_CONNECTIONS`). On
/// PostgreSQL two thirds go to requests and runs, the rest to the job queue's claims (plus
/// one for `LISTEN`); on SQLite, whose one writer makes more connections useless, a third
/// (8 by default, at most 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    pub max: u32,
}

impl Default for PoolSize {
    fn default() -> Self {
        PoolSize { max: 24 }
    }
}

impl PoolSize {
    /// The fewest connections a process works with (requests, queue, and a spare).
    pub const MIN: u32 = 3;

    /// The (main, queue) pool sizes on PostgreSQL.
    pub fn split(self) -> (u32, u32) {
        let max = self.max.max(Self::MIN);
        let main = (max * 2 / 3).max(2);
        (main, (max - main).max(1))
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) without migrating, with the
    /// default pool size.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_sized(url, PoolSize::default()).await
    }

    /// The most connections each pool may open: (main, queue); the same pool twice on SQLite.
    pub fn max_connections(&self) -> (u32, u32) {
        let max = |db: &Db| with_db!(db, |p| p.options().get_max_connections());
        (max(&self.db), max(&self.queue_db))
    }

    /// Connects to `url` without migrating, holding at most `size` connections.
    pub async fn connect_sized(url: &str, size: PoolSize) -> Result<Self> {
        let (main_max, queue_max) = size.split();
        let (db, queue_db) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // A transaction its caller abandoned (a dropped future) would keep its locks until
            // the connection is reused; the server ends such sessions instead, so a run's
            // stream lock is never held for more than this.
            let options = PgConnectOptions::from_str(url)?
                .options([("idle_in_transaction_session_timeout", "10s")]);
            let pool = PgPoolOptions::new()
                .max_connections(main_max)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
                .await?;
            let queue = PgPoolOptions::new()
                .max_connections(queue_max)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options.options([("synchronous_commit", "off")]));
            (Db::Postgres(pool), Db::Postgres(queue))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections((size.max / 3).clamp(1, 16))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            (Db::Sqlite(pool.clone()), Db::Sqlite(pool))
        } else {
            return Err(StoreError::Config(format!(
                "DATABASE_URL must start with sqlite:, postgres:// or postgresql://, got {:?}",
                url.split(':').next().unwrap_or_default()
            )));
        };
        Ok(Store {
            db,
            queue_db,
            roles: Arc::default(),
            tokens: Arc::default(),
            hot_writes: Arc::default(),
            notices: notify::channel(),
            personas: Arc::default(),
            run_owners: Arc::default(),
        })
    }

    /// Connects and applies every pending migration.
    pub async fn connect_and_migrate(url: &str) -> Result<Self> {
        Self::connect_and_migrate_sized(url, PoolSize::default()).await
    }

    /// [`Store::connect_and_migrate`] holding at most `size` connections.
    pub async fn connect_and_migrate_sized(url: &str, size: PoolSize) -> Result<Self> {
        let store = Self::connect_sized(url, size).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the pending migrations of this backend. Safe to run concurrently from
    /// several processes (sqlx takes an advisory lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Answers whether the database takes a query right now.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, |p| p.close().await);
        with_db!(&self.queue_db, |p| p.close().await);
    }
}

impl Store {
    /// Serialises this process's hot writers on SQLite (see `hot_writes`); `None` on
    /// PostgreSQL, where row locks do the work.
    pub(crate) async fn hot_write(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.db {
            Db::Sqlite(_) => Some(self.hot_writes.lock().await),
            Db::Postgres(_) => None,
        }
    }
}

/// Keyset pagination: at most `limit` rows with an id below `before`, newest first.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: i64,
    pub before: Option<i64>,
}

impl Page {
    pub(crate) fn before_or_max(&self) -> i64 {
        self.before.unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests;
