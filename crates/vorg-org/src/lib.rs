//! The organization itself: governance policies, personas and the org chart, approvals and
//! budgets. Everything here is loaded from the organization's data files (shipped inside
//! the binary, overridable from a config folder) and validated against their schemas.
//!
//! What the organization *does* with this model (meetings, hiring plans, workflow runs) is
//! in `vorg-services`.

pub mod approvals;
pub mod files;
pub mod governance;
pub mod persona;
pub mod policies;
pub mod schema;

pub use files::OrgFiles;
pub use governance::{Org, OrgError, Schemas};
pub use persona::Persona;
pub use policies::{Policies, PolicyError, Routing, Tier};
pub use schema::{Problem, Schema};

#[cfg(test)]
mod parsing_tests;
#[cfg(test)]
mod tests;
