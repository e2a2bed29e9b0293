//! The organization acting on its own.
//!
//! - [`timing`]: a cron expression in an IANA time zone, its slots across DST changes.
//! - [`target`]: what a schedule or trigger starts (a meeting, a saved workflow, a hiring
//!   review) and how, on its owner's behalf, with a unique origin key.
//! - [`scheduler`]: one timer per process, sleeping until the next slot; a slot fires by
//!   creating its run under a unique key, so any number of processes fire it once.
//! - [`signature`]: Standard Webhooks signing and verification, GitHub's and Linear's.
//! - [`hooks`]: inbound deliveries (`POST /hooks/{id}`) and runs started by vorg's events.
//! - [`dispatch`]: the org event log turned into webhook deliveries and event-trigger jobs.
//! - [`deliver`]: the delivery job: signed, SSRF-safe, bounded, retried for about a day.

pub mod deliver;
pub mod dispatch;
pub mod file;
pub mod hooks;
pub mod scheduler;
pub mod signature;
pub mod target;
pub mod timing;

pub use deliver::{DeliveryConfig, Outbound, WebhookDelivery};
pub use scheduler::{Scheduler, SchedulerConfig};
pub use target::Target;
pub use timing::Timing;
