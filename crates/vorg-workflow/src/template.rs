//! `{{ path.to.value }}` substitution in prompts; nothing more (no filters, no loops).
//!
//! Templates and the values they read come from clients, and one reference to a large value
//! repeated many times renders something far larger than the request: every render is
//! bounded ([`MAX_RENDERED_BYTES`] per string, [`MAX_RENDERED_ARGS_BYTES`] and
//! [`MAX_RENDER_DEPTH`] for a tool's arguments) and stops before allocating past the bound;
//! validation bounds the templates themselves ([`MAX_TEMPLATE_BYTES`],
//! [`MAX_TEMPLATE_REFERENCES`]).

use std::io;

use serde_json::Value;

/// The longest text one render may produce (a prompt, a message, one argument), in bytes.
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;

/// The most text rendering a tool's arguments may produce, all strings together, in bytes.
pub const MAX_RENDERED_ARGS_BYTES: usize = 1024 * 1024;

/// The deepest nesting of arrays and objects in a tool's arguments.
pub const MAX_RENDER_DEPTH: usize = 64;

/// The longest template a workflow may hold, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// The most `{{ }}` references one template may hold.
pub const MAX_TEMPLATE_REFERENCES: usize = 64;

/// The paths referenced by `template`, in order (`steps.draft.output`), or the reason it is
/// malformed (an unclosed `{{`, an empty or odd path) or too large.
pub(crate) fn references(template: &str) -> Result<Vec<String>, String> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "template longer than {MAX_TEMPLATE_BYTES} bytes ({} bytes)",
            template.len()
        ));
    }
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
        if out.len() == MAX_TEMPLATE_REFERENCES {
            return Err(format!(
                "more than {MAX_TEMPLATE_REFERENCES} references in one template"
            ));
        }
        out.push(path.to_owned());
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Replaces each `{{ path }}` by the value at that path of `context` (strings as they are,
/// anything else as JSON). A path that resolves to nothing is an error naming it; so is a
/// result longer than [`MAX_RENDERED_BYTES`].
pub(crate) fn render(template: &str, context: &Value) -> Result<String, String> {
    render_within(template, context, MAX_RENDERED_BYTES)
        .map_err(|e| e.or_too_long(|| too_long(MAX_RENDERED_BYTES)))
}

fn too_long(limit: usize) -> String {
    format!("rendered text longer than {limit} bytes")
}

/// Why [`render_within`] failed; `TooLong` is worded by the caller, who knows which bound.
enum RenderError {
    Bad(String),
    TooLong,
}

impl RenderError {
    fn or_too_long(self, message: impl FnOnce() -> String) -> String {
        match self {
            RenderError::Bad(m) => m,
            RenderError::TooLong => message(),
        }
    }
}

/// [`render`] producing at most `limit` bytes.
fn render_within(template: &str, context: &Value, limit: usize) -> Result<String, RenderError> {
    let mut out = Bounded {
        buf: Vec::with_capacity(template.len().min(limit)),
        limit,
    };
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push(&rest[..start])?;
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(RenderError::Bad("unclosed \"{{\"".into()));
        };
        let path = after[..end].trim();
        let value = lookup(context, path)
            .ok_or_else(|| RenderError::Bad(format!("nothing at \"{path}\"")))?;
        match value {
            Value::String(s) => out.push(s)?,
            // Written through the bound, so a large value is never serialised whole.
            other => serde_json::to_writer(&mut out, other).map_err(|_| RenderError::TooLong)?,
        }
        rest = &after[end + 2..];
    }
    out.push(rest)?;
    String::from_utf8(out.buf).map_err(|e| RenderError::Bad(e.to_string()))
}

/// A buffer that refuses to grow past `limit`.
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
}

