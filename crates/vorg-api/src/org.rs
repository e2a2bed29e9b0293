//! The organization over HTTP: the constitution and policies (versioned, admin-editable),
//! personas (versioned, validated, with diffs and rollback), the org chart and budgets.

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::money::micro_to_usd;
use vorg_llm::CallContext;
use vorg_org::{Persona, PolicyError, persona::diff};
use vorg_store::{PersonaRow, PersonaWrite, PolicyVersion, StoreError};

use crate::{
    AppState,
    audit::audit_as,
    auth::{Credential, CurrentUser},
    error::{ApiError, ApiResult, FieldError},
    extract::{ApiPath, parse_json},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(constitution))
        .routes(routes!(get_policies, put_policies))
        .routes(routes!(policy_history))
        .routes(routes!(rollback_policies))
        .routes(routes!(list_personas, create_persona))
        .routes(routes!(get_persona, put_persona, delete_persona))
        .routes(routes!(persona_history))
        .routes(routes!(rollback_persona))
        .routes(routes!(org_chart))
        .routes(routes!(my_budgets))
}

#[derive(Serialize, ToSchema)]
pub struct ConstitutionView {
    /// The charter, as markdown.
    markdown: String,
}

/// The organization's human-readable charter.
#[utoipa::path(get, path = "/governance/constitution", tag = "governance",
    responses((status = 200, body = ConstitutionView)))]
pub async fn constitution(State(state): State<AppState>) -> Json<ConstitutionView> {
    Json(ConstitutionView {
        markdown: state.org.constitution().to_owned(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    version: i64,
    /// `file` (loaded at start), `api` (PUT) or `rollback`.
    source: String,
    author: String,
    created_at: DateTime<Utc>,
    /// The policies as JSON.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    policies: Value,
    /// The document as written (YAML or JSON).
    text: String,
}

fn policy_view(v: PolicyVersion) -> ApiResult<PolicyView> {
    // Bounded like any client document: a version stored before the bounds (an alias bomb)
    // shows as its text only, never expanded.
    let policies = match vorg_domain::yaml::parse_untrusted(&v.body) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(version = v.version, error = %e, "stored policy version not shown as JSON");
            Value::Null
        }
    };
    Ok(PolicyView {
        version: v.version,
        source: v.source,
        author: v.author,
        created_at: v.created_at,
        policies,
        text: v.body,
    })
}

/// The policies in force.
#[utoipa::path(get, path = "/governance/policies", tag = "governance",
    responses((status = 200, body = PolicyView)))]
pub async fn get_policies(State(state): State<AppState>) -> ApiResult<Json<PolicyView>> {
    let current = state
        .store
        .current_policy()
        .await?
        .ok_or(ApiError::NotFound("policies"))?;
    Ok(Json(policy_view(current)?))
}

fn policy_problems(e: PolicyError) -> ApiError {
    ApiError::Invalid(
        e.problems
            .into_iter()
            .map(|p| {
                let reason = match p.line {
                    Some(l) => format!("line {l}: {}", p.reason),
                    None => p.reason,
                };
                FieldError::new(
                    if p.path.is_empty() {
                        "body".to_owned()
                    } else {
                        p.path
                    },
                    reason,
                )
            })
            .collect(),
    )
}

/// Replace the policies: a YAML (`application/yaml`, `text/yaml`, `text/plain`) or JSON
/// document, validated against `schemas/policies.schema.json` (every problem is listed with
/// its line). The new version is in force at once; every version is kept.
#[utoipa::path(put, path = "/governance/policies", tag = "governance",
    request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = PolicyView), (status = 422, description = "Invalid policies")))]
pub async fn put_policies(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<PolicyView>> {
    let text = yaml_text(&headers, &body)?;
    let version = state
        .org
        .put_policies(text, "api", &user.email)
        .await?
        .map_err(policy_problems)?;
    audit_as(
        &state,
        &user,
        "governance.policies.update",
        Some(format!("policies:{}", version.version)),
        serde_json::json!({ "version": version.version }),
    )
    .await;
    Ok(Json(policy_view(version)?))
}

/// A YAML or JSON document sent as the body (policies, workflows): its text, or a 415 for
/// another content type, a 400 for bytes that are not UTF-8.
pub(crate) fn yaml_text<'b>(headers: &HeaderMap, body: &'b [u8]) -> ApiResult<&'b str> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/yaml");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(
        mime,
        "application/yaml"
            | "application/x-yaml"
            | "text/yaml"
            | "text/x-yaml"
            | "text/plain"
            | "application/json"
    ) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "content-type: {mime:?} is not accepted; send application/yaml or application/json"
        )));
    }
    std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("body: not UTF-8 text".into()))
}

