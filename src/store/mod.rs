//! Where tokens live: the [`TokenStore`] trait (and [`SignInStore`], what sign-in keeps
//! beside them), the [`StoreError`] they fail with, and the backends.
//!
//! - [`MemoryStore`]: the embedded default, one process only;
//! - `RedisStore` (feature `redis`): shared by every instance of the app, on one Redis or
//!   (feature `cluster`) on a Redis Cluster;
//! - `IntrospectionClient` (feature `introspection-client`): not a store but its stand-in
//!   for a service that cannot reach the store, resolving tokens through the issuing
//!   service's introspection endpoint (see `TokenRegistry::introspecting`).
//!
//! Both stores pass the same conformance suite. A store keeps token records keyed by the SHA-256
//! of the token, an index of each subject's tokens for revoke-all, the failed-login
//! counters used for lockout, and the one-time claims that stop a second-factor code from
//! being used twice.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::token::{Caller, RandomError, TokenHash, TokenKind};

#[cfg(feature = "introspection-client")]
mod introspection;
mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod revocations;

#[cfg(feature = "introspection-client")]
pub(crate) use self::introspection::ReadOnly;
#[cfg(feature = "introspection-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection-client")))]
#[doc(inline)]
pub use self::introspection::{
    IntrospectionClient, IntrospectionClientOptions, MAX_INTROSPECTION_ANSWER,
};
#[doc(inline)]
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
#[doc(inline)]
pub use self::redis::{CacheOptions, CacheStats, RedisStore, RedisStoreOptions};
#[doc(inline)]
pub use self::revocations::{REVOCATION_FEED_CAPACITY, Revocation, RevocationFeed, Revocations};

/// The token store failed: it could not be reached, did not answer in time, or answered
/// something unusable. The layer turns it into a 503, never into a 401.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within its bound.
    #[error("the token store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store answered with an error or the connection failed.
    #[error("the token store failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The OS random source failed while drawing a token.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Not a failure: the subject already holds the most live tokens of this kind allowed
    /// (see [`SubjectLimit`] and [`OnLimit::Refuse`]), so no token was issued.
    #[error("the subject already holds the most live tokens allowed ({limit})")]
    LimitReached {
        /// The limit.
        limit: usize,
    },
    /// A revocation was made on the primary but fewer replicas than required acknowledged
    /// it in time (see `RedisStoreOptions::with_replica_acks`): retry it.
    #[error("the revocation reached {acknowledged} of the {required} replicas required in time")]
    NotReplicated {
        /// The replicas that acknowledged it.
        acknowledged: u64,
        /// The replicas required.
        required: u64,
    },
}

/// What issuing past a [`SubjectLimit`] does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnLimit {
    /// Revoke the subject's oldest tokens (the ones that expire first) to make room: the
    /// newest sign-in wins. The default.
    #[default]
    RevokeOldest,
    /// Refuse the new token with [`StoreError::LimitReached`]: the existing sessions win.
    Refuse,
}

/// How many live tokens one subject may hold of one kind, and what issuing past that does.
/// Always at most [`MAX_TOKENS_PER_SUBJECT`].
///
/// ```
/// use tower_bearer::store::{OnLimit, SubjectLimit};
///
/// let limit = SubjectLimit::new(3, OnLimit::Refuse);
/// assert_eq!(limit.max(), 3);
/// assert_eq!(SubjectLimit::default().max(), tower_bearer::store::MAX_TOKENS_PER_SUBJECT);
/// assert_eq!(SubjectLimit::new(0, OnLimit::Refuse).max(), 1, "at least one token");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubjectLimit {
    max: usize,
    on_limit: OnLimit,
}

impl Default for SubjectLimit {
    /// [`MAX_TOKENS_PER_SUBJECT`], revoking the oldest.
    fn default() -> Self {
        Self::new(MAX_TOKENS_PER_SUBJECT, OnLimit::RevokeOldest)
    }
}

impl SubjectLimit {
    /// At most `max` live tokens (clamped to 1..=[`MAX_TOKENS_PER_SUBJECT`]), `on_limit`
    /// deciding what an issue past it does.
    pub fn new(max: usize, on_limit: OnLimit) -> Self {
        Self {
            max: max.clamp(1, MAX_TOKENS_PER_SUBJECT),
            on_limit,
        }
    }

