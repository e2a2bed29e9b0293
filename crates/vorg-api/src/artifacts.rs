//! `/artifacts`: what runs produced — list, read, download, search.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_artifacts::{BlobError, Blobs};
use vorg_store::{Artifact, StoreError};

use crate::{
    AppState,
    error::{ApiError, ApiResult},
    extract::{ApiPath, ApiQuery},
    pagination::{Paged, page},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_artifacts))
        .routes(routes!(search_artifacts))
        .routes(routes!(get_artifact))
        .routes(routes!(artifact_content))
}

/// The blob storage, or a 503 saying it is not set up.
pub fn blobs(state: &AppState) -> ApiResult<&Blobs> {
    state
        .blobs
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("artifact storage is not configured".into()))
}

#[derive(Serialize, ToSchema)]
pub struct ArtifactView {
    id: i64,
    kind: String,
    name: String,
    /// The storage key.
    path: Option<String>,
    /// `local` or `s3`.
    storage: String,
    content_type: String,
    size: i64,
    run_id: Option<i64>,
    created_by: Option<i64>,
    created_at: DateTime<Utc>,
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    meta: serde_json::Value,
    /// Where the bytes are.
    download: String,
}

impl From<Artifact> for ArtifactView {
    fn from(a: Artifact) -> Self {
        ArtifactView {
            download: format!("/artifacts/{}/content", a.id),
            id: a.id,
            kind: a.kind,
            name: a.name,
            path: a.path,
            storage: a.storage,
            content_type: a.content_type,
            size: a.size,
            run_id: a.run_id,
            created_by: a.created_by,
            created_at: a.created_at,
            meta: a.meta.0,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArtifactQuery {
    /// e.g. `minutes`, `minutes_json`, `hiring_plan`.
    kind: Option<String>,
    run_id: Option<i64>,
    /// Items per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Artifacts, newest first, by kind or run.
#[utoipa::path(get, path = "/artifacts", tag = "artifacts", params(ArtifactQuery),
    responses((status = 200, body = Paged<ArtifactView>)))]
pub async fn list_artifacts(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ArtifactQuery>,
) -> ApiResult<Json<Paged<ArtifactView>>> {
    let page = page(q.limit, q.cursor.as_deref())?;
    let rows = state
        .store
        .list_artifacts(q.kind.as_deref(), q.run_id, page)
        .await?;
    Ok(Json(Paged::new(rows, page, |a| a.id, ArtifactView::from)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words that must all appear (case-insensitive) in the artifact's text or name.
    q: String,
    /// At most this many hits, 1 to 100 (default 20).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchHit {
    #[serde(flatten)]
    artifact: ArtifactView,
    /// Text around the first match.
    snippet: String,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    items: Vec<SearchHit>,
}

/// Full-text search over artifacts (minutes, plans, …), newest first.
#[utoipa::path(get, path = "/artifacts/search", tag = "artifacts", params(SearchQuery),
    responses((status = 200, body = SearchResults)))]
pub async fn search_artifacts(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "query.limit",
            "must be between 1 and 100",
        ));
    }
    if q.q.trim().is_empty() || q.q.len() > 500 {
        return Err(ApiError::invalid("query.q", "must be 1 to 500 characters"));
    }
    let hits = state.store.search_artifacts(&q.q, limit).await?;
    Ok(Json(SearchResults {
        items: hits
            .into_iter()
            .map(|h| SearchHit {
                artifact: h.artifact.into(),
                snippet: h.snippet,
            })
            .collect(),
    }))
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("artifact"),
        other => other.into(),
    }
}

/// One artifact's record.
#[utoipa::path(get, path = "/artifacts/{id}", tag = "artifacts", params(("id" = i64, Path)),
    responses((status = 200, body = ArtifactView)))]
pub async fn get_artifact(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ArtifactView>> {
    Ok(Json(
        state
            .store
            .get_artifact(id)
            .await
            .map_err(not_found)?
            .into(),
    ))
}

/// The artifact's bytes, with its content type.
#[utoipa::path(get, path = "/artifacts/{id}/content", tag = "artifacts", params(("id" = i64, Path)),
    responses((status = 200, description = "The bytes")))]
pub async fn artifact_content(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    let a = state.store.get_artifact(id).await.map_err(not_found)?;
    let key = a
        .path
        .clone()
        .ok_or(ApiError::NotFound("artifact content"))?;
    let bytes = blobs(&state)?.get(&key).await.map_err(|e| match e {
        BlobError::NotFound(_) => ApiError::NotFound("artifact content"),
        other => ApiError::Unavailable(format!("artifact storage: {other}")),
    })?;
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&a.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let file: String = a
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}
