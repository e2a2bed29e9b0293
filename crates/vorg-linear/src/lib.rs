//! vorg's Linear integration: a typed client for Linear's GraphQL API and, behind the
//! `fake` feature, an in-process fake of that API for tests.
//!
//! Every document the client sends is a `.graphql` file under `src/documents/`, validated
//! in tests against Linear's published schema (vendored in `schema/linear.graphql`).
//! Persistence (of idempotency keys, for instance) is the caller's business, not this
//! crate's.

mod client;
mod config;
pub mod documents;
mod error;
mod ops;
mod types;

#[cfg(feature = "fake")]
pub mod fake;

pub use client::LinearClient;
pub use config::{DEFAULT_ENDPOINT, LinearConfig};
pub use error::LinearError;
pub use ops::issue_id_for_key;
pub use types::*;

/// Linear's published GraphQL schema (MIT, from Linear's SDK), as vendored in this crate.
pub const SCHEMA_SDL: &str = include_str!("../schema/linear.graphql");
