//! [`RedisStore`]: tokens in Redis, shared by every instance of the app.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Pipeline;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::redis_cache::{
    CacheOptions, CacheStats, LocalCache, revocation_message, spawn_follower,
};
use super::redis_connection::RedisConnection;
use super::{MAX_TOKENS_PER_SUBJECT, SignInStore, StoreFuture, TokenStore, bounded};
use crate::token::{Caller, SecondFactor, TokenHash, TokenKind, sha256_hex};

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
    prefix: String,
    timeout: Duration,
    cache: Option<CacheOptions>,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            prefix: "bearer:".to_owned(),
            timeout: Duration::from_millis(500),
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
    fn revocation_channel(&self) -> String {
        format!("{}revoked", self.prefix)
    }
}

/// How often the revocation subscription is pinged: a silently dead subscription is
/// noticed (and the cache bypassed) within about twice this.
const PING_EVERY: Duration = Duration::from_secs(1);

/// The Redis token store: over redis-rs's reconnecting [`ConnectionManager`] to one Redis,
/// or (feature `cluster`, [`RedisStore::connect_cluster`]) over redis-rs's cluster
/// connection to a Redis Cluster.
///
/// Keys (prefix `bearer:` by default):
///
/// | key | type | holds | expiry |
/// |---|---|---|---|
/// | `bearer:token:<sha256 hex>` | string | the [`Caller`] record (JSON) | the token's lifetime |
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
/// token it lists. Lockout counters of 0.1 (`bearer:lock:<kind>:<username>`) are not read:
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
/// | resolve ([`get`](TokenStore::get)) | 1: `GET` (0 when the local cache holds the token) | the same |
/// | issue ([`insert`](TokenStore::insert)) | 1: `SET`, `ZREMRANGEBYSCORE`, `ZADD`, `PEXPIRE` ×2, `ZCARD` pipelined | 2: `SET`, then the rest pipelined on the index's node |
/// | revoke ([`remove`](TokenStore::remove)) | 2: `GETDEL`, then `ZREM` + `PUBLISH` pipelined | 2: `GETDEL`, then `ZREM` and `PUBLISH` concurrently |
/// | revoke-all ([`remove_subject`](TokenStore::remove_subject)) | per chunk of 500 tokens: `ZRANGE`, then one `DEL` per token pipelined, then `ZREM` + `PUBLISH` pipelined; then one `SRANDMEMBER` for a 0.1 index | the same, the `DEL`s sent concurrently |
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
    options: RedisStoreOptions,
    cache: Option<Arc<LocalCache>>,
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
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            // Retry briefly and often: requests wait on the reconnection, and Redis coming
            // back should be noticed within a second or so.
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection = bounded(
            options.timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await?;
        Ok(Self::with_follower(
            RedisConnection::Single(connection),
            options,
            vec![client],
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
        let client = redis::cluster::ClusterClient::builder(urls.iter().copied())
            .connection_timeout(options.timeout)
            .response_timeout(options.timeout)
            // As for one Redis: a few quick retries (after a MOVED, a reconnection), never
            // redis-rs's default waits of over a second, which would outlast the bound.
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
            .map_err(backend)?;
        let nodes = urls
            .iter()
            .map(|url| redis::Client::open(*url))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let connection = bounded(options.timeout, client.get_async_connection()).await?;
        Ok(Self::with_follower(
            RedisConnection::Cluster(connection),
            options,
            nodes,
        ))
    }

    /// The store over `connection`, with its local cache (if the options ask for one)
    /// following revocations on `nodes`.
    fn with_follower(
        connection: RedisConnection,
        options: RedisStoreOptions,
        nodes: Vec<redis::Client>,
    ) -> Self {
        let cache = options.cache.map(|cache_options| {
            let cache = Arc::new(LocalCache::new(cache_options));
            spawn_follower(nodes, options.revocation_channel(), &cache, PING_EVERY);
            cache
        });
        Self {
            connection,
            options,
            cache,
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
        Self {
            connection,
            options,
            cache: None,
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

    fn token_key(&self, hash: &TokenHash) -> String {
        let mut key = String::with_capacity(self.options.prefix.len() + 6 + 64);
        key.push_str(&self.options.prefix);
        key.push_str("token:");
        hash.push_hex(&mut key);
        key
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
    fn evict_locally(&self, hashes: impl IntoIterator<Item = TokenHash>) {
        if let Some(cache) = &self.cache {
            cache.invalidate(hashes);
        }
    }

    /// One command, bounded.
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        bounded(self.options.timeout, command.query_async(&mut connection)).await
    }

    /// Revokes the tokens whose index entries are `members` (raw hashes, or the hex hashes
    /// of a 0.1 index), then unlists them from `index_key` with `unlist` (`ZREM`, `SREM`) and
    /// announces the revocation. Tokens first, index last: if a deletion fails the entries
    /// stay listed, and a retry finds them. Returns how many live tokens were deleted.
    async fn revoke_listed(
        &self,
        index_key: &str,
        unlist: &str,
        members: Vec<Vec<u8>>,
    ) -> Result<u64, StoreError> {
        let hashes: Vec<TokenHash> = members
            .iter()
            .filter_map(|member| {
                TokenHash::from_bytes(member).or_else(|| {
                    std::str::from_utf8(member)
                        .ok()
                        .and_then(TokenHash::from_hex)
                })
            })
            .collect();
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        self.evict_locally(hashes.iter().copied());
        let deleted: Vec<u64> = if hashes.is_empty() {
            Vec::new()
        } else if connection.is_cluster() {
            // One key per DEL: tokens are spread over many cluster slots.
            let deletes = hashes.iter().map(|hash| {
                let mut connection = connection.clone();
                let key = self.token_key(hash);
                async move {
                    redis::cmd("DEL")
                        .arg(key)
                        .query_async::<u64>(&mut connection)
                        .await
                }
            });
            bounded(timeout, futures_util::future::try_join_all(deletes)).await?
        } else {
            let mut pipe = redis::pipe();
            for hash in &hashes {
                pipe.cmd("DEL").arg(self.token_key(hash));
            }
            bounded(timeout, pipe.query_async(&mut connection)).await?
        };
        // The announcement goes after the deletions, so an instance that hears it and asks
        // Redis again cannot find (and cache) a token still there.
        let mut unlisting = redis::cmd(unlist);
        unlisting.arg(index_key).arg(&members);
        let mut publish = redis::cmd("PUBLISH");
        publish
            .arg(self.options.revocation_channel())
            .arg(revocation_message(&hashes));
        if hashes.is_empty() {
            // Nothing to announce: only unreadable entries, dropped.
            bounded(timeout, unlisting.query_async::<()>(&mut connection)).await?;
        } else if connection.is_cluster() {
            // The index and the channel may live on different nodes.
            let mut second = connection.clone();
            let (unlisted, published) = tokio::join!(
                bounded(timeout, unlisting.query_async::<()>(&mut connection)),
                bounded(timeout, publish.query_async::<()>(&mut second)),
            );
            unlisted?;
            published?;
        } else {
            let mut pipe = redis::pipe();
            pipe.add_command(unlisting)
                .ignore()
                .add_command(publish)
                .ignore();
            bounded(timeout, pipe.query_async::<()>(&mut connection)).await?;
        }
        Ok(deleted.into_iter().sum())
    }

    fn lock_key(&self, key: &str) -> String {
        format!("{}lock:{}", self.options.prefix, key)
    }

    fn used_key(&self, key: &str) -> String {
        format!("{}used:{}", self.options.prefix, key)
    }
}

/// The stored form of a [`Caller`] (its hash is the key, so it is not repeated).
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(rename = "k")]
    kind: TokenKind,
    #[serde(rename = "s")]
    subject: String,
    /// Unix milliseconds.
    #[serde(rename = "i")]
    issued_at: i64,
    #[serde(rename = "e")]
    expires_at: i64,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    acting_admin: Option<String>,
    /// Absent in records of password-only tokens (and in records written before it existed).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    second_factor: Option<SecondFactor>,
}

impl Record {
    fn encode(caller: &Caller) -> Result<Vec<u8>, StoreError> {
        let record = Record {
            kind: caller.kind,
            subject: caller.subject.clone(),
            issued_at: caller.issued_at.timestamp_millis(),
            expires_at: caller.expires_at.timestamp_millis(),
            acting_admin: caller.acting_admin.clone(),
            second_factor: caller.second_factor,
        };
        serde_json::to_vec(&record).map_err(|error| StoreError::Backend(Box::new(error)))
    }

    /// An unreadable record is reported as a store error: fail closed, and loudly.
    fn decode(hash: TokenHash, bytes: &[u8]) -> Result<Caller, StoreError> {
        let record: Record =
            serde_json::from_slice(bytes).map_err(|error| StoreError::Backend(Box::new(error)))?;
        let instant = |millis| {
            DateTime::<Utc>::from_timestamp_millis(millis).ok_or_else(|| {
                StoreError::Backend("token record has an out-of-range timestamp".into())
            })
        };
        Ok(Caller {
            kind: record.kind,
            subject: record.subject,
            issued_at: instant(record.issued_at)?,
            expires_at: instant(record.expires_at)?,
            acting_admin: record.acting_admin,
            second_factor: record.second_factor,
            token_hash: hash,
        })
    }
}

/// Appends the subject-index half of an issue, all on the one index key (so one slot):
/// drop the entries of expired tokens, list this one until its expiry, create the index's
/// expiry if it has none (NX) or else only ever extend it (GT), and count what is listed.
fn push_index(
    pipe: &mut Pipeline,
    index_key: &str,
    hash: &TokenHash,
    expires_at_ms: i64,
    ttl: u64,
) {
    pipe.cmd("ZREMRANGEBYSCORE")
        .arg(index_key)
        .arg("-inf")
        .arg(Utc::now().timestamp_millis())
        .ignore()
        .cmd("ZADD")
        .arg(index_key)
        .arg(expires_at_ms)
        .arg(hash.as_bytes())
        .ignore()
        .cmd("PEXPIRE")
        .arg(index_key)
        .arg(ttl)
        .arg("NX")
        .ignore()
        .cmd("PEXPIRE")
        .arg(index_key)
        .arg(ttl)
        .arg("GT")
        .ignore()
        .cmd("ZCARD")
        .arg(index_key);
}

/// How many index entries revoke-all reads, deletes and unlists per step: no single
/// command touches more, so none blocks Redis for long, however large the index.
const CHUNK: usize = 500;

/// Atomically takes back one counted failure, deleting the counter when it reaches 0 (a
/// plain `DECR` on a counter that expired meanwhile would leave a -1 behind).
const FORGIVE_FAILURE: &str = "local n = redis.call('DECR', KEYS[1]) \
    if n <= 0 then redis.call('DEL', KEYS[1]) end return n";

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl TokenStore for RedisStore {
    fn insert(&self, caller: Caller, ttl: Duration) -> StoreFuture<()> {
        let store = self.clone();
        Box::pin(async move {
            let mut connection = store.connection.clone();
            let timeout = store.options.timeout;
            let token_key = store.token_key(&caller.token_hash);
            let index_key = store.index_key(caller.kind, &caller.subject);
            let record = Record::encode(&caller)?;
            let ttl = millis(ttl);
            let expires_at = caller.expires_at.timestamp_millis();
            let mut set = redis::cmd("SET");
            set.arg(&token_key).arg(record).arg("PX").arg(ttl);
            // Token first, index second (see TokenStore::insert). Not MULTI: the two keys may
            // live in different cluster slots.
            let listed: u64 = if connection.is_cluster() {
                // A cluster pipeline runs on one node: two round trips, the token's write
                // acknowledged before the index is touched.
                bounded(timeout, set.query_async::<()>(&mut connection)).await?;
                let mut index = redis::pipe();
                push_index(&mut index, &index_key, &caller.token_hash, expires_at, ttl);
                let (listed,): (u64,) =
                    bounded(timeout, index.query_async(&mut connection)).await?;
                listed
            } else {
                // One Redis runs a pipeline in order: one round trip.
                let mut pipe = redis::pipe();
                pipe.add_command(set).ignore();
                push_index(&mut pipe, &index_key, &caller.token_hash, expires_at, ttl);
                let (listed,): (u64,) = bounded(timeout, pipe.query_async(&mut connection)).await?;
                listed
            };
            let excess = usize::try_from(listed)
                .unwrap_or(usize::MAX)
                .saturating_sub(MAX_TOKENS_PER_SUBJECT);
            if excess > 0 {
                // Past the ceiling: revoke the tokens that expire first (the oldest).
                let oldest: Vec<Vec<u8>> = bounded(
                    timeout,
                    redis::cmd("ZRANGE")
                        .arg(&index_key)
                        .arg(0)
                        .arg(excess - 1)
                        .query_async(&mut connection),
                )
                .await?;
                store.revoke_listed(&index_key, "ZREM", oldest).await?;
            }
            Ok(())
        })
    }

    fn get(&self, hash: TokenHash) -> StoreFuture<Option<Caller>> {
        if let Some(caller) = self.cache.as_ref().and_then(|cache| cache.get(&hash)) {
            return Box::pin(std::future::ready(Ok(Some(caller))));
        }
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.token_key(&hash);
        let cache = self.cache.clone();
        let epoch = cache.as_ref().map_or(0, |cache| cache.epoch());
        Box::pin(async move {
            let bytes: Option<Vec<u8>> = bounded(
                timeout,
                redis::cmd("GET").arg(key).query_async(&mut connection),
            )
            .await?;
            let caller = bytes
                .map(|bytes| Record::decode(hash, &bytes))
                .transpose()?;
            // Only positive answers are cached: unknown tokens cannot fill the cache.
            if let (Some(cache), Some(caller)) = (&cache, &caller) {
                cache.insert(caller.clone(), epoch);
            }
            Ok(caller)
        })
    }

    fn remove(&self, hash: TokenHash) -> StoreFuture<Option<Caller>> {
        let store = self.clone();
        Box::pin(async move {
            let mut connection = store.connection.clone();
            let timeout = store.options.timeout;
            let bytes: Option<Vec<u8>> = bounded(
                timeout,
                redis::cmd("GETDEL")
                    .arg(store.token_key(&hash))
                    .query_async(&mut connection),
            )
            .await?;
            let Some(bytes) = bytes else {
                return Ok(None);
            };
            store.evict_locally([hash]);
            let caller = Record::decode(hash, &bytes)?;
            // The token is gone already: dropping its index entry and announcing the
            // revocation may happen in either order.
            let mut unindex = redis::cmd("ZREM");
            unindex
                .arg(store.index_key(caller.kind, &caller.subject))
                .arg(hash.as_bytes());
            let mut publish = redis::cmd("PUBLISH");
            publish
                .arg(store.options.revocation_channel())
                .arg(revocation_message(&[hash]));
            if connection.is_cluster() {
                // Two slots (the index's, the channel's): two commands, sent concurrently.
                let mut other = connection.clone();
                bounded(
                    timeout,
                    futures_util::future::try_join(
                        unindex.query_async::<()>(&mut connection),
                        publish.query_async::<()>(&mut other),
                    ),
                )
                .await?;
            } else {
                let mut pipe = redis::pipe();
                pipe.add_command(unindex).ignore();
                pipe.add_command(publish).ignore();
                bounded(timeout, pipe.query_async::<()>(&mut connection)).await?;
            }
            Ok(Some(caller))
        })
    }

    fn remove_subject(&self, kind: TokenKind, subject: String) -> StoreFuture<u64> {
        let store = self.clone();
        Box::pin(async move {
            let index_key = store.index_key(kind, &subject);
            let legacy_key = store.legacy_index_key(kind, &subject);
            let mut revoked = 0;
            // Chunk by chunk, lowest expiry first, until the index is empty. Tokens issued
            // before this call are listed by now (an issue lists its token before it
            // returns); one a racing issue lists meanwhile may be revoked too, or left to
            // the next revoke-all (it was issued after this one). The index holds at most
            // MAX_TOKENS_PER_SUBJECT entries, so the steps are bounded as well.
            for _ in 0..=MAX_TOKENS_PER_SUBJECT / CHUNK + 1 {
                let members: Vec<Vec<u8>> = store
                    .query(redis::cmd("ZRANGE").arg(&index_key).arg(0).arg(CHUNK - 1))
                    .await?;
                if members.is_empty() {
                    break;
                }
                revoked += store.revoke_listed(&index_key, "ZREM", members).await?;
            }
            // A 0.1 index (a set of hex hashes, never pruned): read at random in chunks
            // until it is empty, so even a huge one never blocks Redis.
            loop {
                let members: Vec<Vec<u8>> = store
                    .query(redis::cmd("SRANDMEMBER").arg(&legacy_key).arg(CHUNK))
                    .await?;
                if members.is_empty() {
                    break;
                }
                revoked += store.revoke_listed(&legacy_key, "SREM", members).await?;
            }
            Ok(revoked)
        })
    }
}

impl SignInStore for RedisStore {
    fn record_failure(&self, key: String, window: Duration) -> StoreFuture<u64> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.lock_key(&key);
        Box::pin(async move {
            let (count,): (u64,) = bounded(
                timeout,
                redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg(&key)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(millis(window))
                    .ignore()
                    .query_async(&mut connection),
            )
            .await?;
            Ok(count)
        })
    }

    fn forgive_failure(&self, key: String) -> StoreFuture<()> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.lock_key(&key);
        Box::pin(async move {
            bounded(
                timeout,
                redis::cmd("EVAL")
                    .arg(FORGIVE_FAILURE)
                    .arg(1)
                    .arg(key)
                    .query_async::<i64>(&mut connection),
            )
            .await
            .map(drop)
        })
    }

    fn failures(&self, key: String) -> StoreFuture<u64> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.lock_key(&key);
        Box::pin(async move {
            let count: Option<u64> = bounded(
                timeout,
                redis::cmd("GET").arg(key).query_async(&mut connection),
            )
            .await?;
            Ok(count.unwrap_or(0))
        })
    }

    fn clear_failures(&self, key: String) -> StoreFuture<()> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.lock_key(&key);
        Box::pin(async move {
            bounded(
                timeout,
                redis::cmd("DEL")
                    .arg(key)
                    .query_async::<()>(&mut connection),
            )
            .await
        })
    }

    fn claim_once(&self, key: String, ttl: Duration) -> StoreFuture<bool> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.used_key(&key);
        Box::pin(async move {
            // `OK` for the first claim, nil while the key exists.
            let reply: Option<String> = bounded(
                timeout,
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut connection),
            )
            .await?;
            Ok(reply.is_some())
        })
    }
}
