//! The GraphQL documents sent to Linear, one `.graphql` file per operation under
//! `src/documents/`, with shared fragments under `src/documents/fragments/` appended to the
//! documents that spread them. Tests validate every document against Linear's published
//! schema.

/// One operation: its file, name, root field and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Document {
    /// The file name under `src/documents/`.
    pub file: &'static str,
    /// The operation name inside the document (sent as `operationName`).
    pub operation: &'static str,
    /// The single root field the operation selects.
    pub root_field: &'static str,
    pub text: &'static str,
}

macro_rules! document {
    ($const:ident, $file:literal, $operation:literal, $root:literal) => {
        pub const $const: Document = Document {
            file: $file,
            operation: $operation,
            root_field: $root,
            text: include_str!(concat!("documents/", $file)),
        };
    };
    // A document that returns issues: sent with the `IssueFields` fragment it spreads.
    ($const:ident, $file:literal, $operation:literal, $root:literal, with IssueFields) => {
        pub const $const: Document = Document {
            file: $file,
            operation: $operation,
            root_field: $root,
            text: concat!(
                include_str!(concat!("documents/", $file)),
                "\n",
                include_str!("documents/fragments/issue_fields.graphql")
            ),
        };
    };
}

document!(VIEWER, "viewer.graphql", "Viewer", "viewer");
document!(TEAMS, "teams.graphql", "Teams", "teams");
document!(
    WORKFLOW_STATES,
    "workflow_states.graphql",
    "WorkflowStates",
    "workflowStates"
);
document!(CYCLES, "cycles.graphql", "Cycles", "cycles");
document!(LABELS, "labels.graphql", "IssueLabels", "issueLabels");
document!(PROJECTS, "projects.graphql", "Projects", "projects");
document!(
    ISSUES,
    "issues.graphql",
    "Issues",
    "issues",
    with IssueFields
);
document!(ISSUE, "issue.graphql", "Issue", "issue", with IssueFields);
document!(
    ISSUE_CREATE,
    "issue_create.graphql",
    "IssueCreate",
    "issueCreate",
    with IssueFields
);
document!(
    ISSUE_UPDATE,
    "issue_update.graphql",
    "IssueUpdate",
    "issueUpdate",
    with IssueFields
);
document!(
    COMMENT_CREATE,
    "comment_create.graphql",
    "CommentCreate",
    "commentCreate"
);

/// Every document the client sends.
pub const ALL: &[Document] = &[
    VIEWER,
    TEAMS,
    WORKFLOW_STATES,
    CYCLES,
    LABELS,
    PROJECTS,
    ISSUES,
    ISSUE,
    ISSUE_CREATE,
    ISSUE_UPDATE,
    COMMENT_CREATE,
];
