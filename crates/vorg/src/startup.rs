//! Wiring: settings → store → API state → a bound listener, and a graceful run loop.

use std::{net::SocketAddr, path::Path};

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_api::{ApiConfig, AppState};
use vorg_domain::Secret;
use vorg_jobs::{StreamHub, Worker};
use vorg_store::Store;

use crate::config::{Environment, Settings};

/// Where the generated JWT secret is kept, under the data directory.
pub const SECRET_FILE: &str = "jwt_secret";

/// A built server: store migrated, listener bound. `run_until_stopped` serves it.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: axum::Router,
    store: Store,
    /// Background tasks: the event listener, the stream hub, the workers.
    tracker: TaskTracker,
    /// Ends live streams (first step of shutdown, so they do not hold it up).
    streams: CancellationToken,
    /// Stops workers and the listener once HTTP has drained.
    background: CancellationToken,
    /// Flushed at shutdown: usage rows still queued are written before the store closes.
    llm: std::sync::Arc<vorg_llm::Gateway>,
}

/// Opens the store for `settings` (creating the data directory) and migrates it.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    crate::limits::private_dir(&settings.data_dir)?;
    let url = settings.database_url();
    crate::limits::private_sqlite_file(&url)?;
    let size = vorg_store::PoolSize {
        max: settings.db_max_connections,
    };
    let store = Store::connect_and_migrate_sized(&url, size)
        .await
        .with_context(|| format!("opening the database {}", settings.database_url_for_logs()))?;
    Ok(store)
}

/// The JWT secret: configured, or read from (or generated into) the data directory.
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<Secret> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    if settings.env == Environment::Production {
        bail!("VORG_ENV=production: JWT_SECRET is not set");
    }
    let path = settings.data_dir.join(SECRET_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the JWT secret at {}", path.display()))?;
        let text = text.trim();
        if text.len() < 32 {
            bail!(
                "{} holds a secret shorter than 32 bytes; delete it to generate a new one",
                path.display()
            );
        }
        tracing::info!(path = %path.display(), "JWT_SECRET not set: using the secret generated earlier");
        return Ok(Secret::new(text));
    }
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &secret)?;
    tracing::warn!(
        path = %path.display(),
        "JWT_SECRET not set: generated a random secret and stored it (tokens survive restarts; set JWT_SECRET in production)"
    );
    Ok(Secret::new(secret))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(text.as_bytes())?;
    }
    #[cfg(not(unix))]
    std::fs::write(path, text).with_context(|| format!("creating {}", path.display()))?;
    Ok(())
}

