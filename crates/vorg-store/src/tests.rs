//! The store contract suite: every test body runs on SQLite and on PostgreSQL.

use vorg_domain::Role;

use crate::{Backend, NewApiToken, NewAuditEntry, Page, Store, StoreError, testing::TestDb};

/// Instantiates `async fn $name(store: Store)` once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() { run(Backend::Sqlite, super::$name).await }
            #[tokio::test]
            async fn postgres() { run(Backend::Postgres, super::$name).await }
        }
    )*};
}

async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    assert_eq!(store.backend(), backend);
    body(store.clone()).await;
    store.close().await;
}

contract!(
    user_lifecycle,
    duplicate_email_is_a_conflict,
    only_the_first_user_can_be_created_with_only_if_no_users,
    the_last_admin_cannot_be_demoted,
    tokens_carry_only_roles_the_owner_still_holds,
    revoked_and_expired_tokens_do_not_authenticate,
    audit_rows_page_newest_first,
    migrating_twice_is_a_no_op,
    listing_users_carries_their_roles,
    role_changes_are_seen_by_current_roles_at_once_here_and_within_the_ttl_elsewhere,
);

async fn user_lifecycle(store: Store) {
    let created = store
        .create_user("ann@example.com", "hash", &[Role::Admin], true)
        .await
        .unwrap();
    assert!(created.user.is_admin);
    let found = store
        .find_user_by_email("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.id, created.user.id);
    assert_eq!(found.roles, vec![Role::Admin]);
    assert!(
        store
            .grant_role(created.user.id, Role::Engineer)
            .await
            .unwrap()
    );
    assert!(
        !store
            .grant_role(created.user.id, Role::Engineer)
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_roles(created.user.id).await.unwrap(),
        vec![Role::Admin, Role::Engineer]
    );
    store.record_login(created.user.id).await.unwrap();
    assert!(
        store
            .get_user(created.user.id)
            .await
            .unwrap()
            .user
            .last_login_at
            .is_some()
    );
    assert!(matches!(
        store.get_user(999).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.user_roles(999).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn duplicate_email_is_a_conflict(store: Store) {
    store
        .create_user("a@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let err = store
        .create_user("a@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn only_the_first_user_can_be_created_with_only_if_no_users(store: Store) {
    store
        .create_user("a@x.io", "h", &[Role::Admin], true)
        .await
        .unwrap();
    let err = store
        .create_user("b@x.io", "h", &[Role::Admin], true)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn the_last_admin_cannot_be_demoted(store: Store) {
    let a = store
        .create_user("a@x.io", "h", &[Role::Admin], true)
        .await
        .unwrap();
    let b = store
        .create_user("b@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let err = store.revoke_role(a.user.id, Role::Admin).await.unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err:?}");
    store.grant_role(b.user.id, Role::Admin).await.unwrap();
    assert!(store.revoke_role(a.user.id, Role::Admin).await.unwrap());
    assert!(!store.get_user(a.user.id).await.unwrap().user.is_admin);
    assert!(!store.revoke_role(a.user.id, Role::Admin).await.unwrap());
    assert!(store.revoke_role(b.user.id, Role::Admin).await.is_err());
    assert_eq!(
        store.user_roles(b.user.id).await.unwrap(),
        vec![Role::Admin, Role::Viewer]
    );
}

async fn tokens_carry_only_roles_the_owner_still_holds(store: Store) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Engineer, Role::Growth], false)
        .await
        .unwrap();
    let t = store
        .create_token(NewApiToken {
            user_id: u.user.id,
            name: "ci",
            token_hash: "hash1",
            prefix: "vorg_abc",
            roles: &[Role::Engineer, Role::Growth],
            expires_at: None,
        })
        .await
        .unwrap();
    assert_eq!(t.role_list(), vec![Role::Engineer, Role::Growth]);
    let owner = store.authenticate_token("hash1").await.unwrap().unwrap();
    assert_eq!(owner.user_id, u.user.id);
    assert_eq!(owner.roles, vec![Role::Engineer, Role::Growth]);
    assert!(
        store.list_tokens(u.user.id).await.unwrap()[0]
            .last_used_at
            .is_some()
    );
    store.revoke_role(u.user.id, Role::Growth).await.unwrap();
    let owner = store.authenticate_token("hash1").await.unwrap().unwrap();
    assert_eq!(owner.roles, vec![Role::Engineer]);
    assert!(store.authenticate_token("nope").await.unwrap().is_none());
}

async fn revoked_and_expired_tokens_do_not_authenticate(store: Store) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let other = store
        .create_user("b@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let mk = |hash: &'static str, expires_at| NewApiToken {
        user_id: u.user.id,
        name: "t",
        token_hash: hash,
        prefix: "p",
        roles: &[Role::Viewer],
        expires_at,
    };
    let live = store.create_token(mk("live", None)).await.unwrap();
    store
        .create_token(mk(
            "old",
            Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        ))
        .await
        .unwrap();
    assert!(store.authenticate_token("old").await.unwrap().is_none());
    assert!(matches!(
        store.revoke_token(live.id, Some(other.user.id)).await,
        Err(StoreError::NotFound)
    ));
    store.revoke_token(live.id, Some(u.user.id)).await.unwrap();
    assert!(store.authenticate_token("live").await.unwrap().is_none());
    assert!(matches!(
        store.revoke_token(live.id, None).await,
        Err(StoreError::NotFound)
    ));
}

async fn audit_rows_page_newest_first(store: Store) {
    for i in 0..5 {
        store
            .record_audit(NewAuditEntry {
                actor_user_id: None,
                actor: "cli".into(),
                action: "test.event",
                target: Some(format!("n:{i}")),
                detail: serde_json::json!({ "i": i }),
                request_id: None,
            })
            .await
            .unwrap();
    }
    let first = store
        .list_audit(Page {
            limit: 2,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].target.as_deref(), Some("n:4"));
    assert_eq!(first[0].detail.0["i"], 4);
    let next = store
        .list_audit(Page {
            limit: 10,
            before: Some(first[1].id),
        })
        .await
        .unwrap();
    let targets: Vec<_> = next.iter().filter_map(|e| e.target.clone()).collect();
    assert_eq!(targets, ["n:2", "n:1", "n:0"]);
}

async fn migrating_twice_is_a_no_op(store: Store) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

async fn listing_users_carries_their_roles(store: Store) {
    store
        .create_user("a@x.io", "h", &[Role::Admin, Role::Growth], false)
        .await
        .unwrap();
    store.create_user("b@x.io", "h", &[], false).await.unwrap();
    store
        .create_user("c@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let page = store
        .list_users(Page {
            limit: 2,
            before: None,
        })
        .await
        .unwrap();
    let got: Vec<(&str, Vec<Role>)> = page
        .iter()
        .map(|u| (u.user.email.as_str(), u.roles.clone()))
        .collect();
    assert_eq!(got, [("c@x.io", vec![Role::Viewer]), ("b@x.io", vec![])]);
    let rest = store
        .list_users(Page {
            limit: 2,
            before: Some(page[1].user.id),
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].roles, vec![Role::Admin, Role::Growth]);
}

async fn role_changes_are_seen_by_current_roles_at_once_here_and_within_the_ttl_elsewhere(
    store: Store,
) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    assert_eq!(
        store.current_roles(u.user.id).await.unwrap(),
        vec![Role::Viewer]
    );
    store.grant_role(u.user.id, Role::Engineer).await.unwrap();
    assert_eq!(
        store.current_roles(u.user.id).await.unwrap(),
        vec![Role::Engineer, Role::Viewer],
        "this store's own change is seen at once"
    );
    // Another process (another Store on the same database) changes the roles.
    let other = Store {
        db: store.db.clone(),
        roles: Default::default(),
    };
    other.revoke_role(u.user.id, Role::Engineer).await.unwrap();
    tokio::time::sleep(crate::ROLES_TTL + std::time::Duration::from_millis(50)).await;
    assert_eq!(
        store.current_roles(u.user.id).await.unwrap(),
        vec![Role::Viewer]
    );
}
