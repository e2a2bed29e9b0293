//! Roles and the one permission table that decides who may do what.
//!
//! The API maps every route to a [`Permission`]; this module decides which roles hold it.

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

names! {
    /// Something a caller may be allowed to do. Each route needs exactly one.
    pub enum Permission / UnknownPermission ("permission") {
        /// Read one's own account and the permission table.
        ViewSelf = "view_self",
        /// Create, list and revoke one's own API tokens.
        ManageOwnTokens = "manage_own_tokens",
        /// List users, grant and revoke roles.
        ManageUsers = "manage_users",
        /// Read the audit log.
        ViewAudit = "view_audit",
        /// Scrape `/metrics` (unless metrics are configured public).
        ViewMetrics = "view_metrics",
        /// List runs, read their logs and watch their streams and the org event stream.
        ViewRuns = "view_runs",
        /// Start runs (the demo run; meetings and workflows as they land).
        StartRuns = "start_runs",
        /// Cancel runs.
        CancelRuns = "cancel_runs",
        /// Call models through the gateway (`/llm/generate`, the `/v1` front door).
        UseLlm = "use_llm",
        /// Read LLM usage and spend.
        ViewUsage = "view_usage",
        /// Read the organization: constitution, policies, personas, org chart, approvals.
        ViewOrg = "view_org",
        /// Change the governance policies (and roll them back).
        ManageGovernance = "manage_governance",
        /// Create, change and delete personas.
        ManagePersonas = "manage_personas",
        /// Ask for an approval.
        SubmitApprovals = "submit_approvals",
        /// Approve or reject requests (within the tier the policies allow).
        DecideApprovals = "decide_approvals",
        /// Create issues in Linear.
        CreateLinearIssues = "create_linear_issues",
        /// Hold meetings (stand-ups, brainstorms, all-hands).
        HoldMeetings = "hold_meetings",
        /// Publish new versions of saved workflows someone else owns.
        ManageWorkflows = "manage_workflows",
        /// Create and change schedules and triggers that start runs on one's behalf (each
        /// also needs the permission to start what it starts).
        ManageAutomations = "manage_automations",
        /// Subscribe URLs to the organization's events (outbound webhooks).
        ManageWebhooks = "manage_webhooks",
    }
}

impl Permission {
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
            | Permission::ManageWorkflows
            | Permission::ManageWebhooks => &[Admin],
            Permission::SubmitApprovals => &[Admin, Approver, Engineer, Growth],
            Permission::DecideApprovals => &[Admin, Approver],
            Permission::CreateLinearIssues => &[Admin, Engineer, Growth],
            Permission::HoldMeetings | Permission::ManageAutomations => {
                &[Admin, Approver, Engineer, Growth]
            }
        }
    }

    /// Whether a holder of `roles` has this permission.
    pub fn granted_to(self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles().contains(r))
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of permissions: what a caller may do. A session or JWT holds its roles'
/// permissions; an API token holds a subset chosen when it was minted (narrowed again to
/// what its owner still holds). Serialised as a sorted list of names; stored as one
/// comma-separated column.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u32);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);

    /// Every permission some role of `roles` holds.
    pub fn of_roles(roles: &[Role]) -> Permissions {
        Permission::ALL
            .into_iter()
            .filter(|p| p.granted_to(roles))
            .collect()
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    /// Whether every permission of `self` is in `other`.
    pub fn is_subset(self, other: Permissions) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn intersect(self, other: Permissions) -> Permissions {
        Permissions(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions, in the table's order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// The first of `self` missing from `other`, if any.
    pub fn first_missing_from(self, other: Permissions) -> Option<Permission> {
        self.iter().find(|p| !other.contains(*p))
    }

    /// The column's text.
    pub fn to_column(self) -> String {
        self.iter()
            .map(Permission::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Permissions::NONE;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

impl std::fmt::Debug for Permissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl TryFrom<String> for Permissions {
    type Error = UnknownPermission;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse::<Permission>)
            .collect()
    }
}

impl serde::Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Permissions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Permission>::deserialize(d)?.into_iter().collect())
    }
}

impl utoipa::PartialSchema for Permissions {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <Vec<Permission> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Permissions {}

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

    #[test]
    fn a_permission_set_round_trips_and_compares() {
        let engineer = Permissions::of_roles(&[Role::Engineer]);
        let admin = Permissions::of_roles(&[Role::Admin]);
        assert!(engineer.is_subset(admin));
        assert!(!admin.is_subset(engineer));
        assert_eq!(engineer.first_missing_from(admin), None);
        assert!(admin.first_missing_from(engineer).is_some());
        let column = engineer.to_column();
        assert_eq!(Permissions::try_from(column).unwrap(), engineer);
        assert!(Permissions::try_from("use_llm,launch".to_owned()).is_err());
        let json = serde_json::to_value(engineer).unwrap();
        let back: Permissions = serde_json::from_value(json).unwrap();
        assert_eq!(back, engineer);
        assert_eq!(admin.iter().count(), Permission::ALL.len());
    }
}
