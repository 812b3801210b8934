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
    pub(super) replica_acks: Option<ReplicaAcks>,
    pub(super) legacy_keys: bool,
}

/// How many replicas must acknowledge a revocation, and how long to wait for them (see
/// [`RedisStoreOptions::with_replica_acks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ReplicaAcks {
    pub(super) replicas: u32,
    pub(super) wait: Duration,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            prefix: "bearer:".to_owned(),
            timeout: Duration::from_millis(500),
            clock_skew: Duration::from_secs(60),
            cache: None,
            replica_acks: None,
            legacy_keys: true,
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

    /// Whether records are also looked for under the keys versions before 0.2 wrote
    /// (`<prefix>token:<hex hash>`; default on): a token issued before an upgrade keeps
    /// resolving until it expires. The old key is read only when the new one holds nothing:
    /// a valid token pays nothing; an unknown one pays nothing on one Redis either (the
    /// use-recording script it runs reads both keys in its one call), and on a cluster a
    /// second call, to the node of the old key's slot, which must be up to answer it. Turn it
    /// off once no token issued before the upgrade is live (customer and admin tokens: after
    /// their lifetime; integration tokens: once re-created). Revocations delete the old key
    /// whatever this says, so none is left behind to come back if it is turned on again.
    ///
    /// ```
    /// use tower_bearer::store::RedisStoreOptions;
    ///
    /// let options = RedisStoreOptions::default().with_legacy_keys(false);
    /// assert!(!options.legacy_keys());
    /// ```
    pub fn with_legacy_keys(mut self, read: bool) -> Self {
        self.legacy_keys = read;
        self
    }

    /// Whether records are also looked for under the keys of versions before 0.2.
    pub fn legacy_keys(&self) -> bool {
        self.legacy_keys
    }

    /// Acknowledges a revocation (revoke, revoke-all) only once at least `replicas`
    /// replicas of the Redis that holds the token have it: `WAIT replicas <wait>` after the
    /// deletion, on the same connection (pipelined with it on one Redis; on a cluster, sent
    /// to every master, the fewest acknowledgements counting). When fewer acknowledge within
    /// `wait` (at least 1 ms), the revocation fails with [`StoreError::NotReplicated`], a
    /// 503, so the client retries; the token is already deleted on the primary, so it stays
    /// refused there meanwhile, and the retry waits for replicas again. Off by default.
    ///
    /// Without it, a revocation acknowledged by the primary alone is lost if the primary
    /// fails before replicating it and a replica is promoted (Redis replicates
    /// asynchronously): the revoked token lives again on the new primary. With it, every
    /// revocation waits a replication round trip (well under a millisecond on a LAN), and
    /// revocations fail while fewer than `replicas` replicas are reachable, so set
    /// `replicas` to fewer than the replicas you run. Revocations then go over a connection
    /// of their own (a `WAIT` holds back every later command of its connection), so that
    /// resolves and issues never queue behind one. Issuing is not held back, nor are the
    /// evictions of a subject's [limit](crate::store::SubjectLimit): a token or an eviction lost in
    /// a failover costs one sign-in, or leaves one token more. A revocation that fails so
    /// emits no [event](crate::telemetry::events), and its retry finds the token gone. The
    /// wait is bounded by `wait`, on top of [`with_timeout`](Self::with_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::RedisStoreOptions;
    ///
    /// let options = RedisStoreOptions::default().with_replica_acks(1, Duration::from_millis(100));
    /// assert_eq!(options.replica_acks(), Some((1, Duration::from_millis(100))));
    /// ```
    pub fn with_replica_acks(mut self, replicas: u32, wait: Duration) -> Self {
        // `WAIT n 0` would block forever.
        let wait = wait.max(Duration::from_millis(1));
        self.replica_acks = (replicas > 0).then_some(ReplicaAcks { replicas, wait });
        self
    }

    /// The replicas that must acknowledge a revocation, and the wait for them, if set.
    pub fn replica_acks(&self) -> Option<(u32, Duration)> {
        self.replica_acks.map(|acks| (acks.replicas, acks.wait))
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
