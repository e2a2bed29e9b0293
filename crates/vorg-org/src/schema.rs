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
        let mut problems: Vec<Problem> = self
            .validator
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
                }
                Problem {
                    path,
                    reason: e.to_string(),
                }
            })
            .collect();
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        problems
    }
}

/// `/roles/0/mission` → `roles[0].mission`.
pub fn pointer_to_path(pointer: &str) -> String {
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
