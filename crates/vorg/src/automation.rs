//! Wiring of the organization's own clock, ears and voice: the job kinds of webhook
//! deliveries and event triggers, the scheduler and the event dispatcher (in every process
//! that has `VORG_SCHEDULER` on: slots and events are claimed in the database), and the
//! config folder's `schedules.yaml`.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_automation::{
    DeliveryConfig, Outbound, Scheduler, SchedulerConfig, WebhookDelivery, dispatch::Dispatcher,
    hooks::TriggerFire,
};
use vorg_store::Store;

use crate::config::Settings;

/// Where vorg is reached from outside: `VORG_PUBLIC_URL`, else `http://{bind}`.
pub fn public_url(settings: &Settings) -> String {
    settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.bind))
}

pub fn delivery_config(settings: &Settings) -> DeliveryConfig {
    let mut cfg = DeliveryConfig {
        allow_private: settings.webhooks_allow_private,
        disable_after: settings.webhook_disable_after,
        public_url: public_url(settings),
        ..DeliveryConfig::default()
    };
    if let Some(delays) = &settings.webhook_retry_secs {
        cfg.retry_delays = delays.iter().map(|s| Duration::from_secs_f64(*s)).collect();
    }
    cfg
}

/// Every job kind a worker of this binary runs.
pub fn registry(
    settings: &Settings,
    services: vorg_services::Services,
) -> anyhow::Result<vorg_jobs::Registry> {
    let outbound: Arc<Outbound> =
        Outbound::new(delivery_config(settings)).context("the webhook HTTP client")?;
    Ok(vorg_services::registry(services)
        .job::<WebhookDelivery>(outbound)
        .job::<TriggerFire>(()))
}

/// Starts the scheduler and the event dispatcher when `VORG_SCHEDULER` is on.
pub fn spawn(settings: &Settings, store: &Store, tracker: &TaskTracker, stop: CancellationToken) {
    if !settings.scheduler {
        tracing::info!("VORG_SCHEDULER=false: this process fires no schedules");
        return;
    }
    let config = SchedulerConfig {
        grace: Duration::from_secs(settings.schedule_grace_secs),
        ..SchedulerConfig::default()
    };
    Scheduler::new(store.clone(), config).spawn(tracker, stop.clone());
    Dispatcher::new(store.clone(), public_url(settings)).spawn(tracker, stop);
}

/// Applies the config folder's `schedules.yaml`, if there is one.
pub async fn sync_schedules(org: &vorg_org::Org, store: &Store) -> anyhow::Result<()> {
    let Some(dir) = org.files().dir() else {
        return Ok(());
    };
    let path = dir.join(vorg_automation::file::FILE);
    if !path.is_file() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let synced = vorg_automation::file::sync(store, &text)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for owner in &synced.unknown_owners {
        tracing::warn!(owner, file = %path.display(), "a declared schedule's owner is not a user: it starts nothing until they exist and vorg restarts");
    }
    tracing::info!(
        file = %path.display(), created = synced.created, updated = synced.updated,
        deleted = synced.deleted, "schedules file applied"
    );
    Ok(())
}
