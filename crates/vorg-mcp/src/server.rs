//! The MCP server handler: the token decides the tool list, each call runs through vorg's
//! REST API as that token, runs are followed with progress notifications, and run resources
//! can be subscribed to (legacy `resources/subscribe` and `subscriptions/listen`).

use std::{collections::HashMap, sync::Arc, time::Duration};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ProgressNotificationParam, ProgressToken, ReadResourceRequestParams, ReadResourceResponse,
        ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter, Tool,
        ToolAnnotations, UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
};
use serde_json::{Map, Value, json};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_domain::{Permission, Permissions};

use crate::{
    backend::{Backend, Call, Caller},
    resources,
    schema::Components,
    tools::{self, ToolDef},
};

/// How long a tool waits for a run it started before answering with the run still going.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

struct Inner {
    backend: Backend,
    components: Components,
    tools: Vec<ToolDef>,
    tasks: TaskTracker,
    /// What a token may do, as `GET /auth/me` said within [`PERMISSIONS_TTL`] (by a hash of
    /// the token). Only the tool list and the early refusal use it: the route each tool calls
    /// checks the token again, so a revocation is never missed.
    permissions: std::sync::Mutex<HashMap<u64, (std::time::Instant, Permissions)>>,
}

/// How long a token's permissions are reused between tool calls.
const PERMISSIONS_TTL: Duration = Duration::from_secs(1);

fn token_key(token: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(token)
}

/// vorg's MCP server. Cheap to clone; one per MCP session.
#[derive(Clone)]
pub struct VorgMcp {
    inner: Arc<Inner>,
    /// The caller of every request (stdio); over HTTP each request names its own.
    fixed: Option<Caller>,
    /// Legacy `resources/subscribe` followers of this session, by URI.
    subscriptions: Arc<std::sync::Mutex<HashMap<String, CancellationToken>>>,
}

/// A tool's failure, shown to the model as a tool error.
pub(crate) struct ToolError(pub String);

impl<E: std::fmt::Display> From<E> for ToolError {
    fn from(e: E) -> Self {
        ToolError(e.to_string())
    }
}

impl VorgMcp {
    /// `openapi`: vorg's OpenAPI document (tool input schemas are taken from its bodies).
    pub fn new(backend: Backend, openapi: &Value, tasks: TaskTracker) -> Self {
        VorgMcp {
            inner: Arc::new(Inner {
                backend,
                components: Components::from_openapi(openapi),
                tools: tools::all(),
                tasks,
                permissions: std::sync::Mutex::default(),
            }),
            fixed: None,
            subscriptions: Arc::default(),
        }
    }

    /// The same server for one caller (stdio: the token from the environment).
    pub fn for_caller(mut self, caller: Caller) -> Self {
        self.fixed = Some(caller);
        self
    }

    /// A fresh session of the same server (what the HTTP transport's factory makes).
    pub fn session(&self) -> Self {
        VorgMcp {
            inner: self.inner.clone(),
            fixed: self.fixed.clone(),
            subscriptions: Arc::default(),
        }
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Who makes this request: the fixed caller, or the one the HTTP layer authenticated.
    pub(crate) fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        if let Some(c) = &self.fixed {
            return Ok(c.clone());
        }
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
            .ok_or_else(|| {
                McpError::invalid_request("authentication required (Bearer token)", None)
            })
    }

