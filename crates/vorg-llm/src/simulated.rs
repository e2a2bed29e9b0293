//! `simulated`: an offline, deterministic provider, the default when no key is set, so every
//! feature works on a machine with no network. Same input, same output. It speaks in the
//! role its system prompt gives, follows the structure a prompt asks for (a standup update, a
//! list of ideas, JSON for a given schema), counts tokens the same way on every call (one per
//! four characters, rounded up) and costs nothing. Its answers say `provider: simulated`.

use futures_util::stream;
use serde_json::{Value, json};

use crate::{
    ChatRequest, ChatResponse, ChunkStream, ProviderError, Usage,
    provider::{BoxFuture, Provider},
    types::content_text,
};

pub const NAME: &str = "simulated";
pub const MODEL: &str = "sim-1";

pub struct Simulated;

/// Tokens in `text`, the same way every time: one per four characters, rounded up.
pub fn count_tokens(text: &str) -> i64 {
    (text.chars().count() as i64 + 3) / 4
}

/// A stable 64-bit FNV-1a hash, so choices depend on the input only.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// The role named by a system message ("You are the CTO …"), if any.
fn persona(req: &ChatRequest) -> Option<String> {
    let system = req
        .messages()
        .iter()
        .find(|m| m["role"] == "system")
        .map(|m| content_text(&m["content"]))?;
    let lower = system.to_lowercase();
    let start = lower.find("you are ")? + "you are ".len();
    let rest = &system[start..];
    let role: String = rest
        .trim_start_matches("the ")
        .trim_start_matches("a ")
        .trim_start_matches("an ")
        .split(['.', ',', '\n', ';'])
        .next()?
        .trim()
        .to_owned();
    (!role.is_empty()).then_some(role)
}

/// A value matching a JSON Schema (the common keywords), filled deterministically.
fn from_schema(schema: &Value, seed: u64, topic: &str) -> Value {
    if let Some(options) = schema["enum"].as_array().filter(|o| !o.is_empty()) {
        return options[(seed as usize) % options.len()].clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    match schema["type"]
        .as_str()
        .unwrap_or(if schema["properties"].is_object() {
            "object"
        } else {
            "string"
        }) {
        "object" => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (i, (name, sub)) in props.iter().enumerate() {
                    out.insert(
                        name.clone(),
                        from_schema(sub, seed.wrapping_add(i as u64 * 7919), name),
                    );
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = schema["minItems"].as_u64().unwrap_or(1).clamp(1, 5);
            Value::Array(
                (0..n)
                    .map(|i| from_schema(&schema["items"], seed.wrapping_add(i), topic))
                    .collect(),
            )
        }
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(0) + (seed % 5) as i64 + 1),
        "number" => {
            json!(schema["minimum"].as_f64().unwrap_or(0.0) + (seed % 100) as f64 / 10.0 + 1.0)
        }
        "boolean" => json!(seed.is_multiple_of(2)),
        _ => json!(format!("{} {}", topic.replace('_', " "), seed % 97)),
    }
}

fn answer(req: &ChatRequest) -> String {
    let prompt = req.prompt_text();
    let seed = fnv(&prompt);
    let lower = prompt.to_lowercase();
    let who = persona(req).unwrap_or_else(|| "assistant".to_owned());
    let schema = req
        .body
        .get("response_format")
        .and_then(|f| f["json_schema"]["schema"].as_object().cloned());
    if let Some(schema) = schema {
        return from_schema(&Value::Object(schema), seed, "item").to_string();
    }
    // Tools offered and none called yet in this turn: call one through the text protocol
    // (`TOOL <name> <json arguments>`), arguments filled from its parameter schema.
    let called = || {
        req.messages()
            .iter()
            .filter(|m| m["role"] != "system")
            .any(|m| {
                content_text(&m["content"])
                    .lines()
                    .any(|l| l.starts_with("TOOL RESULT ") || l.starts_with("TOOL ERROR "))
            })
    };
    if let Some(tools) = req
        .body
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        && !called()
    {
        let f = &tools[(seed as usize) % tools.len()]["function"];
        if let Some(name) = f["name"].as_str() {
            return format!("TOOL {name} {}", from_schema(&f["parameters"], seed, name));
        }
    }
    // A schema pasted into the prompt ("… as JSON matching {…}").
    if lower.contains("json")
        && let Some(start) = prompt.find('{')
        && let Ok(schema) =
            serde_json::from_str::<Value>(prompt[start..].trim().trim_end_matches("```"))
    {
        return from_schema(&schema, seed, "item").to_string();
    }
    let topics = [
        "onboarding",
        "pricing page",
        "API latency",
        "hiring plan",
        "customer interviews",
        "release notes",
        "budget review",
    ];
    let pick = |n: u64| topics[((seed >> (n * 8)) as usize) % topics.len()];
    if lower.contains("standup") {
        return format!(
            "[{who}] Yesterday: finished the {} work. Today: {}. Blockers: {}.",
            pick(0),
            pick(1),
            if seed.is_multiple_of(3) {
                "none"
            } else {
                "waiting on a review"
            }
        );
    }
    if lower.contains("idea") || lower.contains("brainstorm") {
        let n = 3 + (seed % 3) as usize;
        let ideas: Vec<String> = (0..n)
            .map(|i| format!("{}. Improve {} ({})", i + 1, pick(i as u64), who))
            .collect();
        return ideas.join("\n");
    }
    // Quote the request (the first line of the last user message), not the system prompt.
    let asked = req
        .messages()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_else(|| prompt.clone());
    format!(
        "[{who}] On \"{}\": I would start with the {} and report back.",
        asked
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .chars()
            .take(60)
            .collect::<String>(),
        pick(2)
    )
}

