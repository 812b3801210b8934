//! [`RedisStore`]: tokens in Redis, shared by every instance of the app.
//!
//! One file per role: `options.rs` (settings), `connection.rs` (one Redis, a cluster, or
//! the primary of `sentinel.rs`, named by Redis Sentinels),
//! `codec.rs` (the stored record), `cache.rs` (the local cache and its revocation feed),
//! `tokens.rs` ([`TokenStore`]) and `sign_in.rs` ([`SignInStore`]); the store itself, its
//! constructors and its keys live here.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use self::cache::{FeedNodes, LocalCache, spawn_follower};
use self::connection::RedisConnection;
use self::recent_uses::RecentUses;
#[cfg(doc)]
use super::{MAX_TOKENS_PER_SUBJECT, SignInStore, TokenStore};
use super::{StoreError, StoreFuture, bounded};
use crate::telemetry::metrics::{self, Operation, Stopwatch, StoreFailure, StoreName};
#[cfg(doc)]
use crate::token::Caller;
use crate::token::{TokenHash, TokenKind, sha256_hex};

mod cache;
pub(crate) mod codec;
mod connection;
mod expiring_hashes;
mod options;
mod recent_uses;
mod scripts;
#[cfg(feature = "sentinel")]
mod sentinel;
mod sign_in;
mod tokens;

#[doc(inline)]
pub use self::cache::{CacheOptions, CacheStats};
#[doc(inline)]
pub use self::options::RedisStoreOptions;

/// How often the revocation subscription is pinged: a silently dead subscription is
/// noticed (and the cache bypassed) within about twice this.
const PING_EVERY: Duration = Duration::from_secs(1);

