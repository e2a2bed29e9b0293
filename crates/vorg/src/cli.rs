//! The command line: `vorg serve | worker | meeting | migrate | user … | token …`.

mod meeting;
mod workflow;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_domain::{Email, Password, Role};
use vorg_store::{NewApiToken, NewAuditEntry, Page, Store, StoreError};

use crate::{Application, Settings, startup::open_store, telemetry};

/// vorg: run a virtual organization staffed by AI agents.
///
/// Settings come from environment variables (DATABASE_URL, JWT_SECRET, ALLOW_SIGNUP, …, see
/// the README's configuration table), over an optional vorg.toml, over defaults that work with
/// nothing set: SQLite under ./data, a generated JWT secret, http://127.0.0.1:8000.
#[derive(Parser, Debug)]
#[command(name = "vorg", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML; keys are the lower-case variable names).
    #[arg(long, global = true, env = "VORG_CONFIG", default_value = "vorg.toml")]
    pub config: PathBuf,
    /// Data directory: SQLite file, generated secret, local artifacts.
    #[arg(long, global = true, env = "VORG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the API and run job workers (VORG_WORKERS at once) in one process.
    Serve(ServeArgs),
    /// Run job workers only (no HTTP), to scale execution out; several may share one
    /// PostgreSQL database.
    Worker(WorkerArgs),
    /// Hold a stand-up, brainstorm or all-hands now, in this process (no server needed):
    /// the run's log streams to stderr and the minutes (markdown) print to stdout.
    ///
    /// Without content the personas hold the meeting through the configured models (the
    /// simulated provider when no API key is set); with `--json FILE` (the body `POST
    /// /meetings/{type}` takes) it is rendered as given. Exits non-zero with the run's error
    /// when the meeting fails.
    Meeting(meeting::MeetingArgs),
    /// Run or check a workflow (dag, graph, crew or chat) in this process: `vorg workflow
    /// run FILE --input topic=pricing` streams the run's log to stderr and prints its
    /// results (JSON) to stdout.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
    /// Apply pending database migrations and exit (serve also does this on start).
    Migrate,
    /// Print the OpenAPI document (what `/openapi.json` serves) and exit.
    Openapi,
    /// Manage user accounts and their roles.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens for agents and scripts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Serve vorg's MCP tools, resources and prompts over stdio (for desktop and CLI agents:
    /// Claude Desktop, Cursor, …). Each call goes to the vorg server at --url with the token,
    /// so the token's permissions, limits and budgets apply as over REST.
    Mcp(McpArgs),
    /// Inspect the budget ledger.
    #[command(subcommand)]
    Budgets(BudgetsCommand),
}

#[derive(Subcommand, Debug)]
pub enum BudgetsCommand {
    /// Reap expired budget leases, then prove the ledger: each budget's spend equals the
    /// sum of the costs of the usage rows charged to it, and its reservation the sum of its
    /// live leases. Prints one line per budget; exits 1 when any differs.
    Check,
}

#[derive(Args, Debug)]
pub struct McpArgs {
    /// The API token the agent acts with (`vorg token create`, or `POST /auth/tokens`).
    #[arg(long, env = "VORG_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The vorg server to call.
    #[arg(long, env = "VORG_URL", default_value = "http://127.0.0.1:8000")]
    pub url: String,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, env = "VORG_BIND")]
    pub bind: Option<String>,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Jobs executed at once (default: VORG_WORKERS, else 4).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account (the way to create the first admin in production).
    Create {
        #[arg(long)]
        email: String,
        /// The password (at least 8 characters). Prefer the environment variable.
        #[arg(long, env = "VORG_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Roles to hold (repeatable). Default: viewer.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Shorthand for --role admin.
        #[arg(long)]
        admin: bool,
    },
    /// Grant a role to a user.
    Grant { email: String, role: String },
    /// Revoke a role from a user (the last admin cannot be demoted).
    Revoke { email: String, role: String },
    /// List users with their roles.
    List,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for a user and print its secret (shown once).
    Create {
        /// The owner's e-mail.
        #[arg(long)]
        email: String,
        /// A label for the token.
        #[arg(long)]
        name: String,
        /// Roles the token carries (repeatable; each role's permissions must be the
        /// owner's). Default: the owner's roles, unless permissions are given.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Permissions the token carries (repeatable, e.g. `use_llm`; each must be the
        /// owner's). Default: the roles' permissions.
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Lifetime in days. Default: no expiry.
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// Revoke an API token by id.
    Revoke { id: i64 },
}

