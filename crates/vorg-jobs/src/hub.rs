//! Fan-out of committed stream rows to live clients.
//!
//! One dispatcher task per process follows the store's notices. For each run that has live
//! subscribers it reads the new rows once and broadcasts them (shared, not copied) to every
//! subscriber; the org event stream works the same way. A subscriber that falls behind gets
//! `Lagged` and re-reads from its last id: a slow client costs its own catch-up query, never
//! the run's progress or other clients' delivery. Channels of runs nobody watches are dropped.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_store::{Notice, OrgEvent, RunLog, Store};

/// Rows buffered per channel before a subscriber counts as lagging.
const CAPACITY: usize = 1024;
/// Rows read per catch-up query.
const BATCH: i64 = 500;

/// A run-log row as broadcast to live clients, with room for its rendered forms so that
/// the first client to format it does the work for all the others.
pub struct LiveRow {
    pub row: RunLog,
    /// Rendered forms, by the format index the reader chooses.
    pub rendered: [OnceLock<String>; 2],
}

struct RunChannel {
    tx: broadcast::Sender<Arc<LiveRow>>,
    /// The last row id broadcast; `None` until the first notice after the channel opened.
    last_id: Option<i64>,
}

/// Live run streams and the org event stream of this process.
pub struct StreamHub {
    store: Store,
    runs: Mutex<HashMap<i64, RunChannel>>,
    org: broadcast::Sender<Arc<OrgEvent>>,
    org_last: Mutex<Option<i64>>,
    shutdown: CancellationToken,
}

impl StreamHub {
    /// Starts the dispatcher on `tracker`; it stops with `shutdown`, which also ends every
    /// live stream (so graceful shutdown is not held up by clients that never hang up).
    pub fn start(store: Store, tracker: &TaskTracker, shutdown: CancellationToken) -> Arc<Self> {
        let hub = Arc::new(StreamHub {
            store,
            runs: Mutex::new(HashMap::new()),
            org: broadcast::channel(CAPACITY).0,
            org_last: Mutex::new(None),
            shutdown,
        });
        let notices = hub.store.subscribe();
        tracker.spawn(hub.clone().dispatch(notices));
        hub
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Cancelled when the server shuts down.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Live rows of run `run_id` from now on. Read the history *after* subscribing and
    /// skip ids already sent: nothing is lost between the two.
    pub fn subscribe_run(&self, run_id: i64) -> broadcast::Receiver<Arc<LiveRow>> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if self.shutdown.is_cancelled() {
            // Shutting down: a closed channel, so the new stream ends after its history.
            return broadcast::channel(1).1;
        }
        runs.entry(run_id)
            .or_insert_with(|| RunChannel {
                tx: broadcast::channel(CAPACITY).0,
                last_id: None,
            })
            .tx
            .subscribe()
    }

    /// Live org events from now on (same rule as [`StreamHub::subscribe_run`]).
    pub fn subscribe_org(&self) -> broadcast::Receiver<Arc<OrgEvent>> {
        self.org.subscribe()
    }

    /// Run channels held (one per run being watched, kept until swept), for `/metrics`.
    pub fn run_channels(&self) -> usize {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Clients watching runs and the org stream, for `/metrics`.
    pub fn client_counts(&self) -> (usize, usize) {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let run_clients = runs.values().map(|c| c.tx.receiver_count()).sum();
        (run_clients, self.org.receiver_count())
    }

    async fn dispatch(self: Arc<Self>, mut notices: broadcast::Receiver<Notice>) {
        let mut sweep = tokio::time::interval(Duration::from_secs(15));
        loop {
            let notice = tokio::select! {
                _ = self.shutdown.cancelled() => {
                    // Dropping the senders ends every live run stream (`Closed`).
                    self.runs.lock().unwrap_or_else(|e| e.into_inner()).clear();
                    return;
                }
                _ = sweep.tick() => { self.sweep(); continue; }
                n = notices.recv() => n,
            };
            match notice {
                Ok(Notice::RunLog { run_id, id }) => self.forward_run(run_id, Some(id)).await,
                Ok(Notice::Event { id }) => self.forward_org(Some(id)).await,
                Ok(
                    Notice::JobQueued
                    | Notice::Schedules
                    | Notice::BudgetPressure
                    | Notice::Personas
                    | Notice::Credentials,
                ) => {}
                Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => {
                    let ids: Vec<i64> = {
                        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
                        runs.keys().copied().collect()
                    };
                    for run_id in ids {
                        self.forward_run(run_id, None).await;
                    }
                    self.forward_org(None).await;
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Drops channels nobody listens to.
    fn sweep(&self) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|_, c| c.tx.receiver_count() > 0);
    }

    /// Reads and broadcasts the run's rows after the last one sent (or from `hint`, the id
    /// of the notice, for a channel that has sent nothing yet).
    async fn forward_run(&self, run_id: i64, hint: Option<i64>) {
        let after = {
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            let Some(channel) = runs.get(&run_id) else {
                return;
            };
            if channel.tx.receiver_count() == 0 {
                runs.remove(&run_id);
                return;
            }
            match (channel.last_id, hint) {
                (Some(last), _) => last,
                (None, Some(id)) => id - 1,
                (None, None) => return,
            }
        };
        let mut after = after;
        loop {
            let rows = match self.store.run_logs(run_id, after, BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, run_id, "reading run stream rows");
                    return;
                }
            };
            let full = rows.len() as i64 == BATCH;
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            let Some(channel) = runs.get_mut(&run_id) else {
                return;
            };
            for row in rows {
                if channel.last_id.is_some_and(|last| row.id <= last) {
                    continue;
                }
                after = row.id;
                channel.last_id = Some(row.id);
                let _ = channel.tx.send(Arc::new(LiveRow {
                    row,
                    rendered: Default::default(),
                }));
            }
            if channel.last_id.is_none() {
                channel.last_id = Some(after);
            }
            if !full {
                return;
            }
        }
    }

    async fn forward_org(&self, hint: Option<i64>) {
        if self.org.receiver_count() == 0 {
            *self.org_last.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return;
        }
        let last = *self.org_last.lock().unwrap_or_else(|e| e.into_inner());
        let mut after = match (last, hint) {
            (Some(last), _) => last,
            (None, Some(id)) => id - 1,
            (None, None) => return,
        };
        loop {
            let rows = match self.store.events_after(after, BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "reading org events");
                    return;
                }
            };
            let full = rows.len() as i64 == BATCH;
            let mut last = self.org_last.lock().unwrap_or_else(|e| e.into_inner());
            for row in rows {
                if last.is_some_and(|l| row.id <= l) {
                    continue;
                }
                after = row.id;
                *last = Some(row.id);
                let _ = self.org.send(Arc::new(row));
            }
            if last.is_none() {
                *last = Some(after);
            }
            if !full {
                return;
            }
        }
    }
}
