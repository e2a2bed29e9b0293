//! Settings: environment variables over an optional `vorg.toml` over defaults that work with
//! nothing set. `VORG_ENV=production` turns unsafe defaults into refusals to start.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use vorg_domain::Secret;

/// The environment variables vorg reads, with the `vorg.toml` key each one overrides.
/// The README's configuration table lists the same.
pub const VARIABLES: &[(&str, &str)] = &[
    ("VORG_ENV", "env"),
    ("VORG_BIND", "bind"),
    ("VORG_DATA_DIR", "data_dir"),
    ("DATABASE_URL", "database_url"),
    ("JWT_SECRET", "jwt_secret"),
    ("JWT_ISSUER", "jwt_issuer"),
    ("JWT_AUDIENCE", "jwt_audience"),
    ("JWT_EXPIRES_MIN", "jwt_expires_min"),
    ("ALLOW_SIGNUP", "allow_signup"),
    ("ADMIN_SIGNUP_SECRET", "admin_signup_secret"),
    ("VORG_CORS_ORIGINS", "cors_origins"),
    ("VORG_MAX_BODY_BYTES", "max_body_bytes"),
    ("VORG_LOGIN_PER_MINUTE_PER_IP", "login_per_minute_per_ip"),
    (
        "VORG_LOGIN_PER_MINUTE_PER_ACCOUNT",
        "login_per_minute_per_account",
    ),
    ("VORG_TRUSTED_PROXIES", "trusted_proxies"),
    ("VORG_STREAMS_PER_CALLER", "streams_per_caller"),
    ("VORG_STREAMS_PER_IP", "streams_per_ip"),
    ("VORG_STREAMS_MAX", "streams_max"),
    ("VORG_METRICS_PUBLIC", "metrics_public"),
    ("VORG_LOG_FORMAT", "log_format"),
    ("VORG_WORKERS", "workers"),
    ("VORG_JOB_LEASE_MS", "job_lease_ms"),
    ("VORG_SHUTDOWN_GRACE_MS", "shutdown_grace_ms"),
    ("OPENAI_API_KEY", "openai_api_key"),
    ("OPENAI_BASE_URL", "openai_base_url"),
    ("VORG_OPENAI_MODEL", "openai_model"),
    ("ANTHROPIC_API_KEY", "anthropic_api_key"),
    ("ANTHROPIC_BASE_URL", "anthropic_base_url"),
    ("VORG_ANTHROPIC_MODEL", "anthropic_model"),
    ("VORG_LLM_COMPAT", "llm_compat"),
    ("VORG_LLM_ALIASES", "llm_aliases"),
    ("VORG_LLM_TIMEOUT_MS", "llm_timeout_ms"),
    ("VORG_LLM_CONNECT_TIMEOUT_MS", "llm_connect_timeout_ms"),
    ("VORG_LLM_MAX_RETRIES", "llm_max_retries"),
    ("VORG_PRICING_FILE", "pricing_file"),
    ("VORG_CONFIG_DIR", "config_dir"),
    ("LINEAR_API_KEY", "linear_api_key"),
    ("LINEAR_API_URL", "linear_api_url"),
    ("VORG_RUN_WAIT_MS", "run_wait_ms"),
    ("STORE_TO_S3", "store_to_s3"),
    ("S3_BUCKET", "s3_bucket"),
    ("S3_ENDPOINT", "s3_endpoint"),
    ("S3_REGION", "s3_region"),
    ("AWS_ACCESS_KEY_ID", "s3_access_key_id"),
    ("AWS_SECRET_ACCESS_KEY", "s3_secret_access_key"),
    ("VORG_DB_MAX_CONNECTIONS", "db_max_connections"),
    ("VORG_PUBLIC_URL", "public_url"),
    ("VORG_WEBHOOKS_ALLOW_PRIVATE", "webhooks_allow_private"),
    ("VORG_WEBHOOK_RETRY_SECS", "webhook_retry_secs"),
    ("VORG_WEBHOOK_DISABLE_AFTER", "webhook_disable_after"),
    ("VORG_SCHEDULER", "scheduler"),
    ("VORG_SCHEDULE_GRACE_SECS", "schedule_grace_secs"),
    ("VORG_BUDGET_LEASE_SECS", "budget_lease_secs"),
];

