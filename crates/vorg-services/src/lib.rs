//! What the organization does. Routes, the CLI and the worker call these services; the
//! organization's model (policies, personas, approvals) is in `vorg-org`.
//!
//! - [`meetings`]: stand-ups, brainstorms and all-hands held by personas, minutes stored.
//! - [`hiring`]: hiring plans drafted by the leadership and applied to the org chart.
//! - [`workflows`]: workflow runs, the host between the pure engines and the gateway.
//! - [`linear`]: Linear issues filed for runs (the API's, action items, the workflow tool).
//! - [`work`]: what every job shares (the gateway speaker, artifacts, Linear filing).
//!
//! Each job kind is a [`vorg_jobs::BackgroundJob`]: its payload type is the contract the API,
//! the CLI and the worker share.

pub mod hiring;
pub mod linear;
pub mod meetings;
pub mod starter;
pub mod work;
pub mod workflows;

pub use starter::{Requester, Starter};
pub use work::Services;

/// The organization's job handlers (meetings, hiring plans, workflows) beside the built-in
/// ones.
pub fn registry(services: Services) -> vorg_jobs::Registry {
    vorg_jobs::builtin::registry()
        .job::<meetings::Meeting>(services.clone())
        .job::<hiring::HiringPlanJob>(services.clone())
        .job::<workflows::WorkflowRun>(services)
}