fn completion(req: &ChatRequest, text: &str) -> (Value, Usage) {
    let usage = Usage {
        prompt_tokens: count_tokens(&req.prompt_text()),
        completion_tokens: count_tokens(text),
        ..Usage::default()
    };
    let id = format!("chatcmpl-sim-{:016x}", fnv(&req.prompt_text()));
    let body = json!({
        "id": id, "object": "chat.completion", "created": 0, "model": MODEL,
        "provider": NAME,
        "choices": [{ "index": 0, "finish_reason": "stop",
                      "message": { "role": "assistant", "content": text } }],
        "usage": usage.to_openai(),
    });
    (body, usage)
}

/// Dimensions of a simulated embedding when the request names none.
pub const EMBEDDING_DIMENSIONS: usize = 256;

/// The texts of an embeddings request's `input`: a string, or an array of strings (token
/// arrays are embedded by their decimal text).
fn embedding_inputs(req: &ChatRequest) -> Result<Vec<String>, ProviderError> {
    let bad = |m: &str| ProviderError::new(NAME, crate::error::ErrorKind::BadRequest, m);
    match req.body.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= 2048 => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Array(tokens) => Ok(tokens
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(bad(
                    "input: each item must be a string or an array of tokens",
                )),
            })
            .collect(),
        _ => Err(bad(
            "input: required, a string or an array of 1 to 2048 strings",
        )),
    }
}

/// A unit vector of `dims` numbers that depends on `text` only.
pub fn embedding(text: &str, dims: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dims)
        .map(|i| {
            let h = fnv(&format!("{i}:{text}"));
            (h % 20_001) as f32 / 10_000.0 - 1.0
        })
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// An embeddings answer in OpenAI's shape, `float` or `base64` (little-endian f32) as asked.
fn embeddings(req: &ChatRequest) -> Result<(Value, Usage), ProviderError> {
    let inputs = embedding_inputs(req)?;
    let dims = match req.body.get("dimensions") {
        None | Some(Value::Null) => EMBEDDING_DIMENSIONS,
        Some(d) => d
            .as_u64()
            .filter(|d| (1..=4096).contains(d))
            .map(|d| d as usize)
            .ok_or_else(|| {
                ProviderError::new(
                    NAME,
                    crate::error::ErrorKind::BadRequest,
                    "dimensions: must be an integer from 1 to 4096",
                )
            })?,
    };
    let base64 = req.body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let v = embedding(text, dims);
            let encoded = if base64 {
                use base64::Engine;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": i, "embedding": encoded })
        })
        .collect();
    let tokens: i64 = inputs.iter().map(|t| count_tokens(t)).sum();
    let usage = Usage {
        prompt_tokens: tokens,
        completion_tokens: 0,
        ..Usage::default()
    };
    let body = json!({
        "object": "list", "data": data, "model": MODEL, "provider": NAME,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    });
    Ok((body, usage))
}

impl Provider for Simulated {
    fn name(&self) -> &str {
        NAME
    }