/// Shortest JWT secret accepted in production (HS256 wants at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// An OpenAI-compatible server (`VORG_LLM_COMPAT`): its provider name, base URL and key.
#[derive(Debug, Clone)]
pub struct CompatServer {
    pub name: String,
    pub base_url: String,
    /// Sent as the bearer token (from the variable the entry names); none: no key.
    pub key: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub env: Environment,
    pub bind: String,
    pub data_dir: PathBuf,
    /// `None`: the SQLite file under `data_dir`.
    pub database_url: Option<Secret>,
    /// `None`: generated once and kept under `data_dir` (refused in production).
    pub jwt_secret: Option<Secret>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_expires_min: i64,
    /// `None` when not set at all (signup closed).
    pub allow_signup: Option<bool>,
    pub admin_signup_secret: Option<Secret>,
    pub cors_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub login_per_minute_per_ip: u32,
    pub login_per_minute_per_account: u32,
    /// Proxies whose `X-Forwarded-For` names the client (addresses or CIDR ranges).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub streams_per_caller: usize,
    pub streams_per_ip: usize,
    /// Open SSE streams in all; `None`: 10,000, kept below the file-descriptor limit.
    pub streams_max: Option<usize>,
    pub metrics_public: bool,
    pub log_format: LogFormat,
    /// Jobs `vorg serve` executes at once (0: none, leave them to `vorg worker`).
    pub workers: usize,
    /// Job lease; a killed worker's runs resume elsewhere after at most this long.
    pub job_lease_ms: u64,
    /// On shutdown, how long running jobs may take before they are released.
    pub shutdown_grace_ms: u64,
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: String,
    pub openai_model: String,
    pub anthropic_api_key: Option<Secret>,
    pub anthropic_base_url: String,
    pub anthropic_model: String,
    /// OpenAI-compatible servers: `name=base_url` pairs, comma-separated; `name=base_url|VAR`
    /// sends the key in environment variable `VAR`.
    pub llm_compat: Vec<CompatServer>,
    /// Fallback chains: `alias=provider/model|provider/model;alias2=…`.
    pub llm_aliases: Vec<(String, Vec<(String, String)>)>,
    pub llm_timeout_ms: u64,
    pub llm_connect_timeout_ms: u64,
    pub llm_max_retries: u32,
    pub pricing_file: Option<PathBuf>,
    /// The organization's data folder (governance/, personas/, schemas/, meetings/);
    /// `None`: the working directory when it holds them, else the shipped files.
    pub config_dir: Option<PathBuf>,
    /// Linear's API key; `None`: the `/linear` routes answer 503 saying how to set it.
    pub linear_api_key: Option<Secret>,
    pub linear_api_url: String,
    /// How long meeting and hiring routes wait for their run before answering 202.
    pub run_wait_ms: u64,
    /// Artifacts go to S3 (`S3_BUCKET`, …) instead of `data_dir/artifacts`.
    pub store_to_s3: bool,
    pub s3_bucket: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key_id: Option<Secret>,
    pub s3_secret_access_key: Option<Secret>,
    /// Database connections one process may hold (see [`vorg_store::PoolSize`]).
    pub db_max_connections: u32,
    /// Where vorg is reached from outside (hook URLs, links in webhooks); default
    /// `http://{bind}`.
    pub public_url: Option<String>,
    /// Webhooks may target loopback and private addresses (off: SSRF-safe).
    pub webhooks_allow_private: bool,
    /// The waits before each webhook retry, in seconds (default: about a day in 8 steps).
    pub webhook_retry_secs: Option<Vec<f64>>,
    /// Failed attempts in a row that disable a webhook subscription.
    pub webhook_disable_after: i64,
    /// This process fires schedules and dispatches events (several may: slots are claimed
    /// in the database).
    pub scheduler: bool,
    /// How late a schedule slot may fire and still be on time.
    pub schedule_grace_secs: u64,
    /// How long a budget lease lives unrenewed: the most headroom a killed process can
    /// strand, for this long.
    pub budget_lease_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            env: Environment::Development,
            bind: "127.0.0.1:8000".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            jwt_secret: None,
            jwt_issuer: "vo-api".into(),
            jwt_audience: "vo-console".into(),
            jwt_expires_min: 120,
            allow_signup: None,
            admin_signup_secret: None,
            cors_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            login_per_minute_per_ip: 60,
            login_per_minute_per_account: 10,
            trusted_proxies: Vec::new(),
            streams_per_caller: 32,
            streams_per_ip: 128,
            streams_max: None,
            metrics_public: false,
            log_format: LogFormat::Text,
            workers: 4,
            job_lease_ms: 30_000,
            shutdown_grace_ms: 10_000,
            openai_api_key: None,
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_model: "gpt-4o-mini".into(),
            anthropic_api_key: None,
            anthropic_base_url: "https://api.anthropic.com".into(),
            anthropic_model: "claude-sonnet-4-5".into(),
            llm_compat: Vec::new(),
            llm_aliases: Vec::new(),
            llm_timeout_ms: 120_000,
            llm_connect_timeout_ms: 5_000,
            llm_max_retries: 2,
            pricing_file: None,
            config_dir: None,
            linear_api_key: None,
            run_wait_ms: 120_000,
            store_to_s3: false,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            linear_api_url: vorg_linear::DEFAULT_ENDPOINT.into(),
            db_max_connections: vorg_store::PoolSize::default().max,
            public_url: None,
            webhooks_allow_private: false,
            webhook_retry_secs: None,
            webhook_disable_after: 50,
            scheduler: true,
            schedule_grace_secs: 300,
            budget_lease_secs: 30,
        }
    }
}

