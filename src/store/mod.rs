//! Where tokens live: the [`TokenStore`] trait and its backends.
//!
//! - [`MemoryStore`]: the embedded default, one process only;
//! - `RedisStore` (feature `redis`): shared by every instance of the app, on one Redis or
//!   (feature `cluster`) on a Redis Cluster.
//!
//! Both pass the same conformance suite. A store keeps token records keyed by the SHA-256
//! of the token, an index of each subject's tokens for revoke-all, the failed-login
//! counters used for lockout, and the one-time claims that stop a second-factor code from
//! being used twice.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::caller::{Caller, TokenKind};
use crate::error::StoreError;
use crate::token::TokenHash;

mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_cache;
#[cfg(feature = "redis")]
mod redis_connection;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreOptions};
#[cfg(feature = "redis")]
pub use redis_cache::{CacheOptions, CacheStats};

/// The future a store returns: boxed because the registry holds its store as a trait object.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// A backend for [`TokenRegistry`](crate::TokenRegistry).
///
/// Every method returns a `'static` future (clone what it needs: stores are cheap handles),
/// so the layer can hold it across polls. Implementations must bound the time of every call
/// and report failures as [`StoreError`], never as "not found": the layer answers 503 for
/// errors and 401 only for tokens the store positively does not know.
pub trait TokenStore: Send + Sync + 'static {
    /// Stores `caller` under `caller.token_hash` for `ttl`, then adds the hash to its
    /// subject's index (in that order, so a concurrent [`remove_subject`] either sees the
    /// token or ran entirely before this issue took effect).
    ///
    /// [`remove_subject`]: TokenStore::remove_subject
    fn insert(&self, caller: Caller, ttl: Duration) -> StoreFuture<()>;

    /// The record stored under `hash`, if it exists. One read.
    ///
    /// A store drops expired records, but need not do so to the millisecond: the registry
    /// refuses any record past its expiry, whatever the store returns (the local cache of
    /// a `RedisStore` may return one for up to its TTL).
    fn get(&self, hash: TokenHash) -> StoreFuture<Option<Caller>>;

    /// Deletes the record under `hash` (and its index entry); returns what was deleted.
    fn remove(&self, hash: TokenHash) -> StoreFuture<Option<Caller>>;

    /// Deletes every token the subject's index lists, then unlists them; returns how many
    /// live tokens were deleted. In that order, so a failure halfway leaves the tokens
    /// listed for a retry; a token a racing [`insert`](TokenStore::insert) lists after the
    /// index was read is left alone (it was issued after this revoke).
    fn remove_subject(&self, kind: TokenKind, subject: String) -> StoreFuture<u64>;

    /// Adds one failed sign-in to `key`'s counter and (re)starts its window; returns the
    /// new count. Counting and setting the window are one atomic step.
    fn record_failure(&self, key: String, window: Duration) -> StoreFuture<u64>;

    /// The current failed sign-in count of `key` (0 once its window has passed).
    fn failures(&self, key: String) -> StoreFuture<u64>;

    /// Clears `key`'s counter (after a successful sign-in).
    fn clear_failures(&self, key: String) -> StoreFuture<()>;

    /// Claims `key` for `ttl`: `true` for the first claim, `false` for every later claim
    /// of the same key until `ttl` has passed since the first. Checking and claiming are
    /// one atomic step, so of concurrent claims exactly one wins. Used to accept a
    /// one-time password only once (RFC 6238 §5.2) across every instance.
    fn claim_once(&self, key: String, ttl: Duration) -> StoreFuture<bool>;
}

/// Runs `future`, turning "took longer than `limit`" into [`StoreError::Timeout`].
#[cfg(feature = "redis")]
pub(crate) async fn bounded<T, E>(
    limit: Duration,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, StoreError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result.map_err(|error| StoreError::Backend(Box::new(error))),
        Err(_) => Err(StoreError::Timeout(limit)),
    }
}
