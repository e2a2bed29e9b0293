//! Anthropic's Messages API: `x-api-key` and `anthropic-version` headers, the system prompt
//! as a top-level field, `max_tokens` required (defaulted), and streaming through its SSE
//! event types (`message_start`, `content_block_delta`, `message_delta`, `message_stop`,
//! `error`). Requests and answers are translated to and from the OpenAI shape.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use vorg_domain::Secret;

use crate::{
    ChatRequest, ChatResponse, ChunkStream, ProviderError, Usage,
    error::{ErrorKind, http_client, send_checked},
    provider::{BoxFuture, Provider},
    types::content_text,
};

pub const VERSION: &str = "2023-06-01";
/// `max_tokens` when the caller sets none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 1024;

pub struct Anthropic {
    name: String,
    base_url: String,
    key: Secret,
    client: reqwest::Client,
    timeout: Duration,
}

impl Anthropic {
    /// `base_url` without `/v1` (e.g. `https://api.anthropic.com`).
    pub fn new(
        name: &str,
        base_url: &str,
        key: Secret,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, ProviderError> {
        let client = http_client(name, connect_timeout, timeout)?;
        Ok(Anthropic {
            name: name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            key,
            client,
            timeout,
        })
    }

    fn body(&self, model: &str, req: &ChatRequest, stream: bool) -> Value {
        let mut system = Vec::new();
        let mut messages = Vec::new();
        for m in req.messages() {
            let text = content_text(&m["content"]);
            match m["role"].as_str().unwrap_or("user") {
                "system" | "developer" => system.push(text),
                "assistant" => messages.push(json!({ "role": "assistant", "content": text })),
                // Tool results go back as user turns.
                _ => messages.push(json!({ "role": "user", "content": text })),
            }
        }
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert(
            "max_tokens".into(),
            json!(req.max_tokens().unwrap_or(DEFAULT_MAX_TOKENS)),
        );
        body.insert("messages".into(), Value::Array(messages));
        if !system.is_empty() {
            body.insert("system".into(), json!(system.join("\n\n")));
        }
        for key in ["temperature", "top_p"] {
            if let Some(v) = req.body.get(key) {
                body.insert(key.into(), v.clone());
            }
        }
        if let Some(stop) = req.body.get("stop") {
            let list = if stop.is_string() {
                json!([stop])
            } else {
                stop.clone()
            };
            body.insert("stop_sequences".into(), list);
        }
        if let Some(tools) = req.body.get("tools").and_then(Value::as_array) {
            // OpenAI lets a function omit its description and parameters; Anthropic refuses a
            // null description and requires an input schema (an empty object's, then).
            let converted: Vec<Value> = tools
                .iter()
                .map(|t| {
                    let f = &t["function"];
                    let mut tool = json!({
                        "name": f["name"],
                        "input_schema": if f["parameters"].is_object() {
                            f["parameters"].clone()
                        } else {
                            json!({ "type": "object", "properties": {} })
                        },
                    });
                    if let Some(d) = f["description"].as_str() {
                        tool["description"] = json!(d);
                    }
                    tool
                })
                .collect();
            body.insert("tools".into(), Value::Array(converted));
        }
        if stream {
            body.insert("stream".into(), json!(true));
        }
        Value::Object(body)
    }

    async fn send(
        &self,
        body: &Value,
        total: Option<Duration>,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut builder = self
            .client
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", self.key.expose())
            .header("anthropic-version", VERSION)
            .json(body);
        if let Some(t) = total {
            builder = builder.timeout(t);
        }
        send_checked(&self.name, builder).await
    }
}

fn finish_reason(stop: &Value) -> Value {
    match stop.as_str() {
        Some("end_turn") | Some("stop_sequence") => json!("stop"),
        Some("max_tokens") => json!("length"),
        Some("tool_use") => json!("tool_calls"),
        _ => Value::Null,
    }
}

/// A Messages API answer as an OpenAI `chat.completion`.
fn to_openai(provider: &str, msg: &Value) -> Result<ChatResponse, ProviderError> {
    let blocks = msg["content"].as_array().ok_or_else(|| {
        ProviderError::new(
            provider,
            ErrorKind::Malformed,
            "the answer has no `content`",
        )
    })?;
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    let tool_calls: Vec<Value> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| {
            json!({ "id": b["id"], "type": "function",
                         "function": { "name": b["name"], "arguments": b["input"].to_string() } })
        })
        .collect();
    let mut usage = input_usage(&msg["usage"]);
    usage.completion_tokens = msg["usage"]["output_tokens"].as_i64().unwrap_or(0);
    let mut message = json!({ "role": "assistant", "content": text });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    let body = json!({
        "id": msg["id"], "object": "chat.completion", "created": 0, "model": msg["model"],
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason(&msg["stop_reason"]) }],
        "usage": usage.to_openai(),
    });
    Ok(ChatResponse::new(body, usage))
}

