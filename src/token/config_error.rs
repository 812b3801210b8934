//! [`ConfigError`]: a configuration refused at start-up.

use std::time::Duration;

use super::TokenKind;

/// A configuration value was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A token lifetime was zero or out of range.
    #[error(
        "invalid {kind} token lifetime {lifetime:?}: it must be between 1 second and 365 days \
         (a zero lifetime would make every token expire at once)"
    )]
    InvalidLifetime {
        /// Which lifetime.
        kind: TokenKind,
        /// The value refused.
        lifetime: Duration,
    },
    /// A lockout policy allowed no attempt, or locked for under a second.
    #[error(
        "invalid lockout policy ({max_failures} failures, {lock_duration:?}): at least 1 failure \
         and a lock from 1 second to 365 days are required"
    )]
    InvalidLockout {
        /// The failures refused.
        max_failures: u64,
        /// The duration refused.
        lock_duration: Duration,
    },
    /// A token prefix that is not 1 to 16 characters of `[a-z0-9]`.
    #[error("invalid token prefix {prefix:?}: 1 to 16 characters of [a-z0-9] are required")]
    InvalidTokenPrefix {
        /// The prefix refused (its first 17 characters).
        prefix: String,
    },
    /// The endpoint or the token of an introspection client was refused (see
    /// `IntrospectionClient::new`, feature `introspection-client`).
    #[error("invalid introspection client setting: {reason}")]
    InvalidIntrospectionClient {
        /// What is wrong, e.g. `"the endpoint must be an http:// URL"`.
        reason: String,
    },
    /// An idle timeout, or the interval between recorded uses, out of range.
    #[error("invalid {what} {value:?}: it must be between 1 second and 365 days")]
    InvalidInterval {
        /// Which setting (`"customer idle timeout"`, `"last-used interval"`…).
        what: String,
        /// The value refused.
        value: Duration,
    },
}
