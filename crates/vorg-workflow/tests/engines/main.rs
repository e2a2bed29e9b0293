//! The engines end to end against a scripted [`fake::Fake`] runtime: one test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bounds;
mod chat;
mod crew;
mod dag;
mod examples;
mod fake;
mod graph;
mod validation;
