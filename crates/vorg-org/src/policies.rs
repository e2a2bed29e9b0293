//! `governance/policies.yaml`: parsed, validated against `schemas/policies.schema.json`, and
//! turned into exact rules (money in micro-dollars).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use vorg_domain::{
    Role,
    money::{parse_usd_text, usd_to_micro},
    yaml::{YamlError, parse_untrusted},
};

use crate::schema::{Problem, Schema};

/// The approver tier that decides a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// `human_review_usd`: an approver (or an admin) decides.
    Approver,
    /// `executive_review_usd`: only an admin decides.
    Admin,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Approver => "approver",
            Tier::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "approver" => Some(Tier::Approver),
            "admin" => Some(Tier::Admin),
            _ => None,
        }
    }

    /// Whether a holder of `roles` may decide requests of this tier.
    pub fn decidable_by(self, roles: &[Role]) -> bool {
        roles.iter().any(|r| match self {
            Tier::Approver => matches!(r, Role::Approver | Role::Admin),
            Tier::Admin => matches!(r, Role::Admin),
        })
    }
}

/// Where a request goes, and the rule that sent it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// `None`: approved automatically.
    pub tier: Option<Tier>,
    pub rule: String,
}

/// LLM spend limits in micro-dollars; `None` is no limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Budgets {
    pub org_monthly: Option<i64>,
    pub actor_daily: Option<i64>,
    pub api_token_daily: Option<i64>,
    pub run: Option<i64>,
    pub default_max_tokens: u64,
    /// The warning share, in thousandths.
    pub warn_permille: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunLimits {
    pub max_llm_calls: Option<u64>,
    pub max_steps: Option<u64>,
}

/// The policies in force.
#[derive(Debug, Clone)]
pub struct Policies {
    /// The document as JSON (what `GET /governance/policies` shows).
    pub document: Value,
    pub auto_approve: i64,
    /// `(low, high)`: amounts above `low` up to `high` go to an approver.
    pub human_review: Option<(i64, i64)>,
    /// Amounts above this (or at it, for `>=`) go to an admin.
    pub executive_review: Option<(i64, bool)>,
    pub forbidden_actions: Vec<String>,
    pub required_checks: BTreeMap<String, Vec<String>>,
    pub escalation_matrix: BTreeMap<String, Vec<String>>,
    pub budgets: Budgets,
    pub model_allowlist: BTreeMap<String, Vec<String>>,
    pub run_limits: RunLimits,
    /// Hours after which pending approvals expire (`None`: never).
    pub approval_expiry_hours: Option<f64>,
}

/// Why a policies document was refused: every problem, each with its line when known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct PolicyError {
    pub problems: Vec<LineProblem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineProblem {
    pub line: Option<usize>,
    pub path: String,
    pub reason: String,
}

impl PolicyError {
    pub fn one(line: Option<usize>, path: &str, reason: impl Into<String>) -> Self {
        PolicyError {
            problems: vec![LineProblem {
                line,
                path: path.to_owned(),
                reason: reason.into(),
            }],
        }
    }

