//! The scheduler: one timer per process, sleeping until the next slot of any schedule.
//!
//! A slot fires by starting its target under the origin key `schedule:{id}:{slot ms}`:
//! the run's unique key is the claim, so every process may try and one run starts; a
//! process killed while firing either committed the run (and its job, in the same
//! transaction) or left the slot to the next process that looks. There is no leader.
//!
//! A slot at most `grace` old is on time. Older slots were missed (every process was down):
//! `catch_up: skip` drops them, `run_once` fires the newest of them once. Each schedule's
//! anchor (slots after it are due) only moves forward.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_store::{Notice, RunOrigin, ScheduleRow, Store, StoreError};

use crate::{
    target::{StartError, Target, owner_may, owner_requester},
    timing::{DstGap, Timing, TimingError},
};

/// How long after a change notice the timetable is read again.
const RELOAD_DELAY: Duration = Duration::from_millis(100);

/// How the scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How late a slot may fire and still be on time (default 5 minutes).
    pub grace: Duration,
    /// How often the timetable is re-read without a change notice (default 5 minutes).
    pub resync: Duration,
    /// Slots one schedule fires in one pass at most (a per-second schedule after a pause).
    pub max_slots: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            grace: Duration::from_secs(300),
            resync: Duration::from_secs(300),
            max_slots: 1000,
        }
    }
}

/// What to do with slots missed while no process ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    Skip,
    RunOnce,
}

impl std::str::FromStr for CatchUp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(CatchUp::Skip),
            "run_once" => Ok(CatchUp::RunOnce),
            other => Err(format!("{other:?} is not one of skip, run_once")),
        }
    }
}

/// A schedule's timing as stored.
pub fn timing_of(row: &ScheduleRow) -> Result<Timing, TimingError> {
    let gap: DstGap = row.on_dst_gap.parse().map_err(|reason| TimingError {
        field: "on_dst_gap",
        reason,
    })?;
    Timing::parse(&row.cron, &row.timezone, gap)
}

/// What one pass over a schedule did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pass {
    /// Runs this pass created, with their slots.
    pub started: Vec<(DateTime<Utc>, i64)>,
    /// Slots another process had fired already.
    pub already: usize,
    /// Missed slots dropped (catch-up `skip`, or all but the newest with `run_once`).
    pub skipped: usize,
    /// Why due slots did not start (owner gone or without permission, target invalid).
    pub refused: Option<String>,
    /// The schedule's next slot after this pass (none: deleted, paused or unparsable).
    pub next: Option<DateTime<Utc>>,
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The key that makes a slot's run unique.
pub fn slot_key(schedule_id: i64, slot: DateTime<Utc>) -> String {
    format!("schedule:{schedule_id}:{}", slot.timestamp_millis())
}

pub struct Scheduler {
    store: Store,
    config: SchedulerConfig,
}

/// A schedule's place in the timetable: only its next slot (a parsed cron holds a bitfield
/// per year it could match, kilobytes each; it is parsed again when the schedule fires).
struct Entry {
    next: DateTime<Utc>,
}

/// Schedules fired at once when several are due together.
const FIRE_CONCURRENCY: usize = 8;

impl Scheduler {
    pub fn new(store: Store, config: SchedulerConfig) -> Self {
        Scheduler { store, config }
    }

    pub fn spawn(self, tracker: &TaskTracker, shutdown: CancellationToken) {
        tracker.spawn(self.run(shutdown));
    }

