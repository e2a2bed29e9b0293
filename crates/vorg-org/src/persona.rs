//! Personas: JSON documents in the original format plus vorg's fields, validated against
//! `schemas/persona.schema.json`.

use serde_json::Value;
use vorg_domain::money::usd_to_micro;

use crate::schema::{Problem, Schema};

/// A persona document that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    doc: Value,
}

impl Persona {
    /// Validates `doc`: every schema problem at once, plus the id rule when `expected_id`
    /// (the id in the URL) is given.
    pub fn validate(
        doc: Value,
        schema: &Schema,
        expected_id: Option<&str>,
    ) -> Result<Persona, Vec<Problem>> {
        let mut problems = schema.problems(&doc);
        if let (Some(expected), Some(id)) = (expected_id, doc.get("id").and_then(Value::as_str))
            && id != expected
        {
            problems.push(Problem {
                path: "id".into(),
                reason: format!("{id:?} does not match the persona in the URL ({expected:?})"),
            });
        }
        if let Some(m) = doc.get("risk_limits").and_then(|r| r.get("max_spend"))
            && m.as_f64().and_then(usd_to_micro).is_none()
            && !problems.iter().any(|p| p.path == "risk_limits.max_spend")
        {
            problems.push(Problem {
                path: "risk_limits.max_spend".into(),
                reason: "must be a non-negative amount in USD".into(),
            });
        }
        if problems.is_empty() {
            Ok(Persona { doc })
        } else {
            Err(problems)
        }
    }

    /// A document read back from the store (validated when it was written).
    pub fn trusted(doc: Value) -> Persona {
        Persona { doc }
    }

    pub fn id(&self) -> &str {
        self.str("id").unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.str("name").unwrap_or_default()
    }

    pub fn title(&self) -> Option<&str> {
        self.str("title")
    }

    pub fn reports_to(&self) -> Option<&str> {
        self.str("reports_to").filter(|s| !s.is_empty())
    }

    pub fn model(&self) -> Option<&str> {
        self.str("model")
    }

    pub fn owner(&self) -> Option<&str> {
        self.str("owner")
    }

    /// `risk_limits.max_spend` in micro-dollars: the persona's daily budget.
    pub fn max_spend(&self) -> Option<i64> {
        max_spend_of(&self.doc)
    }

    /// The tools this persona may call.
    pub fn tools(&self) -> Vec<&str> {
        self.list("tools")
    }

    pub fn skills(&self) -> Vec<&str> {
        self.list("skills")
    }

    pub fn doc(&self) -> &Value {
        &self.doc
    }

    pub fn into_doc(self) -> Value {
        self.doc
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }

    fn list(&self, key: &str) -> Vec<&str> {
        self.doc
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// The changes between two versions of a persona, one line per top-level field.
pub fn diff(old: Option<&Value>, new: Option<&Value>) -> Vec<Value> {
    let empty = serde_json::Map::new();
    let old = old.and_then(Value::as_object).unwrap_or(&empty);
    let new = new.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (old.get(k), new.get(k));
            let op = match (a, b) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x != y => "changed",
                _ => return None,
            };
            Some(serde_json::json!({ "field": k, "op": op, "from": a, "to": b }))
        })
        .collect()
}

/// `risk_limits.max_spend` of a persona document, in micro-dollars (read without building a
/// [`Persona`]).
pub fn max_spend_of(doc: &Value) -> Option<i64> {
    doc.get("risk_limits")
        .and_then(|r| r.get("max_spend"))
        .and_then(Value::as_f64)
        .and_then(usd_to_micro)
}
