//! [`RedisStoreOptions`]: the settings of a Redis store.

use std::time::Duration;

use super::CacheOptions;
#[cfg(doc)]
use super::RedisStore;
#[cfg(doc)]
use crate::store::StoreError;

/// Settings of a [`RedisStore`].
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::store::RedisStoreOptions;
///
/// let options = RedisStoreOptions::default()
///     .with_prefix("shop:auth:")
///     .with_timeout(Duration::from_millis(200));
/// assert_eq!(options.prefix(), "shop:auth:");
/// ```
#[derive(Clone, Debug)]
pub struct RedisStoreOptions {
    pub(super) prefix: String,
    pub(super) timeout: Duration,
    pub(super) clock_skew: Duration,
    pub(super) cache: Option<CacheOptions>,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            prefix: "bearer:".to_owned(),
            timeout: Duration::from_millis(500),
            clock_skew: Duration::from_secs(60),
            cache: None,
        }
    }
}

impl RedisStoreOptions {
    /// The prefix of every key (default `bearer:`), to share a Redis with other data.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest any store call may take, connection included (default 500 ms). Past
    /// it the call fails with [`StoreError::Timeout`] and the request gets a 503.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keeps resolved tokens in process memory for a short time (default 5 s), so hot
    /// tokens cost no Redis round trip. Revocations reach every instance at once through
    /// Redis pub/sub (channel `<prefix>revoked`); if that subscription is lost the cache is
    /// emptied and bypassed until it is back, so a revoked token is never served longer than
    /// the cache's TTL. Off by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::{CacheOptions, RedisStoreOptions};
    ///
    /// let options = RedisStoreOptions::default()
    ///     .with_cache(CacheOptions::default().with_ttl(Duration::from_secs(5)));
    /// ```
    pub fn with_cache(mut self, cache: CacheOptions) -> Self {
        self.cache = Some(cache);
        self
    }

    /// How far apart the clocks of the app's instances may be (default 60 s). A subject's
    /// index keeps the entry of an expired token this long past its expiry, so an instance
    /// whose clock runs ahead never unlists a token that is still live for the others (a
    /// revoke-all would miss it). The token itself expires on Redis's clock, unaffected.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::RedisStoreOptions;
    ///
    /// let options = RedisStoreOptions::default().with_clock_skew(Duration::from_secs(5));
    /// ```
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The local cache's settings, if it is on.
    pub fn cache(&self) -> Option<&CacheOptions> {
        self.cache.as_ref()
    }

    /// The pub/sub channel revocations are announced on.
    pub(super) fn revocation_channel(&self) -> String {
        format!("{}revoked", self.prefix)
    }
}
