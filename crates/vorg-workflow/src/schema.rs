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
    let validator = match validator() {
        Ok(v) => v,
        Err(e) => return vec![Problem::new("", e)],
    };
    let mut out: Vec<Problem> = validator
        .iter_errors(doc)
        .map(|e| {
            let mut path = pointer_to_path(&e.instance_path().to_string());
            // A missing property is a problem of that property, not of its parent.
            if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind()
                && let Some(name) = property.as_str()
            {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                return Problem::new(path, "required");
            }
            Problem::new(path, e.to_string())
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup();
    out
}

/// `/steps/0/depends_on` → `steps[0].depends_on`.
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}
