//! How the fake answers a request: parse and validate the document against Linear's
//! schema, coerce the variables, then answer each root field from the store and project
//! the result onto exactly the fields the document selected. Not a general executor:
//! root fields are dispatched by name; nested fields are read from prepared JSON.

use apollo_compiler::{
    ExecutableDocument, Schema,
    ast::Value as AstValue,
    executable::{Field, SelectionSet},
    request::coerce_variable_values,
    response::{JsonMap, JsonValue},
    validation::Valid,
};
use serde_json::{Map, Value, json};

use super::store::{FieldError, Store};

/// An HTTP status and JSON body.
pub(crate) type Answer = (u16, Value);

/// Linear's shape for a request rejected before execution (HTTP 400).
fn request_error(message: impl Into<String>, code: &str, locations: Value) -> Value {
    let mut error = json!({
        "message": message.into(),
        "extensions": {
            "code": code,
            "type": "graphql error",
            "userError": true,
            "http": { "status": 400, "headers": {} }
        }
    });
    if locations.as_array().is_some_and(|l| !l.is_empty()) {
        error["locations"] = locations;
    }
    error
}

pub(crate) fn answer(schema: &Valid<Schema>, store: &mut Store, body: &Value) -> Answer {
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        let e = request_error("Must provide query string.", "BAD_REQUEST", Value::Null);
        return (400, json!({ "errors": [e] }));
    };
    let doc = match ExecutableDocument::parse_and_validate(schema, query, "request.graphql") {
        Ok(doc) => doc,
        Err(with) => {
            let errors: Vec<Value> = with
                .errors
                .iter()
                .map(|d| {
                    let e = d.to_json();
                    let locations = serde_json::to_value(&e.locations).unwrap_or(Value::Null);
                    request_error(e.message, "GRAPHQL_VALIDATION_FAILED", locations)
                })
                .collect();
            return (400, json!({ "errors": errors }));
        }
    };
    let name = body.get("operationName").and_then(Value::as_str);
    let op = match doc.operations.get(name) {
        Ok(op) => op,
        Err(e) => {
            let e = request_error(e.message().to_string(), "BAD_REQUEST", Value::Null);
            return (400, json!({ "errors": [e] }));
        }
    };
    let raw = body.get("variables").cloned().unwrap_or(Value::Null);
    let raw: JsonValue = match raw {
        Value::Null => json!({}).into(),
        other => other.into(),
    };
    let empty = JsonMap::new();
    let coerced = match coerce_variable_values(schema, op, raw.as_object().unwrap_or(&empty)) {
        Ok(v) => v,
        Err(e) => {
            let e = request_error(e.message().to_string(), "BAD_USER_INPUT", Value::Null);
            return (400, json!({ "errors": [e] }));
        }
    };
    let variables = serde_json::to_value(&*coerced).unwrap_or(Value::Null);

    let mut data = Map::new();
    for field in op.root_fields(&doc) {
        let args = arguments(field, &variables);
        match resolve(store, field.name.as_str(), &args) {
            Ok(full) => {
                let shaped = project(&full, &field.selection_set, &doc);
                data.insert(field.response_key().to_string(), shaped);
            }
            Err(e) => {
                let error = e.to_json(field.response_key().as_str());
                return (200, json!({ "data": null, "errors": [error] }));
            }
        }
    }
    (200, json!({ "data": data }))
}

/// The field's arguments as JSON, variables substituted.
fn arguments(field: &Field, variables: &Value) -> Map<String, Value> {
    field
        .arguments
        .iter()
        .map(|a| (a.name.to_string(), literal(&a.value, variables)))
        .filter(|(_, v)| !v.is_null())
        .collect()
}

fn literal(value: &AstValue, variables: &Value) -> Value {
    match value {
        AstValue::Null => Value::Null,
        AstValue::Enum(n) => json!(n.as_str()),
        AstValue::Variable(n) => variables.get(n.as_str()).cloned().unwrap_or(Value::Null),
        AstValue::String(s) => json!(s),
        AstValue::Float(f) => f.try_to_f64().map_or(Value::Null, |f| json!(f)),
        AstValue::Int(i) => i.try_to_i32().map_or(Value::Null, |i| json!(i)),
        AstValue::Boolean(b) => json!(b),
        AstValue::List(items) => items.iter().map(|v| literal(v, variables)).collect(),
        AstValue::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), literal(v, variables)))
                .filter(|(_, v)| !v.is_null())
                .collect(),
        ),
    }
}