/// The Redis token store: over redis-rs's reconnecting [`ConnectionManager`] to one Redis,
/// or (feature `cluster`, [`RedisStore::connect_cluster`]) over redis-rs's cluster
/// connection to a Redis Cluster, or (feature `sentinel`, [`RedisStore::connect_sentinel`])
/// to the primary that Redis Sentinels name, followed through failovers.
///
/// Keys (prefix `bearer:` by default):
///
/// | key | type | holds | expiry |
/// |---|---|---|---|
/// | `bearer:t:<sha256, 32 raw bytes>` | string | the [`Caller`] record (JSON) | the token's lifetime |
/// | `bearer:index:<kind>:<sha256 hex of the subject>` | sorted set | raw hashes of the subject's live tokens, scored by expiry (Unix ms) | the longest of them |
/// | `bearer:lock:<kind>:<sha256 hex of the lockout name>` | integer | failed sign-ins | the lockout window |
/// | `bearer:used:<key>` | string | a one-time claim, e.g. `used:totp:<admin hash>:<step>` for a used code | the claim's time |
///
/// User-supplied parts of keys (subjects, usernames) enter them only as their SHA-256, so
/// a `{…}` in them cannot choose a cluster slot, and every key has a bounded length. The
/// index holds only live tokens: each issue drops the entries of expired ones, and past
/// [`MAX_TOKENS_PER_SUBJECT`] the oldest tokens are revoked. Indexes written by 0.1
/// (`bearer:subject:<kind>:<subject>`, a set never pruned) are no longer written; revoke-all
/// still reads and deletes one in chunks until it is gone, and it expires with the last
/// token it lists. Records written under `bearer:token:<sha256 hex>` (before 0.2) are read
/// when the new key holds nothing, and deleted on revocation, unless
/// [`RedisStoreOptions::with_legacy_keys`] is off. Lockout counters of 0.1 (`bearer:lock:<kind>:<username>`) are not read:
/// an upgrade starts every lockout afresh.
///
/// No command spans keys of two hash slots, so the same layout works on Redis Cluster. Every
/// call is bounded by [`RedisStoreOptions::with_timeout`]; after an outage the connection is
/// re-established by itself. Needs Redis 7.0 or later (`PEXPIRE … NX|GT`).
///
/// What each operation costs, in sequential round trips (commands sent together count as
/// one). A cluster runs a pipeline on one node only, so there the store sends what
/// touches different slots separately, keeping the order that matters and sending the
/// rest concurrently:
///
/// | operation | one Redis | Redis Cluster |
/// |---|---|---|
/// | resolve ([`get`](TokenStore::get)) | 1: `GET`, or `EVALSHA` of the use-recording script when a use is due (0 when the local cache holds the token and no use is due) | the same |
/// | issue ([`insert`](TokenStore::insert)) | 1: `EVALSHA` of the admission script (`SET`, `ZREMRANGEBYSCORE`, `ZADD`, `ZCARD`, `PEXPIRE` ×2, checked against the limit); past the limit, a listing, then the revocation of the oldest | 2: `SET`, then the admission script on the index's node |
/// | revoke ([`remove`](TokenStore::remove)) | 2: `GETDEL` + `PUBLISH` (+ `WAIT` with replica acknowledgements) pipelined, then `ZREM` | 3: `GETDEL`, `PUBLISH`, `ZREM` (+ `WAIT` before the `ZREM`) |
/// | revoke-all ([`remove_subject`](TokenStore::remove_subject)) | one `ZRANGE` of the index (the snapshot revoked), then per chunk of 500 tokens one `DEL` per token + `PUBLISH` (+ `WAIT`) pipelined, then `ZREM`; then one `SRANDMEMBER` for a 0.1 index | the same, the `DEL`s sent concurrently, then `PUBLISH` (+ `WAIT`), then `ZREM` |
/// | lockout: count a failure | 1: `MULTI INCR PEXPIRE EXEC` | the same |
/// | lockout: take a failure back | 1: `EVAL` (`DECR`, `DEL` at 0) | the same |
/// | lockout: read, clear; one-time claim | 1: `GET`, `DEL`; `SET NX PX` | the same |
///
/// ```no_run
/// # async fn run() -> Result<(), tower_bearer::store::StoreError> {
/// use tower_bearer::{TokenRegistry, store::RedisStore};
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// let registry = TokenRegistry::new(store);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: RedisConnection,
    /// The connection of revocations, with replica acknowledgements (see
    /// [`RedisStore::revoking`]).
    revocations: Option<RedisConnection>,
    options: RedisStoreOptions,
    cache: Option<Arc<LocalCache>>,
    recent_uses: Arc<RecentUses>,
    /// `<prefix>token:`, the start of the keys of earlier versions (see
    /// [`RedisStoreOptions::with_legacy_keys`]).
    legacy_prefix: Arc<str>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects with default options.
    ///
    /// # Errors
    /// A [`StoreError`] when the URL is invalid or Redis cannot be reached in time.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RedisStoreOptions::default()).await
    }

    /// Connects with the given options.
    ///
    /// # Errors
    /// A [`StoreError`] when the URL is invalid or Redis cannot be reached in time.
    pub async fn connect_with(url: &str, options: RedisStoreOptions) -> Result<Self, StoreError> {
        let client =
            redis::Client::open(url).map_err(|error| StoreError::Backend(Box::new(error)))?;
        let connect = |response_timeout: Duration| {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.timeout))
                .set_response_timeout(Some(response_timeout))
                // Retry briefly and often: requests wait on the reconnection, and Redis
                // coming back should be noticed within a second or so.
                .set_number_of_retries(3)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(1));
            bounded(
                options.timeout,
                ConnectionManager::new_with_config(client.clone(), config),
            )
        };
        let connection = connect(options.timeout).await?;
        let revocations = match options.replica_acks {
            Some(acks) => Some(RedisConnection::Single(
                connect(options.timeout.saturating_add(acks.wait)).await?,
            )),
            None => None,
        };
        Ok(Self::with_follower(
            RedisConnection::Single(connection),
            revocations,
            options,
            FeedNodes::fixed(vec![client]),
        ))
    }

    /// Connects to a Redis Cluster through any of its nodes (`urls`, e.g.
    /// `["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]`): the client learns the rest of
    /// the cluster from them, and follows slot moves and failovers by itself. Give several
    /// nodes, so that start-up works while one of them is down.
    ///
    /// The key layout, the bound on each call and the fail-closed behaviour are those of a
    /// single Redis; the round trips an operation costs are in the table of [`RedisStore`].
    /// With [`RedisStoreOptions::with_cache`], the revocation feed subscribes on one of
    /// `urls` (a classic `PUBLISH` reaches every node of a cluster), moving to the next one
    /// when that node fails.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::{TokenRegistry, store::{RedisStore, RedisStoreOptions}};
    ///
    /// let nodes = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001", "redis://127.0.0.1:7002"];
    /// let store = RedisStore::connect_cluster(&nodes, RedisStoreOptions::default()).await?;
    /// let registry = TokenRegistry::new(store);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when no URL is given, a URL is invalid, or the cluster cannot be
    /// reached in time.
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub async fn connect_cluster(
        urls: &[&str],
        options: RedisStoreOptions,
    ) -> Result<Self, StoreError> {
        if urls.is_empty() {
            return Err(StoreError::Backend(
                "RedisStore::connect_cluster: no cluster node URL given".into(),
            ));
        }
        let backend = |error: redis::RedisError| StoreError::Backend(Box::new(error));
        let client_with = |response_timeout: Duration| {
            redis::cluster::ClusterClient::builder(urls.iter().copied())
                .connection_timeout(options.timeout)
                .response_timeout(response_timeout)
                // As for one Redis: a few quick retries (after a MOVED, a reconnection),
                // never redis-rs's default waits of over a second, which would outlast the
                // bound.
                .retries(3)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .build()
                .map_err(backend)
        };
        let client = client_with(options.timeout)?;
        let nodes = urls
            .iter()
            .map(|url| redis::Client::open(*url))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let connection = bounded(options.timeout, client.get_async_connection()).await?;
        let revocations = match options.replica_acks {
            Some(acks) => {
                let client = client_with(options.timeout.saturating_add(acks.wait))?;
                let connection = bounded(options.timeout, client.get_async_connection()).await?;
                Some(RedisConnection::Cluster(connection))
            }
            None => None,
        };
        Ok(Self::with_follower(
            RedisConnection::Cluster(connection),
            revocations,
            options,
            FeedNodes::fixed(nodes),
        ))
    }

    /// Connects to the primary that the Redis Sentinels at `sentinel_urls` (e.g.
    /// `["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"]`) name for `master_name`,
    /// and follows it through failovers. Give several sentinels, so that start-up works
    /// while one of them is down.
    ///
    /// The sentinels are asked for the primary at start, and again whenever a call finds
    /// the primary gone (a connection error, no answer within
    /// [`RedisStoreOptions::with_timeout`]) or demoted (`READONLY`), and whenever a
    /// background check (every half second) finds that they name another primary. Calls
    /// that meet the failover fail with a [`StoreError`] (503), never "not found"; once
    /// the sentinels name the new primary, calls go there, without a restart. Otherwise
    /// this is a single Redis: the key layout, the bound on each call, the round trips of
    /// the table of [`RedisStore`].
    ///
    /// Redis replicates asynchronously: what the old primary acknowledged just before the
    /// failover may never reach the new one. And a failover whose old primary stays up
    /// (`SENTINEL FAILOVER`, a healed partition) leaves it taking writes, which it then
    /// loses, until the sentinels reconfigure it; the background check moves the store
    /// within about a second of the sentinels' switch. A token issued and lost so is only a
    /// sign-in to repeat; a revocation lost so brings a revoked token back. With
    /// [`RedisStoreOptions::with_replica_acks`] a revocation counts only once a replica has
    /// it, and one the old primary takes alone fails with
    /// [`StoreError::NotReplicated`]: no acknowledged revocation is lost.
    ///
    /// With [`RedisStoreOptions::with_cache`], the revocation feed subscribes on the
    /// primary the store is connected to, and moves whenever the store moves to another
    /// primary (a demoted primary no longer hears the new one's messages); while that
    /// primary cannot be subscribed on, on one of the nodes known at start (a `PUBLISH` on
    /// the primary reaches the subscribers of its replicas too).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::{TokenRegistry, store::{RedisStore, RedisStoreOptions}};
    ///
    /// let sentinels = ["redis://127.0.0.1:26379", "redis://127.0.0.1:26380", "redis://127.0.0.1:26381"];
    /// let store = RedisStore::connect_sentinel(&sentinels, "mymaster", RedisStoreOptions::default()).await?;
    /// let registry = TokenRegistry::new(store);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when no sentinel URL is given, a URL is invalid, or no sentinel
    /// names a reachable primary for `master_name` in time.
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub async fn connect_sentinel(
        sentinel_urls: &[&str],
        master_name: &str,
        options: RedisStoreOptions,
    ) -> Result<Self, StoreError> {
        if sentinel_urls.is_empty() {
            return Err(StoreError::Backend(
                "RedisStore::connect_sentinel: no sentinel URL given".into(),
            ));
        }
        let backend = |error: redis::RedisError| StoreError::Backend(Box::new(error));
        let connect_timeout = options.timeout;
        let connect = |timeout: Duration| async move {
            let sentinels =
                redis::sentinel::Sentinel::build(sentinel_urls.to_vec()).map_err(backend)?;
            let watcher = self::sentinel::Watcher::new(sentinel_urls).map_err(backend)?;
            bounded(
                connect_timeout,
                self::sentinel::SentinelConnection::connect(
                    sentinels,
                    watcher,
                    master_name,
                    timeout,
                ),
            )
            .await
        };
        let (connection, primaries) = connect(options.timeout).await?;
        let revocations = match options.replica_acks {
            Some(acks) => Some(RedisConnection::Sentinel(
                connect(options.timeout.saturating_add(acks.wait)).await?.0,
            )),
            None => None,
        };
        // The feed's fallbacks, looked up (bounded) only for the cache, and outside the
        // bound of the connection: reaching the primary never waits on a replica.
        let nodes = match options.cache {
            Some(_) => connection.known_nodes().await,
            None => Vec::new(),
        };
        Ok(Self::with_follower(
            RedisConnection::Sentinel(connection),
            revocations,
            options,
            FeedNodes {
                fixed: nodes,
                preferred: Some(primaries),
            },
        ))
    }

    /// The store over `connection`, with its local cache (if the options ask for one)
    /// following revocations on `nodes`.
    fn with_follower(
        connection: RedisConnection,
        revocations: Option<RedisConnection>,
        options: RedisStoreOptions,
        nodes: FeedNodes,
    ) -> Self {
        let cache = options.cache.map(|cache_options| {
            let cache = Arc::new(LocalCache::new(cache_options));
            spawn_follower(nodes, options.revocation_channel(), &cache, PING_EVERY);
            cache
        });
        Self {
            connection,
            revocations,
            legacy_prefix: legacy_prefix(&options),
            options,
            cache,
            recent_uses: Arc::new(RecentUses::new()),
        }
    }

    /// Wraps a connection the application already manages. The local cache needs a
    /// subscription of its own, which only the `connect_*` constructors set up: here it
    /// stays off whatever the options say.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// use redis::aio::ConnectionManager;
    /// use tower_bearer::store::{RedisStore, RedisStoreOptions};
    ///
    /// let client = redis::Client::open("redis://127.0.0.1/")?;
    /// let connection = ConnectionManager::new(client).await?;
    /// let store = RedisStore::from_connection(connection, RedisStoreOptions::default());
    /// # Ok(()) }
    /// ```
    pub fn from_connection(connection: ConnectionManager, options: RedisStoreOptions) -> Self {
        Self::without_cache(RedisConnection::Single(connection), options)
    }

    /// Wraps a Redis Cluster connection the application already manages. As with
    /// [`RedisStore::from_connection`], the local cache stays off; and the bound on each
    /// call is the store's, whatever timeouts the connection was built with.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// use redis::cluster::ClusterClient;
    /// use tower_bearer::store::{RedisStore, RedisStoreOptions};
    ///
    /// let client = ClusterClient::new(vec!["redis://127.0.0.1:7000"])?;
    /// let connection = client.get_async_connection().await?;
    /// let store = RedisStore::from_cluster_connection(connection, RedisStoreOptions::default());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn from_cluster_connection(
        connection: redis::cluster_async::ClusterConnection,
        options: RedisStoreOptions,
    ) -> Self {
        Self::without_cache(RedisConnection::Cluster(connection), options)
    }

    fn without_cache(connection: RedisConnection, options: RedisStoreOptions) -> Self {
        if options.cache.is_some() {
            tracing::warn!("RedisStore: the local cache is off on a wrapped connection");
        }
        // A wrapped connection is the only one: revocations share it, and a `WAIT` holds
        // back the calls queued behind it.
        Self {
            connection,
            revocations: None,
            legacy_prefix: legacy_prefix(&options),
            options,
            cache: None,
            recent_uses: Arc::new(RecentUses::new()),
        }
    }

    /// Whether the store is on a Redis Cluster.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::store::RedisStore;
    ///
    /// let store = RedisStore::connect("redis://127.0.0.1/").await?;
    /// assert!(!store.is_cluster());
    /// # Ok(()) }
    /// ```
    pub fn is_cluster(&self) -> bool {
        self.connection.is_cluster()
    }

    /// What the local cache is doing, when it is on.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|cache| cache.stats())
    }

    /// The store's options.
    pub fn options(&self) -> &RedisStoreOptions {
        &self.options
    }

    /// The token's record: the prefix, `t:` and the 32 raw bytes of its hash (41 bytes with
    /// the default prefix; half the 77 of the hex key before, a third less memory per token).
    fn token_key(&self, hash: &TokenHash) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.options.prefix.len() + 2 + 32);
        key.extend_from_slice(self.options.prefix.as_bytes());
        key.extend_from_slice(b"t:");
        key.extend_from_slice(hash.as_bytes());
        key
    }

    /// Where earlier versions kept the record: the prefix, `token:` and the hex hash. Read
    /// (when the key above holds nothing, unless [`RedisStoreOptions::with_legacy_keys`] is
    /// off) and always deleted with it, so tokens issued before an upgrade resolve until they
    /// expire or are revoked, and a revocation never leaves one behind; never written.
    fn legacy_token_key(&self, hash: &TokenHash) -> String {
        legacy_token_key(&self.legacy_prefix, hash)
    }

    /// [`RedisStore::legacy_token_key`] when old keys are read.
    fn legacy_key_to_read(&self, hash: &TokenHash) -> Option<String> {
        self.options
            .legacy_keys
            .then(|| self.legacy_token_key(hash))
    }

    /// The subject's index: a sorted set of the raw hashes of its tokens, scored by their
    /// expiry (Unix ms). The subject enters the key only as its SHA-256, so a `{…}` in it
    /// cannot pick a cluster slot and the key's length does not depend on it.
    fn index_key(&self, kind: TokenKind, subject: &str) -> String {
        format!(
            "{}index:{}:{}",
            self.options.prefix,
            kind,
            sha256_hex(subject)
        )
    }

    /// The index 0.1 wrote: a set of hex hashes that was never pruned. Only revoke-all still
    /// reads it (in chunks, deleting it as it goes); it expires with its last token.
    fn legacy_index_key(&self, kind: TokenKind, subject: &str) -> String {
        format!("{}subject:{}:{}", self.options.prefix, kind, subject)
    }

    /// Drops revoked tokens from this instance's cache at once; other instances hear of it
    /// through the revocation channel.
    fn evict_locally(&self, hashes: impl IntoIterator<Item = TokenHash> + Clone) {
        self.recent_uses.forget(hashes.clone());
        if let Some(cache) = &self.cache {
            cache.invalidate(hashes);
        }
    }

    /// One command, bounded.
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        bounded(self.options.timeout, command.query_async(&mut connection)).await
    }

    /// The connection revocations are made on: with
    /// [`RedisStoreOptions::with_replica_acks`], one of their own, so that a `WAIT` (which
    /// holds back every later command of its connection) never queues the resolves and
    /// issues behind it; else the store's connection.
    pub(super) fn revoking(&self) -> RedisConnection {
        self.revocations
            .clone()
            .unwrap_or_else(|| self.connection.clone())
    }

    /// The bound on a revocation's round trip: the store's, plus the wait for replicas.
    pub(super) fn revoking_bound(&self) -> Duration {
        match self.options.replica_acks {
            Some(acks) => self.options.timeout.saturating_add(acks.wait),
            None => self.options.timeout,
        }
    }

    /// With [`RedisStoreOptions::with_replica_acks`], the `WAIT` that makes a revocation
    /// count only once enough replicas have it; sent on the same connection, after the
    /// revocation's writes (in the same pipeline where it can be), it waits for them.
    pub(super) fn wait_for_replicas(&self) -> Option<redis::Cmd> {
        let acks = self.options.replica_acks?;
        let wait_ms = u64::try_from(acks.wait.as_millis()).unwrap_or(u64::MAX);
        let mut wait = redis::cmd("WAIT");
        wait.arg(acks.replicas).arg(wait_ms);
        Some(wait)
    }

    /// Judges the answer of [`Self::wait_for_replicas`]' `WAIT`.
    pub(super) fn check_replicas(&self, acknowledged: u64) -> Result<(), StoreError> {
        let Some(acks) = self.options.replica_acks else {
            return Ok(());
        };
        if acknowledged < u64::from(acks.replicas) {
            tracing::warn!(
                acknowledged,
                required = acks.replicas,
                "a revocation was not replicated in time"
            );
            return Err(StoreError::NotReplicated {
                acknowledged,
                required: u64::from(acks.replicas),
            });
        }
        Ok(())
    }

    /// Sends [`Self::wait_for_replicas`]' `WAIT` on `connection` (the one the revocation's
    /// writes went on) and judges its answer; nothing without replica acknowledgements.
    pub(super) async fn replicated(
        &self,
        connection: &mut RedisConnection,
    ) -> Result<(), StoreError> {
        let Some(wait) = self.wait_for_replicas() else {
            return Ok(());
        };
        let acknowledged: u64 =
            bounded(self.revoking_bound(), wait.query_async(connection)).await?;
        self.check_replicas(acknowledged)
    }

    fn lock_key(&self, key: &str) -> String {
        format!("{}lock:{}", self.options.prefix, key)
    }

    fn used_key(&self, key: &str) -> String {
        format!("{}used:{}", self.options.prefix, key)
    }
}

