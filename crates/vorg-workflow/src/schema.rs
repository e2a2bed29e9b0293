//! `schemas/workflow.schema.json`, compiled once, and its errors as [`Problem`]s.

use std::sync::OnceLock;

use serde_json::Value;

use crate::problem::Problem;

const SCHEMA: &str = include_str!("../../../schemas/workflow.schema.json");

/// The schema text, for hosts that serve it.
pub fn schema_text() -> &'static str {
    SCHEMA
}

fn validator() -> Result<&'static jsonschema::Validator, String> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let doc: Value = serde_json::from_str(SCHEMA)
                .map_err(|e| format!("workflow.schema.json is not JSON: {e}"))?;
            jsonschema::validator_for(&doc)
                .map_err(|e| format!("workflow.schema.json is not a valid schema: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Every schema problem of `doc`, sorted by path.
pub(crate) fn problems(doc: &Value) -> Vec<Problem> {
    match validator() {
        Ok(v) => vorg_domain::json_schema::problems(v, doc)
            .into_iter()
            .map(|p| Problem::new(p.path, p.message))
            .collect(),
        Err(e) => vec![Problem::new("", e)],
    }
}
