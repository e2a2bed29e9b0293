//! The running organization's governance: the policies in force (versioned in the store,
//! seeded from `governance/policies.yaml`), the constitution, the schemas, and the
//! [`Governor`] that turns policies and personas into budgets for every LLM call.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chrono::Utc;
use vorg_domain::BudgetScope;
use vorg_llm::{
    CallContext, CallPolicy, Governor,
    budget::{BoxFuture, day_period, month_period},
};
use vorg_store::{BudgetKey, PersonaWrite, PolicyVersion, Store, StoreError};

use crate::{
    files::{FilesError, OrgFiles},
    persona::Persona,
    policies::{Policies, PolicyError},
    schema::Schema,
};

/// How long a process trusts its copy of the policies before checking the store for a newer
/// version (other processes may have changed them).
pub const POLICIES_TTL: Duration = Duration::from_secs(1);

/// The schemas documents are checked against.
#[derive(Debug)]
pub struct Schemas {
    pub policies: Schema,
    pub persona: Schema,
    pub hiring_plan: Schema,
}

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error("{0}")]
    Schema(String),
    #[error("{origin}: {error}")]
    Policies { origin: String, error: PolicyError },
    #[error("{origin}: invalid persona: {}", problems.join("; "))]
    Persona {
        origin: String,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Cached {
    policies: Arc<Policies>,
    version: i64,
    checked: Instant,
}

/// The organization's governance, shared by the API, the gateway and the workers.
pub struct Org {
    store: Store,
    files: OrgFiles,
    schemas: std::sync::Arc<Schemas>,
    constitution: String,
    cached: RwLock<Cached>,
}

impl std::fmt::Debug for Org {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Org").field("files", &self.files).finish()
    }
}

impl Org {
    /// Compiles the schemas, loads the policies file (a broken one refuses to start, with
    /// the line and reason) and stores it as a new version when it changed since it was last
    /// loaded, and loads the default personas on the first start.
    pub async fn load(store: Store, files: OrgFiles) -> Result<Org, OrgError> {
        let schema = |name: &str| -> Result<Schema, OrgError> {
            let src = files.read(name)?;
            Schema::compile(&src.origin, &src.text).map_err(OrgError::Schema)
        };
        let schemas = Schemas {
            policies: schema("schemas/policies.schema.json")?,
            persona: schema("schemas/persona.schema.json")?,
            hiring_plan: schema("schemas/hiring_plan.schema.json")?,
        };
        let constitution = files.read("governance/constitution.md")?.text.into_owned();
        let file = files.read("governance/policies.yaml")?;
        Policies::parse(&file.text, &schemas.policies).map_err(|error| OrgError::Policies {
            origin: file.origin.clone(),
            error,
        })?;
        let last_file = store.last_file_policy().await?;
        if last_file.as_ref().is_none_or(|v| v.body != file.text) {
            let v = store
                .add_policy_version(&file.text, "file", &file.origin)
                .await?;
            tracing::info!(version = v.version, origin = %file.origin, "policies loaded from file");
        }
        let current = store.current_policy().await?.ok_or(StoreError::NotFound)?;
        let policies = Policies::parse(&current.body, &schemas.policies).map_err(|error| {
            OrgError::Policies {
                origin: format!("policy version {} in the database", current.version),
                error,
            }
        })?;
        let org = Org {
            store,
            files,
            schemas: std::sync::Arc::new(schemas),
            constitution,
            cached: RwLock::new(Cached {
                policies: Arc::new(policies),
                version: current.version,
                checked: Instant::now(),
            }),
        };
        org.load_default_personas().await?;
        Ok(org)
    }

