//! JSON Schema validation that reports every problem with its path.

use serde::Serialize;
use serde_json::Value;

/// One problem of a document: where (`roles/0/mission`, empty for the root) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// A compiled schema.
pub struct Schema {
    name: String,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("name", &self.name).finish()
    }
}

impl Schema {
    /// Compiles the schema text of `name`; a broken schema is an error naming it.
    pub fn compile(name: &str, text: &str) -> Result<Schema, String> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("{name}: not JSON: {e}"))?;
        let validator = jsonschema::validator_for(&doc)
            .map_err(|e| format!("{name}: not a valid JSON Schema: {e}"))?;
        Ok(Schema {
            name: name.to_owned(),
            validator,
        })
    }

    /// Every problem of `doc`, in document order; empty when it is valid.
    pub fn problems(&self, doc: &Value) -> Vec<Problem> {
        vorg_domain::json_schema::problems(&self.validator, doc)
            .into_iter()
            .map(|p| Problem {
                path: p.path,
                reason: p.message,
            })
            .collect()
    }
}

pub use vorg_domain::json_schema::pointer_to_path;
