//! The gateway around the providers: model routing and fallback chains, retries with
//! backoff that honour `Retry-After`, pricing, and a usage row for every provider call
//! (successful, failed or streamed).

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::StreamExt;
use rand::Rng;
use serde_json::Value;
use vorg_store::Store;

use crate::{
    ChatRequest, ChatResponse, ChunkStream, ErrorKind, Pricing, Provider, ProviderError, Usage,
    budget::{BudgetExceeded, Governor, model_matches, period_end, worst_case},
    call::{CallContext, Charge},
    pricing::Priced,
};

/// Retry behaviour for one provider in a chain.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: none).
    pub max_retries: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// Where a model name leads: `(provider, upstream model)` pairs, tried in order.
pub type Chain = Vec<(String, String)>;

/// The one way to call a model.
pub struct Gateway {
    providers: HashMap<String, Arc<dyn Provider>>,
    /// The model used when a caller names only the provider.
    default_models: HashMap<String, String>,
    aliases: HashMap<String, Chain>,
    default_provider: String,
    pricing: Pricing,
    store: Store,
    retry: RetryPolicy,
    governor: Option<Arc<dyn Governor>>,
    usage: crate::usage_writer::UsageWriter,
    ledger: Arc<crate::ledger::Ledger>,
}

/// A call that failed on every provider of its chain; the last error says why.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("unknown model {0:?}: not an alias, and no configured provider serves it")]
    UnknownModel(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A budget would be passed by this call's worst case.
    #[error("budget exceeded: {0}")]
    Budget(Box<BudgetExceeded>),
    /// The caller's roles may not use this model (`model_allowlist` in the policies).
    #[error(
        "model {model:?} is not allowed for your role by the governance policies (model_allowlist)"
    )]
    ModelNotAllowed { model: String },
    /// The caller's API token may not use this model (its own model allow-list).
    #[error("model {model:?} is not in this API token's model allow-list ({allowed})")]
    ModelNotAllowedForToken { model: String, allowed: String },
    /// The budgets could not be checked (the call was not made).
    #[error("budgets could not be checked: {0}")]
    Governance(String),
    /// A budget applies and the model has no price, so its cost could not be bounded.
    #[error(
        "model {model:?} has no price in the pricing table, so a budget cannot bound its cost: \
         add it to the pricing file (VORG_PRICING_FILE), or set an `unpriced` rate there"
    )]
    Unpriced { model: String },
}

impl Gateway {
    pub fn new(store: Store, pricing: Pricing, default_provider: &str, retry: RetryPolicy) -> Self {
        Gateway {
            providers: HashMap::new(),
            default_models: HashMap::new(),
            aliases: HashMap::new(),
            default_provider: default_provider.to_owned(),
            pricing,
            usage: crate::usage_writer::UsageWriter::start(store.clone()),
            ledger: Arc::new(crate::ledger::Ledger::new(
                store.clone(),
                crate::ledger::LeaseConfig::default(),
            )),
            store,
            retry,
            governor: None,
        }
    }

    /// Budgets and model rules for every call from now on.
    pub fn with_governor(mut self, governor: Arc<dyn Governor>) -> Self {
        self.governor = Some(governor);
        self
    }

    /// Budget leases sized and kept by `config` (before any call).
    pub fn with_leases(mut self, config: crate::ledger::LeaseConfig) -> Self {
        self.ledger = Arc::new(crate::ledger::Ledger::new(self.store.clone(), config));
        self
    }

    /// This process's budget leases (its keeper is started by the caller).
    pub fn ledger(&self) -> &Arc<crate::ledger::Ledger> {
        &self.ledger
    }

    /// Adds a provider whose default model is `default_model`.
    pub fn with_provider(mut self, provider: impl Provider, default_model: &str) -> Self {
        let name = provider.name().to_owned();
        self.default_models
            .insert(name.clone(), default_model.to_owned());
        self.providers.insert(name, Arc::new(provider));
        self
    }

