//! Live streams over SSE: `/streams/runs/{run_id}` (history, then live, then `done`) and
//! `/streams/events` (the org-wide event log).
//!
//! Every event carries `id:`; a client reconnecting with `Last-Event-ID` (header, or the
//! `last_event_id` query parameter) resumes exactly after that event. Rows are read from the
//! tables (the truth) and live rows come from the process's [`StreamHub`], de-duplicated by
//! id. Browsers' `EventSource` cannot send headers: they authenticate with `?access_token=`,
//! a 60-second stream token from `POST /auth/stream-token`.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::RunStatus;
use vorg_jobs::{LiveRow, StreamHub};
use vorg_store::{OrgEvent, RunLog};

use crate::{
    AppState,
    auth::{CurrentUser, routes::ClientIp},
    error::{ApiError, ApiResult},
    extract::{ApiPath, ApiQuery},
    stream_limits::StreamPermit,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stream_run_events))
        .routes(routes!(stream_org_events))
}

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const HISTORY_BATCH: i64 = 500;
/// How often an open stream checks that its credential still works (revoked or expired
/// credentials lose their streams within this long).
const RECHECK: Duration = Duration::from_secs(3);

/// An open stream's slot and the credential it was opened with, re-checked every
/// [`RECHECK`] while the stream waits for live rows.
struct Holder {
    _permit: StreamPermit,
    store: vorg_store::Store,
    /// The API token or session behind the credential (`None` for a JWT).
    token_id: Option<i64>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// One timer for the stream's life, reset when it fires (not one per event).
    next_check: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Holder {
    fn new(state: &AppState, user: &CurrentUser, permit: StreamPermit) -> Self {
        Holder {
            _permit: permit,
            store: state.store.clone(),
            token_id: user.token_id(),
            expires_at: user.expires_at,
            next_check: Box::pin(tokio::time::sleep(RECHECK)),
        }
    }

    /// Waits for the next re-check, then tells whether the credential still works.
    async fn still_valid(&mut self) -> bool {
        self.next_check.as_mut().await;
        self.next_check
            .as_mut()
            .reset(tokio::time::Instant::now() + RECHECK);
        if self.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
            return false;
        }
        match self.token_id {
            // A database hiccup does not end streams; the next check decides.
            Some(id) => self.store.token_is_live(id).await.unwrap_or(true),
            None => true,
        }
    }
}

/// Takes a stream slot for the caller (429 when a cap is full).
fn hold(state: &AppState, user: &CurrentUser, ip: ClientIp) -> ApiResult<Holder> {
    let permit = state.streams.acquire(user, ip.0)?;
    Ok(Holder::new(state, user, permit))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Resume after this event id (for clients that cannot send `Last-Event-ID`).
    last_event_id: Option<i64>,
    /// `text` (default, as the original: a log event's data is its message) or `json`
    /// (id, timestamp, level, message and fields).
    format: Option<String>,
    /// A stream token from `POST /auth/stream-token`, for `EventSource`.
    #[allow(dead_code)] // read by the authorize middleware, declared here to be documented
    access_token: Option<String>,
}

fn resume_point(headers: &HeaderMap, query: &StreamQuery) -> ApiResult<i64> {
    if let Some(id) = query.last_event_id {
        return Ok(id.max(0));
    }
    match headers.get("last-event-id") {
        None => Ok(0),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map(|id| id.max(0))
            .ok_or_else(|| {
                ApiError::BadRequest("Last-Event-ID: must be an event id this server sent".into())
            }),
    }
}

fn json_format(query: &StreamQuery) -> ApiResult<bool> {
    match query.format.as_deref() {
        None | Some("text") => Ok(false),
        Some("json") => Ok(true),
        Some(_) => Err(ApiError::invalid("query.format", "must be text or json")),
    }
}

fn sse<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn terminal_status(row: &RunLog) -> Option<RunStatus> {
    if row.kind != "status" {
        return None;
    }
    row.fields.0["status"]
        .as_str()
        .and_then(|s| s.parse::<RunStatus>().ok())
        .filter(|s| s.is_terminal())
}

/// The `data:` of a row's event in the chosen format.
fn render(row: &RunLog, json: bool) -> String {
    if row.kind == "status" {
        return serde_json::json!({
            "status": row.fields.0["status"], "error": row.fields.0["error"], "ts": row.timestamp,
        })
        .to_string();
    }
    if json {
        serde_json::json!({
            "id": row.id, "run_id": row.run_id, "ts": row.timestamp, "level": row.level,
            "message": row.message, "fields": row.fields.0,
        })
        .to_string()
    } else {
        row.message.clone()
    }
}

fn run_event(row: &RunLog, data: &str) -> Event {
    let name = if row.kind == "status" {
        "status"
    } else {
        "log"
    };
    Event::default()
        .id(row.id.to_string())
        .event(name)
        .data(data)
}

fn done_event(id: i64, status: RunStatus) -> Event {
    Event::default()
        .id(id.to_string())
        .event("done")
        .data(serde_json::json!({ "status": status }).to_string())
}

enum Phase {
    History,
    Live,
    Done,
}

struct RunStream {
    hub: Arc<StreamHub>,
    run_id: i64,
    last: i64,
    rx: Receiver<Arc<LiveRow>>,
    buf: VecDeque<Event>,
    phase: Phase,
    json: bool,
    holder: Holder,
}

