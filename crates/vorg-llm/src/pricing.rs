//! Prices per model in USD per million input and output tokens, from `config/pricing.yaml`
//! (shipped inside the binary; a file overrides it). Costs are integer micro-dollars.
//!
//! A dated snapshot (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`) costs what its base
//! model costs. A model the table does not know is *unpriced*: the gateway refuses it when a
//! budget applies, unless the file sets an `unpriced` fallback rate, which then prices it
//! (and its usage rows stay flagged `priced: false`). The `simulated` provider is free
//! unless the table names it (`simulated/<model>`).

use std::collections::HashMap;

use serde::Deserialize;

use crate::Usage;

/// The shipped table.
pub const DEFAULT_PRICING: &str = include_str!("../../../config/pricing.yaml");

/// Output tokens assumed as a model's most when the table states no `max_output` for it (or
/// the policies' `default_max_tokens`, when larger).
pub const UNKNOWN_MAX_OUTPUT: u64 = 65_536;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per million input (prompt) tokens.
    pub input: f64,
    /// USD per million output (completion) tokens.
    pub output: f64,
    /// The most output tokens one completion of the model can produce.
    #[serde(default)]
    pub max_output: Option<u64>,
    /// USD per million input tokens read from the prompt cache (absent: the input price).
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// USD per million input tokens written to the prompt cache (absent: the input price).
    #[serde(default)]
    pub cache_write: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricingFile {
    models: HashMap<String, Price>,
    /// The rate of models the table does not know; absent: they are refused under budgets.
    #[serde(default)]
    unpriced: Option<Price>,
}

/// A price as integers: micro-dollars per million tokens (exact for prices with up to six
/// decimals), so costs are computed without binary floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactPrice {
    pub input_micro_per_m: i64,
    pub output_micro_per_m: i64,
    pub cache_read_micro_per_m: i64,
    pub cache_write_micro_per_m: i64,
    pub max_output: Option<u64>,
}

impl ExactPrice {
    const FREE: ExactPrice = ExactPrice {
        input_micro_per_m: 0,
        output_micro_per_m: 0,
        cache_read_micro_per_m: 0,
        cache_write_micro_per_m: 0,
        max_output: None,
    };
}

/// The pricing table, by model name (with or without a `provider/` prefix). Cheap to clone,
/// and looked up by `&str` without building a key.
#[derive(Debug, Clone, Default)]
pub struct Pricing {
    table: std::sync::Arc<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// `provider/model` entries, by provider then model.
    by_provider: HashMap<String, HashMap<String, ExactPrice>>,
    /// Bare `model` entries.
    bare: HashMap<String, ExactPrice>,
    /// `provider/*` entries.
    provider_wide: HashMap<String, ExactPrice>,
    unpriced: Option<ExactPrice>,
}

/// How a model is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priced {
    /// The table's own price (or its base model's, for a dated snapshot).
    Known(ExactPrice),
    /// Not in the table; the file's `unpriced` fallback rate.
    Fallback(ExactPrice),
    /// Not in the table, and no fallback: the cost is unknown.
    Unknown,
}

fn to_micro(usd: f64) -> i64 {
    (usd * 1_000_000.0).round() as i64
}

fn exact(p: &Price) -> ExactPrice {
    ExactPrice {
        input_micro_per_m: to_micro(p.input),
        output_micro_per_m: to_micro(p.output),
        cache_read_micro_per_m: to_micro(p.cache_read.unwrap_or(p.input)),
        cache_write_micro_per_m: to_micro(p.cache_write.unwrap_or(p.input)),
        max_output: p.max_output,
    }
}

fn check(name: &str, p: &Price) -> Result<(), String> {
    let ok = |v: f64| v >= 0.0 && v.is_finite();
    if ok(p.input) && ok(p.output) && p.cache_read.is_none_or(ok) && p.cache_write.is_none_or(ok) {
        Ok(())
    } else {
        Err(format!(
            "pricing: {name}: prices must be non-negative numbers"
        ))
    }
}

/// The base model of a dated snapshot: `name-YYYY-MM-DD` or `name-YYYYMMDD`.
fn snapshot_base(model: &str) -> Option<&str> {
    let is_date = |s: &str, dashes: bool| {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let shape_ok = if dashes {
            s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-'
        } else {
            s.len() == 8
        };
        shape_ok && digits.len() == 8 && digits.starts_with("20")
    };
    if let Some((base, date)) = model.rsplit_once('-')
        && is_date(date, false)
        && !base.is_empty()
    {
        return Some(base);
    }
    let cut = model.len().checked_sub(11)?;
    let (base, rest) = model.split_at(cut);
    let date = rest.strip_prefix('-')?;
    (is_date(date, true) && !base.is_empty()).then_some(base)
}

