//! The login rate limit: attempts per minute per client address and per e-mail address
//! (lower-cased), in memory with `governor`. It slows down password guessing against one
//! account and from one machine; it is not a quota and must not count anything but login
//! attempts.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys kept before forgetting those whose limit has fully refilled, so a flood of distinct
/// addresses or e-mail addresses cannot grow memory without bound.
const PRUNE_ABOVE: usize = 10_000;

/// Longest e-mail key kept: longer input is cut, so a key costs little memory.
const EMAIL_KEY_MAX: usize = 254;

/// The two limits of login attempts; a limit of 0 is no limit.
pub struct LoginLimits {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_email: Option<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for LoginLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimits")
            .field("per_address", &self.per_address.is_some())
            .field("per_email", &self.per_email.is_some())
            .finish()
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), Duration> {
    let outcome = limiter.check_key(key);
    if limiter.len() > PRUNE_ABOVE {
        limiter.retain_recent();
    }
    outcome.map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

impl LoginLimits {
    /// Limits allowing `per_address` attempts a minute from one address and `per_email`
    /// for one e-mail address, each in a burst or spread over the minute.
    /// The limits of `auth.login_per_minute_per_address` and `_per_email`, to share between
    /// the API and the web pages.
    pub fn from_settings(auth: &super::AuthSettings) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::new(
            auth.login_per_minute_per_address,
            auth.login_per_minute_per_email,
        ))
    }

    pub fn new(per_address: u32, per_email: u32) -> Self {
        Self {
            per_address: limiter(per_address),
            per_email: limiter(per_email),
        }
    }

    /// Counts one attempt; `Err` with the wait when either limit is reached. Without a
    /// known client address only the e-mail limit applies.
    pub fn check(&self, address: Option<IpAddr>, email: &str) -> Result<(), Duration> {
        if let (Some(limiter), Some(address)) = (&self.per_address, address) {
            check(limiter, &address)?;
        }
        if let Some(limiter) = &self.per_email {
            let key: String = email
                .trim()
                .to_lowercase()
                .chars()
                .take(EMAIL_KEY_MAX)
                .collect();
            check(limiter, &key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_address_gets_its_attempts_whatever_its_case() {
        let limits = LoginLimits::new(0, 2);
        assert_eq!(limits.check(None, "ann@example.com"), Ok(()));
        assert_eq!(limits.check(None, "ANN@example.com "), Ok(()));
        let wait = limits.check(None, "Ann@Example.com").expect_err("limited");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(limits.check(None, "bo@example.com"), Ok(()));
    }

    #[test]
    fn an_address_gets_its_attempts_across_email_addresses() {
        let limits = LoginLimits::new(2, 0);
        let address = IpAddr::from([192, 0, 2, 1]);
        assert_eq!(limits.check(Some(address), "a@example.com"), Ok(()));
        assert_eq!(limits.check(Some(address), "b@example.com"), Ok(()));
        assert!(limits.check(Some(address), "c@example.com").is_err());
        assert_eq!(
            limits.check(Some(IpAddr::from([192, 0, 2, 2])), "c@example.com"),
            Ok(())
        );
        // Without an address, only the e-mail limit (none here) applies.
        assert_eq!(limits.check(None, "c@example.com"), Ok(()));
    }
}