/// Answers one root field with the full JSON of what it returns.
fn resolve(store: &mut Store, name: &str, args: &Map<String, Value>) -> Result<Value, FieldError> {
    let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
    let object = |k: &str| {
        args.get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    match name {
        "viewer" => Ok(store.viewer()),
        "teams" => connection(store.teams(), args),
        "workflowStates" => connection(store.states(), args),
        "cycles" => connection(store.cycles(), args),
        "issueLabels" => connection(store.labels(), args),
        "projects" => connection(store.projects(), args),
        "issues" => connection(store.issues(), args),
        "issue" => store
            .issue(text("id"))
            .ok_or_else(|| FieldError::not_found("Issue")),
        "issueCreate" => {
            let issue = store.create_issue(&object("input"))?;
            Ok(json!({ "success": true, "lastSyncId": 1.0, "issue": issue }))
        }
        "issueUpdate" => {
            let issue = store.update_issue(text("id"), &object("input"))?;
            Ok(json!({ "success": true, "lastSyncId": 1.0, "issue": issue }))
        }
        "commentCreate" => {
            let comment = store.create_comment(&object("input"))?;
            Ok(json!({ "success": true, "lastSyncId": 1.0, "comment": comment }))
        }
        other => Err(FieldError::invalid(format!(
            "the vorg-linear fake does not answer `{other}`"
        ))),
    }
}

/// Filters, then pages `items` with `first`/`after`; cursors are opaque (hex of the id).
fn connection(items: Vec<Value>, args: &Map<String, Value>) -> Result<Value, FieldError> {
    if args.contains_key("last") || args.contains_key("before") {
        return Err(FieldError::invalid(
            "the fake pages forward only (first/after)",
        ));
    }
    let mut kept = Vec::new();
    for item in items {
        let keep = match args.get("filter") {
            Some(filter) => matches(&item, filter).map_err(FieldError::invalid)?,
            None => true,
        };
        if keep {
            kept.push(item);
        }
    }
    let start = match args.get("after").and_then(Value::as_str) {
        Some(cursor) => {
            let id = decode_cursor(cursor).ok_or_else(|| FieldError::invalid("Invalid cursor"))?;
            kept.iter()
                .position(|v| v["id"] == id.as_str())
                .ok_or_else(|| FieldError::invalid("Invalid cursor"))?
                + 1
        }
        None => 0,
    };
    let first = args.get("first").and_then(Value::as_u64).unwrap_or(50) as usize;
    let page: Vec<Value> = kept.iter().skip(start).take(first).cloned().collect();
    let cursor = |v: Option<&Value>| v.and_then(|v| v["id"].as_str()).map(encode_cursor);
    Ok(json!({
        "nodes": page,
        "edges": page.iter().map(|n| json!({ "node": n, "cursor": cursor(Some(n)) })).collect::<Vec<_>>(),
        "pageInfo": {
            "hasNextPage": start + page.len() < kept.len(),
            "hasPreviousPage": start > 0,
            "startCursor": cursor(page.first()),
            "endCursor": cursor(page.last()),
        }
    }))
}

fn encode_cursor(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Whether `value` passes a Linear filter (`{ team: { id: { eq } } }`, `and`/`or`,
/// `some`/`every` over collections, comparators). Unsupported parts are an error, so a
/// test cannot pass on a filter the fake silently ignored.
fn matches(value: &Value, filter: &Value) -> Result<bool, String> {
    let Some(filter) = filter.as_object() else {
        return Err(format!("a filter must be an object, not {filter}"));
    };
    for (key, arg) in filter {
        let ok = match key.as_str() {
            "and" => all(arg, |f| matches(value, f))?,
            "or" => !all(arg, |f| matches(value, f).map(|b| !b))?,
            "some" => !all(&Value::Array(nodes(value)), |v| matches(v, arg).map(|b| !b))?,
            "every" => all(&Value::Array(nodes(value)), |v| matches(v, arg))?,
            "null" => value.is_null() == (arg == &json!(true)),
            "eq" => same(value, arg),
            "neq" => !same(value, arg),
            "in" => arg
                .as_array()
                .is_some_and(|a| a.iter().any(|x| same(value, x))),
            "nin" => !arg
                .as_array()
                .is_some_and(|a| a.iter().any(|x| same(value, x))),
            "eqIgnoreCase" => lower(value) == lower(arg),
            "neqIgnoreCase" => lower(value) != lower(arg),
            "containsIgnoreCase" => lower(value)
                .zip(lower(arg))
                .is_some_and(|(v, a)| v.contains(&a)),
            "gt" | "gte" | "lt" | "lte" => compare(value, arg, key)?,
            field => {
                let child = value.get(field).cloned().unwrap_or(Value::Null);
                let collection = child.get("nodes").is_some() || child.is_array();
                let per_item = |k: &String| !matches!(k.as_str(), "some" | "every" | "and" | "or");
                if collection && arg.as_object().is_some_and(|a| a.keys().any(per_item)) {
                    return Err(format!(
                        "use `some`/`every` to filter the collection `{field}`"
                    ));
                }
                matches(&child, arg)?
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn all(list: &Value, mut f: impl FnMut(&Value) -> Result<bool, String>) -> Result<bool, String> {
    for item in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        if !f(item)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn nodes(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(a) => a.clone(),
        Value::Object(_) => value["nodes"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn lower(v: &Value) -> Option<String> {
    v.as_str().map(str::to_lowercase)
}

fn compare(value: &Value, arg: &Value, op: &str) -> Result<bool, String> {
    let ord = match (value.as_f64(), arg.as_f64(), value.as_str(), arg.as_str()) {
        (Some(x), Some(y), _, _) => x.partial_cmp(&y),
        // ISO 8601 instants in one format compare as text.
        (_, _, Some(x), Some(y)) => Some(x.cmp(y)),
        _ => return Ok(false),
    };
    let Some(ord) = ord else { return Ok(false) };
    Ok(match op {
        "gt" => ord.is_gt(),
        "gte" => ord.is_ge(),
        "lt" => ord.is_lt(),
        _ => ord.is_le(),
    })
}

/// `full` cut down to the fields `selection` asks for, under their response keys.
fn project(full: &Value, selection: &SelectionSet, doc: &ExecutableDocument) -> Value {
    match full {
        Value::Array(items) => items.iter().map(|v| project(v, selection, doc)).collect(),
        Value::Object(_) if !selection.is_empty() => {
            let mut out = Map::new();
            for field in selection.root_fields(doc) {
                let value = if field.name == "__typename" {
                    json!(selection.ty.as_str())
                } else {
                    let child = full.get(field.name.as_str()).unwrap_or(&Value::Null);
                    project(child, &field.selection_set, doc)
                };
                out.insert(field.response_key().to_string(), value);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}
