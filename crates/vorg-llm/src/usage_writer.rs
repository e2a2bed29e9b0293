//! Usage rows leave the response path: calls hand them to a writer task, which inserts
//! whatever rows have queued up in one transaction, charging each row's cost to its budgets
//! in the same transaction. Under load many rows share a commit; at rest a row is written
//! as soon as it arrives. Readers of usage in this process call
//! [`UsageWriter::flush`] first, so what a client did is always visible to it.

use tokio::sync::{mpsc, oneshot};
use vorg_store::{Store, StoreError};

/// One call's row: the store's insert itself.
pub use vorg_store::NewUsage as UsageRow;

enum Msg {
    Row(Box<UsageRow>),
    Flush(oneshot::Sender<()>),
}

/// Rows per transaction at most.
const MAX_BATCH: usize = 512;

/// The handle calls send rows through.
#[derive(Clone, Debug)]
pub struct UsageWriter {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    store: Store,
}

impl UsageWriter {
    /// Starts the writer task on the current runtime; without one, rows are written inline.
    pub fn start(store: Store) -> Self {
        let tx = tokio::runtime::Handle::try_current().ok().map(|handle| {
            let (tx, rx) = mpsc::unbounded_channel();
            #[allow(clippy::disallowed_methods)] // ends when the last sender is dropped
            handle.spawn(run(store.clone(), rx));
            tx
        });
        UsageWriter { tx, store }
    }

    /// Queues a row (written inline when there is no writer task).
    pub async fn record(&self, row: UsageRow) {
        let row = Box::new(row);
        let row = match &self.tx {
            Some(tx) => match tx.send(Msg::Row(row)) {
                Ok(()) => return,
                Err(mpsc::error::SendError(Msg::Row(row))) => row,
                Err(_) => return,
            },
            None => row,
        };
        write(&self.store, &[*row]).await;
    }

    /// Waits until every row and settlement queued before this call is written.
    pub async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done, wait) = oneshot::channel();
            if tx.send(Msg::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut rows = Vec::new();
        let mut waiters = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Row(r) => rows.push(*r),
                Msg::Flush(w) => waiters.push(w),
            }
            next = if rows.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !rows.is_empty() {
            write(&store, &rows).await;
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

/// Writes `rows` in one transaction; if that fails, one by one, so one bad row (a run
/// deleted meanwhile) costs only its link, never the others.
async fn write(store: &Store, rows: &[UsageRow]) {
    if store.record_usage_batch(rows).await.is_ok() {
        return;
    }
    for row in rows {
        match store.record_usage(row).await {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) if row.run_id.is_some() => {
                let unlinked = UsageRow {
                    run_id: None,
                    ..row.clone()
                };
                if let Err(e) = store.record_usage(&unlinked).await {
                    tracing::error!(error = %e, provider = %row.provider, model = %row.model, "could not record LLM usage");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, provider = %row.provider, model = %row.model, "could not record LLM usage");
            }
        }
    }
}