    /// What the caller's token may do (`GET /auth/me`).
    async fn permissions(&self, caller: &Caller) -> Result<Permissions, McpError> {
        let key = token_key(&caller.token);
        if let Ok(cache) = self.inner.permissions.lock()
            && let Some((at, held)) = cache.get(&key)
            && at.elapsed() < PERMISSIONS_TTL
        {
            return Ok(*held);
        }
        let me = self
            .backend()
            .call(caller, Call::get("/auth/me"))
            .await
            .map_err(|e| McpError::internal_error(e, None))?;
        if !me.ok() {
            return Err(McpError::invalid_request(
                format!("vorg refused the token: {}", problem_text(&me.body)),
                None,
            ));
        }
        let held: Permissions = me.body["permissions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str()?.parse::<Permission>().ok())
            .collect();
        if let Ok(mut cache) = self.inner.permissions.lock() {
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(key, (std::time::Instant::now(), held));
        }
        Ok(held)
    }

    fn tool(&self, def: &ToolDef) -> Tool {
        let input = (def.input)(&self.inner.components);
        let output = (def.output)();
        let as_object = |v: Value| match v {
            Value::Object(m) => Arc::new(m),
            _ => Arc::new(Map::new()),
        };
        Tool::new(def.name, def.description, as_object(input))
            .with_title(def.title)
            .with_raw_output_schema(as_object(output))
            .with_annotations(
                ToolAnnotations::new()
                    .read_only(def.read_only)
                    .destructive(false)
                    .open_world(false),
            )
    }

    /// One REST call for a tool: its JSON answer, or the problem as a tool error.
    pub(crate) async fn rest(&self, caller: &Caller, call: Call<'_>) -> Result<Value, ToolError> {
        let reply = self.backend().call(caller, call).await.map_err(ToolError)?;
        if reply.ok() {
            Ok(reply.body)
        } else {
            Err(ToolError(format!(
                "vorg answered {}: {}",
                reply.status,
                problem_text(&reply.body)
            )))
        }
    }

    /// Follows run `run_id` until it ends (its SSE stream's `done`), reporting each event as
    /// progress; a client cancel cancels the run. Answers the run as `get_run` does.
    pub(crate) async fn follow(
        &self,
        caller: &Caller,
        run_id: i64,
        progress: Option<(rmcp::Peer<RoleServer>, ProgressToken)>,
        ct: &CancellationToken,
    ) -> Result<Value, ToolError> {
        let (status, bytes) = self
            .backend()
            .open_stream(caller, &format!("/streams/runs/{run_id}"))
            .await
            .map_err(ToolError)?;
        if status >= 300 {
            return Err(ToolError(format!(
                "could not follow run {run_id} (status {status})"
            )));
        }
        let mut events = bytes.eventsource();
        let mut seen = 0u32;
        let deadline = tokio::time::sleep(MAX_WAIT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = ct.cancelled() => {
                    let _ = self
                        .backend()
                        .call(caller, Call::send(axum::http::Method::POST, format!("/runs/{run_id}/cancel"), None))
                        .await;
                    return Err(ToolError(format!("cancelled by the client; run {run_id} was cancelled")));
                }
                () = &mut deadline => break,
                event = events.next() => match event {
                    None => break,
                    Some(Err(e)) => return Err(ToolError(format!("the run's stream broke: {e}"))),
                    Some(Ok(ev)) if ev.event == "done" => break,
                    Some(Ok(ev)) => {
                        seen += 1;
                        if let Some((peer, token)) = &progress {
                            let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                            let message = data["message"]
                                .as_str()
                                .or(data["status"].as_str())
                                .unwrap_or(&ev.event)
                                .chars()
                                .take(200)
                                .collect::<String>();
                            let note = ProgressNotificationParam::new(token.clone(), f64::from(seen))
                                .with_message(message);
                            if let Err(e) = peer.notify_progress(note).await {
                                tracing::debug!(error = %e, "could not send a progress notification");
                            }
                        }
                    }
                },
            }
        }
        self.rest(caller, Call::get(format!("/runs/{run_id}")))
            .await
    }

    /// A legacy `resources/subscribe` follower: tells the client each time the run's log
    /// grows, until the run ends, the client unsubscribes or the session closes.
    fn spawn_follower(
        &self,
        caller: Caller,
        uri: String,
        run_id: i64,
        stop: CancellationToken,
        peer: rmcp::Peer<RoleServer>,
    ) {
        let server = self.clone();
        self.inner.tasks.spawn(async move {
            let notify = |uri: String| {
                let peer = peer.clone();
                async move {
                    peer.notify_resource_updated(
                        rmcp::model::ResourceUpdatedNotificationParam::new(uri),
                    )
                    .await
                    .is_ok()
                }
            };
            server.watch(&caller, &uri, run_id, &stop, notify).await;
        });
    }

    /// Calls `notify(uri)` for every event of run `run_id` (history included, so a client
    /// that subscribes late still hears of the run's end) until it ends or `stop`.
    pub(crate) async fn watch<F, Fut>(
        &self,
        caller: &Caller,
        uri: &str,
        run_id: i64,
        stop: &CancellationToken,
        notify: F,
    ) where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let Ok((200, bytes)) = self
            .backend()
            .open_stream(caller, &format!("/streams/runs/{run_id}"))
            .await
        else {
            return;
        };
        let mut events = bytes.eventsource();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                event = events.next() => match event {
                    Some(Ok(ev)) => {
                        if !notify(uri.to_owned()).await || ev.event == "done" {
                            return;
                        }
                    }
                    _ => return,
                },
            }
        }
    }
}

