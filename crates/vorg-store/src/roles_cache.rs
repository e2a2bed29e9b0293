//! Recently read roles per user, so authenticating a request rarely touches the database.
//!
//! An entry lives [`ROLES_TTL`]. Grants and revocations made through this process's store
//! drop the entry at once, so a role change is in force immediately in this process and
//! within `ROLES_TTL` in other processes sharing the database.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use vorg_domain::Role;

/// How long another process's role change may take to be seen here.
pub const ROLES_TTL: Duration = Duration::from_secs(1);

/// Above this many entries the cache is emptied rather than grown.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct RolesCache {
    map: RwLock<HashMap<i64, (Instant, Vec<Role>)>>,
}

impl RolesCache {
    pub(crate) fn get(&self, user_id: i64) -> Option<Vec<Role>> {
        let map = self.map.read().ok()?;
        let (at, roles) = map.get(&user_id)?;
        (at.elapsed() < ROLES_TTL).then(|| roles.clone())
    }

    pub(crate) fn put(&self, user_id: i64, roles: &[Role]) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(user_id, (Instant::now(), roles.to_vec()));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }

    pub(crate) fn forget(&self, user_id: i64) {
        if let Ok(mut map) = self.map.write() {
            map.remove(&user_id);
        }
    }
}
