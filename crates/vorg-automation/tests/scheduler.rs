//! The scheduler driven by a fake clock (each pass is given its `now`), on both databases:
//! DST changes in Europe/Berlin, downtime caught up or skipped, racing schedulers firing a
//! slot once, and an owner without the permission starting nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use chrono::{DateTime, Utc};
use serde_json::json;
use vorg_automation::{Scheduler, SchedulerConfig};
use vorg_domain::Role;
use vorg_store::{Backend, ScheduleWrite, Store, testing::TestDb};

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(vorg_store::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(vorg_store::Backend::Postgres).await }
            )*
        }
    };
}

both!(
    a_daily_slot_runs_once_across_spring_forward_and_fall_back,
    a_gap_slot_is_skipped_when_the_schedule_says_so,
    missed_slots_are_skipped_or_caught_up_once,
    racing_schedulers_fire_each_slot_once,
    an_owner_without_the_permission_starts_nothing,
);

async fn store(backend: Backend) -> (TestDb, Store) {
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    (db, store)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn schedule(
    store: &Store,
    owner: i64,
    cron: &str,
    tz: &str,
    catch_up: &str,
    gap: &str,
) -> i64 {
    let target = json!({ "kind": "meeting", "type": "standup",
        "body": { "yesterday": ["shipped the scheduler"] } });
    let name = format!("{cron} {tz} {catch_up} {gap}");
    store
        .create_schedule(&ScheduleWrite {
            name: &name,
            description: "",
            target: &target,
            cron,
            timezone: tz,
            catch_up,
            on_dst_gap: gap,
            enabled: true,
            owner_id: Some(owner),
            source: "api",
        })
        .await
        .unwrap()
        .id
}

async fn admin(store: &Store) -> i64 {
    store
        .create_user("owner@example.com", "x", &[Role::Admin], false)
        .await
        .unwrap()
        .user
        .id
}

async fn slots_of(store: &Store, id: i64) -> Vec<String> {
    let mut runs = store.runs_of_origin("schedule", id, 100).await.unwrap();
    runs.reverse();
    runs.iter()
        .map(|r| {
            r.summary
                .clone()
                .unwrap_or_default()
                .rsplit(", ")
                .next()
                .unwrap()
                .trim_end_matches(')')
                .to_owned()
        })
        .collect()
}

fn scheduler(store: &Store) -> Scheduler {
    Scheduler::new(store.clone(), SchedulerConfig::default())
}

async fn a_daily_slot_runs_once_across_spring_forward_and_fall_back(backend: Backend) {
    let (_db, store) = store(backend).await;
    let owner = admin(&store).await;
    let id = schedule(&store, owner, "30 2 * * *", "Europe/Berlin", "skip", "run").await;
    let s = scheduler(&store);
    // Months after the schedule was made: every slot so far was missed, and is skipped.
    let first = s.pass(id, at("2027-03-27T12:00:00Z")).await.unwrap();
    assert!(first.started.is_empty() && first.skipped == 1, "{first:?}");
    // 2027-03-28: 02:00 jumps to 03:00 in Berlin. 02:30 fires once, at 03:00 CEST (01:00Z),
    // seen by passes before, at and after that instant.
    for now in [
        "2027-03-28T00:59:59Z",
        "2027-03-28T01:00:00Z",
        "2027-03-28T01:00:30Z",
        "2027-03-28T02:30:00Z",
    ] {
        s.pass(id, at(now)).await.unwrap();
    }
    let pass = s.pass(id, at("2027-03-29T00:30:05Z")).await.unwrap();
    assert_eq!(
        pass.next,
        Some(at("2027-03-30T00:30:00Z")),
        "each pass answers the next slot"
    );
    // 2027-10-31: 03:00 goes back to 02:00; 02:30 is lived twice and fires the first time.
    for now in [
        "2027-10-31T00:30:01Z",
        "2027-10-31T01:00:00Z",
        "2027-10-31T01:30:02Z",
        "2027-10-31T03:00:00Z",
    ] {
        s.pass(id, at(now)).await.unwrap();
    }
    s.pass(id, at("2027-11-01T01:30:03Z")).await.unwrap();
    assert_eq!(
        slots_of(&store, id).await,
        vec![
            "2027-03-28T01:00:00+00:00",
            "2027-03-29T00:30:00+00:00",
            "2027-10-31T00:30:00+00:00",
            "2027-11-01T01:30:00+00:00",
        ]
    );
    let row = store.get_schedule(id).await.unwrap();
    assert_eq!(
        row.last_slot_ms,
        Some(at("2027-11-01T01:30:00Z").timestamp_millis())
    );
    assert!(
        row.last_run_id.is_some(),
        "the schedule links to its last run"
    );
}

async fn a_gap_slot_is_skipped_when_the_schedule_says_so(backend: Backend) {
    let (_db, store) = store(backend).await;
    let owner = admin(&store).await;
    let id = schedule(&store, owner, "30 2 * * *", "Europe/Berlin", "skip", "skip").await;
    let s = scheduler(&store);
    for now in [
        "2027-03-27T12:00:00Z",
        "2027-03-28T01:00:30Z",
        "2027-03-28T03:00:00Z",
        "2027-03-29T00:30:05Z",
    ] {
        s.pass(id, at(now)).await.unwrap();
    }
    assert_eq!(
        slots_of(&store, id).await,
        vec!["2027-03-29T00:30:00+00:00"]
    );
}

async fn missed_slots_are_skipped_or_caught_up_once(backend: Backend) {
    let (_db, store) = store(backend).await;
    let owner = admin(&store).await;
    let skip = schedule(&store, owner, "0 9 * * *", "UTC", "skip", "run").await;
    let once = schedule(&store, owner, "0 9 * * *", "UTC", "run_once", "run").await;
    let s = scheduler(&store);
    // A week of downtime, back at noon.
    let back = Utc::now() + chrono::Duration::days(7);
    let back = back.date_naive().and_hms_opt(12, 0, 0).unwrap().and_utc();
    let passes = s.tick(back).await.unwrap();
    assert_eq!(passes.len(), 2);
    s.tick(back + chrono::Duration::minutes(1)).await.unwrap();
    assert!(
        slots_of(&store, skip).await.is_empty(),
        "skip drops the missed slots"
    );
    let caught = slots_of(&store, once).await;
    let newest = back.date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
    assert_eq!(
        caught,
        vec![newest.to_rfc3339()],
        "run_once fires the newest missed slot once"
    );
    // The next day both fire on time (3 minutes late is within the grace).
    let next = newest + chrono::Duration::days(1) + chrono::Duration::minutes(3);
    s.tick(next).await.unwrap();
    assert_eq!(slots_of(&store, skip).await.len(), 1);
    assert_eq!(slots_of(&store, once).await.len(), 2);
}

async fn racing_schedulers_fire_each_slot_once(backend: Backend) {
    let (_db, store) = store(backend).await;
    let owner = admin(&store).await;
    let id = schedule(&store, owner, "*/10 * * * * *", "UTC", "skip", "run").await;
    let start = Utc::now();
    let mut tasks = Vec::new();
    for n in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = scheduler(&store);
            // Each scheduler looks every 7 s of fake time for 2 minutes, offset from the others.
            for step in 0..18 {
                let now = start + chrono::Duration::milliseconds(n * 1700 + step * 7000);
                s.pass(id, now).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let slots = slots_of(&store, id).await;
    let mut unique = slots.clone();
    unique.dedup();
    assert_eq!(unique, slots, "no slot fired twice");
    let last_now = start + chrono::Duration::milliseconds(3 * 1700 + 17 * 7000);
    let expected = vorg_automation::Timing::parse(
        "*/10 * * * * *",
        "UTC",
        vorg_automation::timing::DstGap::Run,
    )
    .unwrap()
    .slots_between(start, last_now, 100)
    .len();
    assert_eq!(slots.len(), expected, "every slot fired: {slots:?}");
}

async fn an_owner_without_the_permission_starts_nothing(backend: Backend) {
    let (_db, store) = store(backend).await;
    let viewer = store
        .create_user("viewer@example.com", "x", &[Role::Viewer], false)
        .await
        .unwrap()
        .user
        .id;
    let id = schedule(&store, viewer, "* * * * *", "UTC", "skip", "run").await;
    let pass = scheduler(&store)
        .pass(id, Utc::now() + chrono::Duration::seconds(61))
        .await
        .unwrap();
    assert!(pass.started.is_empty());
    assert!(pass.refused.unwrap().contains("hold_meetings"));
    let events = store.events_after(0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "schedule.refused"));
}
