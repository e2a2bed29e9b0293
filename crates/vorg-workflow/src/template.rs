//! `{{ path.to.value }}` substitution in prompts; nothing more (no filters, no loops).

use serde_json::Value;

/// The paths referenced by `template`, in order (`steps.draft.output`), or the reason it is
/// malformed (an unclosed `{{`, an empty or odd path).
pub(crate) fn references(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed \"{{\"".into());
        };
        let path = after[..end].trim();
        let valid = !path.is_empty()
            && path.split('.').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if !valid {
            return Err(format!("bad reference \"{{{{ {path} }}}}\""));
        }
        out.push(path.to_owned());
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Replaces each `{{ path }}` by the value at that path of `context` (strings as they are,
/// anything else as JSON). A path that resolves to nothing is an error naming it.
pub(crate) fn render(template: &str, context: &Value) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed \"{{\"".into());
        };
        let path = after[..end].trim();
        let value = lookup(context, path).ok_or_else(|| format!("nothing at \"{path}\""))?;
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup<'v>(context: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(context, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Renders every string inside `value` (tool arguments).
pub(crate) fn render_value(value: &Value, context: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(render(s, context)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn render_substitutes_strings_and_json() {
        let ctx = json!({"steps": {"draft": {"output": "hello"}}, "state": {"n": 3}});
        let out = render("A {{ steps.draft.output }} B {{state.n}}", &ctx).unwrap();
        assert_eq!(out, "A hello B 3");
    }

    #[test]
    fn render_names_a_missing_path() {
        let err = render("{{ steps.nope.output }}", &json!({})).unwrap_err();
        assert_eq!(err, "nothing at \"steps.nope.output\"");
    }

    #[test]
    fn references_lists_paths_and_rejects_bad_ones() {
        assert_eq!(
            references("x {{ a.b }} {{c}}").unwrap(),
            vec!["a.b".to_owned(), "c".to_owned()]
        );
        assert!(references("{{ a..b }}").is_err());
        assert!(references("{{ a").is_err());
    }
}