    /// On the first start (no persona ever written), the persona files become the org.
    async fn load_default_personas(&self) -> Result<(), OrgError> {
        if self.store.personas_ever_written().await? {
            return Ok(());
        }
        let mut personas = Vec::new();
        for src in self.files.personas()? {
            let doc: serde_json::Value =
                serde_json::from_str(&src.text).map_err(|e| OrgError::Persona {
                    origin: src.origin.clone(),
                    problems: vec![format!("not JSON: {e}")],
                })?;
            let persona = Persona::validate(doc, &self.schemas.persona, None).map_err(|p| {
                OrgError::Persona {
                    origin: src.origin.clone(),
                    problems: p.iter().map(ToString::to_string).collect(),
                }
            })?;
            personas.push(persona);
        }
        // Managers first, so every reports_to names a persona already written.
        let mut written = std::collections::HashSet::new();
        while !personas.is_empty() {
            let before = personas.len();
            let mut rest = Vec::new();
            for p in personas {
                let ready = p
                    .reports_to()
                    .is_none_or(|m| written.contains(m) || m == p.id());
                if ready {
                    self.store
                        .save_persona(
                            p.id(),
                            p.doc(),
                            p.reports_to(),
                            "system:files",
                            PersonaWrite::Upsert,
                        )
                        .await?;
                    written.insert(p.id().to_owned());
                } else {
                    rest.push(p);
                }
            }
            if rest.len() == before {
                // Unknown managers: load them without the reporting line, and say so.
                for p in rest {
                    tracing::warn!(persona = p.id(), reports_to = ?p.reports_to(), "persona file names an unknown manager; loaded without it");
                    self.store
                        .save_persona(p.id(), p.doc(), None, "system:files", PersonaWrite::Upsert)
                        .await?;
                }
                break;
            }
            personas = rest;
        }
        tracing::info!(count = written.len(), "default personas loaded");
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn schemas(&self) -> &Schemas {
        &self.schemas
    }

    pub fn files(&self) -> &OrgFiles {
        &self.files
    }

    pub fn constitution(&self) -> &str {
        &self.constitution
    }

    /// The policies in force (at most [`POLICIES_TTL`] old when changed by another process;
    /// changes made through this process are seen at once).
    pub async fn policies(&self) -> Result<Arc<Policies>, StoreError> {
        {
            let c = self.read_cache();
            if c.checked.elapsed() < POLICIES_TTL {
                return Ok(c.policies.clone());
            }
        }
        let latest = self.store.current_policy_version().await?;
        let known = self.read_cache().version;
        if latest != known
            && let Some(v) = self.store.current_policy().await?
        {
            self.install(&v);
        } else if let Ok(mut c) = self.cached.write() {
            c.checked = Instant::now();
        }
        Ok(self.read_cache().policies.clone())
    }

    /// The version number in force.
    pub fn policy_version(&self) -> i64 {
        self.read_cache().version
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        // A poisoned lock only means a panic elsewhere mid-write of plain data.
        self.cached.read().unwrap_or_else(|e| e.into_inner())
    }

    fn install(&self, v: &PolicyVersion) {
        match Policies::parse(&v.body, &self.schemas.policies) {
            Ok(p) => {
                let mut c = self.cached.write().unwrap_or_else(|e| e.into_inner());
                *c = Cached {
                    policies: Arc::new(p),
                    version: v.version,
                    checked: Instant::now(),
                };
            }
            Err(e) => {
                tracing::error!(version = v.version, error = %e, "stored policy version does not validate; keeping the previous one");
            }
        }
    }

    /// Validates and stores a new version (YAML or JSON text); in force at once.
    pub async fn put_policies(
        &self,
        text: &str,
        source: &str,
        author: &str,
    ) -> Result<Result<PolicyVersion, PolicyError>, StoreError> {
        // Parsing and validating a client's document is CPU work: off the async threads.
        let (owned, schemas) = (text.to_owned(), self.schemas.clone());
        let parsed =
            tokio::task::spawn_blocking(move || Policies::parse(&owned, &schemas.policies).err())
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "checking a policies document panicked");
                    Some(PolicyError::one(
                        None,
                        "",
                        "the document could not be checked",
                    ))
                });
        if let Some(e) = parsed {
            return Ok(Err(e));
        }
        let v = self.store.add_policy_version(text, source, author).await?;
        self.install(&v);
        Ok(Ok(v))
    }

    /// Makes an earlier version current again, as a new version.
    pub async fn rollback_policies(
        &self,
        version: i64,
        author: &str,
    ) -> Result<Result<PolicyVersion, PolicyError>, StoreError> {
        let old = self.store.policy_version(version).await?;
        self.put_policies(&old.body, "rollback", author).await
    }

    /// The budgets a call is charged to under `policies`: the org this month, the actor and
    /// the persona today, the API token today, the run.
    pub async fn budgets_for(
        &self,
        policies: &Policies,
        ctx: &CallContext,
    ) -> Result<Vec<BudgetKey>, StoreError> {
        let now = Utc::now();
        let (month, day) = (month_period(now), day_period(now));
        let b = &policies.budgets;
        let key = |scope: BudgetScope, subject: String, period: &str, limit: i64| BudgetKey {
            scope,
            subject,
            period: period.to_owned(),
            limit_micro_usd: limit,
        };
        let mut keys = Vec::new();
        if let Some(limit) = b.org_monthly {
            keys.push(key(BudgetScope::Org, "default".into(), &month, limit));
        }
        if let Some(limit) = b.actor_daily
            && !ctx.actor.is_empty()
        {
            keys.push(key(BudgetScope::Actor, ctx.actor.clone(), &day, limit));
        }
        if let (Some(limit), Some(starter)) = (b.actor_daily, &ctx.on_behalf_of)
            && !starter.is_empty()
            && *starter != ctx.actor
        {
            keys.push(key(BudgetScope::Actor, starter.clone(), &day, limit));
        }
        if let Some(token) = ctx.token_id {
            // The policies' budget for every token and the token's own: one ledger row per
            // token and day, so the tighter of the two is its limit.
            let own = self.store.token_limits(token).await?;
            let daily = match (b.api_token_daily, own.daily_budget_micro_usd) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(limit) = daily {
                keys.push(key(BudgetScope::Token, token.to_string(), &day, limit));
            }
            if let Some(limit) = own.monthly_budget_micro_usd {
                keys.push(key(BudgetScope::Token, token.to_string(), &month, limit));
            }
        }
        if let (Some(limit), Some(run)) = (b.run, ctx.run_id) {
            keys.push(key(BudgetScope::Run, run.to_string(), "all", limit));
        }
        if let Some(id) = &ctx.persona
            && let Some(row) = self.store.persona_cached(id).await?
            && let Some(limit) = crate::persona::max_spend_of(&row.doc.0)
        {
            keys.push(key(BudgetScope::Persona, id.clone(), &day, limit));
        }
        Ok(keys)
    }
}

impl Governor for Org {
    fn plan<'a>(&'a self, ctx: &'a CallContext) -> BoxFuture<'a, Result<CallPolicy, StoreError>> {
        Box::pin(async move {
            let policies = self.policies().await?;
            let budgets = self.budgets_for(&policies, ctx).await?;
            let model_allowlist = if ctx.roles.is_empty() {
                None
            } else {
                let lists: Vec<String> = ctx
                    .roles
                    .iter()
                    .filter_map(|r| policies.model_allowlist.get(r.as_str()))
                    .flatten()
                    .cloned()
                    .collect();
                let any_list = ctx
                    .roles
                    .iter()
                    .any(|r| policies.model_allowlist.contains_key(r.as_str()));
                any_list.then_some(lists)
            };
            let token_models = match ctx.token_id {
                Some(token) => self.store.token_limits(token).await?.models.clone(),
                None => None,
            };
            Ok(CallPolicy {
                token_models,
                budgets,
                default_max_tokens: policies.budgets.default_max_tokens,
                warn_permille: policies.budgets.warn_permille,
                model_allowlist,
            })
        })
    }
}