    /// The model used for `provider` when none is named.
    pub fn default_model_for(&self, provider: &str) -> String {
        self.default_models
            .get(provider)
            .cloned()
            .unwrap_or_default()
    }

    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    /// Model ids callers may name, with who serves them: aliases (`vorg`) and each
    /// provider's default model as `provider/model`.
    pub fn model_ids(&self) -> Vec<(String, String)> {
        let mut ids: Vec<(String, String)> = self
            .aliases
            .keys()
            .map(|a| (a.clone(), "vorg".to_owned()))
            .collect();
        ids.extend(
            self.default_models
                .iter()
                .map(|(p, m)| (format!("{p}/{m}"), p.clone())),
        );
        ids.sort();
        ids
    }

    /// The [`Gateway::model_ids`] the caller of `ctx` may use: those whose chain holds a model
    /// both the policies' allow-list for the caller's roles and the caller's token allow.
    pub async fn allowed_model_ids(
        &self,
        ctx: &CallContext,
    ) -> Result<Vec<(String, String)>, GatewayError> {
        let ids = self.model_ids();
        let Some(governor) = &self.governor else {
            return Ok(ids);
        };
        let policy = governor
            .plan(ctx)
            .await
            .map_err(|e| GatewayError::Governance(e.to_string()))?;
        let lists: Vec<&Vec<String>> = [&policy.model_allowlist, &policy.token_models]
            .into_iter()
            .flatten()
            .collect();
        Ok(ids
            .into_iter()
            .filter(|(id, _)| {
                self.resolve(id).is_ok_and(|chain| {
                    chain
                        .iter()
                        .any(|(p, m)| lists.iter().all(|l| model_matches(l, p, m)))
                })
            })
            .collect())
    }

    /// `alias` tries each `(provider, model)` in turn until one answers.
    pub fn with_alias(mut self, alias: &str, chain: Chain) -> Self {
        self.aliases.insert(alias.to_owned(), chain);
        self
    }

    pub fn provider_names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// The chain for a requested model: an alias, `provider/model`, or a bare model on the
    /// default provider.
    pub fn resolve(&self, model: &str) -> Result<Chain, GatewayError> {
        if let Some(chain) = self.aliases.get(model) {
            return Ok(chain.clone());
        }
        if let Some((provider, upstream)) = model.split_once('/')
            && self.providers.contains_key(provider)
        {
            return Ok(vec![(provider.to_owned(), upstream.to_owned())]);
        }
        if self.providers.contains_key(&self.default_provider) && !model.is_empty() {
            return Ok(vec![(self.default_provider.clone(), model.to_owned())]);
        }
        Err(GatewayError::UnknownModel(model.to_owned()))
    }

    /// After a failed attempt: retry this provider (after a delay), move to the next one, or
    /// stop (a bad request would be refused everywhere).
    fn after_failure(&self, attempt: u32, e: &ProviderError) -> AfterFailure {
        if e.kind == ErrorKind::BadRequest {
            AfterFailure::Stop
        } else if e.retryable() && attempt < self.retry.max_retries {
            AfterFailure::Retry(self.delay(attempt, e))
        } else {
            AfterFailure::NextProvider
        }
    }

