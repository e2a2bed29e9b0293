//! `schedules.yaml` in the config folder: schedules declared in a file kept under version
//! control beside the policies. At start the file is the truth for the schedules it
//! declares (`source: file`): new ones are created, changed ones updated (their version
//! goes up), removed ones deleted. Schedules made over the API are not touched, and may not
//! share a name with a declared one.
//!
//! ```yaml
//! schedules:
//!   - name: daily standup
//!     cron: "0 9 * * MON-FRI"
//!     timezone: Europe/Berlin
//!     owner: admin@example.com
//!     target: { kind: meeting, type: standup }
//! ```

use serde::Deserialize;
use serde_json::Value;
use vorg_store::{ScheduleWrite, Store, StoreError};

use crate::{
    Target,
    scheduler::CatchUp,
    target::StartError,
    timing::{DstGap, Timing},
};

/// The file's name in the config folder.
pub const FILE: &str = "schedules.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    schedules: Vec<Declared>,
}

fn utc() -> String {
    "UTC".into()
}
fn skip() -> String {
    "skip".into()
}
fn run() -> String {
    "run".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    name: String,
    #[serde(default)]
    description: String,
    cron: String,
    #[serde(default = "utc")]
    timezone: String,
    #[serde(default = "skip")]
    catch_up: String,
    #[serde(default = "run")]
    on_dst_gap: String,
    #[serde(default = "yes")]
    enabled: bool,
    /// The e-mail of the user whose permissions and budgets the runs use.
    owner: String,
    target: Value,
}

/// What a sync did.
#[derive(Debug, Default, PartialEq)]
pub struct Synced {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    /// Declared owners that are not users (yet): their schedules start nothing until
    /// the user exists and the file is loaded again.
    pub unknown_owners: Vec<String>,
}

/// Why the file was refused: each problem with its place.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{FILE}: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `text` (the file's content) to the store.
pub async fn sync(store: &Store, text: &str) -> Result<Synced, FileError> {
    let value = vorg_domain::yaml::parse_untrusted(text).map_err(|e| {
        FileError::Invalid(vec![match e.line() {
            Some(line) => format!("line {line}: {}", e.reason()),
            None => e.reason(),
        }])
    })?;
    let doc: Doc =
        serde_json::from_value(value).map_err(|e| FileError::Invalid(vec![e.to_string()]))?;
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for (i, d) in doc.schedules.iter().enumerate() {
        let at = |field: &str, reason: String| format!("schedules[{i}].{field}: {reason}");
        let gap = d.on_dst_gap.parse::<DstGap>();
        if let Err(e) = &gap {
            problems.push(at("on_dst_gap", e.clone()));
        }
        if let Err(e) = d.catch_up.parse::<CatchUp>() {
            problems.push(at("catch_up", e));
        }
        if let Err(e) = Timing::parse(&d.cron, &d.timezone, gap.unwrap_or(DstGap::Run)) {
            problems.push(at(e.field, e.reason));
        }
        match Target::from_value(&d.target, "target") {
            Ok(t) => match t.check(store, None, "target").await {
                Ok(()) => checked.push((d, t)),
                Err(StartError::Invalid(list)) => {
                    problems.extend(list.into_iter().map(|p| at(&p.path, p.reason)));
                }
                Err(StartError::Store(e)) => return Err(e.into()),
            },
            Err(e) => problems.push(format!("schedules[{i}].{e}")),
        }
        if doc.schedules[..i].iter().any(|o| o.name == d.name) {
            problems.push(at("name", format!("{:?} is declared twice", d.name)));
        }
    }
    let existing = store.list_schedules().await?;
    for d in &doc.schedules {
        if existing
            .iter()
            .any(|e| e.name == d.name && e.source != "file")
        {
            problems.push(format!(
                "schedule {:?}: one made over the API has this name (rename one of them)",
                d.name
            ));
        }
    }
    if !problems.is_empty() {
        return Err(FileError::Invalid(problems));
    }
    let mut out = Synced::default();
    for (d, target) in checked {
        let owner = match store.find_user_by_email(&d.owner.to_lowercase()).await? {
            Some(u) => Some(u.user.id),
            None => {
                out.unknown_owners.push(d.owner.clone());
                None
            }
        };
        let target = serde_json::to_value(&target).unwrap_or_default();
        let w = ScheduleWrite {
            name: &d.name,
            description: &d.description,
            target: &target,
            cron: d.cron.trim(),
            timezone: &d.timezone,
            catch_up: &d.catch_up,
            on_dst_gap: &d.on_dst_gap,
            enabled: d.enabled,
            owner_id: owner,
            source: "file",
        };
        match existing.iter().find(|e| e.name == d.name) {
            None => {
                store.create_schedule(&w).await?;
                out.created += 1;
            }
            Some(e) => {
                let same = e.description == w.description
                    && e.target.0 == target
                    && e.cron == w.cron
                    && e.timezone == w.timezone
                    && e.catch_up == w.catch_up
                    && e.on_dst_gap == w.on_dst_gap
                    && e.enabled == w.enabled
                    && e.owner_id == w.owner_id;
                if !same {
                    store.update_schedule(e.id, &w).await?;
                    out.updated += 1;
                }
            }
        }
    }
    for e in existing.iter().filter(|e| e.source == "file") {
        if !doc.schedules.iter().any(|d| d.name == e.name) {
            store.delete_schedule(e.id).await?;
            out.deleted += 1;
        }
    }
    Ok(out)
}
