//! Rate limits on the credential endpoints, per client IP and per account, so a
//! password-guessing script is slowed down while a person never notices.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::error::ApiError;

/// Keyed limiters for `/auth/login` and `/auth/register`.
pub struct AuthLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
}

/// Above this many tracked keys, idle keys are dropped so memory stays bounded.
const MAX_TRACKED_KEYS: usize = 50_000;

impl AuthLimiter {
    /// `per_ip` and `per_account` attempts per minute, each also the burst size.
    pub fn new(per_ip: u32, per_account: u32) -> Self {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        AuthLimiter {
            per_ip: RateLimiter::keyed(quota(per_ip)),
            per_account: RateLimiter::keyed(quota(per_account)),
        }
    }

    /// Counts one attempt from `ip` (and on `account`, when given); refuses with the time
    /// until the next attempt is allowed.
    pub fn check(&self, ip: Option<IpAddr>, account: Option<&str>) -> Result<(), ApiError> {
        if self.per_ip.len() > MAX_TRACKED_KEYS {
            self.per_ip.retain_recent();
        }
        if self.per_account.len() > MAX_TRACKED_KEYS {
            self.per_account.retain_recent();
        }
        let now = DefaultClock::default().now();
        let refuse = |wait: Duration| ApiError::RateLimited {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        };
        if let Some(ip) = ip {
            self.per_ip
                .check_key(&ip)
                .map_err(|not_until| refuse(not_until.wait_time_from(now)))?;
        }
        if let Some(account) = account {
            self.per_account
                .check_key(&account.to_owned())
                .map_err(|not_until| refuse(not_until.wait_time_from(now)))?;
        }
        Ok(())
    }
}
