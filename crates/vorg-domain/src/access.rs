//! Roles and the one permission table that decides who may do what.
//!
//! The API maps every route to a [`Permission`]; this module decides which roles hold it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::names;

names! {
    /// A role a user (or an API token) can hold. The five roles of the original system.
    pub enum Role / UnknownRole ("role") {
        Admin = "admin",
        Approver = "approver",
        Engineer = "engineer",
        Growth = "growth",
        Viewer = "viewer",
    }
}

/// Roles stored as one comma-separated column (an API token's): every name must be a role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleList(pub Vec<Role>);

impl TryFrom<String> for RoleList {
    type Error = UnknownRole;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Role>, _>>()
            .map(RoleList)
    }
}

impl RoleList {
    /// The column's text.
    pub fn to_column(roles: &[Role]) -> String {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Something a caller may be allowed to do. Each route needs exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read one's own account and the permission table.
    ViewSelf,
    /// Create, list and revoke one's own API tokens.
    ManageOwnTokens,
    /// List users, grant and revoke roles.
    ManageUsers,
    /// Read the audit log.
    ViewAudit,
    /// Scrape `/metrics` (unless metrics are configured public).
    ViewMetrics,
    /// List runs, read their logs and watch their streams and the org event stream.
    ViewRuns,
    /// Start runs (the demo run; meetings and workflows as they land).
    StartRuns,
    /// Cancel runs.
    CancelRuns,
    /// Call models through the gateway (`/llm/generate`, the `/v1` front door).
    UseLlm,
    /// Read LLM usage and spend.
    ViewUsage,
    /// Read the organization: constitution, policies, personas, org chart, approvals.
    ViewOrg,
    /// Change the governance policies (and roll them back).
    ManageGovernance,
    /// Create, change and delete personas.
    ManagePersonas,
    /// Ask for an approval.
    SubmitApprovals,
    /// Approve or reject requests (within the tier the policies allow).
    DecideApprovals,
    /// Create issues in Linear.
    CreateLinearIssues,
    /// Hold meetings (stand-ups, brainstorms, all-hands).
    HoldMeetings,
    /// Publish new versions of saved workflows someone else owns.
    ManageWorkflows,
}

impl Permission {
    pub const ALL: [Permission; 18] = [
        Permission::ViewSelf,
        Permission::ManageOwnTokens,
        Permission::ManageUsers,
        Permission::ViewAudit,
        Permission::ViewMetrics,
        Permission::ViewRuns,
        Permission::StartRuns,
        Permission::CancelRuns,
        Permission::UseLlm,
        Permission::ViewUsage,
        Permission::ViewOrg,
        Permission::ManageGovernance,
        Permission::ManagePersonas,
        Permission::SubmitApprovals,
        Permission::DecideApprovals,
        Permission::CreateLinearIssues,
        Permission::HoldMeetings,
        Permission::ManageWorkflows,
    ];

    /// The table: which roles hold this permission.
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Permission::ViewSelf
            | Permission::ManageOwnTokens
            | Permission::ViewRuns
            | Permission::ViewUsage
            | Permission::ViewOrg => &Role::ALL,
            Permission::StartRuns | Permission::CancelRuns | Permission::UseLlm => {
                &[Admin, Engineer]
            }
            Permission::ManageUsers
            | Permission::ViewAudit
            | Permission::ViewMetrics
            | Permission::ManageGovernance
            | Permission::ManagePersonas
            | Permission::ManageWorkflows => &[Admin],
            Permission::SubmitApprovals => &[Admin, Approver, Engineer, Growth],
            Permission::DecideApprovals => &[Admin, Approver],
            Permission::CreateLinearIssues => &[Admin, Engineer, Growth],
            Permission::HoldMeetings => &[Admin, Approver, Engineer, Growth],
        }
    }

    /// Whether a holder of `roles` has this permission.
    pub fn granted_to(self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles().contains(r))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewSelf => "view_self",
            Permission::ManageOwnTokens => "manage_own_tokens",
            Permission::ManageUsers => "manage_users",
            Permission::ViewAudit => "view_audit",
            Permission::ViewMetrics => "view_metrics",
            Permission::ViewRuns => "view_runs",
            Permission::StartRuns => "start_runs",
            Permission::CancelRuns => "cancel_runs",
            Permission::UseLlm => "use_llm",
            Permission::ViewUsage => "view_usage",
            Permission::ViewOrg => "view_org",
            Permission::ManageGovernance => "manage_governance",
            Permission::ManagePersonas => "manage_personas",
            Permission::SubmitApprovals => "submit_approvals",
            Permission::DecideApprovals => "decide_approvals",
            Permission::CreateLinearIssues => "create_linear_issues",
            Permission::HoldMeetings => "hold_meetings",
            Permission::ManageWorkflows => "manage_workflows",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn admin_holds_every_permission_and_viewer_only_self_service() {
        for p in Permission::ALL {
            assert!(p.granted_to(&[Role::Admin]), "{p}");
        }
        assert!(Permission::ViewSelf.granted_to(&[Role::Viewer]));
        assert!(!Permission::ManageUsers.granted_to(&[Role::Viewer, Role::Approver]));
    }
}
