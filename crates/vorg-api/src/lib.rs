//! vorg's HTTP API: routes, authentication, the access table, errors and the OpenAPI
//! document. Built by [`router`] from an [`AppState`]; the binary crate serves it.

pub mod access;
mod approvals;
mod artifacts;
mod audit;
pub mod auth;
mod automation;
pub mod client_ip;
pub mod console;
pub mod error;
pub mod extract;
mod health;
mod hiring;
mod linear;
mod llm;
mod meetings;
mod openai;
mod openapi;
mod orchestration;
mod org;
mod pagination;
mod run_answer;
mod runs;
pub mod stream_limits;
mod streams;
mod usage;
mod users;
mod workflows;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderName, HeaderValue, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa_axum::router::OpenApiRouter;
use vorg_domain::Secret;
use vorg_store::Store;

pub use audit::audit;
pub use auth::{AuthLimiter, JwtKeys, PasswordHasher, generate_api_token, hash_api_token};
pub use error::{ApiError, LoggedError};
pub use health::Metrics;

/// Settings the API needs, already validated by the binary's config loader.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub jwt_secret: Secret,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_expires_min: i64,
    /// `ALLOW_SIGNUP`: later users may register (as `viewer`).
    pub allow_signup: bool,
    /// `ADMIN_SIGNUP_SECRET`: registering with it makes an admin.
    pub admin_signup_secret: Option<Secret>,
    /// The first registration needs `admin_secret` too (production with a secret set).
    pub first_user_needs_secret: bool,
    pub max_body_bytes: usize,
    pub login_per_minute_per_ip: u32,
    pub login_per_minute_per_account: u32,
    pub metrics_public: bool,
    /// Allowed CORS origins; `*` allows any. Empty: same-origin only.
    pub cors_origins: Vec<String>,
    /// How long meeting and hiring routes wait for their run before answering 202.
    pub run_wait_ms: u64,
    /// `VORG_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Caps on open SSE streams.
    pub stream_caps: stream_limits::StreamCaps,
    /// `VORG_PUBLIC_URL`: where vorg is reached from outside (hook URLs, links in webhooks).
    pub public_url: String,
    /// `VORG_WEBHOOKS_ALLOW_PRIVATE`: webhooks may target loopback and private addresses.
    pub webhooks_allow_private: bool,
}

/// Everything handlers share: one pointer, so the clone every extractor and layer makes of it
/// is a reference count, not a dozen.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points to.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub jwt: Arc<JwtKeys>,
    pub hasher: PasswordHasher,
    pub limiter: Arc<AuthLimiter>,
    /// Open SSE streams, counted against their caps.
    pub streams: Arc<stream_limits::StreamLimits>,
    pub hub: Arc<vorg_jobs::StreamHub>,
    pub llm: Arc<vorg_llm::Gateway>,
    pub org: Arc<vorg_org::Org>,
    /// `None` when `LINEAR_API_KEY` is not set.
    pub linear: Option<vorg_linear::LinearClient>,
    /// Where artifacts' bytes live; `None` only in tests that need none.
    pub blobs: Option<vorg_artifacts::Blobs>,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(
        store: Store,
        config: ApiConfig,
        hub: Arc<vorg_jobs::StreamHub>,
        llm: Arc<vorg_llm::Gateway>,
        org: Arc<vorg_org::Org>,
    ) -> Result<Self, ApiError> {
        let jwt = JwtKeys::new(
            config.jwt_secret.expose().as_bytes(),
            &config.jwt_issuer,
            &config.jwt_audience,
            config.jwt_expires_min,
        );
        let limiter = AuthLimiter::new(
            config.login_per_minute_per_ip,
            config.login_per_minute_per_account,
        );
        Ok(AppState(Arc::new(Shared {
            store,
            jwt: Arc::new(jwt),
            hasher: PasswordHasher::new()?,
            limiter: Arc::new(limiter),
            streams: Arc::new(stream_limits::StreamLimits::new(config.stream_caps)),
            config: Arc::new(config),
            hub,
            llm,
            org,
            linear: None,
            blobs: None,
            metrics: Metrics::new(),
        })))
    }
}

impl AppState {
    /// Linear for the `/linear` routes and the agents' `create_linear_issue` tool.
    pub fn with_linear(mut self, client: vorg_linear::LinearClient) -> Self {
        Arc::make_mut(&mut self.0).linear = Some(client);
        self
    }

    /// Blob storage for artifacts.
    pub fn with_blobs(mut self, blobs: vorg_artifacts::Blobs) -> Self {
        Arc::make_mut(&mut self.0).blobs = Some(blobs);
        self
    }
}

/// The API routes with their OpenAPI description, before state and layers.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(health::router())
        .merge(auth::routes::router())
        .merge(auth::tokens::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(runs::router())
        .merge(streams::router())
        .merge(llm::router())
        .merge(usage::router())
        .merge(org::router())
        .merge(approvals::router())
        .merge(linear::router())
        .merge(meetings::router())
        .merge(hiring::router())
        .merge(orchestration::router())
        .merge(artifacts::router())
        .merge(workflows::router())
        .merge(automation::router())
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, api) = api_routes().split_for_parts();
    openapi::finish(api)
}

/// The whole HTTP application: API, docs, access control and the cross-cutting layers.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = openapi::finish(doc);
    let api = api
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .with_state(state.clone());
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .merge(openapi::docs(doc))
        .merge(console::router())
        .fallback(not_found)
        .layer(middleware::from_fn(openai::errors))
        .layer(middleware::from_fn_with_state(state.clone(), health::observe))
        .layer(middleware::from_fn(log_errors))
        .layer(cors(&state.config.cors_origins))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

fn cors(origins: &[String]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        base.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        base.allow_origin(AllowOrigin::list(list))
    }
}

/// Logs each error answer once, inside the request span: 5xx with the whole cause chain,
/// 4xx briefly.
async fn log_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if let Some(LoggedError(error)) = response.extensions().get::<LoggedError>() {
        if response.status().is_server_error() {
            tracing::error!(status = response.status().as_u16(), error = ?anyhow_chain(error), "request failed");
        } else {
            tracing::info!(status = response.status().as_u16(), code = error.code(), detail = %error.detail(), "request refused");
        }
    }
    response.into_response()
}

fn anyhow_chain(error: &ApiError) -> String {
    match error {
        ApiError::Internal(e) => format!("{e:#}"),
        other => other.to_string(),
    }
}
