//! Typed jobs, in the manner of crates.io's `BackgroundJob`: a job kind is a Rust type. Its
//! fields are the payload, and the kind, the output type, the attempts and whether equal
//! jobs are deduplicated are declared once, on the type. Enqueueing serialises it; the worker
//! deserialises it, and a payload that no longer parses (queued by another version) fails
//! the run with a clear error instead of panicking or guessing.

use std::{future::Future, marker::PhantomData};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use vorg_store::{NewRun, Run, Store, StoreError};

use crate::{BoxFuture, JobContext, JobError, JobHandler};

/// A kind of job whose payload is `Self`.
pub trait BackgroundJob: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind stored with the job; the worker finds the handler by it.
    const KIND: &'static str;
    /// Attempts before the run fails (a retryable error is retried until then).
    const MAX_ATTEMPTS: i64 = 3;
    /// When set, starting a job equal to one still queued answers that job's run.
    const DEDUPLICATED: bool = false;

    /// What a successful run records as its output (and the API answers).
    type Output: Serialize + DeserializeOwned + Send;
    /// What the job needs besides its payload (the services), given at registration.
    type Context: Clone + Send + Sync + 'static;

    /// Executes one attempt.
    fn run(
        self,
        ctx: &Self::Context,
        job: &JobContext,
    ) -> impl Future<Output = Result<Self::Output, JobError>> + Send;

    /// Starts a run of this job: the run and its job in one transaction.
    fn start(
        &self,
        store: &Store,
        meta: RunMeta<'_>,
    ) -> impl Future<Output = Result<Run, StoreError>> + Send {
        let input = serde_json::to_value(self);
        async move {
            let input = input.map_err(|e| StoreError::Other(sqlx_encode(e)))?;
            store
                .create_run(NewRun {
                    run_type: meta.run_type.unwrap_or(Self::KIND),
                    summary: meta.summary,
                    input,
                    requested_by: meta.requested_by,
                    job_kind: Self::KIND,
                    max_attempts: meta.max_attempts.unwrap_or(Self::MAX_ATTEMPTS),
                    deduplicated: Self::DEDUPLICATED,
                    origin: meta.origin,
                })
                .await
        }
    }

    /// Starts a run of this job unless its origin already started one (see
    /// [`Store::create_run_once`]): the run, and whether this call created it.
    fn start_once(
        &self,
        store: &Store,
        meta: RunMeta<'_>,
    ) -> impl Future<Output = Result<(Run, bool), StoreError>> + Send {
        let input = serde_json::to_value(self);
        async move {
            let input = input.map_err(|e| StoreError::Other(sqlx_encode(e)))?;
            store
                .create_run_once(NewRun {
                    run_type: meta.run_type.unwrap_or(Self::KIND),
                    summary: meta.summary,
                    input,
                    requested_by: meta.requested_by,
                    job_kind: Self::KIND,
                    max_attempts: meta.max_attempts.unwrap_or(Self::MAX_ATTEMPTS),
                    deduplicated: Self::DEDUPLICATED,
                    origin: meta.origin,
                })
                .await
        }
    }
}

/// What a run records beside its job's payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunMeta<'a> {
    /// The run's type as listed and filtered (default: the job kind).
    pub run_type: Option<&'a str>,
    /// One line shown in lists.
    pub summary: Option<&'a str>,
    /// The user who started it.
    pub requested_by: Option<i64>,
    /// Overrides [`BackgroundJob::MAX_ATTEMPTS`] for this run.
    pub max_attempts: Option<i64>,
    /// The schedule slot, hook delivery or event that started it.
    pub origin: Option<vorg_store::RunOrigin<'a>>,
}

fn sqlx_encode(e: serde_json::Error) -> vorg_store::SqlxError {
    vorg_store::SqlxError::Encode(Box::new(e))
}

/// Reads a job's payload as `J`.
pub fn decode<J: BackgroundJob>(payload: &Value) -> Result<J, JobError> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let e = match e.path().to_string().as_str() {
            "." => e.into_inner().to_string(),
            path => format!("{path}: {}", e.into_inner()),
        };
        JobError::Fatal(format!(
            "the payload of this {} job does not parse ({e}): it was queued by a version of \
             vorg that described it differently",
            J::KIND
        ))
    })
}

/// The [`JobHandler`] of a typed job: decodes, runs, encodes the output.
pub(crate) struct Typed<J: BackgroundJob> {
    pub(crate) ctx: J::Context,
    pub(crate) job: PhantomData<fn() -> J>,
}

impl<J: BackgroundJob> JobHandler for Typed<J> {
    fn run<'a>(&'a self, job: &'a JobContext) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(async move {
            let payload = decode::<J>(job.input())?;
            let output = payload.run(&self.ctx, job).await?;
            serde_json::to_value(output)
                .map_err(|e| JobError::Fatal(format!("{}: the output: {e}", J::KIND)))
        })
    }
}
