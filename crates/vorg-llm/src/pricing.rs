//! Prices per model in USD per million input and output tokens, from `config/pricing.yaml`
//! (shipped inside the binary; a file overrides it). Costs are integer micro-dollars.

use std::collections::HashMap;

use serde::Deserialize;

use crate::Usage;

/// The shipped table.
pub const DEFAULT_PRICING: &str = include_str!("../../../config/pricing.yaml");

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Price {
    /// USD per million input (prompt) tokens.
    pub input: f64,
    /// USD per million output (completion) tokens.
    pub output: f64,
}

#[derive(Debug, Deserialize)]
struct PricingFile {
    models: HashMap<String, Price>,
}

/// A price as integers: micro-dollars per million tokens (exact for prices with up to six
/// decimals), so costs are computed without binary floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactPrice {
    pub input_micro_per_m: i64,
    pub output_micro_per_m: i64,
}

/// The pricing table, by model name (with or without a `provider/` prefix).
#[derive(Debug, Clone, Default)]
pub struct Pricing {
    models: HashMap<String, ExactPrice>,
}

fn to_micro(usd: f64) -> i64 {
    (usd * 1_000_000.0).round() as i64
}

impl Pricing {
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let file: PricingFile = serde_yaml::from_str(yaml).map_err(|e| format!("pricing: {e}"))?;
        for (model, p) in &file.models {
            if !(p.input >= 0.0 && p.output >= 0.0 && p.input.is_finite() && p.output.is_finite()) {
                return Err(format!(
                    "pricing: models.{model}: prices must be non-negative numbers"
                ));
            }
        }
        let models = file
            .models
            .into_iter()
            .map(|(m, p)| {
                let exact = ExactPrice {
                    input_micro_per_m: to_micro(p.input),
                    output_micro_per_m: to_micro(p.output),
                };
                (m, exact)
            })
            .collect();
        Ok(Pricing { models })
    }

    pub fn shipped() -> Self {
        Self::parse(DEFAULT_PRICING).unwrap_or_default()
    }

    /// The price of `model` on `provider`, if known.
    pub fn price(&self, provider: &str, model: &str) -> Option<ExactPrice> {
        self.models
            .get(&format!("{provider}/{model}"))
            .or_else(|| self.models.get(model))
            .copied()
    }

    /// The cost of `usage` in micro-dollars, and whether the model was priced at all.
    pub fn cost_micro_usd(&self, provider: &str, model: &str, usage: Usage) -> (i64, bool) {
        match self.price(provider, model) {
            Some(p) => {
                let micro_x_million = i128::from(usage.prompt_tokens)
                    * i128::from(p.input_micro_per_m)
                    + i128::from(usage.completion_tokens) * i128::from(p.output_micro_per_m);
                // Round half up to whole micro-dollars.
                let micro = (micro_x_million + 500_000) / 1_000_000;
                (i64::try_from(micro).unwrap_or(i64::MAX), true)
            }
            None => (0, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_exact_micro_dollars() {
        let p = Pricing::parse("models:\n  gpt-4o-mini: { input: 0.15, output: 0.60 }\n").unwrap();
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 10,
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
    }
}