#[derive(Serialize, ToSchema)]
pub struct PolicyHistory {
    items: Vec<PolicyView>,
}

/// Every version of the policies, newest first.
#[utoipa::path(get, path = "/governance/policies/history", tag = "governance",
    responses((status = 200, body = PolicyHistory)))]
pub async fn policy_history(State(state): State<AppState>) -> ApiResult<Json<PolicyHistory>> {
    let rows = state.store.policy_history(500).await?;
    let items = rows
        .into_iter()
        .map(policy_view)
        .collect::<ApiResult<_>>()?;
    Ok(Json(PolicyHistory { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version to bring back (it becomes a new version).
    version: i64,
}

/// Bring back an earlier version of the policies, as a new version.
#[utoipa::path(post, path = "/governance/policies/rollback", tag = "governance",
    request_body = RollbackRequest, responses((status = 200, body = PolicyView)))]
pub async fn rollback_policies(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<Json<PolicyView>> {
    let req: RollbackRequest = parse_json(&body)?;
    let version = match state.org.rollback_policies(req.version, &user.email).await {
        Err(StoreError::NotFound) => {
            return Err(ApiError::invalid(
                "version",
                format!("no policy version {}", req.version),
            ));
        }
        other => other?.map_err(policy_problems)?,
    };
    audit_as(
        &state,
        &user,
        "governance.policies.rollback",
        Some(format!("policies:{}", version.version)),
        serde_json::json!({ "from_version": req.version }),
    )
    .await;
    Ok(Json(policy_view(version)?))
}

#[derive(Serialize, ToSchema)]
pub struct PersonaView {
    id: String,
    version: i64,
    reports_to: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The persona document as stored.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    persona: Value,
}

impl From<PersonaRow> for PersonaView {
    fn from(r: PersonaRow) -> Self {
        PersonaView {
            id: r.id,
            version: r.version,
            reports_to: r.reports_to,
            created_at: r.created_at,
            updated_at: r.updated_at,
            persona: r.doc.0,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PersonaList {
    items: Vec<PersonaView>,
}

/// Every persona of the organization, by id.
#[utoipa::path(get, path = "/personas", tag = "personas",
    responses((status = 200, body = PersonaList)))]
pub async fn list_personas(State(state): State<AppState>) -> ApiResult<Json<PersonaList>> {
    let rows = state.store.list_personas().await?;
    Ok(Json(PersonaList {
        items: rows.into_iter().map(PersonaView::from).collect(),
    }))
}

fn persona_problem(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("persona"),
        StoreError::Refused(m) => ApiError::Conflict(m),
        StoreError::Invalid { field, reason } => ApiError::invalid(field, reason),
        other => other.into(),
    }
}

/// Parses and validates a persona body: every schema problem is listed at its field.
fn persona_body(state: &AppState, body: &[u8], id: Option<&str>) -> ApiResult<Persona> {
    let doc: Value = parse_json(body)?;
    if !doc.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    Persona::validate(doc, &state.org.schemas().persona, id).map_err(persona_problems)
}

/// Schema problems of a persona as a 422, each at its field (the document itself: `body`).
fn persona_problems(problems: Vec<vorg_org::Problem>) -> ApiError {
    ApiError::Invalid(
        problems
            .into_iter()
            .map(|p| {
                let field = if p.path.is_empty() {
                    "body".to_owned()
                } else {
                    p.path
                };
                FieldError::new(field, p.reason)
            })
            .collect(),
    )
}

async fn save(
    state: &AppState,
    user: &CurrentUser,
    persona: &Persona,
    mode: PersonaWrite,
    action: &'static str,
) -> ApiResult<PersonaRow> {
    let row = state
        .store
        .save_persona(
            persona.id(),
            persona.doc(),
            persona.reports_to(),
            &user.email,
            mode,
        )
        .await
        .map_err(persona_problem)?;
    audit_as(
        state,
        user,
        action,
        Some(format!("persona:{}", row.id)),
        serde_json::json!({ "version": row.version }),
    )
    .await;
    Ok(row)
}

/// Add a persona (original format, plus title, department, reports_to, goals, model,
/// owner).
#[utoipa::path(post, path = "/personas", tag = "personas", request_body(content = std::collections::HashMap<String, serde_json::Value>),
    responses((status = 201, body = PersonaView), (status = 409, description = "The id exists"),
        (status = 422, description = "Every schema problem, at its field")))]
