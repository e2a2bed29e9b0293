//! Liveness, readiness and Prometheus metrics.

use std::{sync::Arc, time::Instant};

use axum::{
    Json,
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ApiResult},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "ops",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    status: &'static str,
    /// `sqlite` or `postgres`.
    database: &'static str,
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/ready", tag = "ops",
    responses((status = 200, description = "Ready", body = Ready)))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Ready>> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("database unreachable: {e}")))?;
    Ok(Json(Ready {
        status: "ready",
        database: match state.store.backend() {
            vorg_store::Backend::Sqlite => "sqlite",
            vorg_store::Backend::Postgres => "postgres",
        },
    }))
}

/// Prometheus text: request counts and latency histograms by route and status.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (run_clients, org_clients) = state.hub.client_counts();
    let run_channels = state.hub.run_channels();
    let open = state.streams.open();
    state.metrics.record(|| {
        metrics::gauge!("vorg_stream_clients", "stream" => "run").set(run_clients as f64);
        metrics::gauge!("vorg_stream_clients", "stream" => "org").set(org_clients as f64);
        metrics::gauge!("vorg_stream_run_channels").set(run_channels as f64);
        metrics::gauge!("vorg_streams_open").set(open as f64);
    });
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// This application's metrics: a recorder of its own (not the process-global one), so
/// several applications in one process (the tests) never mix their numbers.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Metrics {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    /// Records with this application's recorder.
    pub fn record(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(&*self.recorder, f)
    }

    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts each request and times it, labelled by matched route (bounded cardinality).
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    let elapsed = start.elapsed().as_secs_f64();
    state.metrics.record(|| {
        metrics::counter!("http_requests_total", &labels).increment(1);
        metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed);
    });
    response
}
