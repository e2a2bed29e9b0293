//! The organization itself: governance policies, personas and the org chart, approvals and
//! budgets. Everything here is loaded from the organization's data files (shipped inside
//! the binary, overridable from a config folder) and validated against their schemas.

pub mod approvals;
pub mod files;
pub mod governance;
pub mod hiring;
pub mod meetings;
pub mod persona;
pub mod policies;
pub mod schema;
pub mod starter;
pub mod work;
pub mod workflows;

pub use files::OrgFiles;
pub use governance::{Org, OrgError, Schemas};
pub use persona::Persona;
pub use policies::{Policies, PolicyError, Routing, Tier};
pub use schema::{Problem, Schema};
pub use starter::Starter;
pub use work::Services;

/// The organization's job handlers (meetings, hiring plans) beside the built-in ones.
pub fn registry(services: Services) -> vorg_jobs::Registry {
    vorg_jobs::builtin::registry()
        .register(
            meetings::JOB_KIND,
            meetings::MeetingHandler {
                services: services.clone(),
            },
        )
        .register(
            hiring::JOB_KIND,
            hiring::HiringHandler {
                services: services.clone(),
            },
        )
        .register(workflows::JOB_KIND, workflows::WorkflowHandler { services })
}

#[cfg(test)]
mod parsing_tests;
#[cfg(test)]
mod tests;