pub async fn create_persona(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PersonaView>)> {
    let persona = persona_body(&state, &body, None)?;
    let row = save(
        &state,
        &user,
        &persona,
        PersonaWrite::Create,
        "persona.create",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One persona.
#[utoipa::path(get, path = "/personas/{id}", tag = "personas", params(("id" = String, Path)),
    responses((status = 200, body = PersonaView)))]
pub async fn get_persona(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PersonaView>> {
    let row = state
        .store
        .get_persona(&id)
        .await
        .map_err(persona_problem)?;
    Ok(Json(row.into()))
}

/// Replace a persona (a new version; the old one stays in its history).
#[utoipa::path(put, path = "/personas/{id}", tag = "personas", params(("id" = String, Path)),
    request_body(content = std::collections::HashMap<String, serde_json::Value>), responses((status = 200, body = PersonaView)))]
pub async fn put_persona(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<PersonaView>> {
    let persona = persona_body(&state, &body, Some(&id))?;
    let row = save(
        &state,
        &user,
        &persona,
        PersonaWrite::Update,
        "persona.update",
    )
    .await?;
    Ok(Json(row.into()))
}

/// Delete a persona. Refused (409) while other personas report to it.
#[utoipa::path(delete, path = "/personas/{id}", tag = "personas", params(("id" = String, Path)),
    responses((status = 204), (status = 409, description = "Others report to it")))]
pub async fn delete_persona(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_persona(&id, &user.email)
        .await
        .map_err(persona_problem)?;
    audit_as(
        &state,
        &user,
        "persona.delete",
        Some(format!("persona:{id}")),
        Value::Null,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct PersonaVersionView {
    version: i64,
    author: String,
    created_at: DateTime<Utc>,
    /// `None` for the version that deleted the persona.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    persona: Option<Value>,
    /// What changed from the version before, field by field.
    #[schema(value_type = Vec<std::collections::HashMap<String, serde_json::Value>>)]
    changes: Vec<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct PersonaHistory {
    items: Vec<PersonaVersionView>,
}

/// Every version of a persona, newest first, each with its changes.
#[utoipa::path(get, path = "/personas/{id}/history", tag = "personas", params(("id" = String, Path)),
    responses((status = 200, body = PersonaHistory)))]
pub async fn persona_history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PersonaHistory>> {
    let rows = state.store.persona_history(&id).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound("persona"));
    }
    let docs: Vec<Option<Value>> = rows
        .iter()
        .map(|r| r.doc.as_ref().map(|d| d.0.clone()))
        .collect();
    let items = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let previous = docs.get(i + 1).and_then(Option::as_ref);
            let changes = diff(previous, docs[i].as_ref());
            PersonaVersionView {
                version: r.version,
                author: r.author,
                created_at: r.created_at,
                persona: r.doc.map(|d| d.0),
                changes,
            }
        })
        .collect();
    Ok(Json(PersonaHistory { items }))
}

/// Bring back an earlier version of a persona (also one that was deleted), as a new
/// version.
#[utoipa::path(post, path = "/personas/{id}/rollback", tag = "personas", params(("id" = String, Path)),
    request_body = RollbackRequest, responses((status = 200, body = PersonaView)))]
pub async fn rollback_persona(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<PersonaView>> {
    let req: RollbackRequest = parse_json(&body)?;
    let history = state.store.persona_history(&id).await?;
    let Some(doc) = history
        .into_iter()
        .find(|v| v.version == req.version)
        .and_then(|v| v.doc)
    else {
        return Err(ApiError::invalid(
            "version",
            format!("persona {id:?} has no version {} with content", req.version),
        ));
    };
    let persona = Persona::validate(doc.0, &state.org.schemas().persona, Some(&id))
        .map_err(persona_problems)?;
    let row = save(
        &state,
        &user,
        &persona,
        PersonaWrite::Upsert,
        "persona.rollback",
    )
    .await?;
    Ok(Json(row.into()))
}

#[derive(Serialize, ToSchema)]
pub struct ChartNode {
    id: String,
    name: String,
    title: Option<String>,
    department: Option<String>,
    #[schema(no_recursion)]
    reports: Vec<ChartNode>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgChart {
    /// Personas who report to nobody, each with their reports below them.
    roots: Vec<ChartNode>,
    count: usize,
}

/// The org chart: a tree built from `reports_to`.
#[utoipa::path(get, path = "/org/chart", tag = "personas",
    responses((status = 200, body = OrgChart)))]