    fn render(&self) -> String {
        self.problems
            .iter()
            .map(|p| {
                let at = match p.line {
                    Some(l) => format!("line {l}: "),
                    None => String::new(),
                };
                if p.path.is_empty() {
                    format!("{at}{}", p.reason)
                } else {
                    format!("{at}{}: {}", p.path, p.reason)
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Policies {
    /// Parses YAML (JSON is YAML too) and validates it against `schema`. The text may be a
    /// client's: it is parsed with [`parse_untrusted`] (at most 256 KiB, 64 levels, no
    /// anchors, aliases or merge keys).
    pub fn parse(text: &str, schema: &Schema) -> Result<Policies, PolicyError> {
        let document = parse_untrusted(text).map_err(|e| {
            let reason = match &e {
                YamlError::Syntax { message, .. } => format!("not valid YAML: {message}"),
                other => other.reason(),
            };
            PolicyError::one(e.line(), "", reason)
        })?;
        Self::from_document(document, Some(text), schema)
    }

    /// Validates a document already parsed (`source` is its text, for line numbers).
    pub fn from_document(
        document: Value,
        source: Option<&str>,
        schema: &Schema,
    ) -> Result<Policies, PolicyError> {
        let problems = schema.problems(&document);
        if !problems.is_empty() {
            return Err(PolicyError {
                problems: problems
                    .into_iter()
                    .map(|Problem { path, reason }| LineProblem {
                        line: source.and_then(|s| line_of(s, &path)),
                        path,
                        reason,
                    })
                    .collect(),
            });
        }
        let line = |path: &str| source.and_then(|s| line_of(s, path));
        let thresholds = &document["spend_thresholds"];
        let auto_approve = thresholds
            .get("auto_approve_usd")
            .and_then(Value::as_f64)
            .and_then(usd_to_micro)
            .ok_or_else(|| {
                let p = "spend_thresholds.auto_approve_usd";
                PolicyError::one(line(p), p, "must be a non-negative amount in USD")
            })?;
        let human_review = match thresholds.get("human_review_usd").and_then(Value::as_str) {
            None => None,
            Some(range) => {
                let p = "spend_thresholds.human_review_usd";
                let parsed = range
                    .split_once('-')
                    .and_then(|(lo, hi)| Some((parse_usd_text(lo)?, parse_usd_text(hi)?)));
                match parsed {
                    Some((lo, hi)) if lo <= hi => Some((lo, hi)),
                    _ => {
                        return Err(PolicyError::one(
                            line(p),
                            p,
                            format!("{range:?} is not a range LOW-HIGH with LOW <= HIGH"),
                        ));
                    }
                }
            }
        };
        let executive_review = match thresholds
            .get("executive_review_usd")
            .and_then(Value::as_str)
        {
            None => None,
            Some(spec) => {
                let p = "spend_thresholds.executive_review_usd";
                let spec = spec.trim();
                let (inclusive, amount) = match spec.strip_prefix(">=") {
                    Some(rest) => (true, rest),
                    None => (false, spec.strip_prefix('>').unwrap_or(spec)),
                };
                let amount = parse_usd_text(amount).ok_or_else(|| {
                    PolicyError::one(line(p), p, format!("{spec:?} is not >AMOUNT"))
                })?;
                Some((amount, inclusive))
            }
        };
        if let Some((lo, _)) = human_review
            && lo < auto_approve
        {
            let p = "spend_thresholds.human_review_usd";
            return Err(PolicyError::one(
                line(p),
                p,
                "the human review range starts below auto_approve_usd",
            ));
        }
        let budgets_doc = document.get("budgets");
        let usd = |key: &str| {
            budgets_doc
                .and_then(|b| b.get(key))
                .and_then(Value::as_f64)
                .and_then(usd_to_micro)
        };
        let budgets = Budgets {
            org_monthly: usd("org_monthly_usd"),
            actor_daily: usd("actor_daily_usd"),
            api_token_daily: usd("api_token_daily_usd"),
            run: usd("run_usd"),
            default_max_tokens: budgets_doc
                .and_then(|b| b.get("default_max_tokens"))
                .and_then(Value::as_u64)
                .unwrap_or(4096),
            warn_permille: budgets_doc
                .and_then(|b| b.get("warn_at"))
                .and_then(Value::as_f64)
                .map(|w| (w * 1000.0).round() as i64)
                .unwrap_or(800),
        };
        let limits = document.get("run_limits");
        let run_limits = RunLimits {
            max_llm_calls: limits
                .and_then(|l| l.get("max_llm_calls"))
                .and_then(Value::as_u64),
            max_steps: limits
                .and_then(|l| l.get("max_steps"))
                .and_then(Value::as_u64),
        };
        let approval_expiry_hours = document
            .get("approvals")
            .and_then(|a| a.get("expire_after_hours"))
            .and_then(Value::as_f64)
            .filter(|h| *h > 0.0);
        Ok(Policies {
            auto_approve,
            human_review,
            executive_review,
            forbidden_actions: strings(document.get("forbidden_actions")),
            required_checks: string_lists(document.get("required_checks")),
            escalation_matrix: string_lists(document.get("escalation_matrix")),
            budgets,
            model_allowlist: string_lists(document.get("model_allowlist")),
            run_limits,
            approval_expiry_hours,
            document,
        })
    }

    /// Routes a request of `amount` micro-dollars: automatic at or under the auto-approve
    /// threshold, else the tier whose range covers it. An amount no range covers goes to the
    /// strictest tier (admin).
    pub fn route(&self, amount: i64) -> Routing {
        let usd = |m: i64| vorg_domain::money::micro_to_usd(m);
        if amount <= self.auto_approve {
            return Routing {
                tier: None,
                rule: format!(
                    "auto_approve_usd: {} (amount <= threshold)",
                    usd(self.auto_approve)
                ),
            };
        }
        if let Some((lo, hi)) = self.human_review
            && amount > lo
            && amount <= hi
        {
            return Routing {
                tier: Some(Tier::Approver),
                rule: format!("human_review_usd: {}-{}", usd(lo), usd(hi)),
            };
        }
        if let Some((at, inclusive)) = self.executive_review
            && (amount > at || (inclusive && amount == at))
        {
            let op = if inclusive { ">=" } else { ">" };
            return Routing {
                tier: Some(Tier::Admin),
                rule: format!("executive_review_usd: {op}{}", usd(at)),
            };
        }
        Routing {
            tier: Some(Tier::Admin),
            rule: "no review range covers this amount: the strictest tier decides".to_owned(),
        }
    }

    /// Whether `action` is forbidden (compared case-insensitively).
    pub fn forbids(&self, action: &str) -> bool {
        let action = action.trim();
        self.forbidden_actions
            .iter()
            .any(|f| f.eq_ignore_ascii_case(action))
    }

    /// The checks an approval of `kind` must attest before it can be approved.
    pub fn checks_for(&self, kind: &str) -> &[String] {
        self.required_checks
            .get(kind)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn string_lists(v: Option<&Value>) -> BTreeMap<String, Vec<String>> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), strings(Some(v))))
                .collect()
        })
        .unwrap_or_default()
}

/// The 1-based line of `path` (`a.b[0].c`) in a block-style YAML text, best effort: each
/// key is looked for below the line of its parent, more indented.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let keys: Vec<&str> = path
        .split(['.', '['])
        .filter(|k| !k.is_empty() && !k.ends_with(']'))
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut indent: Option<usize> = None;
    let mut found = None;
    for key in keys {
        let hit = lines.iter().enumerate().skip(from).find(|(_, l)| {
            let trimmed = l.trim_start();
            let ind = l.len() - trimmed.len();
            indent.is_none_or(|i| ind > i)
                && (trimmed.starts_with(&format!("{key}:"))
                    || trimmed.starts_with(&format!("\"{key}\":"))
                    || trimmed.starts_with(&format!("- {key}:")))
        });
        match hit {
            Some((i, l)) => {
                found = Some(i + 1);
                from = i + 1;
                indent = Some(l.len() - l.trim_start().len());
            }
            None => break,
        }
    }
    found
}
