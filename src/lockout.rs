//! Magento's authentication lock: [`LockoutPolicy`].

use std::time::Duration;

use crate::caller::TokenKind;
use crate::error::ConfigError;

/// How many failed sign-ins lock an account, and for how long. Defaults are Magento's:
/// 6 failures lock for 1800 s. Each further failure restarts the window; a successful
/// sign-in clears the count. While locked, passwords are not even checked.
///
/// Counters live in the registry's store (`bearer:lock:<kind>:<username>` in Redis), so
/// every instance of the app shares them.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::LockoutPolicy;
///
/// let policy = LockoutPolicy::default();
/// assert_eq!(policy.max_failures(), 6);
/// assert_eq!(policy.lock_duration(), Duration::from_secs(1800));
///
/// let strict = LockoutPolicy::new(3, Duration::from_secs(3600))?;
/// assert!(LockoutPolicy::new(0, Duration::from_secs(60)).is_err());
/// # Ok::<(), tower_bearer::ConfigError>(())
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
    /// A policy of `max_failures` failures (at least 1) locking for `lock_duration` (at
    /// least 1 second).
    ///
    /// # Errors
    /// [`ConfigError::InvalidLockout`] when either is out of range.
    pub fn new(max_failures: u64, lock_duration: Duration) -> Result<Self, ConfigError> {
        if max_failures == 0 || lock_duration < Duration::from_secs(1) {
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

    /// The counter's key in the store: `<kind>:<name>`, the name being the directory's
    /// [`lockout_name`](crate::Directory::lockout_name) of the username (lower-cased by
    /// default).
    pub(crate) fn key(kind: TokenKind, name: &str) -> String {
        format!("{kind}:{name}")
    }
}
