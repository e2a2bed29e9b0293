//! The job runtime. Every long piece of work is a run executed here by a worker, never
//! inside an HTTP request.
//!
//! - A job kind is a type: [`BackgroundJob`] declares its payload, output, attempts and
//!   deduplication once; [`Registry`] maps kinds to handlers; [`builtin`] holds vorg's own.
//! - [`Worker`] claims jobs from the store's queue with a lease it renews, executes them with
//!   bounded concurrency, retries with backoff, and on shutdown finishes or releases them.
//! - [`JobContext`] is what a handler sees: its input, a run log, step boundaries that honour
//!   cancellation, and sleeps that end on shutdown.
//! - [`StreamHub`] fans committed run-log rows and org events out to live SSE clients, one
//!   database read per row per process however many clients watch.

pub mod builtin;
mod context;
mod hub;
mod registry;
mod typed;
mod worker;

pub use context::{JobContext, JobError};
pub use hub::{LiveRow, StreamHub};
pub use registry::{BoxFuture, JobHandler, Registry};
pub use typed::{BackgroundJob, RunMeta, decode};
pub use worker::{Worker, WorkerConfig};