    /// Sleeps until the earliest next slot, fires what is due, and goes back to sleep;
    /// woken early only by a change to the schedules (here or, on PostgreSQL, anywhere).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut notices = self.store.subscribe();
        let mut table = self.load().await;
        let mut loaded_at = tokio::time::Instant::now();
        // A change notice reloads the timetable a moment later, once for a burst of changes
        // (a thousand schedules made in a row cost a handful of reloads, not a thousand).
        let mut reload_at: Option<tokio::time::Instant> = None;
        loop {
            let now = Utc::now();
            let due: Vec<i64> = table
                .iter()
                .filter(|(_, e)| e.next <= now)
                .map(|(id, _)| *id)
                .collect();
            // Each due schedule's pass, which answers its next slot.
            let this = &self;
            let fired: Vec<(i64, Option<DateTime<Utc>>)> = futures_util::stream::iter(due)
                .map(|id| async move {
                    let next = match this.pass(id, now).await {
                        Ok(pass) => pass.next,
                        Err(e) => {
                            tracing::warn!(schedule_id = id, error = %e, "firing a schedule");
                            // From the row as it now is (the pass may have stopped anywhere).
                            match this.store.get_schedule(id).await {
                                Ok(row) if row.enabled => timing_of(&row)
                                    .ok()
                                    .and_then(|t| t.next_after(ms_to_time(row.anchor_ms).max(now))),
                                _ => None,
                            }
                        }
                    };
                    (id, next)
                })
                .buffer_unordered(FIRE_CONCURRENCY)
                .collect()
                .await;
            for (id, next) in fired {
                match (next, table.get_mut(&id)) {
                    (Some(next), Some(entry)) => entry.next = next,
                    _ => {
                        table.remove(&id);
                    }
                }
            }
            let mut wake = tokio::time::Instant::now()
                + self.config.resync.saturating_sub(loaded_at.elapsed());
            if let Some(next) = table.values().map(|e| e.next).min() {
                let until = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                wake = wake.min(tokio::time::Instant::now() + until);
            }
            if let Some(at) = reload_at {
                wake = wake.min(at);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {}
                n = notices.recv() => match n {
                    Ok(Notice::Schedules | Notice::Resync) | Err(RecvError::Lagged(_)) => {
                        reload_at.get_or_insert(tokio::time::Instant::now() + RELOAD_DELAY);
                    }
                    Ok(_) => {}
                    Err(RecvError::Closed) => return,
                },
            }
            let now = tokio::time::Instant::now();
            if reload_at.is_some_and(|at| at <= now) || loaded_at.elapsed() >= self.config.resync {
                table = self.load().await;
                loaded_at = tokio::time::Instant::now();
                reload_at = None;
            }
        }
    }

    /// The timetable: each enabled schedule's next slot after its anchor (in the past when
    /// slots were missed, so they are looked at at once).
    async fn load(&self) -> HashMap<i64, Entry> {
        let rows = match self.store.list_schedules().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading the schedules; retrying at the next resync");
                return HashMap::new();
            }
        };
        let mut table = HashMap::new();
        for row in rows.into_iter().filter(|r| r.enabled) {
            let timing = match timing_of(&row) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(schedule = %row.name, error = %e, "a schedule's timing does not parse");
                    continue;
                }
            };
            // Slots older than the grace are only looked at once (to be skipped or caught up).
            let from = ms_to_time(row.anchor_ms);
            if let Some(next) = timing.next_after(from) {
                table.insert(row.id, Entry { next });
            }
        }
        table
    }

    /// Fires every due schedule as of `now` (a test drives this with its own clock).
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<(i64, Pass)>, StoreError> {
        let mut out = Vec::new();
        for row in self.store.list_schedules().await? {
            if row.enabled {
                out.push((row.id, self.pass(row.id, now).await?));
            }
        }
        Ok(out)
    }

    /// One pass over schedule `id` as of `now`: fires its on-time slots, applies its
    /// catch-up policy to missed ones, and moves its anchor on.
    pub async fn pass(&self, id: i64, now: DateTime<Utc>) -> Result<Pass, StoreError> {
        let row = match self.store.get_schedule(id).await {
            Ok(row) => row,
            Err(StoreError::NotFound) => return Ok(Pass::default()),
            Err(e) => return Err(e),
        };
        let mut pass = Pass::default();
        if !row.enabled {
            return Ok(pass);
        }
        let timing = match timing_of(&row) {
            Ok(t) => t,
            Err(e) => {
                pass.refused = Some(e.to_string());
                return Ok(pass);
            }
        };
        let anchor = ms_to_time(row.anchor_ms);
        let grace = chrono::Duration::from_std(self.config.grace).unwrap_or_default();
        let horizon = now - grace;
        let on_time = timing.slots_between(anchor.max(horizon), now, self.config.max_slots);
        let missed_last = (anchor < horizon)
            .then(|| timing.last_between(anchor, horizon))
            .flatten();
        let catch_up: CatchUp = row.catch_up.parse().unwrap_or(CatchUp::Skip);
        let mut fire = on_time.clone();
        if missed_last.is_some() {
            pass.skipped = 1;
        }
        if on_time.is_empty()
            && catch_up == CatchUp::RunOnce
            && let Some(m) = missed_last
        {
            fire.push(m);
            pass.skipped = 0;
        }
        let Some(newest) = on_time.last().copied().or(missed_last) else {
            pass.next = timing.next_after(anchor.max(now));
            return Ok(pass);
        };
        let mut last_run = None;
        if !fire.is_empty() {
            match self.fire(&row, &fire, &mut pass).await {
                Ok(run) => last_run = run,
                Err(e) => return Err(e),
            }
        }
        if let Some(reason) = &pass.refused {
            tracing::warn!(schedule = %row.name, reason, "a schedule's slot did not start");
            let data = json!({
                "schedule_id": row.id, "name": row.name, "reason": reason,
                "slots": fire.iter().map(DateTime::to_rfc3339).collect::<Vec<_>>(),
            });
            let _ = self
                .store
                .record_event("schedule.refused", None, data)
                .await;
        }
        self.store
            .advance_schedule(row.id, newest.timestamp_millis(), last_run)
            .await?;
        pass.next = timing.next_after(anchor.max(newest).max(now));
        Ok(pass)
    }

    async fn fire(
        &self,
        row: &ScheduleRow,
        slots: &[DateTime<Utc>],
        pass: &mut Pass,
    ) -> Result<Option<i64>, StoreError> {
        let target = match Target::from_value(&row.target, "target") {
            Ok(t) => t,
            Err(e) => {
                pass.refused = Some(e.to_string());
                return Ok(None);
            }
        };
        let Some(owner) = row.owner_id else {
            pass.refused =
                Some("the schedule has no owner (deleted, or unknown in the file)".into());
            return Ok(None);
        };
        if !owner_may(&self.store, owner, &target).await? {
            pass.refused = Some(format!(
                "its owner no longer holds {}",
                target.permission().as_str()
            ));
            return Ok(None);
        }
        let mut last = None;
        for slot in slots {
            let key = slot_key(row.id, *slot);
            let origin = RunOrigin {
                kind: "schedule",
                id: row.id,
                key: &key,
                depth: 0,
            };
            let summary = format!(
                "{} (schedule {}, {})",
                target.describe(),
                row.name,
                slot.to_rfc3339()
            );
            match target
                .start(&self.store, None, owner_requester(owner), origin, &summary)
                .await
            {
                Ok((run, true)) => {
                    tracing::info!(schedule = %row.name, slot = %slot, run_id = run.id, "schedule fired");
                    pass.started.push((*slot, run.id));
                    last = Some(run.id);
                }
                Ok((run, false)) => {
                    pass.already += 1;
                    last = Some(run.id);
                }
                Err(StartError::Invalid(problems)) => {
                    pass.refused = Some(StartError::Invalid(problems).to_string());
                    return Ok(last);
                }
                Err(StartError::Store(e)) => return Err(e),
            }
        }
        Ok(last)
    }
}