impl Pricing {
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let file: PricingFile = serde_yaml::from_str(yaml).map_err(|e| format!("pricing: {e}"))?;
        for (model, p) in &file.models {
            check(&format!("models.{model}"), p)?;
        }
        if let Some(p) = &file.unpriced {
            check("unpriced", p)?;
        }
        let mut table = Table {
            unpriced: file.unpriced.as_ref().map(exact),
            ..Table::default()
        };
        for (name, p) in &file.models {
            match name.split_once('/') {
                Some((provider, "*")) => {
                    table.provider_wide.insert(provider.to_owned(), exact(p));
                }
                Some((provider, model)) => {
                    table
                        .by_provider
                        .entry(provider.to_owned())
                        .or_default()
                        .insert(model.to_owned(), exact(p));
                }
                None => {
                    table.bare.insert(name.clone(), exact(p));
                }
            }
        }
        Ok(Pricing {
            table: std::sync::Arc::new(table),
        })
    }

    pub fn shipped() -> Self {
        Self::parse(DEFAULT_PRICING).unwrap_or_default()
    }

    fn lookup(&self, provider: &str, model: &str) -> Option<ExactPrice> {
        self.table
            .by_provider
            .get(provider)
            .and_then(|m| m.get(model))
            .or_else(|| self.table.bare.get(model))
            .or_else(|| {
                // A bare key that holds a slash (`meta-llama/llama-3-70b`).
                let (p, m) = model.split_once('/')?;
                self.table.by_provider.get(p)?.get(m)
            })
            .copied()
    }

    /// `provider/*`: the price of every other model of a provider (a local server's, free).
    fn provider_wide(&self, provider: &str) -> Option<ExactPrice> {
        self.table.provider_wide.get(provider).copied()
    }

    /// How `model` on `provider` is priced.
    pub fn priced(&self, provider: &str, model: &str) -> Priced {
        if provider == "simulated" {
            // Free unless the table prices it by its full name (for demos of the usage
            // views); never by a real model's name it was called with, never unpriced.
            let own = self
                .table
                .by_provider
                .get(provider)
                .and_then(|m| m.get(model))
                .copied();
            return Priced::Known(own.unwrap_or(ExactPrice::FREE));
        }
        if let Some(p) = self
            .lookup(provider, model)
            .or_else(|| snapshot_base(model).and_then(|base| self.lookup(provider, base)))
            .or_else(|| self.provider_wide(provider))
        {
            return Priced::Known(p);
        }
        match self.table.unpriced {
            Some(p) => Priced::Fallback(p),
            None => Priced::Unknown,
        }
    }

    /// The price of `model` on `provider`, if the table knows it (snapshots included).
    pub fn price(&self, provider: &str, model: &str) -> Option<ExactPrice> {
        match self.priced(provider, model) {
            Priced::Known(p) => Some(p),
            Priced::Fallback(_) | Priced::Unknown => None,
        }
    }

    /// The cost of `usage` in micro-dollars, and whether the model was priced by the table
    /// (a fallback-priced or unknown model is `false`; an unknown one costs 0).
    pub fn cost_micro_usd(&self, provider: &str, model: &str, usage: Usage) -> (i64, bool) {
        let (price, known) = match self.priced(provider, model) {
            Priced::Known(p) => (p, true),
            Priced::Fallback(p) => (p, false),
            Priced::Unknown => return (0, false),
        };
        // Cached input is part of the prompt's tokens, priced at its own rates.
        let read = usage.cache_read_tokens.clamp(0, usage.prompt_tokens.max(0));
        let write = usage
            .cache_write_tokens
            .clamp(0, (usage.prompt_tokens - read).max(0));
        let plain = usage.prompt_tokens - read - write;
        let micro_x_million = i128::from(plain) * i128::from(price.input_micro_per_m)
            + i128::from(read) * i128::from(price.cache_read_micro_per_m)
            + i128::from(write) * i128::from(price.cache_write_micro_per_m)
            + i128::from(usage.completion_tokens) * i128::from(price.output_micro_per_m);
        // Round half up to whole micro-dollars.
        let micro = (micro_x_million + 500_000) / 1_000_000;
        (i64::try_from(micro).unwrap_or(i64::MAX), known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_input_is_priced_at_its_own_rates() {
        let p = Pricing::parse(
            "models:\n  a: { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 }\n  \
             b: { input: 2, output: 8 }\n",
        )
        .unwrap();
        let usage = Usage {
            prompt_tokens: 1_000,
            completion_tokens: 0,
            cache_read_tokens: 600,
            cache_write_tokens: 200,
        };
        // 200 × 3 + 600 × 0.3 + 200 × 3.75
        assert_eq!(p.cost_micro_usd("x", "a", usage).0, 1_530);
        // No cache rates: the input rate throughout.
        assert_eq!(p.cost_micro_usd("x", "b", usage).0, 2_000);
        // Counts that pass the prompt's are clamped to it, never negative input.
        let odd = Usage {
            cache_read_tokens: 5_000,
            ..usage
        };
        assert_eq!(p.cost_micro_usd("x", "a", odd).0, 300);
        assert!(Pricing::parse("models:\n  a: { input: 1, output: 1, cache_read: -1 }\n").is_err());
    }

    #[test]
    fn costs_are_exact_micro_dollars() {
        let p = Pricing::parse("models:\n  gpt-4o-mini: { input: 0.15, output: 0.60 }\n").unwrap();
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 10,
            ..Usage::default()
        };
        assert_eq!(
            p.cost_micro_usd("openai", "gpt-4o-mini", usage),
            (150_006, true)
        );
        assert_eq!(p.cost_micro_usd("openai", "unknown", usage), (0, false));
        assert!(Pricing::parse("models:\n  x: { input: -1, output: 0 }\n").is_err());
    }

    #[test]
    fn the_shipped_table_parses() {
        let p = Pricing::parse(DEFAULT_PRICING).unwrap();
        assert!(p.price("openai", "gpt-4o-mini").is_some());
        assert!(p.price("anthropic", "claude-sonnet-4-5").is_some());
        assert!(
            p.price("openai", "gpt-4o")
                .and_then(|p| p.max_output)
                .is_some()
        );
    }

    #[test]
    fn dated_snapshots_cost_what_their_base_model_costs() {
        let p = Pricing::shipped();
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 1000,
            ..Usage::default()
        };
        let base = p.cost_micro_usd("openai", "gpt-4o", usage);
        assert!(base.0 > 0);
        assert_eq!(p.cost_micro_usd("openai", "gpt-4o-2024-08-06", usage), base);
        assert_eq!(
            p.cost_micro_usd("anthropic", "claude-sonnet-4-5-20250929", usage),
            p.cost_micro_usd("anthropic", "claude-sonnet-4-5", usage)
        );
        // Not a date: unknown.
        assert_eq!(p.priced("openai", "gpt-4o-turbo"), Priced::Unknown);
        assert_eq!(p.priced("openai", "gpt-4o-99999999"), Priced::Unknown);
    }

    #[test]
    fn unknown_models_take_the_fallback_rate_when_one_is_set() {
        let p = Pricing::parse(
            "models:\n  a: { input: 1, output: 2 }\nunpriced: { input: 15, output: 75 }\n",
        )
        .unwrap();
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(
            p.cost_micro_usd("openai", "mystery", usage),
            (90_000_000, false)
        );
        assert!(matches!(p.priced("openai", "mystery"), Priced::Fallback(_)));
        // `provider/*` prices every other model of a provider (e.g. a local Ollama, free).
        let local = Pricing::parse("models:\n  ollama/*: { input: 0, output: 0 }\n").unwrap();
        assert_eq!(local.cost_micro_usd("ollama", "llama3.3", usage), (0, true));
        assert_eq!(local.priced("openai", "llama3.3"), Priced::Unknown);
        // The simulated provider is free whatever it is called with, unless priced by name.
        assert_eq!(p.cost_micro_usd("simulated", "mystery", usage), (0, true));
        assert_eq!(p.cost_micro_usd("simulated", "a", usage), (0, true));
        let demo =
            Pricing::parse("models:\n  simulated/sim-1: { input: 3, output: 15 }\n").unwrap();
        assert_eq!(
            demo.cost_micro_usd("simulated", "sim-1", usage),
            (18_000_000, true)
        );
    }
}