/// Raw values by `vorg.toml` key, from the file first and then the environment.
type Raw = HashMap<&'static str, (String, String)>;

impl Settings {
    /// Loads from `file` (if it exists) and the variables `env` returns.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut raw: Raw = HashMap::new();
        if let Some(path) = file.filter(|p| p.exists()) {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let table: toml::Table = text
                .parse()
                .with_context(|| format!("{} is not valid TOML", path.display()))?;
            for (key, value) in table {
                let Some((_, known)) = VARIABLES.iter().find(|(_, k)| *k == key) else {
                    bail!("{}: unknown setting {key:?}", path.display());
                };
                let text = match value {
                    toml::Value::Array(items) => {
                        items.iter().map(scalar).collect::<Vec<_>>().join(",")
                    }
                    other => scalar(&other),
                };
                raw.insert(known, (format!("{} key {key}", path.display()), text));
            }
        }
        for (var, key) in VARIABLES {
            if let Some(value) = env(var) {
                raw.insert(key, ((*var).to_owned(), value));
            }
        }
        Self::from_raw(&raw, &env)
    }

    fn from_raw(raw: &Raw, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut s = Settings::default();
        let get = |key: &str| raw.get(key).map(|(src, v)| (src.as_str(), v.trim()));
        fn parse<T: std::str::FromStr>(src: &str, v: &str, what: &str) -> anyhow::Result<T> {
            v.parse()
                .map_err(|_| anyhow::anyhow!("{src}: {v:?} is not {what}"))
        }
        if let Some((src, v)) = get("env") {
            s.env = match v {
                "production" | "prod" => Environment::Production,
                "development" | "dev" | "" => Environment::Development,
                _ => bail!("{src}: expected production or development, got {v:?}"),
            };
        }
        if let Some((_, v)) = get("bind") {
            s.bind = v.to_owned();
        }
        if let Some((_, v)) = get("data_dir") {
            s.data_dir = PathBuf::from(v);
        }
        let nonempty = |key: &str| get(key).filter(|(_, v)| !v.is_empty());
        s.database_url = nonempty("database_url").map(|(_, v)| Secret::new(v));
        s.jwt_secret = nonempty("jwt_secret").map(|(_, v)| Secret::new(v));
        s.admin_signup_secret = nonempty("admin_signup_secret").map(|(_, v)| Secret::new(v));
        if let Some((_, v)) = nonempty("jwt_issuer") {
            s.jwt_issuer = v.to_owned();
        }
        if let Some((_, v)) = nonempty("jwt_audience") {
            s.jwt_audience = v.to_owned();
        }
        if let Some((src, v)) = get("jwt_expires_min") {
            s.jwt_expires_min = parse(src, v, "a number of minutes")?;
            if !(1..=60 * 24 * 365).contains(&s.jwt_expires_min) {
                bail!("{src}: must be between 1 and 525600 minutes");
            }
        }
        if let Some((src, v)) = get("allow_signup") {
            s.allow_signup = Some(parse_bool(src, v)?);
        }
        if let Some((_, v)) = get("cors_origins") {
            s.cors_origins = v
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some((src, v)) = get("run_wait_ms") {
            s.run_wait_ms = parse(src, v, "a number of milliseconds")?;
        }
        if let Some((src, v)) = get("store_to_s3") {
            s.store_to_s3 = parse_bool(src, v)?;
        }
        s.s3_bucket = nonempty("s3_bucket").map(|(_, v)| v.to_owned());
        s.s3_endpoint = nonempty("s3_endpoint").map(|(_, v)| v.to_owned());
        if let Some((_, v)) = nonempty("s3_region") {
            s.s3_region = v.to_owned();
        }
        s.s3_access_key_id = nonempty("s3_access_key_id").map(|(_, v)| Secret::new(v));
        s.s3_secret_access_key = nonempty("s3_secret_access_key").map(|(_, v)| Secret::new(v));
        if let Some((src, v)) = get("max_body_bytes") {
            s.max_body_bytes = parse(src, v, "a number of bytes")?;
        }
        if let Some((src, v)) = get("login_per_minute_per_ip") {
            s.login_per_minute_per_ip = parse(src, v, "a positive number")?;
        }
        if let Some((src, v)) = get("login_per_minute_per_account") {
            s.login_per_minute_per_account = parse(src, v, "a positive number")?;
        }
        if let Some((src, v)) = get("trusted_proxies") {
            s.trusted_proxies = vorg_api::client_ip::parse_trusted_proxies(v)
                .map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
        }
        if let Some((src, v)) = get("streams_per_caller") {
            s.streams_per_caller = parse(src, v, "a positive number of streams")?;
        }
        if let Some((src, v)) = get("streams_per_ip") {
            s.streams_per_ip = parse(src, v, "a positive number of streams")?;
        }
        if let Some((src, v)) = get("streams_max") {
            s.streams_max = Some(parse(src, v, "a positive number of streams")?);
        }
        if let Some((src, v)) = get("metrics_public") {
            s.metrics_public = parse_bool(src, v)?;
        }
        if let Some((src, v)) = get("workers") {
            s.workers = parse(src, v, "a number of concurrent jobs")?;
        }
        if let Some((src, v)) = get("job_lease_ms") {
            s.job_lease_ms = parse(src, v, "a number of milliseconds")?;
            if s.job_lease_ms < 300 {
                bail!("{src}: must be at least 300 ms");
            }
        }
        if let Some((src, v)) = get("shutdown_grace_ms") {
            s.shutdown_grace_ms = parse(src, v, "a number of milliseconds")?;
        }
        s.openai_api_key = nonempty("openai_api_key").map(|(_, v)| Secret::new(v));
        s.linear_api_key = nonempty("linear_api_key").map(|(_, v)| Secret::new(v));
        if let Some((_, v)) = nonempty("linear_api_url") {
            s.linear_api_url = v.to_owned();
        }
        if let Some((_, v)) = nonempty("openai_base_url") {
            s.openai_base_url = v.to_owned();
        }
        if let Some((_, v)) = nonempty("openai_model") {
            s.openai_model = v.to_owned();
        }
        s.anthropic_api_key = nonempty("anthropic_api_key").map(|(_, v)| Secret::new(v));
        if let Some((_, v)) = nonempty("anthropic_base_url") {
            s.anthropic_base_url = v.to_owned();
        }
        if let Some((_, v)) = nonempty("anthropic_model") {
            s.anthropic_model = v.to_owned();
        }
        if let Some((src, v)) = nonempty("llm_compat") {
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((name, rest)) = pair.split_once('=') else {
                    bail!(
                        "{src}: expected name=base_url or name=base_url|KEY_VARIABLE, got {pair:?}"
                    );
                };
                let name = name.trim();
                let (url, key_var) = match rest.split_once('|') {
                    Some((url, var)) => (url.trim(), Some(var.trim())),
                    None => (rest.trim(), None),
                };
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    bail!("{src}: {name}: the base URL must start with http:// or https://");
                }
                if s.llm_compat.iter().any(|c| c.name == name) {
                    bail!("{src}: {name}: named twice");
                }
                let key = match key_var {
                    None => None,
                    Some(var) => {
                        let well_formed = var
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                            && var
                                .chars()
                                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                        if !well_formed {
                            bail!(
                                "{src}: {name}: {var:?} is not an environment variable name \
                                 (upper-case letters, digits and _)"
                            );
                        }
                        match env(var).filter(|k| !k.trim().is_empty()) {
                            Some(k) => Some(Secret::new(k.trim())),
                            None => {
                                bail!("{src}: {name}: its key variable {var} is not set (or empty)")
                            }
                        }
                    }
                };
                s.llm_compat.push(CompatServer {
                    name: name.to_owned(),
                    base_url: url.to_owned(),
                    key,
                });
            }
        }
        if let Some((src, v)) = nonempty("llm_aliases") {
            for def in v.split(';').map(str::trim).filter(|d| !d.is_empty()) {
                let Some((alias, chain)) = def.split_once('=') else {
                    bail!("{src}: expected alias=provider/model|provider/model, got {def:?}");
                };
                let mut targets = Vec::new();
                for target in chain.split('|').map(str::trim) {
                    let Some((p, m)) = target.split_once('/') else {
                        bail!("{src}: {alias}: {target:?} is not provider/model");
                    };
                    targets.push((p.to_owned(), m.to_owned()));
                }
                s.llm_aliases.push((alias.trim().to_owned(), targets));
            }
        }
        if let Some((src, v)) = get("llm_timeout_ms") {
            s.llm_timeout_ms = parse(src, v, "a number of milliseconds")?;
        }
        if let Some((src, v)) = get("llm_connect_timeout_ms") {
            s.llm_connect_timeout_ms = parse(src, v, "a number of milliseconds")?;
        }
        if let Some((src, v)) = get("llm_max_retries") {
            s.llm_max_retries = parse(src, v, "a number of retries")?;
        }
        if let Some((_, v)) = nonempty("config_dir") {
            s.config_dir = Some(PathBuf::from(v));
        }
        if let Some((_, v)) = nonempty("pricing_file") {
            s.pricing_file = Some(PathBuf::from(v));
        }
        if let Some((src, v)) = get("db_max_connections") {
            s.db_max_connections = parse(src, v, "a number of connections")?;
            if s.db_max_connections < vorg_store::PoolSize::MIN {
                bail!("{src}: must be at least {}", vorg_store::PoolSize::MIN);
            }
        }
        if let Some((src, v)) = nonempty("public_url") {
            let url = v.trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("{src}: expected an http(s) URL, got {v:?}");
            }
            s.public_url = Some(url.to_owned());
        }
        if let Some((src, v)) = get("webhooks_allow_private") {
            s.webhooks_allow_private = parse_bool(src, v)?;
        }
        if let Some((src, v)) = nonempty("webhook_retry_secs") {
            let delays = v
                .split(',')
                .map(|d| {
                    d.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && *d >= 0.0 && *d <= 604_800.0)
                })
                .collect::<Option<Vec<f64>>>()
                .filter(|d| d.len() <= 30)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{src}: expected up to 30 comma-separated seconds (0 to 604800), got {v:?}"
                    )
                })?;
            s.webhook_retry_secs = Some(delays);
        }
        if let Some((src, v)) = get("webhook_disable_after") {
            s.webhook_disable_after = parse(src, v, "a number of failed attempts")?;
            if s.webhook_disable_after < 1 {
                bail!("{src}: must be at least 1");
            }
        }
        if let Some((src, v)) = get("scheduler") {
            s.scheduler = parse_bool(src, v)?;
        }
        if let Some((src, v)) = get("schedule_grace_secs") {
            s.schedule_grace_secs = parse(src, v, "a number of seconds")?;
        }
        if let Some((src, v)) = get("budget_lease_secs") {
            s.budget_lease_secs = parse(src, v, "a number of seconds")?;
            if s.budget_lease_secs == 0 {
                bail!("{src}: must be at least 1");
            }
        }
        if let Some((src, v)) = get("log_format") {
            s.log_format = match v {
                "json" => LogFormat::Json,
                "text" | "" => LogFormat::Text,
                _ => bail!("{src}: expected json or text, got {v:?}"),
            };
        }
        Ok(s)
    }

    /// The refusals of production mode, each naming the setting to fix.
    pub fn check_production(&self) -> anyhow::Result<()> {
        if self.env != Environment::Production {
            return Ok(());
        }
        match &self.jwt_secret {
            None => bail!(
                "VORG_ENV=production: JWT_SECRET is not set; set it to a random value of at least \
                 {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            ),
            Some(s) if s.expose().len() < MIN_SECRET_BYTES => bail!(
                "VORG_ENV=production: JWT_SECRET is {} bytes; it must be at least {MIN_SECRET_BYTES}",
                s.expose().len()
            ),
            _ => {}
        }
        if self.cors_origins.iter().any(|o| o == "*") {
            bail!(
                "VORG_ENV=production: VORG_CORS_ORIGINS allows \"*\"; list the console's origins"
            );
        }
        Ok(())
    }

    /// The database URL: `DATABASE_URL`, or the SQLite file under the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("vorg.db").display()),
        }
    }

    /// The worker settings for `concurrency` jobs at once.
    pub fn worker_config(&self, concurrency: usize) -> vorg_jobs::WorkerConfig {
        let mut cfg = vorg_jobs::WorkerConfig::new(concurrency);
        cfg.lease = std::time::Duration::from_millis(self.job_lease_ms);
        cfg.shutdown_grace = std::time::Duration::from_millis(self.shutdown_grace_ms);
        cfg
    }

    /// The URL with any password removed, for logs.
    pub fn database_url_for_logs(&self) -> String {
        redact_url(&self.database_url())
    }
}