/// Settings from the file and the environment, with the global flags applied.
pub fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(Some(&cli.config), |k| std::env::var(k).ok())?;
    if let Some(dir) = &cli.data_dir {
        settings.data_dir = dir.clone();
    }
    if let Command::Serve(ServeArgs { bind: Some(bind) }) = &cli.command {
        settings.bind = bind.clone();
    }
    Ok(settings)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = settings(&cli)?;
    match cli.command {
        Command::Meeting(_) | Command::Workflow(_) | Command::Openapi | Command::Mcp(_) => {
            meeting::init_logs(settings.log_format)
        }
        _ => telemetry::init(settings.log_format),
    }
    match cli.command {
        Command::Serve(_) => serve(settings).await,
        Command::Mcp(args) => crate::mcp::stdio(&args.url, args.token).await,
        Command::Worker(args) => worker(settings, args).await,
        Command::Meeting(args) => {
            let store = open_store(&settings).await?;
            let result = meeting::meeting(&settings, &store, args).await;
            store.close().await;
            result
        }
        Command::Workflow(workflow::WorkflowCommand::Check { file }) => {
            workflow::workflow(&settings, None, workflow::WorkflowCommand::Check { file }).await
        }
        Command::Workflow(cmd) => {
            let store = open_store(&settings).await?;
            let result = workflow::workflow(&settings, Some(&store), cmd).await;
            store.close().await;
            result
        }
        Command::Openapi => {
            let doc = vorg_api::openapi_document();
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        Command::Migrate => {
            open_store(&settings).await?.close().await;
            println!("migrations applied to {}", settings.database_url_for_logs());
            Ok(())
        }
        Command::User(cmd) => {
            let store = open_store(&settings).await?;
            let result = user(&store, cmd).await;
            store.close().await;
            result
        }
        Command::Token(cmd) => {
            let store = open_store(&settings).await?;
            let result = token(&store, cmd).await;
            store.close().await;
            result
        }
        Command::Budgets(BudgetsCommand::Check) => {
            let store = open_store(&settings).await?;
            let result = budgets_check(&store).await;
            store.close().await;
            if !result? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    #[allow(clippy::disallowed_methods)] // the signal watcher lives as long as the process
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing in-flight requests");
        trigger.cancel();
    });
    app.run_until_stopped(shutdown).await
}

async fn worker(settings: Settings, args: WorkerArgs) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let concurrency = args.concurrency.unwrap_or(settings.workers).max(1);
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    store.start_listener(&tracker, stop.clone()).await?;
    let services = crate::startup::build_services(&settings, &store).await?;
    let llm = services.llm.clone();
    llm.ledger().start(&tracker, stop.clone());
    crate::automation::sync_schedules(&services.org, &store).await?;
    let worker = vorg_jobs::Worker::new(
        store.clone(),
        crate::automation::registry(&settings, services)?,
        settings.worker_config(concurrency),
    );
    crate::automation::spawn(&settings, &store, &tracker, stop.clone());
    tracing::info!(
        database = %settings.database_url_for_logs(),
        concurrency,
        "worker process ready"
    );
    let trigger = stop.clone();
    tracker.spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing or releasing running jobs");
        trigger.cancel();
    });
    worker.run(stop.clone()).await;
    llm.flush_usage().await;
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    llm.ledger().close().await;
    store.close().await;
    Ok(())
}

/// `vorg budgets check`: true when every budget balances.
async fn budgets_check(store: &Store) -> anyhow::Result<bool> {
    let now = chrono::Utc::now().timestamp_millis();
    let reaped = store.reap_leases(now, None).await?;
    if reaped > 0 {
        println!("reaped {reaped} expired lease(s)");
    }
    let checks = store.check_budgets().await?;
    let usd = vorg_domain::money::micro_to_usd;
    let mut ok = true;
    for c in &checks {
        let state = if c.balanced() { "ok" } else { "MISMATCH" };
        ok &= c.balanced();
        println!(
            "{state:8} {}/{}/{}: spent ${} = usage ${}; reserved ${} = leases ${}",
            c.scope,
            c.subject,
            c.period,
            usd(c.spent_micro_usd),
            usd(c.usage_micro_usd),
            usd(c.reserved_micro_usd),
            usd(c.leased_micro_usd),
        );
    }
    println!(
        "{} budget(s), {}",
        checks.len(),
        if ok {
            "all balanced"
        } else {
            "some do not balance"
        }
    );
    Ok(ok)
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn parse_roles(raw: &[String]) -> anyhow::Result<Vec<Role>> {
    raw.iter()
        .map(|r| r.parse::<Role>().map_err(anyhow::Error::from))
        .collect()
}

async fn find(store: &Store, email: &str) -> anyhow::Result<vorg_store::UserWithRoles> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    store
        .find_user_by_email(email.as_str())
        .await?
        .with_context(|| format!("no user with e-mail {email}"))
}

