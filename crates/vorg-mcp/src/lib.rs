//! vorg as an MCP server: the tools, resources and prompts agents drive vorg with, over stdio
//! (`vorg mcp`) and streamable HTTP (`/mcp` on `vorg serve`). Every tool is a call to vorg's
//! own REST API made with the caller's token ([`backend`]), so the token's permissions,
//! limits, audit and budgets apply exactly as over REST; `tools/list` shows only what the
//! token may call.

pub mod backend;
mod calls;
mod prompts;
mod resources;
mod schema;
mod server;
mod tools;

pub use backend::{Backend, Caller, TOOL_HEADER};
pub use server::VorgMcp;

/// The names of every tool and the permission each needs (for docs and tests).
pub fn tool_permissions() -> Vec<(&'static str, vorg_domain::Permission)> {
    tools::all()
        .iter()
        .map(|t| (t.name, t.permission))
        .collect()
}