/// The readable text of an error answer: a problem's detail and field errors, or an
/// OpenAI-style message.
pub(crate) fn problem_text(body: &Value) -> String {
    let mut text = body["detail"]
        .as_str()
        .or(body["error"]["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    if let Some(errors) = body["errors"].as_array().filter(|e| !e.is_empty()) {
        let fields: Vec<String> = errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["field"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("?")
                )
            })
            .collect();
        text = format!("{text} ({})", fields.join("; "));
    }
    text
}

impl ServerHandler for VorgMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("vorg", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "vorg runs a virtual organization staffed by AI agents. Use these tools to hold \
             meetings, run workflows, plan hiring, decide approvals and read usage and budgets. \
             Tools that start runs spend model calls charged to your key's budgets; reads are \
             free. Runs are resources (vorg://runs/{id}) you can read and subscribe to.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.caller(&context)?;
        let held = self.permissions(&caller).await?;
        let tools = self
            .inner
            .tools
            .iter()
            .filter(|t| held.contains(t.permission))
            .map(|t| self.tool(t))
            .collect();
        Ok(ListToolsResult::with_all_items(tools).with_cache_scope(CacheScope::Private))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(def) = self.inner.tools.iter().find(|t| t.name == request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            ));
        };
        let caller = self.caller(&context)?;
        let held = self.permissions(&caller).await?;
        if !held.contains(def.permission) {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "this API token lacks the permission {} that the tool {} needs",
                def.permission, def.name
            ))])
            .into());
        }
        let args = request.arguments.clone().unwrap_or_default();
        let progress = context
            .meta
            .get_progress_token()
            .map(|t| (context.peer.clone(), t));
        let result = crate::calls::run(self, &caller, def.name, &args, progress, &context.ct).await;
        Ok(match result {
            Ok(value) => CallToolResult::structured(value),
            Err(ToolError(message)) => CallToolResult::error(vec![ContentBlock::text(message)]),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = self.caller(&context)?;
        let held = self.permissions(&caller).await?;
        let items = resources::list(self, &caller, held).await;
        Ok(ListResourcesResult::with_all_items(items).with_cache_scope(CacheScope::Private))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = self.caller(&context)?;
        Ok(resources::read(self, &caller, &request.uri).await?.into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let caller = self.caller(&context)?;
        let run_id = resources::subscribable(self, &caller, &request.uri).await?;
        let stop = CancellationToken::new();
        if let Ok(mut subs) = self.subscriptions.lock()
            && let Some(old) = subs.insert(request.uri.clone(), stop.clone())
        {
            old.cancel();
        }
        self.spawn_follower(caller, request.uri, run_id, stop, context.peer.clone());
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Ok(mut subs) = self.subscriptions.lock()
            && let Some(stop) = subs.remove(&request.uri)
        {
            stop.cancel();
        }
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let runs: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| resources::run_id(uri).is_some())
            .take(100)
            .cloned()
            .collect();
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = Some(runs);
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let caller = self.caller(context.request_context())?;
        let stop = context.request_context().ct.clone();
        let uris: Vec<String> = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let sink = context.sink().clone();
        let watches = uris.iter().filter_map(|uri| {
            let run_id = resources::run_id(uri)?;
            let sink = sink.clone();
            let (caller, stop) = (&caller, &stop);
            Some(async move {
                self.watch(caller, uri, run_id, stop, |uri| {
                    let sink = sink.clone();
                    async move { sink.notify_resource_updated(uri).await.is_ok() }
                })
                .await;
            })
        });
        futures_util::future::join_all(watches).await;
        context.cancelled().await;
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(crate::prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        Ok(crate::prompts::get(&request.name, request.arguments.as_ref())?.into())
    }
}

/// `{ "items": … }` for a list answer (structured content is an object).
pub(crate) fn as_object(v: Value) -> Value {
    match v {
        Value::Array(items) => json!({ "items": items }),
        Value::Object(_) => v,
        other => json!({ "value": other }),
    }
}