impl RunStream {
    /// Queues `row` (its data rendered already, or rendered now); returns true when it
    /// ended the run.
    fn push(&mut self, row: &RunLog, data: &str) -> bool {
        self.last = row.id;
        self.buf.push_back(run_event(row, data));
        if let Some(status) = terminal_status(row) {
            self.buf.push_back(done_event(row.id, status));
            self.phase = Phase::Done;
            return true;
        }
        false
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.buf.pop_front() {
                return Some((Ok(event), self));
            }
            match self.phase {
                Phase::Done => return None,
                Phase::History => {
                    let store = self.hub.store().clone();
                    let rows = store
                        .run_logs(self.run_id, self.last, HISTORY_BATCH)
                        .await
                        .ok()?;
                    if rows.is_empty() {
                        // Caught up. A run that ended before this client resumed gets `done`.
                        let run = store.get_run(self.run_id).await.ok()?;
                        if run.status().is_terminal() {
                            self.buf.push_back(done_event(self.last, run.status()));
                            self.phase = Phase::Done;
                        } else {
                            self.phase = Phase::Live;
                        }
                        continue;
                    }
                    for row in &rows {
                        if self.push(row, &render(row, self.json)) {
                            break;
                        }
                    }
                }
                Phase::Live => {
                    // On shutdown the hub drops its run channels, which ends this wait with
                    // `Closed`: no per-event cancellation future (10,000 clients would contend
                    // on the token's waiter list).
                    let received = tokio::select! {
                        r = self.rx.recv() => r,
                        valid = self.holder.still_valid() => {
                            if valid { continue }
                            return None;
                        }
                    };
                    match received {
                        Ok(live) if live.row.id > self.last => {
                            let data = live.rendered[usize::from(self.json)]
                                .get_or_init(|| render(&live.row, self.json));
                            self.push(&live.row, data);
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => self.phase = Phase::History,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        }
    }
}

/// A run's events: its history, then live events, ending with `done` when the run ends.
/// `event: log` carries a log line, `event: status` a status change, `event: done` the final
/// status. Keep-alive comments every 15 s.
#[utoipa::path(get, path = "/streams/runs/{id}", tag = "streams",
    params(("id" = i64, Path, description = "Run id"), StreamQuery,
           ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    responses((status = 200, description = "An SSE stream", content_type = "text/event-stream", body = String)))]
pub async fn stream_run_events(
    State(state): State<AppState>,
    user: CurrentUser,
    ip: ClientIp,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = resume_point(&headers, &query)?;
    let json = json_format(&query)?;
    // A missing run costs nothing: no slot, no channel.
    state
        .store
        .get_run(id)
        .await
        .map_err(crate::runs::run_not_found)?;
    let holder = hold(&state, &user, ip)?;
    // Subscribe before reading history: a row committed in between is in one or the other.
    let rx = state.hub.subscribe_run(id);
    let start = RunStream {
        holder,
        hub: state.hub.clone(),
        run_id: id,
        last: after,
        rx,
        buf: VecDeque::new(),
        phase: Phase::History,
        json,
    };
    Ok(sse(stream::unfold(start, RunStream::next)))
}

struct OrgStream {
    hub: Arc<StreamHub>,
    last: i64,
    rx: Receiver<Arc<OrgEvent>>,
    buf: VecDeque<Event>,
    catching_up: bool,
    holder: Holder,
}

fn org_event(e: &OrgEvent) -> Event {
    let mut data = e.data.0.clone();
    if let Some(obj) = data.as_object_mut() {
        obj.insert("ts".into(), serde_json::json!(e.created_at));
    }
    Event::default()
        .id(e.id.to_string())
        .event(e.kind.clone())
        .data(data.to_string())
}

impl OrgStream {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.buf.pop_front() {
                return Some((Ok(event), self));
            }
            if self.catching_up {
                let rows = self
                    .hub
                    .store()
                    .events_after(self.last, HISTORY_BATCH)
                    .await
                    .ok()?;
                self.catching_up = rows.len() as i64 == HISTORY_BATCH;
                for row in &rows {
                    self.last = row.id;
                    self.buf.push_back(org_event(row));
                }
                continue;
            }
            let shutdown = self.hub.shutdown().clone();
            let received = tokio::select! {
                r = self.rx.recv() => r,
                _ = shutdown.cancelled() => return None,
                valid = self.holder.still_valid() => {
                    if valid { continue }
                    return None;
                }
            };
            match received {
                Ok(row) if row.id > self.last => {
                    self.last = row.id;
                    self.buf.push_back(org_event(&row));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// The org's events (`run.status`, and approvals and budget warnings as they land), live.
/// With `Last-Event-ID`, first everything after that event. The event name is the kind.
#[utoipa::path(get, path = "/streams/events", tag = "streams",
    params(StreamQuery, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    responses((status = 200, description = "An SSE stream", content_type = "text/event-stream", body = String)))]
pub async fn stream_org_events(
    State(state): State<AppState>,
    user: CurrentUser,
    ip: ClientIp,
    ApiQuery(query): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    json_format(&query)?;
    let holder = hold(&state, &user, ip)?;
    let resume = headers.contains_key("last-event-id") || query.last_event_id.is_some();
    let rx = state.hub.subscribe_org();
    let last = if resume {
        resume_point(&headers, &query)?
    } else {
        state.store.last_event_id().await?
    };
    let start = OrgStream {
        holder,
        hub: state.hub.clone(),
        last,
        rx,
        buf: VecDeque::new(),
        catching_up: true,
    };
    Ok(sse(stream::unfold(start, OrgStream::next)))
}
