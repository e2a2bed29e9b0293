//! Schedules, triggers and webhooks on both backends: a run per origin key however many
//! starters race, anchors that only move forward, a dispatch cursor that one process moves
//! at a time, and a delivery's attempts recorded once each until it ends.

use serde_json::json;

use super::*;
use crate::{
    AttemptOutcome, AttemptRecord, DELIVER_JOB, NewDelivery, RunOrigin, ScheduleWrite, WebhookWrite,
};

contract!(
    an_origin_key_starts_one_run_however_many_race,
    a_schedules_anchor_moves_forward_and_restarts_when_enabled,
    the_dispatch_cursor_moves_once_and_creates_each_delivery_once,
    attempts_are_recorded_once_and_a_failing_subscription_is_disabled,
    a_gone_receiver_disables_its_subscription_at_once,
);

async fn an_origin_key_starts_one_run_however_many_race(store: Store) {
    let mut starts = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        starts.push(tokio::spawn(async move {
            let mut new = demo_run(json!({ "steps": 1 }));
            new.origin = Some(RunOrigin {
                kind: "schedule",
                id: 7,
                key: "schedule:7:1000",
                depth: 0,
            });
            store.create_run_once(new).await.unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for s in starts {
        let (run, new) = s.await.unwrap();
        created += usize::from(new);
        ids.insert(run.id);
    }
    assert_eq!(created, 1, "one start creates the run");
    assert_eq!(ids.len(), 1, "every start answers the same run");
    let runs = store.runs_of_origin("schedule", 7, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].origin_kind.as_deref(), Some("schedule"));
    let jobs: i64 = store
        .job_counts()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(jobs, 1, "one job for the one run");
}

fn schedule<'a>(target: &'a serde_json::Value, cron: &'a str, enabled: bool) -> ScheduleWrite<'a> {
    ScheduleWrite {
        name: "daily standup",
        description: "",
        target,
        cron,
        timezone: "Europe/Berlin",
        catch_up: "skip",
        on_dst_gap: "run",
        enabled,
        owner_id: None,
        source: "api",
    }
}

async fn a_schedules_anchor_moves_forward_and_restarts_when_enabled(store: Store) {
    let target = json!({ "kind": "meeting", "type": "standup" });
    let s = store
        .create_schedule(&schedule(&target, "0 9 * * *", true))
        .await
        .unwrap();
    assert_eq!(s.version, 1);
    assert!(
        store
            .create_schedule(&schedule(&target, "0 9 * * *", true))
            .await
            .is_err(),
        "names are unique"
    );
    // Pausing and enabling again counts slots from then on: the pause queues nothing up.
    store
        .update_schedule(s.id, &schedule(&target, "0 9 * * *", false))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let before = chrono::Utc::now().timestamp_millis();
    let resumed = store
        .update_schedule(s.id, &schedule(&target, "0 9 * * *", true))
        .await
        .unwrap();
    assert!(resumed.anchor_ms >= before && resumed.anchor_ms > s.anchor_ms);
    assert_eq!(resumed.version, 3);
    let anchor = resumed.anchor_ms;
    store
        .advance_schedule(s.id, anchor + 1000, Some(3))
        .await
        .unwrap();
    // Never back.
    store
        .advance_schedule(s.id, anchor + 500, None)
        .await
        .unwrap();
    let s2 = store.get_schedule(s.id).await.unwrap();
    assert_eq!(s2.anchor_ms, anchor + 1000);
    assert_eq!(s2.last_slot_ms, Some(anchor + 1000));
    assert_eq!(s2.last_run_id, Some(3));
    // An edit that keeps the timing keeps the anchor.
    let same = store
        .update_schedule(s.id, &schedule(&target, "0 9 * * *", true))
        .await
        .unwrap();
    assert_eq!(same.anchor_ms, anchor + 1000);
    assert_eq!(same.version, 4);
    assert_eq!(store.list_schedules().await.unwrap().len(), 1);
    store.delete_schedule(s.id).await.unwrap();
    assert!(matches!(
        store.get_schedule(s.id).await,
        Err(StoreError::NotFound)
    ));
}

fn hook<'a>(url: &'a str) -> WebhookWrite<'a> {
    WebhookWrite {
        name: "ops",
        url,
        events: "run.failed,approval.requested",
        format: "standard",
        enabled: true,
    }
}

fn delivery(webhook_id: i64, event_id: i64) -> NewDelivery {
    NewDelivery {
        webhook_id,
        event_id: Some(event_id),
        event_type: "run.failed".into(),
        msg_id: format!("msg_{event_id}"),
        payload: json!({ "type": "run.failed" }),
    }
}