/// `<prefix>token:`, the start of the keys of earlier versions.
fn legacy_prefix(options: &RedisStoreOptions) -> Arc<str> {
    format!("{}token:", options.prefix).into()
}

/// The key of earlier versions (`<prefix>token:<hex hash>`) under `legacy_prefix`.
fn legacy_token_key(legacy_prefix: &str, hash: &TokenHash) -> String {
    let mut key = String::with_capacity(legacy_prefix.len() + 64);
    key.push_str(legacy_prefix);
    hash.push_hex(&mut key);
    key
}

/// `call`, boxed as a store's future, timed in the [metrics](crate::telemetry::metrics) as a
/// call of `operation` from now.
fn timed<T: 'static>(
    operation: Operation,
    call: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> StoreFuture<T> {
    timed_from(Stopwatch::start(), operation, call)
}

/// [`timed`], from when `stopwatch` started.
fn timed_from<T: 'static>(
    stopwatch: Stopwatch,
    operation: Operation,
    call: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> StoreFuture<T> {
    Box::pin(async move {
        let answer = call.await;
        let failure = match &answer {
            Err(StoreError::Timeout(_)) => Some(StoreFailure::Timeout),
            // redis-rs's own bound on a response or a connection, the same as the store's.
            Err(StoreError::Backend(error))
                if error
                    .downcast_ref::<redis::RedisError>()
                    .is_some_and(|error| error.is_timeout()) =>
            {
                Some(StoreFailure::Timeout)
            }
            Err(StoreError::Backend(_) | StoreError::NotReplicated { .. }) => {
                Some(StoreFailure::Backend)
            }
            // No failure of the store: a refusal at the limit, or the random source.
            Ok(_) | Err(StoreError::LimitReached { .. } | StoreError::Random(_)) => None,
        };
        metrics::store_call(StoreName::Redis, operation, stopwatch, failure);
        answer
    })
}

/// Milliseconds for a Redis expiry: at least 1 (0 would be an error), saturating.
fn millis(duration: Duration) -> u64 {
    exact_millis(duration).max(1)
}

/// Milliseconds of a duration kept as data (a record's idle timeout), saturating.
fn exact_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
