//! The provider contract suite, in the manner of TensorZero's: every provider runs the same
//! tests (`tests.rs`) against its local upstream (`fakes/`, answering exactly as the real API
//! does), each declaring below which capabilities apply. A capability declared `[yes]` is
//! tested; one declared `[no "why"]` yields an ignored `<test>::unsupported` carrying the
//! reason, so `cargo test` lists what each provider skips. Usage rows are checked on SQLite
//! and PostgreSQL (`<test>::sqlite`, `<test>::postgres`).
//!
//! | capability        | openai | compatible | compatible, keyed | anthropic | simulated |
//! |-------------------|--------|------------|-------------------|-----------|-----------|
//! | completion        | yes    | yes        | yes               | yes       | yes       |
//! | streaming         | yes    | yes        | yes               | yes       | yes       |
//! | usage_in_stream   | yes    | no         | no                | yes       | yes       |
//! | tool_calls        | yes    | yes        | yes               | yes       | no        |
//! | stream_tool_calls | yes    | yes        | yes               | no        | no        |
//! | http_errors       | yes    | yes        | yes               | yes       | no        |
//! | auth              | yes    | no         | yes               | yes       | no        |
//! | retry_after       | yes    | yes        | yes               | yes       | no        |
//! | stream_failures   | yes    | yes        | yes               | yes       | no        |
//! | prompt_cache      | yes    | yes        | yes               | yes       | no        |
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod contract;
mod fakes {
    pub mod anthropic;
    pub mod openai;
}
mod tests;
mod upstreams {
    pub mod anthropic;
    pub mod openai;
    pub mod simulated;
}

/// OpenAI itself.
mod openai {
    provider_contract! {
        name: "openai", model: "gpt-4o-mini", start: crate::upstreams::openai::start,
        completion: [yes], streaming: [yes], usage_in_stream: [yes], tool_calls: [yes],
        stream_tool_calls: [yes], http_errors: [yes], auth: [yes], retry_after: [yes],
        stream_failures: [yes], prompt_cache: [yes],
    }
}

/// An OpenAI-compatible server (Ollama, vLLM, llama.cpp…) configured as vorg configures
/// one: an instance name, a base URL, no key. This one ignores `stream_options`.
mod compatible {
    provider_contract! {
        name: "ollama", model: "llama3.2", start: crate::upstreams::openai::start_compatible,
        completion: [yes], streaming: [yes],
        usage_in_stream: [no "this server ignores stream_options: the gateway records its estimate"],
        tool_calls: [yes], stream_tool_calls: [yes], http_errors: [yes],
        auth: [no "vorg sends no key to an OpenAI-compatible server"],
        retry_after: [yes], stream_failures: [yes], prompt_cache: [yes],
    }
}

/// A hosted OpenAI-compatible service with its own key (`groq=https://…|GROQ_API_KEY`).
mod compatible_with_key {
    provider_contract! {
        name: "groq", model: "llama-3.3-70b-versatile",
        start: crate::upstreams::openai::start_compatible_with_key,
        completion: [yes], streaming: [yes],
        usage_in_stream: [no "this server ignores stream_options: the gateway records its estimate"],
        tool_calls: [yes], stream_tool_calls: [yes], http_errors: [yes], auth: [yes],
        retry_after: [yes], stream_failures: [yes], prompt_cache: [yes],
    }
}

mod anthropic {
    provider_contract! {
        name: "anthropic", model: "claude-sonnet-4-5", start: crate::upstreams::anthropic::start,
        completion: [yes], streaming: [yes], usage_in_stream: [yes], tool_calls: [yes],
        stream_tool_calls: [no "tool_use input deltas are not translated to tool_calls chunks"],
        http_errors: [yes], auth: [yes], retry_after: [yes], stream_failures: [yes],
        prompt_cache: [yes],
    }
}

mod simulated {
    provider_contract! {
        name: "simulated", model: "sim-1", start: crate::upstreams::simulated::start,
        completion: [yes], streaming: [yes], usage_in_stream: [yes],
        tool_calls: [no "it calls tools through its text protocol (TOOL <name> <json>)"],
        stream_tool_calls: [no "it calls tools through its text protocol"],
        http_errors: [no "offline: no upstream to fail"],
        auth: [no "offline: no key"],
        retry_after: [no "offline: never rate limited"],
        stream_failures: [no "offline: its stream cannot break"],
        prompt_cache: [no "offline: no prompt cache"],
    }
}
