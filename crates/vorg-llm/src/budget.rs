//! Budgets and model policy around every call: the gateway asks a [`Governor`] which
//! budgets a call is charged to, reserves the call's worst case on all of them atomically
//! before calling, and settles to the real cost afterwards.

use std::{future::Future, pin::Pin};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use vorg_store::BudgetKey;

use crate::{
    ChatRequest, Pricing, Usage,
    call::CallContext,
    pricing::{Priced, UNKNOWN_MAX_OUTPUT},
};

/// What governs one call.
#[derive(Debug, Clone, Default)]
pub struct CallPolicy {
    /// Every budget the call is charged to (all apply; the tightest refuses first).
    pub budgets: Vec<BudgetKey>,
    /// Completion tokens assumed for the worst case when the request sets no `max_tokens`.
    pub default_max_tokens: u64,
    /// Share of a budget (thousandths) at which a `budget.warning` event is emitted.
    pub warn_permille: i64,
    /// Model patterns the caller may use (`*`, `model`, `provider/model`, `provider/*`);
    /// `None`: any.
    pub model_allowlist: Option<Vec<String>>,
    /// The calling API token's own model allow-list (applies beside `model_allowlist`).
    pub token_models: Option<Vec<String>>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Decides the budgets and model rules of a call (implemented by the organization); it
/// fails only when the policies or the persona cannot be read.
pub trait Governor: Send + Sync {
    fn plan<'a>(
        &'a self,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<CallPolicy, vorg_store::StoreError>>;
}

/// The budget that refused a call, with what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetExceeded {
    pub scope: vorg_domain::BudgetScope,
    pub subject: String,
    pub period: String,
    pub limit_micro_usd: i64,
    pub spent_micro_usd: i64,
    pub reserved_micro_usd: i64,
    pub call_worst_case_micro_usd: i64,
    /// When the period ends (`None` for per-run budgets, which do not reset).
    pub resets_at: Option<DateTime<Utc>>,
}

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let usd = |m: i64| vorg_domain::money::micro_to_usd(m);
        write!(
            f,
            "the {} budget of {} ({}) is ${} and ${} is spent or reserved; this call may cost up to ${}",
            self.scope,
            self.subject,
            self.period,
            usd(self.limit_micro_usd),
            usd(self.spent_micro_usd + self.reserved_micro_usd),
            usd(self.call_worst_case_micro_usd),
        )
    }
}

/// Whether `provider/model` matches one of `patterns`.
pub fn model_matches(patterns: &[String], provider: &str, model: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || p == model
            || p.split_once('/')
                .is_some_and(|(pp, pm)| pp == provider && (pm == "*" || pm == model))
    })
}

/// The monthly period of `now` (`2026-11`).
pub fn month_period(now: DateTime<Utc>) -> String {
    now.format("%Y-%m").to_string()
}

/// The daily period of `now` (`2026-11-29`).
pub fn day_period(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d").to_string()
}

/// When a period ends: the next month or day (UTC); `None` for `all`.
pub fn period_end(period: &str) -> Option<DateTime<Utc>> {
    let date = if period.len() == 7 {
        let first = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").ok()?;
        let (y, m) = if first.month() == 12 {
            (first.year() + 1, 1)
        } else {
            (first.year(), first.month() + 1)
        };
        NaiveDate::from_ymd_opt(y, m, 1)?
    } else {
        NaiveDate::parse_from_str(period, "%Y-%m-%d")
            .ok()?
            .succ_opt()?
    };
    Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?))
}

/// Tokens a prompt is assumed to use before the provider says: 1 per 4 characters (rounded
/// up) of the messages and of the tool and response-format definitions sent with them, plus 4
/// per message, an upper estimate for English text with the usual tokenizers.
pub fn estimate_prompt_tokens(req: &ChatRequest) -> i64 {
    let messages = req.messages();
    // The characters of `prompt_text()` (the messages' text joined by newlines), counted
    // without building it.
    let mut chars: usize = messages
        .iter()
        .map(|m| crate::types::content_chars(&m["content"]))
        .sum::<usize>()
        + messages.len().saturating_sub(1);
    for extra in ["tools", "functions", "response_format"] {
        if let Some(v) = req.body.get(extra) {
            chars += json_len(v);
        }
    }
    i64::try_from(chars.div_ceil(4)).unwrap_or(i64::MAX) + 4 * messages.len() as i64
}

/// The length of `v`'s compact JSON text, counted as it is written (nothing is kept).
fn json_len(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    let _ = serde_json::to_writer(&mut n, v);
    n.0
}

