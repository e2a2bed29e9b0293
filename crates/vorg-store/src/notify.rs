//! Notices that a row was committed: rows first, notices second.
//!
//! On PostgreSQL a notice is a `pg_notify` sent inside the writing transaction (so it is
//! delivered on commit, to every process listening); [`Store::start_listener`] forwards them
//! to this process's subscribers. On SQLite the store sends it in-process after the commit.
//! A notice only says *which* row is new: readers fetch the row, which is the truth.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{Db, Store};

/// The PostgreSQL channel vorg notifies on.
pub const CHANNEL: &str = "vorg_events";

/// What was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A run log row (`id`) of run `run_id`.
    RunLog { run_id: i64, id: i64 },
    /// An org-wide event row.
    Event { id: i64 },
    /// A job became due.
    JobQueued,
    /// A schedule was created, changed or deleted: schedulers re-read their timetable.
    Schedules,
    /// A persona was written: cached personas are stale.
    Personas,
    /// A user's roles or an API token changed: cached roles and tokens are stale.
    Credentials,
    /// A process was refused budget headroom that others hold: give back what is unused.
    BudgetPressure,
    /// Notices may have been missed (listener reconnected): re-read from the tables.
    Resync,
}

impl Notice {
    pub(crate) fn encode(self) -> String {
        match self {
            Notice::RunLog { run_id, id } => format!("r:{run_id}:{id}"),
            Notice::Event { id } => format!("e:{id}"),
            Notice::JobQueued => "j".to_owned(),
            Notice::Schedules => "c".to_owned(),
            Notice::Resync => "s".to_owned(),
            Notice::BudgetPressure => "b".to_owned(),
            Notice::Personas => "p".to_owned(),
            Notice::Credentials => "k".to_owned(),
        }
    }

    pub(crate) fn decode(text: &str) -> Option<Notice> {
        let mut parts = text.split(':');
        match parts.next()? {
            "r" => Some(Notice::RunLog {
                run_id: parts.next()?.parse().ok()?,
                id: parts.next()?.parse().ok()?,
            }),
            "e" => Some(Notice::Event {
                id: parts.next()?.parse().ok()?,
            }),
            "j" => Some(Notice::JobQueued),
            "c" => Some(Notice::Schedules),
            "s" => Some(Notice::Resync),
            "b" => Some(Notice::BudgetPressure),
            "p" => Some(Notice::Personas),
            "k" => Some(Notice::Credentials),
            _ => None,
        }
    }
}

/// Capacity of the in-process channel; a slower subscriber gets `Lagged` and re-reads.
const CAPACITY: usize = 4096;

pub(crate) fn channel() -> broadcast::Sender<Notice> {
    broadcast::channel(CAPACITY).0
}

impl Store {
    /// Notices of rows committed from now on (by any process, on PostgreSQL, once the
    /// listener runs).
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Whether other processes may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// Sends `notice` to every process now (outside any transaction).
    pub async fn notify(&self, notice: Notice) -> crate::Result<()> {
        match &self.db {
            Db::Postgres(pool) => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(notice.encode())
                    .execute(pool)
                    .await?;
            }
            Db::Sqlite(_) => {
                let _ = self.notices.send(notice);
            }
        }
        Ok(())
    }

    /// After a committed change to roles or tokens: other processes forget what they cached
    /// (at once on PostgreSQL; their caches' one-second TTL remains the safety net). A failure
    /// to notify is logged: the change itself is committed.
    pub(crate) async fn tell_credentials_changed(&self) {
        if !self.is_shared() {
            return;
        }
        if let Err(e) = self.notify(Notice::Credentials).await {
            tracing::warn!(error = %e, "could not tell other processes that credentials changed");
        }
    }

    /// Sends `notices` in-process after a SQLite commit; PostgreSQL delivers its own.
    pub(crate) fn local_notify(&self, notices: &[Notice]) {
        if matches!(self.db, Db::Sqlite(_)) {
            for n in notices {
                let _ = self.notices.send(*n);
            }
        }
    }

    /// On PostgreSQL, listens for other processes' (and our own) notices and forwards them
    /// to [`Store::subscribe`]rs until `shutdown`. Reconnects after a lost connection and
    /// then sends [`Notice::Resync`]. A no-op on SQLite.
    pub async fn start_listener(
        &self,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> crate::Result<()> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(());
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        let tx = self.notices.clone();
        let personas = self.personas.clone();
        let (roles, tokens) = (self.roles.clone(), self.tokens.clone());
        tracker.spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = listener.try_recv() => next,
                };
                match next {
                    Ok(Some(n)) => {
                        if let Some(notice) = Notice::decode(n.payload()) {
                            match notice {
                                Notice::Personas => personas.forget_all(),
                                Notice::Credentials => {
                                    roles.clear();
                                    tokens.clear();
                                }
                                _ => {}
                            }
                            let _ = tx.send(notice);
                        }
                    }
                    // The connection was lost and re-established: notices may be missing.
                    Ok(None) => {
                        personas.forget_all();
                        let _ = tx.send(Notice::Resync);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event listener lost PostgreSQL; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        personas.forget_all();
                        let _ = tx.send(Notice::Resync);
                    }
                }
            }
        });
        Ok(())
    }
}

/// Inside the transaction `$tx`, on PostgreSQL, sends `$notice` to every process when the
/// transaction commits (a no-op on SQLite, where [`Store::local_notify`] tells this one).
macro_rules! notify_in_tx {
    ($db:expr, $tx:expr, $notice:expr) => {
        if matches!($db, $crate::Db::Postgres(_)) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind($crate::notify::CHANNEL)
                .bind($notice.encode())
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(crate) use notify_in_tx;

#[cfg(test)]
mod tests {
    use super::Notice;

    #[test]
    fn notices_round_trip_through_their_text_form() {
        for n in [
            Notice::RunLog { run_id: 7, id: 99 },
            Notice::Schedules,
            Notice::Event { id: 3 },
            Notice::JobQueued,
            Notice::Resync,
            Notice::BudgetPressure,
            Notice::Personas,
            Notice::Credentials,
        ] {
            assert_eq!(Notice::decode(&n.encode()), Some(n));
        }
        assert_eq!(Notice::decode("r:x:1"), None);
    }
}
