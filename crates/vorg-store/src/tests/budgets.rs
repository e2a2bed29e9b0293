//! The budget ledger and its leases on both backends: leases never pass a limit, usage rows
//! charge their budgets in the same transaction, expired leases are reaped, and the ledger
//! always balances against the usage rows and the live leases.

use super::*;
use crate::{BudgetBalance, BudgetKey, NewUsage, UsageCharge};

contract!(
    concurrent_leases_never_pass_a_limit,
    usage_rows_charge_their_leases_and_warn_once,
    expired_leases_are_reaped_and_shrunk_leases_give_headroom_back,
    a_charge_larger_than_its_lease_still_counts_in_full,
);

fn key(scope: &str, limit: i64) -> BudgetKey {
    BudgetKey {
        scope: scope.parse().expect("a scope"),
        subject: "default".into(),
        period: "2026-11".into(),
        limit_micro_usd: limit,
    }
}

const HOLDER: &str = "test:1:aa";
const LATER: i64 = i64::MAX / 2;

fn usage(cost: i64, charge: Option<UsageCharge>) -> NewUsage {
    NewUsage {
        run_id: None,
        actor: "ann@example.com".into(),
        user_id: None,
        token_id: None,
        provider: "openai".into(),
        model: "gpt-4o".into(),
        prompt_tokens: 10,
        completion_tokens: 10,
        cache_read_tokens: 3,
        cache_write_tokens: 1,
        cost_micro_usd: cost,
        priced: true,
        estimated: false,
        latency_ms: 1,
        streamed: false,
        status: "ok",
        error: None,
        charge,
    }
}

/// What budget `k` holds now.
async fn balance_of(store: &Store, k: &BudgetKey) -> BudgetBalance {
    store
        .budget_balances(std::slice::from_ref(k))
        .await
        .unwrap()[0]
}

async fn balanced(store: &Store) {
    let checks = store.check_budgets().await.unwrap();
    assert!(!checks.is_empty());
    for c in checks {
        assert!(c.balanced(), "{c:?}");
    }
}

async fn concurrent_leases_never_pass_a_limit(store: Store) {
    let k = key("org", 10);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, k) = (store.clone(), k.clone());
            tokio::spawn(async move { s.lease_budget(&k, None, (1, 1), HOLDER, LATER).await })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Ok(lease) => granted += lease.granted_micro_usd,
            Err(balance) => assert_eq!(balance.reserved_micro_usd, 10),
        }
    }
    assert_eq!(granted, 10);
    let balance = balance_of(&store, &k).await;
    assert_eq!(balance.reserved_micro_usd, 10);
    balanced(&store).await;
    // A slice is at most a quarter of what is free, and at least what is asked.
    let big = key("actor", 1_000);
    let lease = store
        .lease_budget(&big, None, (10, 900), HOLDER, LATER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.granted_micro_usd, 250);
    let grown = store
        .lease_budget(&big, Some(lease.id), (700, 800), HOLDER, LATER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((grown.id, grown.granted_micro_usd), (lease.id, 700));
    let refused = store
        .lease_budget(&big, Some(lease.id), (51, 51), HOLDER, LATER)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.reserved_micro_usd, 950);
    balanced(&store).await;
}