    fn delay(&self, attempt: u32, err: &ProviderError) -> Duration {
        let exp = self.retry.base.saturating_mul(2u32.saturating_pow(attempt));
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..1.0));
        err.retry_after
            .unwrap_or(jittered)
            .min(self.retry.max_delay)
    }

    async fn record(
        &self,
        attempt: &Attempt<'_>,
        usage: Usage,
        error: Option<&ProviderError>,
    ) -> i64 {
        self.handle()
            .record(attempt, usage, error, false, None)
            .await
    }

    /// Walks the chain for `req.model()`, calling `call` on each provider (retried, then
    /// the next provider) until one answers. Failed attempts are recorded here; the caller
    /// records the answer. Returns it with the provider, model and start of that attempt.
    async fn first_answer<T, F, Fut>(
        &self,
        ctx: &CallContext,
        req: &ChatRequest,
        chain: Chain,
        streamed: bool,
        mut call: F,
    ) -> Result<(T, String, String, tokio::time::Instant), GatewayError>
    where
        F: FnMut(Arc<dyn Provider>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        let mut last = None;
        for (provider_name, model) in chain {
            let Some(provider) = self.providers.get(&provider_name) else {
                continue;
            };
            for attempt in 0..=self.retry.max_retries {
                let started = tokio::time::Instant::now();
                match call(provider.clone(), model.clone()).await {
                    Ok(answer) => return Ok((answer, provider_name, model, started)),
                    Err(e) => {
                        let failed_call = Attempt {
                            ctx,
                            provider: &provider_name,
                            model: &model,
                            started,
                            streamed,
                        };
                        self.record(&failed_call, Usage::default(), Some(&e)).await;
                        tracing::warn!(provider = %provider_name, model, attempt, error = %e, "LLM call failed");
                        let next = self.after_failure(attempt, &e);
                        last = Some(e);
                        match next {
                            AfterFailure::Retry(delay) => tokio::time::sleep(delay).await,
                            AfterFailure::NextProvider => break,
                            AfterFailure::Stop => return Err(failed(last, req)),
                        }
                    }
                }
            }
        }
        Err(failed(last, req))
    }

    /// A completion through the chain for `req.model()`: retries per provider, then the
    /// next provider. Returns the answer and the `(provider, model)` that gave it.
    pub async fn complete(
        &self,
        ctx: &CallContext,
        req: &ChatRequest,
    ) -> Result<(ChatResponse, String, String), GatewayError> {
        let (mut resp, provider, model) = self.answered(ctx, req, CallKind::Chat).await?;
        if let Some(obj) = resp.body.as_object_mut() {
            obj.entry("provider")
                .or_insert_with(|| Value::from(provider.clone()));
        }
        Ok((resp, provider, model))
    }

    /// Embeddings through the chain for `req.model()`, governed and accounted like a
    /// completion (the worst case reserved is the input's estimate at the input price).
    pub async fn embed(
        &self,
        ctx: &CallContext,
        req: &ChatRequest,
    ) -> Result<(ChatResponse, String, String), GatewayError> {
        self.answered(ctx, req, CallKind::Embedding).await
    }

    /// One answered call of `kind`: admitted (allow-lists, budgets reserved), tried along
    /// the chain, recorded and settled.
    async fn answered(
        &self,
        ctx: &CallContext,
        req: &ChatRequest,
        kind: CallKind,
    ) -> Result<(ChatResponse, String, String), GatewayError> {
        let (chain, charge) = self.admit_as(ctx, req, kind).await?;
        let answer = self
            .first_answer(ctx, req, chain, false, |p, m| async move {
                match kind {
                    CallKind::Chat => p.complete(&m, req).await,
                    CallKind::Embedding => p.embed(&m, req).await,
                }
            })
            .await;
        let (mut resp, provider, model, started) = match answer {
            Ok(a) => a,
            Err(e) => {
                self.handle().release(charge.as_ref());
                return Err(e);
            }
        };
        let call = Attempt {
            ctx,
            provider: &provider,
            model: &model,
            started,
            streamed: false,
        };
        resp.cost_micro_usd = self
            .handle()
            .record(&call, resp.usage, None, false, charge.as_ref())
            .await;
        Ok((resp, provider, model))
    }

    /// A streamed completion. Opening the stream is retried and falls back like
    /// [`Gateway::complete`]; once chunks flow, a broken stream ends with its error. Usage
    /// (from the final chunk) is recorded when the stream ends, however it ends.
    pub async fn stream(
        &self,
        ctx: &CallContext,
        req: &ChatRequest,
    ) -> Result<(ChunkStream, String, String), GatewayError> {
        let (chain, charge) = self.admit(ctx, req).await?;
        let opened = self
            .first_answer(ctx, req, chain, true, |p, m| async move {
                p.stream(&m, req).await
            })
            .await;
        let (inner, provider, model, started) = match opened {
            Ok(a) => a,
            Err(e) => {
                self.handle().release(charge.as_ref());
                return Err(e);
            }
        };
        let recorder = StreamRecorder {
            gateway: self.handle(),
            ctx: ctx.clone(),
            provider: provider.clone(),
            model: model.clone(),
            started,
            usage: None,
            error: None,
            recorded: false,
            charge,
            seen: Streamed {
                prompt_tokens: crate::budget::estimate_prompt_tokens(req),
                ..Streamed::default()
            },
        };
        Ok((record_stream(inner, recorder), provider, model))
    }

    /// Resolves the chain of `req`, keeps the models the caller may use, and reserves the
    /// call's worst case (the most expensive model of the chain) on every budget that applies.
    async fn admit(
        &self,
        ctx: &CallContext,
        req: &ChatRequest,
    ) -> Result<(Chain, Option<Charge>), GatewayError> {
        self.admit_as(ctx, req, CallKind::Chat).await
    }

    async fn admit_as(
        &self,
        ctx: &CallContext,
        req: &ChatRequest,
        kind: CallKind,
    ) -> Result<(Chain, Option<Charge>), GatewayError> {
        let mut chain = self.resolve(req.model())?;
        let Some(governor) = &self.governor else {
            return Ok((chain, None));
        };
        let policy = governor
            .plan(ctx)
            .await
            .map_err(|e| GatewayError::Governance(e.to_string()))?;
        if let Some(allowed) = &policy.model_allowlist {
            chain.retain(|(p, m)| model_matches(allowed, p, m));
            if chain.is_empty() {
                return Err(GatewayError::ModelNotAllowed {
                    model: req.model().to_owned(),
                });
            }
        }
        if let Some(allowed) = &policy.token_models {
            chain.retain(|(p, m)| model_matches(allowed, p, m));
            if chain.is_empty() {
                return Err(GatewayError::ModelNotAllowedForToken {
                    model: req.model().to_owned(),
                    allowed: allowed.join(", "),
                });
            }
        }
        if !policy.budgets.is_empty()
            && let Some((_, model)) = chain
                .iter()
                .find(|(p, m)| self.pricing.priced(p, m) == Priced::Unknown)
        {
            return Err(GatewayError::Unpriced {
                model: model.clone(),
            });
        }
        let worst = chain
            .iter()
            .map(|(p, m)| match kind {
                CallKind::Chat => worst_case(&self.pricing, req, p, m, policy.default_max_tokens),
                CallKind::Embedding => {
                    let usage = Usage {
                        prompt_tokens: crate::budget::estimate_input_tokens(req),
                        completion_tokens: 0,
                        ..Usage::default()
                    };
                    self.pricing.cost_micro_usd(p, m, usage).0
                }
            })
            .max()
            .unwrap_or(0);
        // A free call (simulated, unpriced) cannot pass a budget: no ledger round trip.
        if policy.budgets.is_empty() || worst == 0 {
            return Ok((chain, None));
        }
        let mut outcome = self.ledger.admit(&policy.budgets, worst).await;
        if let Ok(Err(_)) = outcome {
            // Before refusing: charges of calls that already ended may still be queued. Write
            // them, so the refusal tells what is really spent, and try once more.
            self.usage.flush().await;
            outcome = self.ledger.admit(&policy.budgets, worst).await;
        }
        match outcome {
            Ok(Ok(hold)) => Ok((
                chain,
                Some(Charge {
                    hold,
                    warn_permille: policy.warn_permille,
                }),
            )),
            Ok(Err(refusal)) => {
                let key = &policy.budgets[refusal.index];
                let exceeded = BudgetExceeded {
                    scope: key.scope,
                    subject: key.subject.clone(),
                    period: key.period.clone(),
                    limit_micro_usd: key.limit_micro_usd,
                    spent_micro_usd: refusal.balance.spent_micro_usd,
                    reserved_micro_usd: refusal.balance.reserved_micro_usd,
                    call_worst_case_micro_usd: worst,
                    resets_at: period_end(&key.period),
                };
                tracing::warn!(actor = %ctx.actor, run_id = ?ctx.run_id, budget = %exceeded, "LLM call refused by a budget");
                let data = serde_json::json!({
                    "actor": ctx.actor,
                    "model": req.model(),
                    "budget": &exceeded,
                });
                if let Err(e) = self
                    .store
                    .record_event("budget.refused", ctx.run_id, data)
                    .await
                {
                    tracing::error!(error = %e, "could not record a budget refusal");
                }
                Err(GatewayError::Budget(Box::new(exceeded)))
            }
            Err(e) => Err(GatewayError::Governance(format!("budget ledger: {e}"))),
        }
    }

    /// Waits until every usage row of calls made so far in this process is written.
    pub async fn flush_usage(&self) {
        self.usage.flush().await;
    }

    fn handle(&self) -> RecordHandle {
        RecordHandle {
            usage: self.usage.clone(),
            ledger: self.ledger.clone(),
            pricing: self.pricing.clone(),
        }
    }
}