/// Everything the API and the workers share: the organization, the gateway governed by
/// it, artifact storage and Linear (when configured).
pub async fn build_services(
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<vorg_services::Services> {
    let org = std::sync::Arc::new(load_org(settings, store).await?);
    let llm = std::sync::Arc::new(build_gateway(settings, store)?.with_governor(org.clone()));
    let blobs = build_blobs(settings).await?;
    let linear = match &settings.linear_api_key {
        None => None,
        Some(key) => {
            let config = vorg_linear::LinearConfig::new(key.expose())
                .with_endpoint(settings.linear_api_url.clone());
            let client = vorg_linear::LinearClient::new(config)
                .context("building the Linear client (LINEAR_API_KEY, LINEAR_API_URL)")?;
            tracing::info!(endpoint = %settings.linear_api_url, "Linear configured");
            Some(client)
        }
    };
    Ok(vorg_services::Services {
        store: store.clone(),
        org,
        llm,
        blobs,
        linear,
    })
}

/// Artifact storage: `data_dir/artifacts`, or S3 when `STORE_TO_S3=true` (checked now, so
/// a missing bucket or bad credentials stop the start with a clear message).
pub async fn build_blobs(settings: &Settings) -> anyhow::Result<vorg_artifacts::Blobs> {
    if !settings.store_to_s3 {
        let dir = settings.data_dir.join("artifacts");
        return vorg_artifacts::Blobs::local(&dir)
            .with_context(|| format!("artifact storage at {}", dir.display()));
    }
    let bucket = settings
        .s3_bucket
        .clone()
        .context("STORE_TO_S3=true needs S3_BUCKET")?;
    let endpoint = settings.s3_endpoint.clone();
    let cfg = vorg_artifacts::S3Config {
        bucket,
        region: settings.s3_region.clone(),
        allow_http: endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://")),
        endpoint,
        access_key_id: settings
            .s3_access_key_id
            .as_ref()
            .map(|s| s.expose().to_owned()),
        secret_access_key: settings
            .s3_secret_access_key
            .as_ref()
            .map(|s| s.expose().to_owned()),
    };
    let blobs = vorg_artifacts::Blobs::s3(cfg)
        .await
        .context("artifact storage on S3 (STORE_TO_S3, S3_BUCKET, S3_ENDPOINT, AWS credentials)")?;
    tracing::info!(storage = %blobs.describe(), "artifact storage ready");
    Ok(blobs)
}

/// The organization: its data files (VORG_CONFIG_DIR, the working directory, or the shipped
/// ones), the policies in force and, on the first start, the default personas.
pub async fn load_org(settings: &Settings, store: &Store) -> anyhow::Result<vorg_org::Org> {
    let files = vorg_org::OrgFiles::discover(settings.config_dir.as_deref())
        .context("finding the organization's files (VORG_CONFIG_DIR)")?;
    let org = vorg_org::Org::load(store.clone(), files)
        .await
        .context("loading the organization (governance, schemas, personas)")?;
    tracing::info!(
        config_dir = %org.files().dir().map(|d| d.display().to_string()).unwrap_or_else(|| "built-in".into()),
        policy_version = org.policy_version(),
        "organization loaded"
    );
    Ok(org)
}

/// The LLM gateway for `settings`: OpenAI and Anthropic when their keys are set, each
/// configured OpenAI-compatible server, and the simulated provider (the default when no key
/// is set).
pub fn build_gateway(settings: &Settings, store: &Store) -> anyhow::Result<vorg_llm::Gateway> {
    use std::time::Duration;
    use vorg_llm::{Gateway, Pricing, RetryPolicy, openai::OpenAi, simulated};
    let pricing = match &settings.pricing_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "reading the pricing table {} (VORG_PRICING_FILE)",
                    path.display()
                )
            })?;
            Pricing::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Pricing::shipped(),
    };
    let connect = Duration::from_millis(settings.llm_connect_timeout_ms);
    let total = Duration::from_millis(settings.llm_timeout_ms);
    let retry = RetryPolicy {
        max_retries: settings.llm_max_retries,
        ..RetryPolicy::default()
    };
    let default = if settings.openai_api_key.is_some() {
        "openai"
    } else {
        simulated::NAME
    };
    let lease_ttl = std::time::Duration::from_secs(settings.budget_lease_secs);
    let mut gateway = Gateway::new(store.clone(), pricing, default, retry)
        .with_leases(vorg_llm::LeaseConfig {
            ttl: lease_ttl,
            idle: lease_ttl / 3,
        })
        .with_provider(simulated::Simulated, simulated::MODEL);
    if let Some(key) = &settings.openai_api_key {
        let openai = OpenAi::new(
            "openai",
            &settings.openai_base_url,
            Some(key.clone()),
            connect,
            total,
        )?;
        gateway = gateway.with_provider(openai, &settings.openai_model);
    }
    if let Some(key) = &settings.anthropic_api_key {
        let anthropic = vorg_llm::anthropic::Anthropic::new(
            "anthropic",
            &settings.anthropic_base_url,
            key.clone(),
            connect,
            total,
        )?;
        gateway = gateway.with_provider(anthropic, &settings.anthropic_model);
    }
    for c in &settings.llm_compat {
        let server = OpenAi::new(&c.name, &c.base_url, c.key.clone(), connect, total)?;
        gateway = gateway.with_provider(server, "default");
    }
    let default_chain = vec![(default.to_owned(), gateway.default_model_for(default))];
    gateway = gateway.with_alias("default", default_chain);
    for (alias, chain) in &settings.llm_aliases {
        gateway = gateway.with_alias(alias, chain.clone());
    }
    tracing::info!(
        default_provider = default,
        providers = ?gateway.provider_names().collect::<Vec<_>>(),
        "LLM gateway ready{}",
        if default == simulated::NAME { " (no API key set: the simulated provider answers)" } else { "" }
    );
    Ok(gateway)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.check_production()?;
        let store = open_store(&settings).await?;
        tracing::info!(
            data_dir = %settings.data_dir.display(),
            database = %settings.database_url_for_logs(),
            "store ready"
        );
        if settings.env == Environment::Production
            && settings.allow_signup != Some(true)
            && settings.admin_signup_secret.is_none()
            && store.count_users().await? == 0
        {
            bail!(
                "VORG_ENV=production: signup is open (no account exists, so the first visitor to \
                 POST /auth/register would become admin). Create the admin with `vorg user create \
                 --admin`, or set ADMIN_SIGNUP_SECRET (the first registration must present it), or \
                 set ALLOW_SIGNUP=true to accept open signup explicitly"
            );
        }
        let config = ApiConfig {
            jwt_secret: jwt_secret(&settings)?,
            jwt_issuer: settings.jwt_issuer.clone(),
            jwt_audience: settings.jwt_audience.clone(),
            jwt_expires_min: settings.jwt_expires_min,
            allow_signup: settings.allow_signup.unwrap_or(false),
            admin_signup_secret: settings.admin_signup_secret.clone(),
            first_user_needs_secret: settings.env == Environment::Production
                && settings.admin_signup_secret.is_some(),
            max_body_bytes: settings.max_body_bytes,
            login_per_minute_per_ip: settings.login_per_minute_per_ip,
            login_per_minute_per_account: settings.login_per_minute_per_account,
            metrics_public: settings.metrics_public,
            cors_origins: settings.cors_origins.clone(),
            run_wait_ms: settings.run_wait_ms,
            trusted_proxies: settings.trusted_proxies.clone(),
            stream_caps: crate::limits::stream_caps(&settings),
            public_url: crate::automation::public_url(&settings),
            webhooks_allow_private: settings.webhooks_allow_private,
        };
        let tracker = TaskTracker::new();
        let streams = CancellationToken::new();
        let background = CancellationToken::new();
        store
            .start_listener(&tracker, background.clone())
            .await
            .context("listening for events on PostgreSQL")?;
        let hub = StreamHub::start(store.clone(), &tracker, streams.clone());
        let services = build_services(&settings, &store).await?;
        services.llm.ledger().start(&tracker, background.clone());
        crate::automation::sync_schedules(&services.org, &store).await?;
        if settings.workers > 0 {
            Worker::new(
                store.clone(),
                crate::automation::registry(&settings, services.clone())?,
                settings.worker_config(settings.workers),
            )
            .spawn(&tracker, background.clone());
        }
        crate::automation::spawn(&settings, &store, &tracker, background.clone());
        let mut state = AppState::new(
            store.clone(),
            config,
            hub,
            services.llm.clone(),
            services.org.clone(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_blobs(services.blobs.clone());
        if let Some(client) = services.linear.clone() {
            state = state.with_linear(client);
        }
        let router = crate::mcp::mount(
            vorg_api::router(state.clone()),
            state,
            &tracker,
            streams.clone(),
        );
        let listener = TcpListener::bind(&settings.bind)
            .await
            .with_context(|| format!("binding {} (VORG_BIND / --bind)", settings.bind))?;
        let addr = listener.local_addr()?;
        Ok(Application {
            listener,
            addr,
            router,
            store,
            tracker,
            streams,
            background,
            llm: services.llm.clone(),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` is cancelled. Then: live streams end, in-flight requests
    /// finish, workers finish or release their jobs, and the store closes.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.addr, "listening on http://{}", self.addr);
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let streams = self.streams.clone();
        // Small writes go out at once: an SSE event, or an MCP answer streamed as a priming
        // event, the message and the end of the body, must not wait for Nagle's algorithm and
        // the peer's delayed ACK (40 ms a response on a reused connection).
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                shutdown.cancelled().await;
                streams.cancel();
            })
            .await
            .context("serving HTTP")?;
        self.streams.cancel();
        self.background.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        self.llm.flush_usage().await;
        self.llm.ledger().close().await;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}