/// Tokens an embeddings request's `input` is assumed to use: 1 per 4 characters (rounded
/// up) of its text, plus 1 per input.
pub fn estimate_input_tokens(req: &ChatRequest) -> i64 {
    let (chars, items) = match req.body.get("input") {
        Some(serde_json::Value::String(s)) => (s.chars().count(), 1),
        Some(serde_json::Value::Array(items)) => (
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map_or_else(|| i.to_string().len(), |s| s.chars().count())
                })
                .sum(),
            items.len(),
        ),
        Some(other) => (other.to_string().len(), 1),
        None => (0, 0),
    };
    i64::try_from(chars.div_ceil(4) + items).unwrap_or(i64::MAX)
}

/// Completion tokens one call may produce at most: `n` completions of the output limit the
/// caller set, or of the model's own maximum when the caller set none. A limit above the
/// model's maximum is reserved as asked (the table's maximum may be out of date; the
/// upstream refuses a limit it cannot honour, at no cost).
pub fn worst_completion_tokens(
    pricing: &Pricing,
    req: &ChatRequest,
    provider: &str,
    model: &str,
    default_max_tokens: u64,
) -> i64 {
    let unknown = default_max_tokens.max(UNKNOWN_MAX_OUTPUT);
    let model_max = match pricing.priced(provider, model) {
        Priced::Known(p) | Priced::Fallback(p) => p.max_output.unwrap_or(unknown),
        Priced::Unknown => unknown,
    };
    let each = req.max_tokens().unwrap_or(model_max);
    i64::try_from(each.saturating_mul(req.choices())).unwrap_or(i64::MAX / 4)
}

/// The worst-case cost of `req` on `provider/model`: its prompt estimate and its
/// [`worst_completion_tokens`] priced.
pub fn worst_case(
    pricing: &Pricing,
    req: &ChatRequest,
    provider: &str,
    model: &str,
    default_max_tokens: u64,
) -> i64 {
    let usage = Usage {
        prompt_tokens: estimate_prompt_tokens(req),
        completion_tokens: worst_completion_tokens(
            pricing,
            req,
            provider,
            model,
            default_max_tokens,
        ),
        ..Usage::default()
    };
    pricing.cost_micro_usd(provider, model, usage).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_end_at_the_next_month_or_day() {
        let end = period_end("2026-12").unwrap();
        assert_eq!(end.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        let end = period_end("2026-11-30").unwrap();
        assert_eq!(end.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(period_end("all"), None);
    }

    fn req(body: serde_json::Value) -> ChatRequest {
        ChatRequest {
            body: body.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn the_worst_case_counts_every_completion_and_every_limit_field() {
        let p = Pricing::shipped();
        let worst = |b| worst_completion_tokens(&p, &req(b), "openai", "gpt-4o", 4096);
        // n completions of the limit.
        assert_eq!(
            worst(serde_json::json!({ "n": 20, "max_tokens": 100 })),
            2000
        );
        // A null field is no limit; the other one counts.
        assert_eq!(
            worst(serde_json::json!({ "max_completion_tokens": null, "max_tokens": 10000 })),
            10000
        );
        // Both set: the larger.
        assert_eq!(
            worst(serde_json::json!({ "max_completion_tokens": 50, "max_tokens": 900 })),
            900
        );
        // No limit: the model's own maximum; a larger one is taken as asked.
        assert_eq!(worst(serde_json::json!({})), 16384);
        assert_eq!(worst(serde_json::json!({ "max_tokens": 100000 })), 100000);
        // A bad n counts as one.
        assert_eq!(worst(serde_json::json!({ "n": "x", "max_tokens": 7 })), 7);
    }

    #[test]
    fn the_prompt_estimate_counts_what_the_joined_text_holds() {
        let r = req(serde_json::json!({
            "messages": [
                { "role": "system", "content": "Tu es l’assistant." },
                { "role": "user", "content": [{ "type": "text", "text": "héllo" },
                                              { "type": "image_url", "image_url": { "url": "x" } }] },
            ],
            "tools": [{ "type": "function", "function": { "name": "f" } }],
        }));
        let joined = r.prompt_text().chars().count();
        let tools = r.body["tools"].to_string().len();
        let expected = i64::try_from((joined + tools).div_ceil(4)).unwrap() + 8;
        assert_eq!(estimate_prompt_tokens(&r), expected);
    }

    #[test]
    fn model_patterns() {
        let p = vec!["openai/*".to_owned(), "claude-haiku".to_owned()];
        assert!(model_matches(&p, "openai", "gpt-4o"));
        assert!(model_matches(&p, "anthropic", "claude-haiku"));
        assert!(!model_matches(&p, "anthropic", "claude-opus"));
        assert!(model_matches(&["*".to_owned()], "x", "y"));
    }
}
