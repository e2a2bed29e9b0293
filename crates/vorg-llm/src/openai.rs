//! The OpenAI Chat Completions protocol, for OpenAI itself and any compatible server
//! (Ollama, vLLM, llama.cpp, LM Studio, OpenRouter, Groq): configurable base URL and name.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::Value;
use vorg_domain::Secret;

use crate::{
    ChatRequest, ChatResponse, ChunkStream, ProviderError, Usage,
    error::{ErrorKind, http_client, send_checked},
    provider::{BoxFuture, Provider},
};

/// An OpenAI-protocol upstream.
pub struct OpenAi {
    name: String,
    /// `…/chat/completions` and `…/embeddings`, parsed once.
    chat_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    key: Option<Secret>,
    client: reqwest::Client,
    timeout: Duration,
}

impl OpenAi {
    /// `base_url` up to and including `/v1` (e.g. `https://api.openai.com/v1`).
    pub fn new(
        name: &str,
        base_url: &str,
        key: Option<Secret>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, ProviderError> {
        let client = http_client(name, connect_timeout, timeout)?;
        let base = base_url.trim_end_matches('/');
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{base}/{path}")).map_err(|e| {
                ProviderError::new(
                    name,
                    ErrorKind::Connect,
                    format!("the base URL {base:?} is not a URL: {e}"),
                )
            })
        };
        Ok(OpenAi {
            name: name.to_owned(),
            chat_url: url("chat/completions")?,
            embeddings_url: url("embeddings")?,
            key,
            client,
            timeout,
        })
    }

    fn request(&self, model: &str, req: &ChatRequest, stream: bool) -> reqwest::RequestBuilder {
        let body = Outgoing {
            body: &req.body,
            model,
            stream: Some(stream),
        };
        let mut builder = self.client.post(self.chat_url.clone()).json(&body);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key.expose());
        }
        builder
    }
}

/// The body sent upstream: the caller's fields as they came (unknown ones included), with
/// `model` set to the upstream's name and, for chat, `stream` (and on a stream
/// `stream_options.include_usage`, so usage is always accounted) set by vorg. Written
/// straight from the caller's map, without copying it.
struct Outgoing<'a> {
    body: &'a serde_json::Map<String, Value>,
    model: &'a str,
    stream: Option<bool>,
}

impl serde::Serialize for Outgoing<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        #[derive(serde::Serialize)]
        struct IncludeUsage {
            include_usage: bool,
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        if let Some(stream) = self.stream {
            m.serialize_entry("stream", &stream)?;
            if stream {
                m.serialize_entry(
                    "stream_options",
                    &IncludeUsage {
                        include_usage: true,
                    },
                )?;
            }
        }
        for (k, v) in self.body {
            let ours =
                k == "model" || (self.stream.is_some() && (k == "stream" || k == "stream_options"));
            if !ours {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }

    fn embed<'a>(
        &'a self,
        model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let body = Outgoing {
                body: &req.body,
                model,
                stream: None,
            };
            let mut builder = self
                .client
                .post(self.embeddings_url.clone())
                .json(&body)
                .timeout(self.timeout);
            if let Some(key) = &self.key {
                builder = builder.bearer_auth(key.expose());
            }
            let resp = send_checked(&self.name, builder).await?;
            let body: Value = resp
                .json()
                .await
                .map_err(|e| ProviderError::from_reqwest(&self.name, &e))?;
            if body["data"].as_array().is_none() {
                return Err(ProviderError::new(
                    &self.name,
                    ErrorKind::Malformed,
                    "the answer has no `data`",
                ));
            }
            let usage = Usage::from_openai(&body["usage"]).unwrap_or_default();
            Ok(ChatResponse::new(body, usage))
        })
    }

    fn complete<'a>(
        &'a self,
        model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let resp = send_checked(
                &self.name,
                self.request(model, req, false).timeout(self.timeout),
            )
            .await?;
            let body: Value = resp
                .json()
                .await
                .map_err(|e| ProviderError::from_reqwest(&self.name, &e))?;
            if body["choices"].as_array().is_none() {
                return Err(ProviderError::new(
                    &self.name,
                    ErrorKind::Malformed,
                    "the answer has no `choices`",
                ));
            }
            let usage = Usage::from_openai(&body["usage"]).unwrap_or_default();
            Ok(ChatResponse::new(body, usage))
        })
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            let resp = send_checked(&self.name, self.request(model, req, true)).await?;
            let name = self.name.clone();
            let events = Box::pin(resp.bytes_stream().eventsource());
            // State: the upstream events, and whether the stream is over. A stream that ends
            // without `[DONE]` was cut off: that is an error, not a short answer.
            let chunks =
                futures_util::stream::unfold((events, false), move |(mut events, over)| {
                    let name = name.clone();
                    async move {
                        if over {
                            return None;
                        }
                        loop {
                            match events.next().await {
                                Some(Ok(ev)) if ev.data.trim() == "[DONE]" => return None,
                                Some(Ok(ev)) if ev.data.trim().is_empty() => continue,
                                Some(Ok(ev)) => {
                                    let item =
                                        serde_json::from_str::<Value>(&ev.data).map_err(|err| {
                                            ProviderError::new(
                                                &name,
                                                ErrorKind::Malformed,
                                                format!("a stream chunk is not JSON: {err}"),
                                            )
                                        });
                                    // An error event mid-stream ends it as an error (its text
                                    // redacted), never as a chunk passed on raw.
                                    let item = item.and_then(|v| match v.get("error") {
                                        Some(err) if err.is_object() => Err(ProviderError::new(
                                            &name,
                                            ErrorKind::Server,
                                            format!(
                                                "the stream failed: {}",
                                                err["message"].as_str().unwrap_or("error")
                                            ),
                                        )),
                                        _ => Ok(v),
                                    });
                                    let over = item.is_err();
                                    return Some((item, (events, over)));
                                }
                                Some(Err(err)) => {
                                    let e = ProviderError::new(
                                        &name,
                                        ErrorKind::Connect,
                                        format!("the stream broke: {err}"),
                                    );
                                    return Some((Err(e), (events, true)));
                                }
                                None => {
                                    let e = ProviderError::new(
                                        &name,
                                        ErrorKind::Connect,
                                        "the stream ended before [DONE]",
                                    );
                                    return Some((Err(e), (events, true)));
                                }
                            }
                        }
                    }
                });
            Ok(Box::pin(chunks) as ChunkStream)
        })
    }
}