async fn the_dispatch_cursor_moves_once_and_creates_each_delivery_once(store: Store) {
    let start = store.event_cursor("webhooks").await.unwrap();
    let w = store
        .create_webhook(&hook("https://example.com/h"), "whsec_x", None)
        .await
        .unwrap();
    assert!(w.wants("run.failed") && !w.wants("run.started"));
    let e = store
        .record_event("run.status", None, json!({ "status": "failed" }))
        .await
        .unwrap();
    let batch = [delivery(w.id, e.id)];
    assert!(
        store
            .dispatch_events("webhooks", start, e.id, &batch, &[])
            .await
            .unwrap()
    );
    // A second dispatcher that read the same cursor writes nothing.
    assert!(
        !store
            .dispatch_events("webhooks", start, e.id, &batch, &[])
            .await
            .unwrap()
    );
    assert_eq!(store.event_cursor("webhooks").await.unwrap(), e.id);
    let deliveries = store
        .list_deliveries(
            w.id,
            Page {
                limit: 50,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, "pending");
    let job = store.claim_job("w", 30_000).await.unwrap().unwrap();
    assert_eq!(job.kind, DELIVER_JOB);
    assert_eq!(job.payload.0["delivery_id"], deliveries[0].id);
}

fn attempt(delivery_id: i64, n: i64, status: Option<u16>) -> AttemptRecord<'static> {
    AttemptRecord {
        delivery_id,
        attempt: n,
        started_at: chrono::Utc::now(),
        duration_ms: 3,
        status_code: status,
        response_excerpt: "busy",
        error: None,
    }
}

async fn attempts_are_recorded_once_and_a_failing_subscription_is_disabled(store: Store) {
    let w = store
        .create_webhook(&hook("https://example.com/h"), "whsec_x", None)
        .await
        .unwrap();
    let d = store.create_delivery(&delivery(w.id, 1)).await.unwrap();
    let due = chrono::Utc::now().timestamp_millis() + 60_000;
    assert!(
        store
            .record_attempt(
                &attempt(d.id, 1, Some(500)),
                &AttemptOutcome::RetryAt(due),
                3
            )
            .await
            .unwrap()
    );
    // The same attempt again (a re-run after a crash) records nothing.
    assert!(
        !store
            .record_attempt(
                &attempt(d.id, 1, Some(500)),
                &AttemptOutcome::RetryAt(due),
                3
            )
            .await
            .unwrap()
    );
    assert_eq!(store.list_attempts(d.id).await.unwrap().len(), 1);
    let d1 = store.get_delivery(d.id).await.unwrap();
    assert_eq!((d1.status.as_str(), d1.attempts), ("pending", 1));
    assert!(d1.next_attempt_at.is_some());
    store
        .record_attempt(
            &attempt(d.id, 2, Some(500)),
            &AttemptOutcome::RetryAt(due),
            3,
        )
        .await
        .unwrap();
    assert!(store.get_webhook(w.id).await.unwrap().enabled);
    store
        .record_attempt(&attempt(d.id, 3, None), &AttemptOutcome::GiveUp, 3)
        .await
        .unwrap();
    let off = store.get_webhook(w.id).await.unwrap();
    assert!(!off.enabled, "three failures in a row disable it");
    assert_eq!(
        off.disabled_reason.as_deref(),
        Some("3 attempts in a row failed")
    );
    assert_eq!(store.get_delivery(d.id).await.unwrap().status, "failed");
    let events = store.events_after(0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "webhook.disabled"));
    let audit = store
        .list_audit(Page {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a.action == "webhook.disable"));
    // Enabling it again clears the streak; a redeliver queues the same message again.
    let on = store
        .update_webhook(w.id, &hook("https://example.com/h"))
        .await
        .unwrap();
    assert!(on.enabled && on.failure_streak == 0 && on.disabled_reason.is_none());
    let again = store.redeliver(d.id).await.unwrap();
    assert_eq!(
        (again.status.as_str(), again.msg_id.as_str()),
        ("pending", "msg_1")
    );
    store
        .record_attempt(&attempt(d.id, 4, Some(204)), &AttemptOutcome::Delivered, 3)
        .await
        .unwrap();
    let done = store.get_delivery(d.id).await.unwrap();
    assert_eq!(done.status, "delivered");
    assert!(done.delivered_at.is_some());
    assert_eq!(store.get_webhook(w.id).await.unwrap().failure_streak, 0);
}

async fn a_gone_receiver_disables_its_subscription_at_once(store: Store) {
    let w = store
        .create_webhook(&hook("https://example.com/h"), "whsec_x", None)
        .await
        .unwrap();
    let d = store.create_delivery(&delivery(w.id, 1)).await.unwrap();
    let d2 = store.create_delivery(&delivery(w.id, 2)).await.unwrap();
    store
        .record_attempt(&attempt(d.id, 1, Some(410)), &AttemptOutcome::Gone, 100)
        .await
        .unwrap();
    let off = store.get_webhook(w.id).await.unwrap();
    assert!(!off.enabled);
    assert_eq!(off.disabled_reason.as_deref(), Some(crate::DISABLED_GONE));
    assert_eq!(
        store.get_delivery(d2.id).await.unwrap().status,
        "failed",
        "pending ones end"
    );
    assert!(
        store
            .mark_alert("budget.exceeded:org:2026-12")
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_alert("budget.exceeded:org:2026-12")
            .await
            .unwrap()
    );
}
