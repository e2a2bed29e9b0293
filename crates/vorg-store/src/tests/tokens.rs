//! Agent keys on both backends: permissions narrowed to the owner, limits, shared rate
//! windows and single-use enrolments.

use vorg_domain::{Permission, Permissions, TokenLimits};

use super::*;
use crate::{Enrolled, NewEnrolment};

contract!(
    a_token_holds_its_permissions_narrowed_to_the_owners,
    limits_are_stored_read_and_replaced,
    the_request_rate_is_one_count_shared_by_every_caller,
    an_enrolment_works_once_and_not_after_it_expires,
    token_spend_sums_its_usage_rows,
);

fn token<'a>(
    user_id: i64,
    hash: &'a str,
    roles: &'a [Role],
    perms: Permissions,
    limits: &'a TokenLimits,
) -> NewApiToken<'a> {
    NewApiToken {
        user_id,
        name: "agent",
        token_hash: hash,
        prefix: "vorg_x",
        roles,
        permissions: perms,
        limits,
        expires_at: None,
    }
}

async fn a_token_holds_its_permissions_narrowed_to_the_owners(store: Store) {
    let admin = store
        .create_user("a@x.io", "h", &[Role::Admin], false)
        .await
        .unwrap();
    let none = TokenLimits::default();
    // An admin's token equal to `engineer`: the admin covers every engineer permission.
    let eng = Permissions::of_roles(&[Role::Engineer]);
    store
        .create_token(token(admin.user.id, "h-eng", &[Role::Engineer], eng, &none))
        .await
        .unwrap();
    let owner = store.authenticate_token("h-eng").await.unwrap().unwrap();
    assert_eq!(owner.roles, vec![Role::Engineer]);
    assert_eq!(owner.permissions, eng);
    assert!(!owner.permissions.contains(Permission::ManageUsers));
    // Narrower than any role: the owner's roles for the policies, two permissions.
    let two: Permissions = [Permission::UseLlm, Permission::ViewRuns]
        .into_iter()
        .collect();
    store
        .create_token(token(admin.user.id, "h-two", &[], two, &none))
        .await
        .unwrap();
    let owner = store.authenticate_token("h-two").await.unwrap().unwrap();
    let mut with_self = two;
    with_self.insert(Permission::ViewSelf);
    assert_eq!(owner.permissions, with_self);
    assert_eq!(owner.roles, vec![Role::Admin]);
    // The owner loses admin (another admin keeps the org governable): the token keeps only
    // what a viewer holds.
    store
        .create_user("b@x.io", "h", &[Role::Admin], false)
        .await
        .unwrap();
    store.grant_role(admin.user.id, Role::Viewer).await.unwrap();
    store.revoke_role(admin.user.id, Role::Admin).await.unwrap();
    let owner = store.authenticate_token("h-eng").await.unwrap().unwrap();
    assert!(owner.roles.is_empty());
    assert!(!owner.permissions.contains(Permission::UseLlm));
    assert!(owner.permissions.contains(Permission::ViewRuns));
}

async fn limits_are_stored_read_and_replaced(store: Store) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Engineer], false)
        .await
        .unwrap();
    let limits = TokenLimits {
        models: Some(vec!["simulated/*".into()]),
        daily_budget_micro_usd: Some(1_000_000),
        requests_per_minute: Some(5),
        allowed_ips: Some(vec!["10.0.0.0/8".into()]),
        ..TokenLimits::default()
    };
    let perms = Permissions::of_roles(&[Role::Engineer]);
    let t = store
        .create_token(token(u.user.id, "h1", &[Role::Engineer], perms, &limits))
        .await
        .unwrap();
    assert_eq!(t.limits.0, limits);
    assert_eq!(*store.token_limits(t.id).await.unwrap(), limits);
    let owner = store.authenticate_token("h1").await.unwrap().unwrap();
    assert_eq!(*owner.limits, limits);
    // Someone else cannot change them; the owner (or an admin, with None) can.
    let other = store
        .create_user("b@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_token_limits(t.id, Some(other.user.id), &TokenLimits::default())
            .await,
        Err(StoreError::NotFound)
    ));
    let tighter = TokenLimits {
        monthly_budget_micro_usd: Some(5),
        ..TokenLimits::default()
    };
    let changed = store.set_token_limits(t.id, None, &tighter).await.unwrap();
    assert_eq!(changed.limits.0, tighter);
    // Seen at once in this process (the cache forgets the token).
    assert_eq!(*store.token_limits(t.id).await.unwrap(), tighter);
    assert_eq!(
        store
            .get_token(t.id, Some(u.user.id))
            .await
            .unwrap()
            .limits
            .0,
        tighter
    );
    assert!(store.get_token(t.id, Some(other.user.id)).await.is_err());
    assert_eq!(
        *store.token_limits(9_999).await.unwrap(),
        TokenLimits::default()
    );
}

