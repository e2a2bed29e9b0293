//! The `vorg` binary's library half: settings, wiring and the command-line commands, so
//! tests can build the real application on port 0.

pub mod automation;
pub mod cli;
pub mod config;
pub mod limits;
pub mod mcp;
pub mod startup;
pub mod telemetry;

pub use config::{CompatServer, Settings};
pub use startup::Application;