impl Bounded {
    fn push(&mut self, s: &str) -> Result<(), RenderError> {
        if self.buf.len() + s.len() > self.limit {
            return Err(RenderError::TooLong);
        }
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buf.len() + bytes.len() > self.limit {
            return Err(io::Error::other("too long"));
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lookup<'v>(context: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(context, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Renders every string inside `value` (tool arguments): each within
/// [`MAX_RENDERED_BYTES`], all within [`MAX_RENDERED_ARGS_BYTES`], at most
/// [`MAX_RENDER_DEPTH`] levels deep.
pub(crate) fn render_value(value: &Value, context: &Value) -> Result<Value, String> {
    let mut budget = MAX_RENDERED_ARGS_BYTES;
    render_value_within(value, context, 0, &mut budget)
}

fn render_value_within(
    value: &Value,
    context: &Value,
    depth: usize,
    budget: &mut usize,
) -> Result<Value, String> {
    let nested = |items_depth: usize| {
        if items_depth > MAX_RENDER_DEPTH {
            Err(format!(
                "arguments nested deeper than {MAX_RENDER_DEPTH} levels"
            ))
        } else {
            Ok(items_depth)
        }
    };
    Ok(match value {
        Value::String(s) => {
            let limit = MAX_RENDERED_BYTES.min(*budget);
            let text = render_within(s, context, limit).map_err(|e| {
                e.or_too_long(|| {
                    if limit == MAX_RENDERED_BYTES {
                        too_long(MAX_RENDERED_BYTES)
                    } else {
                        format!(
                            "rendered arguments longer than {MAX_RENDERED_ARGS_BYTES} bytes in all"
                        )
                    }
                })
            })?;
            *budget -= text.len();
            Value::String(text)
        }
        Value::Array(items) => {
            let depth = nested(depth + 1)?;
            Value::Array(
                items
                    .iter()
                    .map(|v| render_value_within(v, context, depth, budget))
                    .collect::<Result<_, _>>()?,
            )
        }
        Value::Object(map) => {
            let depth = nested(depth + 1)?;
            Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), render_value_within(v, context, depth, budget)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;
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

    #[test]
    fn repeated_references_to_a_large_value_stop_at_the_bound() {
        // Before the bound, 1,000 references to a 100 KB input rendered 100 MB.
        let ctx =
            json!({"inputs": {"big": "x".repeat(100_000), "obj": {"k": "y".repeat(100_000)}}});
        let template = "{{ inputs.big }}".repeat(1_000);
        assert_eq!(
            render(&template, &ctx).unwrap_err(),
            "rendered text longer than 262144 bytes"
        );
        // A non-string value is serialised through the bound, never whole.
        let template = "{{ inputs.obj }}".repeat(1_000);
        assert_eq!(
            render(&template, &ctx).unwrap_err(),
            "rendered text longer than 262144 bytes"
        );
        let two = render("{{ inputs.big }}{{ inputs.big }}", &ctx).unwrap();
        assert_eq!(two.len(), 200_000);
        // Missing paths still say which.
        assert_eq!(
            render("{{ inputs.big }}{{ nope }}", &ctx).unwrap_err(),
            "nothing at \"nope\""
        );
    }

    #[test]
    fn tool_arguments_are_bounded_in_total_and_in_depth() {
        let ctx = json!({"state": {"big": "x".repeat(200_000)}});
        let args: serde_json::Map<String, Value> = (0..10)
            .map(|i| (format!("a{i}"), json!("{{ state.big }}")))
            .collect();
        assert_eq!(
            render_value(&Value::Object(args), &ctx).unwrap_err(),
            "rendered arguments longer than 1048576 bytes in all"
        );
        let one = render_value(&json!({"a": ["{{ state.big }}", 1]}), &ctx).unwrap();
        assert_eq!(one["a"][0].as_str().unwrap().len(), 200_000);
        assert_eq!(
            render_value(&json!({"a": "{{ state.big }}{{ state.big }}"}), &ctx).unwrap_err(),
            "rendered text longer than 262144 bytes"
        );
        let mut deep = json!("{{ state.big }}");
        for _ in 0..MAX_RENDER_DEPTH {
            deep = json!([deep]);
        }
        assert!(render_value(&deep, &ctx).is_ok());
        assert_eq!(
            render_value(&json!({ "a": deep }), &ctx).unwrap_err(),
            "arguments nested deeper than 64 levels"
        );
    }

    #[test]
    fn references_bounds_the_template_itself() {
        let many = "{{ a }}".repeat(MAX_TEMPLATE_REFERENCES);
        assert_eq!(references(&many).unwrap().len(), MAX_TEMPLATE_REFERENCES);
        assert_eq!(
            references(&format!("{many}{{{{ a }}}}")).unwrap_err(),
            "more than 64 references in one template"
        );
        let long = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert_eq!(
            references(&long).unwrap_err(),
            "template longer than 65536 bytes (65537 bytes)"
        );
    }

    /// Templates made of braces, paths and text, in any order.
    fn template() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{{".to_owned()),
            Just("}}".to_owned()),
            Just("{{ big }}".to_owned()),
            Just("{{ obj }}".to_owned()),
            Just("{{ list.1 }}".to_owned()),
            Just("{{ obj.k }}".to_owned()),
            Just("{{ nope.x }}".to_owned()),
            Just(" . ".to_owned()),
            "[a-z{} .]{0,12}",
        ];
        prop_oneof![
            prop::collection::vec(piece, 0..300).prop_map(|p| p.concat()),
            any::<String>(),
        ]
    }

    fn text_bytes(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(text_bytes).sum(),
            Value::Object(map) => map.values().map(text_bytes).sum(),
            _ => 0,
        }
    }

    fn context() -> impl Strategy<Value = Value> {
        (0usize..(64 * 1024), any::<String>()).prop_map(|(n, s)| {
            json!({
                "big": "b".repeat(n),
                "obj": { "k": s, "n": n, "nested": [[["x".repeat(n / 2)]]] },
                "list": [1, "two", null],
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn renders_are_bounded_or_say_why(t in template(), ctx in context(), depth in 0usize..100) {
            match render(&t, &ctx) {
                Ok(out) => prop_assert!(out.len() <= MAX_RENDERED_BYTES),
                Err(why) => prop_assert!(!why.is_empty()),
            }
            let _ = references(&t);
            let mut args = json!({ "a": t.clone(), "b": [t.clone(), t.clone(), 1] });
            for _ in 0..depth {
                args = json!({ "d": args, "t": t.clone() });
            }
            match render_value(&args, &ctx) {
                Ok(out) => {
                    // The innermost array is two levels below the wrappers.
                    prop_assert!(depth + 2 <= MAX_RENDER_DEPTH);
                    prop_assert!(text_bytes(&out) <= MAX_RENDERED_ARGS_BYTES);
                }
                Err(why) => prop_assert!(!why.is_empty()),
            }
        }
    }
}
