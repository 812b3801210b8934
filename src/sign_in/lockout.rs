//! Magento's authentication lock: [`LockoutPolicy`].

use std::time::Duration;

use crate::token::{ConfigError, TokenKind, sha256_hex};

/// The shortest lock a [`LockoutPolicy`] accepts.
pub const MIN_LOCK_DURATION: Duration = Duration::from_secs(1);
/// The longest lock a [`LockoutPolicy`] accepts (365 days): past it, deadlines would not fit
/// the clocks and counters of the stores.
pub const MAX_LOCK_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// How many failed sign-ins lock an account, and for how long. Defaults are Magento's:
/// 6 failures lock for 1800 s. Each further failure restarts the window; a successful
/// sign-in clears the count. While locked, passwords are not even checked.
///
/// Counters live in the registry's store (`bearer:lock:<kind>:<sha256 of the name>` in
/// Redis), so every instance of the app shares them. Only attempts whose password is
/// actually checked count: one refused because the password-check queue is full, or
/// because the directory failed, is taken back, so neither a flood nor an outage can lock
/// anybody out.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::sign_in::LockoutPolicy;
///
/// let policy = LockoutPolicy::default();
/// assert_eq!(policy.max_failures(), 6);
/// assert_eq!(policy.lock_duration(), Duration::from_secs(1800));
///
/// let strict = LockoutPolicy::new(3, Duration::from_secs(3600))?;
/// assert!(LockoutPolicy::new(0, Duration::from_secs(60)).is_err());
/// assert!(LockoutPolicy::new(6, Duration::MAX).is_err());
/// # Ok::<(), tower_bearer::token::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    max_failures: u64,
    lock_duration: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 6,
            lock_duration: Duration::from_secs(1800),
        }
    }
}

impl LockoutPolicy {
    /// A policy of `max_failures` failures (at least 1) locking for `lock_duration` (from
    /// 1 second to [`MAX_LOCK_DURATION`]).
    ///
    /// # Errors
    /// [`ConfigError::InvalidLockout`] when either is out of range.
    pub fn new(max_failures: u64, lock_duration: Duration) -> Result<Self, ConfigError> {
        if max_failures == 0 || !(MIN_LOCK_DURATION..=MAX_LOCK_DURATION).contains(&lock_duration) {
            return Err(ConfigError::InvalidLockout {
                max_failures,
                lock_duration,
            });
        }
        Ok(Self {
            max_failures,
            lock_duration,
        })
    }

    /// Failed attempts allowed before the account locks.
    pub fn max_failures(&self) -> u64 {
        self.max_failures
    }

    /// How long the lock lasts after the last failure.
    pub fn lock_duration(&self) -> Duration {
        self.lock_duration
    }

    /// The counter's key in the store: `<kind>:<sha256 hex of name>`, the name being the
    /// directory's [`lockout_name`](crate::Directory::lockout_name) of the username
    /// (lower-cased by default). Hashed, so every key has one length whatever the username,
    /// and a `{…}` in it cannot choose a cluster slot.
    pub(crate) fn key(kind: TokenKind, name: &str) -> String {
        format!("{kind}:{}", sha256_hex(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounds are the documented ones, to the second: a year of 365 days at most, a
    /// second at least, and at least one failure.
    #[test]
    fn locks_from_one_second_to_365_days_are_accepted_and_no_others() {
        let year = Duration::from_secs(365 * 24 * 3600);
        assert_eq!(MAX_LOCK_DURATION, year);
        assert!(LockoutPolicy::new(1, year).is_ok());
        assert!(LockoutPolicy::new(1, year + Duration::from_secs(1)).is_err());
        assert!(LockoutPolicy::new(1, Duration::from_secs(1)).is_ok());
        assert!(LockoutPolicy::new(1, Duration::from_millis(999)).is_err());
        assert!(LockoutPolicy::new(0, Duration::from_secs(60)).is_err());
    }

    /// One length whatever the name, by kind: the key never carries the name in clear.
    #[test]
    fn keys_are_the_kind_and_the_names_hash() {
        let key = LockoutPolicy::key(TokenKind::Customer, "Ada@Example.com");
        assert_eq!(key, format!("customer:{}", sha256_hex("Ada@Example.com")));
        assert_ne!(key, LockoutPolicy::key(TokenKind::Admin, "Ada@Example.com"));
    }
}