pub async fn org_chart(State(state): State<AppState>) -> ApiResult<Json<OrgChart>> {
    let rows = state.store.list_personas().await?;
    let count = rows.len();
    let mut children: BTreeMap<Option<String>, Vec<PersonaRow>> = BTreeMap::new();
    let ids: std::collections::HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    for r in rows {
        // A manager that no longer exists cannot happen through the API; be safe anyway.
        let parent = r.reports_to.clone().filter(|m| ids.contains(m));
        children.entry(parent).or_default().push(r);
    }
    fn build(
        parent: Option<String>,
        children: &mut BTreeMap<Option<String>, Vec<PersonaRow>>,
        depth: usize,
    ) -> Vec<ChartNode> {
        let rows = children.remove(&parent).unwrap_or_default();
        rows.into_iter()
            .map(|r| {
                let doc = &r.doc.0;
                let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
                ChartNode {
                    name: text("name").unwrap_or_default(),
                    title: text("title"),
                    department: text("department"),
                    reports: if depth < 64 {
                        build(Some(r.id.clone()), children, depth + 1)
                    } else {
                        Vec::new()
                    },
                    id: r.id,
                }
            })
            .collect()
    }
    let roots = build(None, &mut children, 0);
    Ok(Json(OrgChart { roots, count }))
}

#[derive(Serialize, ToSchema)]
pub struct BudgetView {
    scope: vorg_domain::BudgetScope,
    subject: String,
    period: String,
    limit_usd: f64,
    spent_usd: f64,
    /// Held by calls in flight (and headroom other vorg processes have leased for their
    /// next calls).
    reserved_usd: f64,
    /// Spent as a share of the limit (0 to 1 and beyond).
    used: f64,
    resets_at: Option<DateTime<Utc>>,
    /// Month-end spend at the burn rate so far (monthly budgets, from a tenth of the month
    /// on); a `budget.forecast` event goes out once when it first passes the limit.
    projected_usd: Option<f64>,
    /// The projection passes the limit.
    projected_over: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetList {
    items: Vec<BudgetView>,
}

/// The budgets the caller's model calls are charged to, with what each holds now.
#[utoipa::path(get, path = "/budgets", tag = "usage",
    responses((status = 200, body = BudgetList)))]
pub async fn my_budgets(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<BudgetList>> {
    state.llm.flush_usage().await;
    let policies = state.org.policies().await?;
    let ctx = CallContext {
        actor: user.email.clone(),
        user_id: Some(user.id),
        token_id: match user.credential {
            Credential::ApiToken { token_id } => Some(token_id),
            _ => None,
        },
        ..CallContext::default()
    };
    let keys = state.org.budgets_for(&policies, &ctx).await?;
    let balances = state.store.budget_balances(&keys).await?;
    let items = keys
        .into_iter()
        .zip(balances)
        .map(|(k, b)| {
            let projected =
                vorg_domain::money::forecast_micro(b.spent_micro_usd, &k.period, Utc::now());
            BudgetView {
                projected_usd: projected.map(micro_to_usd),
                projected_over: projected.is_some_and(|p| p > k.limit_micro_usd),
                used: if k.limit_micro_usd > 0 {
                    b.spent_micro_usd as f64 / k.limit_micro_usd as f64
                } else {
                    0.0
                },
                resets_at: vorg_llm::budget::period_end(&k.period),
                limit_usd: micro_to_usd(k.limit_micro_usd),
                spent_usd: micro_to_usd(b.spent_micro_usd),
                reserved_usd: micro_to_usd(
                    (b.reserved_micro_usd - state.llm.ledger().unpromised(&k)).max(0),
                ),
                scope: k.scope,
                subject: k.subject,
                period: k.period,
            }
        })
        .collect();
    Ok(Json(BudgetList { items }))
}