async fn the_request_rate_is_one_count_shared_by_every_caller(store: Store) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Engineer], false)
        .await
        .unwrap();
    let t = store
        .create_token(token(
            u.user.id,
            "h1",
            &[Role::Engineer],
            Permissions::of_roles(&[Role::Engineer]),
            &TokenLimits::default(),
        ))
        .await
        .unwrap();
    // 20 concurrent requests against a limit of 7: exactly 7 pass.
    let minute = 1_000;
    let tries = (0..20).map(|_| {
        let store = store.clone();
        async move { store.count_token_request(t.id, minute, 7).await.unwrap() }
    });
    let admitted: Vec<Option<u32>> = futures_util::future::join_all(tries).await;
    let mut counts: Vec<u32> = admitted.into_iter().flatten().collect();
    counts.sort();
    assert_eq!(counts, (1..=7).collect::<Vec<_>>());
    // The next minute starts afresh and drops the windows that no longer count.
    assert_eq!(
        store
            .count_token_request(t.id, minute + 5, 7)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(store.token_rate(t.id, minute).await.unwrap(), (0, 0));
    store.add_token_tokens(t.id, minute + 5, 120).await.unwrap();
    store.add_token_tokens(t.id, minute + 5, 30).await.unwrap();
    assert_eq!(store.token_rate(t.id, minute + 5).await.unwrap(), (1, 150));
}

async fn an_enrolment_works_once_and_not_after_it_expires(store: Store) {
    let admin = store
        .create_user("a@x.io", "h", &[Role::Admin], false)
        .await
        .unwrap();
    let perms: Permissions = [Permission::UseLlm, Permission::ViewRuns]
        .into_iter()
        .collect();
    let limits = TokenLimits {
        requests_per_minute: Some(60),
        ..TokenLimits::default()
    };
    let new = |hash: &'static str, hours: i64| NewEnrolment {
        token_hash: hash,
        prefix: "vorgenrol_x",
        name: "researcher",
        roles: &[Role::Engineer],
        permissions: perms,
        limits: &limits,
        created_by: admin.user.id,
        expires_at: chrono::Utc::now() + chrono::Duration::hours(hours),
    };
    store.create_enrolment(new("e1", 1)).await.unwrap();
    store.create_enrolment(new("e-old", -1)).await.unwrap();
    let who = |email: &'static str, token_hash: &'static str| Enrolled {
        email,
        password_hash: "x",
        token_hash,
        token_prefix: "vorg_y",
    };
    // A taken e-mail leaves the enrolment usable.
    assert!(matches!(
        store.enrol("e1", who("a@x.io", "t0")).await,
        Err(StoreError::Conflict(_))
    ));
    let (user, key) = store.enrol("e1", who("bot@x.io", "t1")).await.unwrap();
    assert_eq!(user.roles, vec![Role::Engineer]);
    assert_eq!(key.minted_permissions(), perms);
    assert_eq!(key.limits.0, limits);
    let owner = store.authenticate_token("t1").await.unwrap().unwrap();
    assert!(perms.is_subset(owner.permissions));
    assert!(owner.permissions.contains(Permission::ViewSelf));
    assert!(!owner.permissions.contains(Permission::StartRuns));
    assert!(matches!(
        store.enrol("e1", who("bot2@x.io", "t2")).await,
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        store.enrol("e-old", who("bot3@x.io", "t3")).await,
        Err(StoreError::Refused(_))
    ));
    let listed = store.list_enrolments().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|e| e.used_by == Some(user.user.id)));
}

async fn token_spend_sums_its_usage_rows(store: Store) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Engineer], false)
        .await
        .unwrap();
    let t = store
        .create_token(token(
            u.user.id,
            "h1",
            &[Role::Engineer],
            Permissions::of_roles(&[Role::Engineer]),
            &TokenLimits::default(),
        ))
        .await
        .unwrap();
    for cost in [100, 250] {
        store
            .record_usage(&crate::NewUsage {
                run_id: None,
                actor: "a@x.io".into(),
                user_id: Some(u.user.id),
                token_id: Some(t.id),
                provider: "simulated".into(),
                model: "sim-1".into(),
                prompt_tokens: 1,
                completion_tokens: 1,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_micro_usd: cost,
                priced: true,
                estimated: false,
                latency_ms: 1,
                streamed: false,
                status: "ok",
                error: None,
                charge: None,
            })
            .await
            .unwrap();
    }
    let now = chrono::Utc::now();
    let spend = store
        .token_spend(
            t.id,
            [
                now - chrono::Duration::hours(1),
                now + chrono::Duration::hours(1),
            ],
        )
        .await
        .unwrap();
    assert_eq!(spend, [350, 0, 350]);
}
