//! JSON Schema problems as people read them: every problem of a document at its path
//! (`roles[0].mission`, empty for the root), a missing property at the property's own path,
//! in document order. The one place the organization's schemas (personas, policies, hiring
//! plans) and the workflow schema turn validator errors into problems.

use serde_json::Value;

/// One problem: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    pub path: String,
    pub message: String,
}

/// Every problem `validator` finds in `doc`, sorted by path, each once.
pub fn problems(validator: &jsonschema::Validator, doc: &Value) -> Vec<SchemaProblem> {
    let mut out: Vec<SchemaProblem> = validator
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
                return SchemaProblem {
                    path,
                    message: "required".into(),
                };
            }
            SchemaProblem {
                path,
                message: e.to_string(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup();
    out
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn problems_are_at_their_paths_and_missing_properties_at_their_own() {
        let schema = json!({ "type": "object", "required": ["name"],
            "properties": { "roles": { "type": "array", "items": { "type": "object",
                "required": ["mission"], "properties": { "mission": { "type": "string" } } } } } });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let found = problems(&validator, &json!({ "roles": [{ "mission": 3 }, {}] }));
        let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["name", "roles[0].mission", "roles[1].mission"]);
        assert_eq!(found[0].message, "required");
        assert_eq!(pointer_to_path("/a~1b/0/c"), "a/b[0].c");
    }
}