async fn cli_audit(store: &Store, action: &'static str, target: String, detail: serde_json::Value) {
    let entry = NewAuditEntry {
        actor_user_id: None,
        actor: "cli".into(),
        action,
        target: Some(target),
        detail,
        request_id: None,
    };
    if let Err(e) = store.record_audit(entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}

async fn user(store: &Store, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            email,
            password,
            roles,
            admin,
        } => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let password =
                Password::parse(&password).map_err(|e| anyhow::anyhow!("--password: {e}"))?;
            let mut roles = parse_roles(&roles)?;
            if admin {
                roles.push(Role::Admin);
            }
            if roles.is_empty() {
                roles.push(Role::Viewer);
            }
            let hasher = vorg_api::PasswordHasher::new().map_err(|e| anyhow::anyhow!("{e}"))?;
            let hash = hasher
                .hash(password.expose())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let created = match store
                .create_user(email.as_str(), &hash, &roles, false)
                .await
            {
                Err(StoreError::Conflict(_)) => bail!("a user with e-mail {email} already exists"),
                other => other?,
            };
            cli_audit(
                store,
                "user.create",
                format!("user:{}", created.user.id),
                serde_json::json!({ "roles": created.roles }),
            )
            .await;
            println!(
                "created user {} ({email}) with roles {}",
                created.user.id,
                join(&created.roles)
            );
        }
        UserCommand::Grant { email, role } => {
            let user = find(store, &email).await?;
            let role: Role = role.parse()?;
            store.grant_role(user.user.id, role).await?;
            cli_audit(
                store,
                "user.role.grant",
                format!("user:{}", user.user.id),
                serde_json::json!({ "role": role }),
            )
            .await;
            println!(
                "{email} now holds {}",
                join(&store.user_roles(user.user.id).await?)
            );
        }
        UserCommand::Revoke { email, role } => {
            let user = find(store, &email).await?;
            let role: Role = role.parse()?;
            match store.revoke_role(user.user.id, role).await {
                Err(StoreError::Rule(rule)) => bail!("{rule}"),
                other => other?,
            };
            cli_audit(
                store,
                "user.role.revoke",
                format!("user:{}", user.user.id),
                serde_json::json!({ "role": role }),
            )
            .await;
            println!(
                "{email} now holds {}",
                join(&store.user_roles(user.user.id).await?)
            );
        }
        UserCommand::List => {
            let mut before = None;
            println!("{:>6}  {:<40}  roles", "id", "email");
            loop {
                let users = store.list_users(Page { limit: 200, before }).await?;
                for u in &users {
                    println!("{:>6}  {:<40}  {}", u.user.id, u.user.email, join(&u.roles));
                }
                match users.last() {
                    Some(last) if users.len() == 200 => before = Some(last.user.id),
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

async fn token(store: &Store, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            email,
            name,
            roles,
            permissions,
            expires_in_days,
        } => {
            let user = find(store, &email).await?;
            let held = vorg_domain::Permissions::of_roles(&user.roles);
            let mut roles = parse_roles(&roles)?;
            if roles.is_empty() && permissions.is_empty() {
                roles = user.roles.clone();
            }
            let admin = user.roles.contains(&vorg_domain::Role::Admin);
            for role in &roles {
                if !admin && !user.roles.contains(role) {
                    bail!("--role {role}: {email} does not hold it");
                }
                if let Some(p) =
                    vorg_domain::Permissions::of_roles(&[*role]).first_missing_from(held)
                {
                    bail!("--role {role}: it holds {p}, which {email} does not hold");
                }
            }
            let permissions = if permissions.is_empty() {
                vorg_domain::Permissions::of_roles(&roles)
            } else {
                let mut set = vorg_domain::Permissions::NONE;
                for name in &permissions {
                    let p: vorg_domain::Permission = name
                        .parse()
                        .map_err(|e| anyhow::anyhow!("--permission: {e}"))?;
                    if !held.contains(p) {
                        bail!("--permission {p}: {email} does not hold it");
                    }
                    set.insert(p);
                }
                set
            };
            let expires_at = match expires_in_days {
                None => None,
                Some(d @ 1..=3650) => Some(chrono_now() + chrono::Duration::days(d)),
                Some(_) => bail!("--expires-in-days: must be between 1 and 3650"),
            };
            let (secret, prefix) = vorg_api::generate_api_token();
            let token = store
                .create_token(NewApiToken {
                    user_id: user.user.id,
                    name: &name,
                    token_hash: &vorg_api::hash_api_token(&secret),
                    prefix: &prefix,
                    roles: &roles,
                    permissions,
                    limits: &vorg_domain::TokenLimits::default(),
                    expires_at,
                })
                .await?;
            cli_audit(
                store,
                "token.create",
                format!("token:{}", token.id),
                serde_json::json!({ "name": name, "roles": roles, "permissions": permissions }),
            )
            .await;
            eprintln!(
                "token {} for {email} with roles {} and permissions {} (shown once):",
                token.id,
                join(&roles),
                permissions.to_column()
            );
            println!("{secret}");
        }
        TokenCommand::Revoke { id } => {
            match store.revoke_token(id, None).await {
                Err(StoreError::NotFound) => bail!("no live token with id {id}"),
                other => other?,
            };
            cli_audit(
                store,
                "token.revoke",
                format!("token:{id}"),
                serde_json::json!({}),
            )
            .await;
            println!("revoked token {id}");
        }
    }
    Ok(())
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn join(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