    /// The most live tokens.
    pub fn max(&self) -> usize {
        self.max
    }

    /// What issuing past the limit does.
    pub fn on_limit(&self) -> OnLimit {
        self.on_limit
    }
}

/// The most live tokens one subject (of one kind) holds in a store, whatever
/// [`SubjectLimit`] says. Issuing past it revokes the subject's oldest tokens (or is
/// refused), so the subject's index, and a revoke-all that reads it, stay bounded however
/// often the subject signs in.
pub const MAX_TOKENS_PER_SUBJECT: usize = 10_000;

/// The `record_use_every` of a [`TokenStore::get`] that records no use: a read only, as
/// [`TokenRegistry::inspect`](crate::TokenRegistry::inspect) does (token introspection
/// must not keep a token alive). [`Caller::use_is_due`] is never true for it, and every
/// store must treat it so: no write, no extended idle timeout.
pub const RECORD_NO_USE: Duration = Duration::MAX;

/// The future a store returns: boxed because the registry holds its store as a trait object.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// The answer of [`TokenStore::lookup`]: at once, or still to come.
pub enum Lookup<T> {
    /// The store had the answer at hand (in process, or in a local cache): no I/O, no
    /// future, no allocation.
    Done(Result<T, StoreError>),
    /// The store must ask elsewhere; the future brings the answer.
    Pending(StoreFuture<T>),
}

impl<T: Send + 'static> Lookup<T> {
    /// The answer as a future, whichever it is.
    pub fn into_future(self) -> StoreFuture<T> {
        match self {
            Self::Done(answer) => Box::pin(std::future::ready(answer)),
            Self::Pending(future) => future,
        }
    }
}

impl<T> std::fmt::Debug for Lookup<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Done(_) => "Lookup::Done",
            Self::Pending(_) => "Lookup::Pending",
        })
    }
}

