//! vorg's domain vocabulary: roles, permissions, validated input types, and the bounded
//! parser of client documents ([`yaml::parse_untrusted`]), and JSON Schema problems at their
//! paths ([`json_schema::problems`]).
//!
//! Nothing here does I/O. Values are parsed once at the boundary (`Email::parse`,
//! `Password::parse`, `Role::from_str`) and trusted afterwards.

mod access;
mod approval;
mod input;
pub mod json_schema;
pub mod money;
mod names;
mod run;
mod token;
pub mod yaml;

pub use access::{Permission, Permissions, Role, RoleList, UnknownPermission, UnknownRole};
pub use approval::{ApprovalStatus, UnknownApprovalStatus};
pub use input::{Email, InputError, Password, Secret};
pub use names::{BudgetScope, LogLevel, UnknownBudgetScope, UnknownLogLevel};
pub use run::{RunStatus, UnknownStatus};
pub use token::TokenLimits;
