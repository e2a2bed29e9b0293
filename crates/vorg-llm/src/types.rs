//! Requests and responses in the OpenAI Chat Completions shape.

use serde_json::{Map, Value, json};

/// A chat request: an OpenAI Chat Completions body. Unknown fields are kept and passed to
/// OpenAI-compatible upstreams untouched (a proxy must not drop what it does not know).
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub body: Map<String, Value>,
}

impl ChatRequest {
    /// A request with one user message.
    pub fn user(model: &str, prompt: &str) -> Self {
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert(
            "messages".into(),
            json!([{ "role": "user", "content": prompt }]),
        );
        ChatRequest { body }
    }

    pub fn model(&self) -> &str {
        self.body.get("model").and_then(Value::as_str).unwrap_or("")
    }

    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The output-token limit the caller set: the largest of `max_completion_tokens` and
    /// `max_tokens` (an upstream may honour either; `null` and non-numbers are no limit).
    pub fn max_tokens(&self) -> Option<u64> {
        ["max_completion_tokens", "max_tokens"]
            .iter()
            .filter_map(|k| self.body.get(*k).and_then(Value::as_u64))
            .max()
    }

    /// How many completions the caller asked for (`n`, 1 when absent or not a count; at
    /// most 128, OpenAI's own bound).
    pub fn choices(&self) -> u64 {
        self.body
            .get("n")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .clamp(1, 128)
    }

    /// The text of every message, joined (for token estimates and the simulated provider).
    pub fn prompt_text(&self) -> String {
        self.messages()
            .iter()
            .map(|m| content_text(&m["content"]))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The text of a message's `content` (a string, or an array of parts).
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// The characters of [`content_text`]'s answer, counted without building it.
pub fn content_chars(content: &Value) -> usize {
    match content {
        Value::String(s) => s.chars().count(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .map(|t| t.chars().count())
            .sum(),
        _ => 0,
    }
}

/// Tokens used by a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, cached or not.
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Input tokens read from the provider's prompt cache (part of `prompt_tokens`).
    pub cache_read_tokens: i64,
    /// Input tokens written to the provider's prompt cache (part of `prompt_tokens`).
    pub cache_write_tokens: i64,
}

impl Usage {
    pub fn new(prompt_tokens: i64, completion_tokens: i64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            ..Usage::default()
        }
    }

    /// Reads an OpenAI `usage` object (absent fields count 0): cache reads from
    /// `prompt_tokens_details.cached_tokens`, cache writes from `cache_creation_input_tokens`
    /// (the field LiteLLM and vorg add for providers that bill them).
    pub fn from_openai(v: &Value) -> Option<Usage> {
        let u = v.as_object()?;
        let int = |v: Option<&Value>| v.and_then(Value::as_i64).unwrap_or(0).max(0);
        Some(Usage {
            prompt_tokens: int(u.get("prompt_tokens")),
            completion_tokens: int(u.get("completion_tokens")),
            cache_read_tokens: int(u
                .get("prompt_tokens_details")
                .and_then(|d| d.get("cached_tokens"))),
            cache_write_tokens: int(u.get("cache_creation_input_tokens")),
        })
    }

    pub fn to_openai(self) -> Value {
        let mut v = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        });
        if self.cache_read_tokens > 0 || self.cache_write_tokens > 0 {
            v["prompt_tokens_details"] = json!({ "cached_tokens": self.cache_read_tokens });
        }
        if self.cache_write_tokens > 0 {
            v["cache_creation_input_tokens"] = json!(self.cache_write_tokens);
        }
        v
    }
}

/// A completed chat: an OpenAI `chat.completion` body and what it cost in tokens.
#[derive(Debug, Clone)]
pub struct ChatResponse {
    pub body: Value,
    pub usage: Usage,
    /// What the call cost, in micro-dollars, priced once by the gateway when it recorded the
    /// call (0 from a provider, before the gateway has priced it).
    pub cost_micro_usd: i64,
}

impl ChatResponse {
    /// An answer as a provider gives it (not priced yet).
    pub fn new(body: Value, usage: Usage) -> Self {
        ChatResponse {
            body,
            usage,
            cost_micro_usd: 0,
        }
    }
}

impl ChatResponse {
    /// The first choice's text.
    pub fn text(&self) -> String {
        content_text(&self.body["choices"][0]["message"]["content"])
    }
}
