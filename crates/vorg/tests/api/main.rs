//! Black-box tests: the real application on port 0, its own database per test, over HTTP.
//! Every store-touching test runs on SQLite and on PostgreSQL (see `both!`).
#![allow(clippy::disallowed_methods)] // tests spawn freely
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers are test code too

mod helpers;
mod sse;

mod access;
mod agents;
mod auth;
mod automation;
mod budgets;
mod cli;
mod console;
mod errors;
mod linear;
mod llm;
mod meetings;
mod ops;
mod org;
mod persistence;
mod ratelimit;
mod runs;
mod security;
mod storage;
mod tokens;
mod users;
mod workers;
mod workflows;