/// A TOML scalar as the text an environment variable would hold.
fn scalar(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn parse_bool(src: &str, v: &str) -> anyhow::Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => bail!("{src}: expected true or false, got {v:?}"),
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn nothing_set_gives_the_seed_defaults() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8000");
        assert_eq!(s.jwt_issuer, "vo-api");
        assert_eq!(s.jwt_audience, "vo-console");
        assert_eq!(s.jwt_expires_min, 120);
        assert_eq!(s.database_url(), "sqlite://./data/vorg.db");
        s.check_production().unwrap();
    }

    #[test]
    fn env_overrides_the_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("vorg-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("vorg.toml");
        std::fs::write(&file, "jwt_issuer = \"from-file\"\njwt_expires_min = 5\ncors_origins = [\"http://a\", \"http://b\"]\n").unwrap();
        let s = Settings::load(Some(&file), env(&[("JWT_EXPIRES_MIN", "7")])).unwrap();
        assert_eq!(s.jwt_issuer, "from-file");
        assert_eq!(s.jwt_expires_min, 7);
        assert_eq!(s.cors_origins, ["http://a", "http://b"]);
        std::fs::write(&file, "jwt_isuer = \"typo\"\n").unwrap();
        let err = Settings::load(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown setting \"jwt_isuer\""), "{err}");
    }

    #[test]
    fn automation_and_pool_settings_are_read_and_checked() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.db_max_connections, 24);
        assert!(s.scheduler && !s.webhooks_allow_private);
        let s = Settings::load(
            None,
            env(&[
                ("VORG_DB_MAX_CONNECTIONS", "6"),
                ("VORG_PUBLIC_URL", "https://vorg.example.com/"),
                ("VORG_WEBHOOK_RETRY_SECS", "1, 2.5"),
                ("VORG_SCHEDULER", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(s.db_max_connections, 6);
        assert_eq!(s.public_url.as_deref(), Some("https://vorg.example.com"));
        assert_eq!(s.webhook_retry_secs, Some(vec![1.0, 2.5]));
        assert!(!s.scheduler);
        for (var, value) in [
            ("VORG_DB_MAX_CONNECTIONS", "2"),
            ("VORG_PUBLIC_URL", "vorg.example.com"),
            ("VORG_WEBHOOK_RETRY_SECS", "1,-5"),
            ("VORG_WEBHOOK_DISABLE_AFTER", "0"),
        ] {
            let err = Settings::load(None, env(&[(var, value)])).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("{var}:")),
                "{var}: {err}"
            );
        }
    }

    #[test]
    fn each_compatible_server_may_name_its_own_key_variable() {
        let s = Settings::load(
            None,
            env(&[
                (
                    "VORG_LLM_COMPAT",
                    "groq=https://api.groq.com/openai/v1|GROQ_API_KEY, \
                     ollama=http://127.0.0.1:11434/v1,openrouter=https://openrouter.ai/api/v1|OR_KEY",
                ),
                ("GROQ_API_KEY", "gsk_groq"),
                ("OR_KEY", "sk-or-1"),
                ("VORG_BUDGET_LEASE_SECS", "5"),
            ]),
        )
        .unwrap();
        let servers: Vec<(&str, &str, Option<&str>)> = s
            .llm_compat
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.base_url.as_str(),
                    c.key.as_ref().map(Secret::expose),
                )
            })
            .collect();
        assert_eq!(
            servers,
            [
                ("groq", "https://api.groq.com/openai/v1", Some("gsk_groq")),
                ("ollama", "http://127.0.0.1:11434/v1", None),
                (
                    "openrouter",
                    "https://openrouter.ai/api/v1",
                    Some("sk-or-1")
                ),
            ]
        );
        assert_eq!(s.budget_lease_secs, 5);
        // The key never shows in the settings' debug form.
        assert!(!format!("{s:?}").contains("gsk_groq"));
        for (compat, why) in [
            ("groq=https://x/v1|GROQ_MISSING", "GROQ_MISSING is not set"),
            (
                "groq=https://x/v1|groq-key",
                "is not an environment variable name",
            ),
            ("a=https://x/v1,a=https://y/v1", "named twice"),
            ("a=ftp://x", "must start with http"),
        ] {
            let err = Settings::load(None, env(&[("VORG_LLM_COMPAT", compat)]))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("VORG_LLM_COMPAT:"), "{err}");
            assert!(err.contains(why), "{compat}: {err}");
        }
        let err = Settings::load(None, env(&[("VORG_BUDGET_LEASE_SECS", "0")])).unwrap_err();
        assert!(
            err.to_string().starts_with("VORG_BUDGET_LEASE_SECS:"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = Settings::load(None, env(&[("ALLOW_SIGNUP", "maybe")])).unwrap_err();
        assert!(err.to_string().starts_with("ALLOW_SIGNUP:"), "{err}");
    }

    #[test]
    fn production_refuses_unsafe_defaults_naming_the_setting() {
        let prod = |extra: &[(&str, &str)]| {
            let mut pairs = vec![("VORG_ENV", "production")];
            pairs.extend_from_slice(extra);
            Settings::load(None, env(&pairs))
                .unwrap()
                .check_production()
        };
        assert!(
            prod(&[])
                .unwrap_err()
                .to_string()
                .contains("JWT_SECRET is not set")
        );
        assert!(
            prod(&[("JWT_SECRET", "short")])
                .unwrap_err()
                .to_string()
                .contains("JWT_SECRET is 5 bytes")
        );
        let long = "x".repeat(32);
        assert!(
            prod(&[("JWT_SECRET", &long), ("VORG_CORS_ORIGINS", "*")])
                .unwrap_err()
                .to_string()
                .contains("VORG_CORS_ORIGINS")
        );
        prod(&[("JWT_SECRET", &long)]).unwrap();
    }

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        let s = Settings::load(None, env(&[("DATABASE_URL", "postgres://u:pw@h/db")])).unwrap();
        assert!(!format!("{s:?}").contains("pw"));
    }
}