/// The input side of an Anthropic `usage`: `input_tokens` counts only what was neither read
/// from nor written to the prompt cache; the OpenAI shape's `prompt_tokens` counts all three.
fn input_usage(u: &Value) -> Usage {
    let int = |k: &str| u[k].as_i64().unwrap_or(0).max(0);
    let (read, write) = (
        int("cache_read_input_tokens"),
        int("cache_creation_input_tokens"),
    );
    Usage {
        prompt_tokens: int("input_tokens") + read + write,
        completion_tokens: 0,
        cache_read_tokens: read,
        cache_write_tokens: write,
    }
}

fn chunk(id: &Value, model: &Value, delta: Value, finish: Value) -> Value {
    json!({ "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
}

/// Translation state of one Anthropic stream.
#[derive(Default)]
struct StreamState {
    id: Value,
    model: Value,
    usage: Usage,
    finish: Value,
    done: bool,
}

/// Turns one Anthropic SSE event into OpenAI chunks (none, one, or the final two).
fn translate(
    provider: &str,
    st: &mut StreamState,
    event: &str,
    data: &str,
) -> Result<Vec<Value>, ProviderError> {
    let v: Value = serde_json::from_str(data).map_err(|e| {
        ProviderError::new(
            provider,
            ErrorKind::Malformed,
            format!("a stream event is not JSON: {e}"),
        )
    })?;
    Ok(match event {
        "message_start" => {
            st.id = v["message"]["id"].clone();
            st.model = v["message"]["model"].clone();
            st.usage = input_usage(&v["message"]["usage"]);
            vec![chunk(
                &st.id,
                &st.model,
                json!({ "role": "assistant", "content": "" }),
                Value::Null,
            )]
        }
        "content_block_delta" if v["delta"]["type"] == "text_delta" => {
            vec![chunk(
                &st.id,
                &st.model,
                json!({ "content": v["delta"]["text"] }),
                Value::Null,
            )]
        }
        "message_delta" => {
            if let Some(out) = v["usage"]["output_tokens"].as_i64() {
                st.usage.completion_tokens = out;
            }
            st.finish = finish_reason(&v["delta"]["stop_reason"]);
            Vec::new()
        }
        "message_stop" => {
            st.done = true;
            let mut last = chunk(&st.id, &st.model, json!({}), st.finish.clone());
            let mut usage = chunk(&st.id, &st.model, json!({}), Value::Null);
            usage["choices"] = json!([]);
            usage["usage"] = st.usage.to_openai();
            last["choices"][0]["finish_reason"] = st.finish.clone();
            vec![last, usage]
        }
        "error" => {
            let kind = match v["error"]["type"].as_str() {
                Some("overloaded_error") | Some("api_error") => ErrorKind::Server,
                Some("rate_limit_error") => ErrorKind::RateLimited,
                _ => ErrorKind::BadRequest,
            };
            let message = v["error"]["message"]
                .as_str()
                .unwrap_or("stream error")
                .to_owned();
            return Err(ProviderError::new(
                provider,
                kind,
                format!("the stream failed: {message}"),
            ));
        }
        // ping, content_block_start/stop, other deltas (tool input): nothing to forward.
        _ => Vec::new(),
    })
}

impl Provider for Anthropic {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(
        &'a self,
        model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let resp = self
                .send(&self.body(model, req, false), Some(self.timeout))
                .await?;
            let msg: Value = resp
                .json()
                .await
                .map_err(|e| ProviderError::from_reqwest(&self.name, &e))?;
            to_openai(&self.name, &msg)
        })
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            let resp = self.send(&self.body(model, req, true), None).await?;
            let name = self.name.clone();
            let events = Box::pin(resp.bytes_stream().eventsource());
            let init = (
                events,
                StreamState::default(),
                std::collections::VecDeque::<Value>::new(),
                false,
            );
            let chunks =
                futures_util::stream::unfold(init, move |(mut events, mut st, mut queue, over)| {
                    let name = name.clone();
                    async move {
                        loop {
                            if let Some(c) = queue.pop_front() {
                                return Some((Ok(c), (events, st, queue, over)));
                            }
                            if over || st.done {
                                return None;
                            }
                            match events.next().await {
                                Some(Ok(ev)) => {
                                    match translate(&name, &mut st, &ev.event, &ev.data) {
                                        Ok(out) => queue.extend(out),
                                        Err(e) => return Some((Err(e), (events, st, queue, true))),
                                    }
                                }
                                Some(Err(err)) => {
                                    let e = ProviderError::new(
                                        &name,
                                        ErrorKind::Connect,
                                        format!("the stream broke: {err}"),
                                    );
                                    return Some((Err(e), (events, st, queue, true)));
                                }
                                None => {
                                    let e = ProviderError::new(
                                        &name,
                                        ErrorKind::Connect,
                                        "the stream ended before message_stop",
                                    );
                                    return Some((Err(e), (events, st, queue, true)));
                                }
                            }
                        }
                    }
                });
            Ok(Box::pin(chunks) as ChunkStream)
        })
    }
}
