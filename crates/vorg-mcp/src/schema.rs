//! Tool input schemas: where a tool takes a route's body, its schema is the route's own from
//! vorg's OpenAPI document, with every `$ref` inlined, so the tool and the route can never
//! disagree on a field. Hand-written schemas cover path and query arguments.

use serde_json::{Map, Value, json};

/// The OpenAPI document's component schemas.
#[derive(Debug, Clone, Default)]
pub struct Components(Map<String, Value>);

/// How deep `$ref`s are followed (the document's schemas are shallow; this bounds a cycle).
const MAX_DEPTH: usize = 12;

impl Components {
    pub fn from_openapi(doc: &Value) -> Self {
        Components(
            doc.pointer("/components/schemas")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// The component `name` with its references inlined, as a JSON Schema object.
    pub fn inlined(&self, name: &str) -> Value {
        let schema = self.0.get(name).cloned().unwrap_or_else(|| json!({}));
        self.inline(schema, 0)
    }

    fn inline(&self, v: Value, depth: usize) -> Value {
        match v {
            Value::Object(mut obj) => {
                if let Some(Value::String(r)) = obj.get("$ref")
                    && let Some(name) = r.strip_prefix("#/components/schemas/")
                {
                    if depth >= MAX_DEPTH {
                        return json!({});
                    }
                    let mut target = self.0.get(name).cloned().unwrap_or_else(|| json!({}));
                    // Sibling keywords (a description) win over the target's.
                    obj.remove("$ref");
                    if let (Value::Object(t), false) = (&mut target, obj.is_empty()) {
                        t.extend(obj);
                    }
                    return self.inline(target, depth + 1);
                }
                Value::Object(
                    obj.into_iter()
                        .map(|(k, v)| (k, self.inline(v, depth)))
                        .collect(),
                )
            }
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.inline(v, depth)).collect())
            }
            other => other,
        }
    }
}

/// An object schema from `(name, schema)` properties and the required names.
pub fn object(props: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

/// `schema` (an object schema) with more properties.
pub fn with_props(mut schema: Value, props: &[(&str, Value)]) -> Value {
    if schema.get("type").is_none() && schema.get("allOf").is_none() {
        schema["type"] = json!("object");
    }
    if schema.get("allOf").is_some() {
        // A flattened struct: `allOf` parts; add ours as one more part.
        let extra = object(props, &[]);
        if let Some(parts) = schema["allOf"].as_array_mut() {
            parts.push(extra);
        }
        schema["type"] = json!("object");
        return schema;
    }
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    for (k, v) in props {
        schema["properties"][*k] = v.clone();
    }
    schema
}

pub fn int(description: &str) -> Value {
    json!({ "type": "integer", "description": description })
}

pub fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

pub fn boolean(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

pub fn any_object(description: &str) -> Value {
    json!({ "type": "object", "description": description })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_inlined_and_cycles_bounded() {
        let doc = json!({ "components": { "schemas": {
            "A": { "type": "object", "properties": { "b": { "$ref": "#/components/schemas/B" } } },
            "B": { "type": "string", "enum": ["x"] },
            "Loop": { "type": "object", "properties": { "me": { "$ref": "#/components/schemas/Loop" } } },
        }}});
        let c = Components::from_openapi(&doc);
        assert_eq!(c.inlined("A")["properties"]["b"]["enum"][0], "x");
        let looped = c.inlined("Loop").to_string();
        assert!(!looped.contains("$ref"));
        let s = with_props(c.inlined("A"), &[("wait", boolean("w"))]);
        assert_eq!(s["properties"]["wait"]["type"], "boolean");
    }
}