/// What a call asks of a model, for its worst case.
#[derive(Clone, Copy)]
enum CallKind {
    Chat,
    Embedding,
}

enum AfterFailure {
    Retry(Duration),
    NextProvider,
    Stop,
}

/// The error of a chain that produced no answer: the last provider's, if any was tried.
fn failed(last: Option<ProviderError>, req: &ChatRequest) -> GatewayError {
    last.map(GatewayError::from)
        .unwrap_or_else(|| GatewayError::UnknownModel(req.model().to_owned()))
}

/// One provider call, as recorded.
struct Attempt<'a> {
    ctx: &'a CallContext,
    provider: &'a str,
    model: &'a str,
    started: tokio::time::Instant,
    streamed: bool,
}

/// What recording needs, also after the gateway call returned (streams).
#[derive(Clone)]
struct RecordHandle {
    usage: crate::usage_writer::UsageWriter,
    ledger: Arc<crate::ledger::Ledger>,
    pricing: Pricing,
}

impl RecordHandle {
    /// Ends a call that cost nothing: its budgets get back all it held.
    fn release(&self, charge: Option<&Charge>) {
        if let Some(c) = charge {
            self.ledger.release(&c.hold, 0);
        }
    }

    /// Writes the usage row of one provider call (a failure to write is logged) and returns
    /// its cost. `estimated`: the tokens are the gateway's estimate, not the upstream's count.
    /// With `charge`, the call's hold ends and the row's cost is charged to its budgets.
    async fn record(
        &self,
        a: &Attempt<'_>,
        usage: Usage,
        error: Option<&ProviderError>,
        estimated: bool,
        charge: Option<&Charge>,
    ) -> i64 {
        let (cost, priced) = self.pricing.cost_micro_usd(a.provider, a.model, usage);
        let charge = charge.map(|c| {
            self.ledger.release(&c.hold, cost);
            vorg_store::UsageCharge {
                budgets: c.hold.charged(),
                warn_permille: c.warn_permille,
            }
        });
        let row = crate::usage_writer::UsageRow {
            run_id: a.ctx.run_id,
            actor: a.ctx.actor.clone(),
            user_id: a.ctx.user_id,
            token_id: a.ctx.token_id,
            provider: a.provider.to_owned(),
            model: a.model.to_owned(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            cost_micro_usd: cost,
            priced,
            estimated,
            latency_ms: i64::try_from(a.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            streamed: a.streamed,
            status: if error.is_some() { "error" } else { "ok" },
            error: error.map(|e| e.message.clone()),
            charge,
        };
        self.usage.record(row).await;
        cost
    }
}

struct StreamRecorder {
    gateway: RecordHandle,
    ctx: CallContext,
    provider: String,
    model: String,
    started: tokio::time::Instant,
    usage: Option<Usage>,
    error: Option<ProviderError>,
    recorded: bool,
    /// The budget reservation, settled when the stream ends.
    charge: Option<Charge>,
    /// What passed so far, for an estimate when the upstream's usage never comes (the
    /// client hung up before it, or the stream broke).
    seen: Streamed,
}

/// Counts of a stream's output as it passes, and its prompt's estimate.
#[derive(Debug, Clone, Copy, Default)]
struct Streamed {
    prompt_tokens: i64,
    chars: usize,
    chunks: i64,
}

impl Streamed {
    /// Notes the generated text of one chunk: content, refusals, tool-call arguments.
    fn note(&mut self, chunk: &Value) {
        let Some(choices) = chunk["choices"].as_array() else {
            return;
        };
        for choice in choices {
            let delta = &choice["delta"];
            let mut n = ["content", "refusal", "reasoning_content"]
                .iter()
                .filter_map(|k| delta[*k].as_str())
                .map(|t| t.chars().count())
                .sum::<usize>();
            if let Some(calls) = delta["tool_calls"].as_array() {
                n += calls
                    .iter()
                    .filter_map(|c| c["function"]["arguments"].as_str())
                    .map(|t| t.chars().count())
                    .sum::<usize>();
            }
            if n > 0 {
                self.chars += n;
                self.chunks += 1;
            }
        }
    }

    /// The usage to charge when the upstream's never came: the prompt's estimate, and the
    /// larger of 1 token per 4 characters (rounded up) and 1 per chunk with text.
    fn estimate(&self) -> Usage {
        let by_chars = i64::try_from(self.chars.div_ceil(4)).unwrap_or(i64::MAX);
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: by_chars.max(self.chunks),
            ..Usage::default()
        }
    }
}

impl Drop for StreamRecorder {
    /// A client that hangs up mid-stream still gets its call recorded (what arrived so far).
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let mut rest = StreamRecorder {
            gateway: self.gateway.clone(),
            ctx: self.ctx.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            started: self.started,
            usage: self.usage,
            error: Some(self.error.clone().unwrap_or_else(|| {
                ProviderError::new(
                    &self.provider,
                    ErrorKind::Connect,
                    "the client closed the stream before it ended",
                )
            })),
            recorded: false,
            charge: self.charge.take(),
            seen: self.seen,
        };
        self.recorded = true;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            #[allow(clippy::disallowed_methods)]
            // a single insert, finished long before shutdown matters
            handle.spawn(async move { rest.finish().await });
        }
    }
}