    fn embed<'a>(
        &'a self,
        _model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let (body, usage) = embeddings(req)?;
            Ok(ChatResponse::new(body, usage))
        })
    }

    fn complete<'a>(
        &'a self,
        _model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let (body, usage) = completion(req, &answer(req));
            Ok(ChatResponse::new(body, usage))
        })
    }

    fn stream<'a>(
        &'a self,
        _model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            let text = answer(req);
            let (body, usage) = completion(req, &text);
            let id = body["id"].clone();
            let chunk = |delta: Value, finish: Value| {
                json!({ "id": id, "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                        "provider": NAME, "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
            };
            let mut chunks = vec![chunk(
                json!({ "role": "assistant", "content": "" }),
                Value::Null,
            )];
            let words: Vec<&str> = text.split_inclusive(' ').collect();
            for piece in words.chunks(4) {
                chunks.push(chunk(json!({ "content": piece.concat() }), Value::Null));
            }
            chunks.push(chunk(json!({}), json!("stop")));
            let mut last = chunks.last().cloned().unwrap_or(Value::Null);
            last["choices"] = json!([]);
            last["usage"] = usage.to_openai();
            chunks.push(last);
            Ok(Box::pin(stream::iter(chunks.into_iter().map(Ok))) as ChunkStream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_system(system: &str, prompt: &str) -> ChatRequest {
        let mut req = ChatRequest::user("sim-1", prompt);
        req.body.insert(
            "messages".into(),
            json!([{ "role": "system", "content": system }, { "role": "user", "content": prompt }]),
        );
        req
    }

    #[tokio::test]
    async fn the_same_input_gives_the_same_output_and_usage() {
        let req = with_system(
            "You are the CTO of a small startup.",
            "Give your standup update.",
        );
        let a = Simulated.complete(MODEL, &req).await.unwrap();
        let b = Simulated.complete(MODEL, &req).await.unwrap();
        assert_eq!(a.body, b.body);
        assert!(
            a.text().starts_with("[CTO of a small startup] Yesterday:"),
            "{}",
            a.text()
        );
        assert_eq!(a.usage.prompt_tokens, count_tokens(&req.prompt_text()));
        assert_eq!(a.body["provider"], "simulated");
    }

    #[tokio::test]
    async fn it_calls_an_offered_tool_by_the_text_protocol_then_answers() {
        let tools = json!([{ "type": "function", "function": { "name": "record_decision",
            "parameters": { "type": "object", "required": ["title"],
                "properties": { "title": { "type": "string" } } } } }]);
        let mut req = ChatRequest::user("sim-1", "Decide on pricing.");
        req.body.insert("tools".into(), tools.clone());
        let text = Simulated.complete(MODEL, &req).await.unwrap().text();
        let args = text.strip_prefix("TOOL record_decision ").unwrap();
        let args: Value = serde_json::from_str(args).unwrap();
        assert!(args["title"].is_string(), "{text}");

        let mut req = ChatRequest::user(
            "sim-1",
            &format!("Decide on pricing.\n\n{text}\nTOOL RESULT record_decision: {{}}"),
        );
        req.body.insert("tools".into(), tools);
        let text = Simulated.complete(MODEL, &req).await.unwrap().text();
        assert!(!text.starts_with("TOOL "), "{text}");
    }

    #[tokio::test]
    async fn it_follows_a_json_schema_it_is_given() {
        let mut req = ChatRequest::user("sim-1", "Plan the hiring.");
        req.body.insert(
            "response_format".into(),
            json!({ "type": "json_schema", "json_schema": { "name": "plan", "schema": {
                "type": "object", "required": ["roles"],
                "properties": { "roles": { "type": "array", "minItems": 2,
                    "items": { "type": "object", "properties": {
                        "title": { "type": "string" }, "count": { "type": "integer", "minimum": 1 } } } } } } } }),
        );
        let out = Simulated.complete(MODEL, &req).await.unwrap();
        let v: Value = serde_json::from_str(&out.text()).unwrap();
        assert_eq!(v["roles"].as_array().unwrap().len(), 2);
        assert!(v["roles"][0]["count"].as_i64().unwrap() >= 1);
    }

    #[tokio::test]
    async fn its_stream_carries_the_same_text_and_ends_with_usage() {
        use futures_util::StreamExt;
        let req = ChatRequest::user("sim-1", "Brainstorm ideas for growth.");
        let whole = Simulated.complete(MODEL, &req).await.unwrap();
        let chunks: Vec<Value> = Simulated
            .stream(MODEL, &req)
            .await
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
            .await;
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, whole.text());
        assert_eq!(chunks.last().unwrap()["usage"], whole.body["usage"]);
        assert!(whole.text().starts_with("1. Improve"), "{}", whole.text());
    }
}