/// Where a [`TokenRegistry`](crate::TokenRegistry) keeps its tokens: five verbs (and a
/// sixth, [`lookup`](TokenStore::lookup), that a store answering at once overrides).
///
/// A store keeps each [`Caller`] whole, [`Caller::last_used_at`] and
/// [`Caller::idle_timeout`] included: a token with an idle timeout expires from the store
/// once unused for it (counted from its last recorded use), and [`get`](TokenStore::get)
/// records uses.
///
/// Every method returns a `'static` future (clone what it needs: stores are cheap handles),
/// so the layer can hold it across polls. Implementations must bound the time of every call
/// and report failures as [`StoreError`], never as "not found": the layer answers 503 for
/// errors and 401 only for tokens the store positively does not know.
pub trait TokenStore: Send + Sync + 'static {
    /// Stores `caller` under `caller.token_hash` for `ttl` (`None`: until removed; with an
    /// idle timeout, until unused that long), then adds the hash to its subject's index (in
    /// that order, so a concurrent [`remove_subject`] either sees the token or ran entirely
    /// before this issue took effect).
    ///
    /// The index lists only live tokens: entries of expired tokens are dropped as it is
    /// written. Past `limit`, the subject's oldest tokens are revoked (never the new one),
    /// or the new one is refused with [`StoreError::LimitReached`] and nothing of it is
    /// kept: counting and admitting are one atomic step, so concurrent issues never leave
    /// more than the limit live. Returns the hashes of the live tokens revoked to make room
    /// (empty under the limit).
    ///
    /// [`remove_subject`]: TokenStore::remove_subject
    fn insert(
        &self,
        caller: Caller,
        ttl: Option<Duration>,
        limit: SubjectLimit,
    ) -> StoreFuture<Vec<TokenHash>>;

    /// The record stored under `hash`, if it exists, recording a use of it now when
    /// [`Caller::use_is_due`] (at most once per `record_use_every`, or per quarter of its
    /// idle timeout): its [`last_used_at`](Caller::last_used_at) becomes now and, with an
    /// idle timeout, its life in the store is extended (never past its absolute expiry).
    /// The answer shows the use recorded. One round trip, whether a use is recorded or not.
    /// With [`RECORD_NO_USE`] as `record_use_every`, a read that records nothing.
    ///
    /// A store drops expired records, but need not do so to the millisecond: the registry
    /// refuses any record past its expiry, whatever the store returns (the local cache of
    /// a `RedisStore` may return one for up to its TTL).
    fn get(&self, hash: TokenHash, record_use_every: Duration) -> StoreFuture<Option<Caller>>;

    /// [`get`](TokenStore::get), answered at once when the store has the answer at hand: the
    /// layer calls this on every request, so a store in process (or a cache hit) costs no
    /// allocation and no future. The default asks [`get`](TokenStore::get).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use tower_bearer::store::{Lookup, MemoryStore, TokenStore};
    /// use tower_bearer::token::TokenHash;
    ///
    /// let store = MemoryStore::new();
    /// let answer = store.lookup(TokenHash::of("never issued"), Duration::from_secs(60));
    /// assert!(matches!(answer, Lookup::Done(Ok(None))));
    /// # Ok(()) }
    /// ```
    fn lookup(&self, hash: TokenHash, record_use_every: Duration) -> Lookup<Option<Caller>> {
        Lookup::Pending(self.get(hash, record_use_every))
    }

    /// Deletes the record under `hash` (and its index entry); returns what was deleted.
    fn remove(&self, hash: TokenHash) -> StoreFuture<Option<Caller>>;

    /// Deletes every token the subject's index lists, then unlists them; returns how many
    /// live tokens were deleted. In that order, so a failure halfway leaves the tokens
    /// listed for a retry; a token a racing [`insert`](TokenStore::insert) lists after the
    /// index was read is left alone (it was issued after this revoke).
    fn remove_subject(&self, kind: TokenKind, subject: String) -> StoreFuture<u64>;

    /// The live tokens the subject's index lists (at most [`MAX_TOKENS_PER_SUBJECT`]), in no
    /// particular order, as stored (no use is recorded). Entries whose token has expired or
    /// is gone are skipped, and dropped from the index.
    fn list(&self, kind: TokenKind, subject: String) -> StoreFuture<Vec<Caller>>;

    /// A listener of the store's revocations, for a holder of a long-lived connection that
    /// must end when its token is revoked (see
    /// [`TokenRegistry::resolve_watched`](crate::TokenRegistry::resolve_watched)): `None`
    /// (the default) when the store announces none, and the holder asks the store again
    /// from time to time instead.
    ///
    /// A store that returns a listener announces on it every token it revokes
    /// ([`remove`](TokenStore::remove), [`remove_subject`](TokenStore::remove_subject), the
    /// oldest tokens an [`insert`](TokenStore::insert) revokes past its limit), and, if it is
    /// shared, the revocations of other instances it hears of; and marks the feed down
    /// whenever it may miss some. Expiry is not announced: a holder knows when its token
    /// expires.
    ///
    /// ```
    /// use tower_bearer::store::{MemoryStore, TokenStore};
    ///
    /// assert!(MemoryStore::new().revocations().is_some());
    /// ```
    fn revocations(&self) -> Option<Revocations> {
        None
    }
}

/// What sign-in keeps beside the tokens, shared by every instance: the failed-attempt
/// counters of the lockout and the one-time claims that let a second-factor code be used
/// once. [`MemoryStore`] and `RedisStore` keep both; a store used only behind the layer
/// needs only [`TokenStore`].
///
/// Keys are built by [`SignIn`](crate::SignIn) and never contain a username or subject in
/// clear (only their SHA-256), so they have a bounded length.
pub trait SignInStore: Send + Sync + 'static {
    /// Adds one failed sign-in to `key`'s counter and (re)starts its window; returns the
    /// new count. Counting and setting the window are one atomic step.
    fn record_failure(&self, key: String, window: Duration) -> StoreFuture<u64>;

    /// Takes back one failure of `key` counted by [`record_failure`] for an attempt that
    /// ended without a password check (the check was refused, or the directory failed), so
    /// an outage or a flood cannot lock an account. A counter that reaches 0 is deleted.
    ///
    /// [`record_failure`]: SignInStore::record_failure
    fn forgive_failure(&self, key: String) -> StoreFuture<()>;

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