impl StreamRecorder {
    async fn finish(&mut self) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let call = Attempt {
            ctx: &self.ctx,
            provider: &self.provider,
            model: &self.model,
            started: self.started,
            streamed: true,
        };
        let (usage, estimated) = match self.usage {
            Some(u) => (u, false),
            None => (self.seen.estimate(), true),
        };
        let charge = self.charge.take();
        self.gateway
            .record(
                &call,
                usage,
                self.error.as_ref(),
                estimated,
                charge.as_ref(),
            )
            .await;
    }
}

/// Passes chunks through, noting `usage` and errors; records when the stream ends.
fn record_stream(inner: ChunkStream, recorder: StreamRecorder) -> ChunkStream {
    let state = (inner, recorder, false);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut inner, mut rec, done)| async move {
            if done {
                return None;
            }
            match inner.next().await {
                Some(Ok(chunk)) => {
                    if let Some(u) = Usage::from_openai(&chunk["usage"]) {
                        rec.usage = Some(u);
                    }
                    rec.seen.note(&chunk);
                    Some((Ok(chunk), (inner, rec, false)))
                }
                Some(Err(e)) => {
                    rec.error = Some(e.clone());
                    rec.finish().await;
                    Some((Err(e), (inner, rec, true)))
                }
                None => {
                    rec.finish().await;
                    None
                }
            }
        },
    ))
}
