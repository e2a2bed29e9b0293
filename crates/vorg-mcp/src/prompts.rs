//! Prompts: ready-made requests for the organization's routine work.

use rmcp::{
    ErrorData as McpError,
    model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role},
};
use serde_json::{Map, Value};

pub fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "hold_standup",
            Some("Hold today's stand-up and summarise blockers and decisions."),
            Some(vec![
                PromptArgument::new("focus")
                    .with_description("What to pay attention to (optional)."),
            ]),
        ),
        Prompt::new(
            "review_pending_approvals",
            Some("Review the pending approvals and recommend a decision for each."),
            None::<Vec<PromptArgument>>,
        ),
        Prompt::new(
            "plan_hiring",
            Some("Plan the hires a goal needs and check the budget before applying."),
            Some(vec![
                PromptArgument::new("goal")
                    .with_description("What the organization must achieve.")
                    .with_required(true),
            ]),
        ),
    ]
}

pub fn get(name: &str, args: Option<&Map<String, Value>>) -> Result<GetPromptResult, McpError> {
    let arg = |k: &str| {
        args.and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let text = match name {
        "hold_standup" => {
            let focus = arg("focus");
            let focus = if focus.is_empty() {
                String::new()
            } else {
                format!(" Pay particular attention to: {focus}.")
            };
            format!(
                "Hold today's stand-up with the hold_standup tool (wait for it). Then read its \
                 minutes resource and summarise, in a few bullets, the blockers, the decisions and \
                 the action items with their owners.{focus}"
            )
        }
        "review_pending_approvals" => "List the pending approvals with list_approvals (status \
             pending). For each, read what it asks for and the policies (get_policies), then \
             recommend approve or reject with a one-line reason. Decide only those you are sure \
             of with decide_approval; leave the rest for a human."
            .to_owned(),
        "plan_hiring" => {
            let goal = arg("goal");
            if goal.is_empty() {
                return Err(McpError::invalid_params("goal: required", None));
            }
            format!(
                "Plan the hires needed for this goal: {goal}. Check headroom with get_budgets \
                 first, then run plan_hiring (wait for it) and summarise the proposed roles and \
                 their cost. Ask before calling apply_hiring_plan."
            )
        }
        other => {
            return Err(McpError::invalid_params(
                format!(
                    "unknown prompt {other:?}: hold_standup, review_pending_approvals or plan_hiring"
                ),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        text,
    )]))
}
