//! How many SSE streams may be open at once: per caller (an API token or session, else the
//! user), per client IP, and in all. Each open stream holds a [`StreamPermit`]; dropping it
//! (the client hung up, the stream ended) gives the slot back. The global cap stays below
//! the process's file-descriptor limit, so streams can never starve `/health` or login.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use crate::{
    auth::{Credential, CurrentUser},
    error::ApiError,
};

/// The three caps; `0` in a setting means the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCaps {
    pub per_caller: usize,
    pub per_ip: usize,
    pub global: usize,
}

impl Default for StreamCaps {
    fn default() -> Self {
        StreamCaps {
            per_caller: 32,
            per_ip: 128,
            global: 10_000,
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    callers: HashMap<String, usize>,
    ips: HashMap<IpAddr, usize>,
}

/// The open streams of this process.
pub struct StreamLimits {
    caps: StreamCaps,
    counts: Mutex<Counts>,
}

/// One open stream's slot; dropping it frees the slot.
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    caller: String,
    ip: Option<IpAddr>,
}

impl std::fmt::Debug for StreamPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamPermit")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

/// The key a caller's streams are counted under.
fn caller_key(user: &CurrentUser) -> String {
    match user.credential {
        Credential::ApiToken { token_id } | Credential::Session { token_id } => {
            format!("token:{token_id}")
        }
        Credential::Jwt | Credential::StreamToken { .. } => format!("user:{}", user.id),
    }
}

/// Seconds a refused client is told to wait.
const RETRY_AFTER_SECS: u64 = 5;

impl StreamLimits {
    pub fn new(caps: StreamCaps) -> Self {
        StreamLimits {
            caps,
            counts: Mutex::new(Counts::default()),
        }
    }

    pub fn caps(&self) -> StreamCaps {
        self.caps
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }

    /// Takes a slot for `user` from `ip`, or refuses with 429 naming the cap that is full.
    pub fn acquire(
        self: &Arc<Self>,
        user: &CurrentUser,
        ip: Option<IpAddr>,
    ) -> Result<StreamPermit, ApiError> {
        let caller = caller_key(user);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let refuse = |what: &str, cap: usize| ApiError::Throttled {
            code: "too_many_streams",
            detail: format!(
                "{what} already has {cap} live streams open, the most this server allows; close one first"
            ),
            retry_after_secs: RETRY_AFTER_SECS,
        };
        if counts.total >= self.caps.global {
            return Err(refuse("this server", self.caps.global));
        }
        if counts.callers.get(&caller).copied().unwrap_or(0) >= self.caps.per_caller {
            return Err(refuse("this credential", self.caps.per_caller));
        }
        if let Some(ip) = ip
            && counts.ips.get(&ip).copied().unwrap_or(0) >= self.caps.per_ip
        {
            return Err(refuse("this client address", self.caps.per_ip));
        }
        counts.total += 1;
        *counts.callers.entry(caller.clone()).or_default() += 1;
        if let Some(ip) = ip {
            *counts.ips.entry(ip).or_default() += 1;
        }
        Ok(StreamPermit {
            limits: self.clone(),
            caller,
            ip,
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.callers.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                counts.callers.remove(&self.caller);
            }
        }
        if let Some(ip) = self.ip
            && let Some(n) = counts.ips.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                counts.ips.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn user(id: i64, credential: Credential) -> CurrentUser {
        CurrentUser {
            id,
            email: format!("u{id}@example.com"),
            roles: vec![],
            permissions: vorg_domain::Permissions::NONE,
            limits: None,
            credential,
            request_id: None,
            expires_at: None,
        }
    }

    #[test]
    fn each_cap_refuses_and_a_dropped_permit_frees_its_slot() {
        let limits = Arc::new(StreamLimits::new(StreamCaps {
            per_caller: 2,
            per_ip: 3,
            global: 4,
        }));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = user(1, Credential::ApiToken { token_id: 7 });
        let p1 = limits.acquire(&a, Some(ip)).unwrap();
        let _p2 = limits.acquire(&a, Some(ip)).unwrap();
        let err = limits.acquire(&a, Some(ip)).unwrap_err();
        assert!(err.to_string().contains("credential"), "{err}");
        drop(p1);
        let _p3 = limits.acquire(&a, Some(ip)).unwrap();
        let b = user(2, Credential::Jwt);
        let _p4 = limits.acquire(&b, Some(ip)).unwrap();
        let err = limits.acquire(&b, Some(ip)).unwrap_err();
        assert!(err.to_string().contains("address"), "{err}");
        let _p5 = limits.acquire(&b, None).unwrap();
        let err = limits.acquire(&user(3, Credential::Jwt), None).unwrap_err();
        assert!(err.to_string().contains("server"), "{err}");
        assert_eq!(limits.open(), 4);
    }
}
