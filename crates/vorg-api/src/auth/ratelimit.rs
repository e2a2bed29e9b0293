//! Rate limits on the credential endpoints, so a password-guessing script is slowed down
//! while a person never notices, and nobody can lock a victim out:
//! - per client IP (from [`crate::client_ip`], so clients behind a trusted proxy each have
//!   their own bucket): over the limit is 429;
//! - per account *and* client IP: over the limit is 429, for that address only, so an
//!   attacker's failures never refuse the account's owner elsewhere;
//! - per account over all addresses (a distributed guess): never refused, but each further
//!   attempt waits [`ACCOUNT_SLOWDOWN`] first.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::error::ApiError;

/// Keyed limiters for `/auth/login` and `/auth/register`.
pub struct AuthLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account_ip: DefaultKeyedRateLimiter<(String, Option<IpAddr>)>,
    per_account: DefaultKeyedRateLimiter<String>,
}

/// Above this many tracked keys, idle keys are dropped so memory stays bounded.
const MAX_TRACKED_KEYS: usize = 50_000;

/// The wait added to each login attempt on an account that is being tried from many
/// addresses at once (more than 5× the per-account limit in a minute).
pub const ACCOUNT_SLOWDOWN: Duration = Duration::from_secs(2);

impl AuthLimiter {
    /// `per_ip` and `per_account` attempts per minute, each also the burst size.
    pub fn new(per_ip: u32, per_account: u32) -> Self {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        AuthLimiter {
            per_ip: RateLimiter::keyed(quota(per_ip)),
            per_account_ip: RateLimiter::keyed(quota(per_account)),
            per_account: RateLimiter::keyed(quota(per_account.saturating_mul(5))),
        }
    }

    /// Counts one attempt from `ip` (and on `account`, when given). Refuses with the time
    /// until the next attempt is allowed, or answers how long to wait before going on.
    pub fn check(&self, ip: Option<IpAddr>, account: Option<&str>) -> Result<Duration, ApiError> {
        if self.per_ip.len() > MAX_TRACKED_KEYS {
            self.per_ip.retain_recent();
        }
        if self.per_account_ip.len() > MAX_TRACKED_KEYS {
            self.per_account_ip.retain_recent();
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
        let Some(account) = account else {
            return Ok(Duration::ZERO);
        };
        self.per_account_ip
            .check_key(&(account.to_owned(), ip))
            .map_err(|not_until| refuse(not_until.wait_time_from(now)))?;
        Ok(match self.per_account.check_key(&account.to_owned()) {
            Ok(()) => Duration::ZERO,
            Err(_) => ACCOUNT_SLOWDOWN,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_attacker_elsewhere_never_locks_the_owner_out() {
        let limiter = AuthLimiter::new(1000, 3);
        let attacker: IpAddr = "203.0.113.1".parse().unwrap();
        let owner: IpAddr = "198.51.100.2".parse().unwrap();
        for _ in 0..3 {
            limiter.check(Some(attacker), Some("a@x.io")).unwrap();
        }
        assert!(matches!(
            limiter.check(Some(attacker), Some("a@x.io")),
            Err(ApiError::RateLimited { .. })
        ));
        assert_eq!(
            limiter.check(Some(owner), Some("a@x.io")).unwrap(),
            Duration::ZERO
        );
    }

    #[test]
    fn many_addresses_on_one_account_are_slowed_not_refused() {
        let limiter = AuthLimiter::new(1000, 2);
        let mut slowed = 0;
        for i in 0..20u8 {
            let ip = IpAddr::from([10, 0, 0, i]);
            let wait = limiter.check(Some(ip), Some("a@x.io")).unwrap();
            slowed += usize::from(wait > Duration::ZERO);
        }
        assert_eq!(slowed, 10, "the first 10 (5 × 2) pass at once");
    }
}