async fn usage_rows_charge_their_leases_and_warn_once(store: Store) {
    let (org, actor) = (key("org", 10), key("actor", 1_000));
    let mut charge = UsageCharge {
        budgets: vec![],
        warn_permille: 800,
    };
    for k in [&org, &actor] {
        let lease = store
            .lease_budget(k, None, (10, 10), HOLDER, LATER)
            .await
            .unwrap()
            .unwrap();
        charge.budgets.push((k.clone(), Some(lease.id)));
    }
    // Seven rows in one batch, then three one by one: the eighth unit crosses 80% of the org
    // budget and warns, once.
    let batch: Vec<NewUsage> = (0..7).map(|_| usage(1, Some(charge.clone()))).collect();
    store.record_usage_batch(&batch).await.unwrap();
    for _ in 0..3 {
        store
            .record_usage(&usage(1, Some(charge.clone())))
            .await
            .unwrap();
    }
    // The batch's rows were written whole, every field in place (one statement for many).
    let listed = store
        .list_usage(crate::Page {
            limit: 20,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 10);
    for r in &listed {
        let want = usage(1, Some(charge.clone()));
        assert_eq!(
            (
                r.actor.as_str(),
                r.provider.as_str(),
                r.model.as_str(),
                r.prompt_tokens,
                r.completion_tokens,
                r.cost_micro_usd,
                r.priced,
                r.estimated,
                r.streamed,
                r.status.as_str(),
                r.error.as_deref(),
                r.run_id,
            ),
            (
                want.actor.as_str(),
                want.provider.as_str(),
                want.model.as_str(),
                want.prompt_tokens,
                want.completion_tokens,
                want.cost_micro_usd,
                want.priced,
                want.estimated,
                want.streamed,
                want.status,
                None,
                None,
            ),
            "{r:?}"
        );
        assert_eq!((r.cache_read_tokens, r.cache_write_tokens), (3, 1));
    }
    // A row charged to nothing changes nothing.
    store.record_usage(&usage(5, None)).await.unwrap();
    let balances = store
        .budget_balances(&[org.clone(), actor.clone()])
        .await
        .unwrap();
    assert_eq!(
        balances[0],
        BudgetBalance {
            spent_micro_usd: 10,
            reserved_micro_usd: 0
        }
    );
    assert_eq!(balances[1].spent_micro_usd, 10);
    let events = store.events_after(0, 100).await.unwrap();
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "budget.warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{events:?}");
    assert_eq!(warnings[0].data.0["scope"], "org");
    assert_eq!(warnings[0].data.0["spent_micro_usd"], 8);
    balanced(&store).await;
    // Spent to the limit: no more headroom.
    assert!(
        store
            .lease_budget(&org, None, (1, 1), HOLDER, LATER)
            .await
            .unwrap()
            .is_err()
    );
}

async fn expired_leases_are_reaped_and_shrunk_leases_give_headroom_back(store: Store) {
    let k = key("token", 100);
    let a = store
        .lease_budget(&k, None, (40, 40), "a", 1_000)
        .await
        .unwrap()
        .unwrap();
    let b = store
        .lease_budget(&k, None, (20, 20), "b", LATER)
        .await
        .unwrap()
        .unwrap();
    // b gives 5 back; a expired at 1 000 ms and is reaped; b's renewal finds b alone.
    assert!(store.shrink_lease(&k, b.id, 5).await.unwrap());
    assert!(
        !store.shrink_lease(&k, b.id, 16).await.unwrap(),
        "b holds 15"
    );
    assert_eq!(store.reap_leases(2_000, None).await.unwrap(), 1);
    assert_eq!(
        store.renew_leases("a", LATER).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(store.renew_leases("b", LATER).await.unwrap(), vec![b.id]);
    let balance = balance_of(&store, &k).await;
    assert_eq!(balance.reserved_micro_usd, 15);
    // Growing a reaped lease takes a new one.
    let again = store
        .lease_budget(&k, Some(a.id), (10, 10), "a", LATER)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(again.id, a.id);
    balanced(&store).await;
    // Shrinking to nothing ends the lease; a holder's leases all end at its shutdown.
    assert!(store.shrink_lease(&k, b.id, 15).await.unwrap());
    assert_eq!(
        store.renew_leases("b", LATER).await.unwrap(),
        Vec::<i64>::new()
    );
    store.end_lease(again.id).await.unwrap();
    assert_eq!(store.reap_leases(0, Some("a")).await.unwrap(), 0);
    let balance = balance_of(&store, &k).await;
    assert_eq!(balance.reserved_micro_usd, 0);
    balanced(&store).await;
}

async fn a_charge_larger_than_its_lease_still_counts_in_full(store: Store) {
    let k = key("run", 1_000);
    let lease = store
        .lease_budget(&k, None, (10, 10), HOLDER, LATER)
        .await
        .unwrap()
        .unwrap();
    let charge = UsageCharge {
        budgets: vec![(k.clone(), Some(lease.id))],
        warn_permille: 1000,
    };
    store.record_usage(&usage(30, Some(charge))).await.unwrap();
    let balance = balance_of(&store, &k).await;
    // The lease pays what it held (10); the spend is the whole 30.
    assert_eq!(
        balance,
        BudgetBalance {
            spent_micro_usd: 30,
            reserved_micro_usd: 0
        }
    );
    balanced(&store).await;
}
