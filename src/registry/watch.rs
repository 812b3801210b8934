//! Tokens that hold a long-lived connection open (a WebSocket, a stream of server-sent
//! events): [`TokenRegistry::resolve_watched`] resolves one and gives a [`TokenWatch`], which
//! says when the token stops being valid — revoked, expired or idle — so the connection
//! can be closed then rather than at its next request.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::debug;

use super::TokenRegistry;
use crate::store::{Revocation, Revocations, StoreError};
use crate::token::{Caller, TokenHash};

/// How often a watched token is checked with the store when the store announces no
/// revocations (see [`TokenRegistry::with_recheck_every`]): the default bound on how long a
/// connection outlives a revocation then.
pub const DEFAULT_RECHECK_EVERY: Duration = Duration::from_secs(5);

/// The shortest interval [`TokenRegistry::with_recheck_every`] takes.
const MIN_RECHECK_EVERY: Duration = Duration::from_millis(10);

/// Why a watched token stopped being valid (see [`TokenWatch::ended`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum WatchEnd {
    /// The token was revoked, or is gone from the store.
    Revoked,
    /// The token expired: its lifetime, or its idle timeout, ran out.
    Expired,
    /// The store could not say whether the token is still valid: a connection must be
    /// closed then (fail closed), though not as if the token were invalid.
    StoreFailed(StoreError),
}

/// A resolved token under watch: [`ended`](TokenWatch::ended) completes when the token stops
/// being valid. It holds a fixed amount of memory (the token, a few instants, one listener
/// of the store's revocations).
///
/// How it knows:
/// - revocation: at once, from the store's announcements
///   ([`TokenStore::revocations`](crate::store::TokenStore::revocations)): the memory store
///   always, the Redis store with its local cache on (the revocation channel carries other
///   instances' revocations). With no announcements, or while they may be missed (the Redis
///   store's channel lost), by asking the store again every
///   [`recheck interval`](TokenRegistry::with_recheck_every);
/// - expiry: at the token's expiry, by the clock;
/// - idle timeout: by asking the store when the token would idle out (keeping a connection
///   open is not a use of the token; other requests with it are).
///
/// Checks record no use of the token, as [`TokenRegistry::inspect`] does.
pub struct TokenWatch {
    registry: TokenRegistry,
    token: Box<str>,
    hash: TokenHash,
    expires_at: Option<DateTime<Utc>>,
    idle_ends_at: Option<DateTime<Utc>>,
    revocations: Option<Revocations>,
    /// When the store is next asked, if there are no announcements to rely on. Kept here,
    /// not in [`TokenWatch::ended`]'s future, so that polling that future afresh (in a
    /// `select!` loop) does not put the check off.
    recheck_at: tokio::time::Instant,
    /// The store must be asked before anything else (announcements were missed, or a
    /// check was interrupted).
    check_due: bool,
}

impl fmt::Debug for TokenWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenWatch")
            .field("token_id", &self.hash.id())
            .field("expires_at", &self.expires_at)
            .field("idle_ends_at", &self.idle_ends_at)
            .field("announced", &self.revocations.is_some())
            .finish_non_exhaustive()
    }
}

impl TokenRegistry {
    /// How often a [`TokenWatch`] asks the store whether its token is still valid, when the
    /// store does not announce revocations (default [`DEFAULT_RECHECK_EVERY`], at least
    /// 10 ms): the bound on how long a long-lived connection outlives its revoked token
    /// then. Each check is one store read per open connection.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::TokenRegistry;
    ///
    /// let registry = TokenRegistry::memory().with_recheck_every(Duration::from_secs(2));
    /// assert_eq!(registry.recheck_every(), Duration::from_secs(2));
    /// ```
    pub fn with_recheck_every(mut self, every: Duration) -> Self {
        self.recheck_every = every.max(MIN_RECHECK_EVERY);
        self
    }

    /// How often a [`TokenWatch`] asks the store, when the store announces no revocations.
    pub fn recheck_every(&self) -> Duration {
        self.recheck_every
    }

    /// Resolves token text as [`resolve`](TokenRegistry::resolve) does, and, for a valid
    /// token, starts watching it: for a connection that stays open on one token, to close
    /// it when the token is revoked or expires.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::registry::WatchEnd;
    /// use tower_bearer::{TokenKind, TokenRegistry};
    ///
    /// let registry = TokenRegistry::memory();
    /// let issued = registry.issue(TokenKind::Customer, "ada").await?;
    ///
    /// let (caller, mut watch) = registry
    ///     .resolve_watched(issued.token.expose())
    ///     .await?
    ///     .expect("a live token");
    /// assert_eq!(caller.subject, "ada");
    ///
    /// registry.revoke(issued.token.expose()).await?;
    /// assert!(matches!(watch.ended().await, WatchEnd::Revoked));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails or times out.
    pub async fn resolve_watched(
        &self,
        token: &str,
    ) -> Result<Option<(Caller, TokenWatch)>, StoreError> {
        // Listening before resolving: a revocation between the two is heard.
        let revocations = self.store.revocations();
        let Some(caller) = self.resolve(token).await? else {
            return Ok(None);
        };
        let watch = TokenWatch {
            registry: self.clone(),
            token: token.into(),
            hash: caller.token_hash,
            expires_at: caller.expires_at,
            idle_ends_at: caller.idle_expires_at(),
            revocations,
            recheck_at: tokio::time::Instant::now() + self.recheck_every,
            check_due: false,
        };
        Ok(Some((caller, watch)))
    }
}

impl TokenWatch {
    /// Completes when the token stops being valid, saying why. Cancel-safe: a future
    /// dropped before it completes loses nothing (a check it had started is made again),
    /// so it may be polled afresh in every turn of a `select!` loop.
    pub async fn ended(&mut self) -> WatchEnd {
        loop {
            let now = Utc::now();
            if self.expires_at.is_some_and(|at| at <= now) {
                return WatchEnd::Expired;
            }
            if self.check_due {
                if let Some(end) = self.check().await {
                    return end;
                }
                self.check_due = false;
                self.recheck_at = tokio::time::Instant::now() + self.registry.recheck_every;
                continue;
            }
            let announced = self.revocations.as_ref().is_some_and(Revocations::is_live);
            // The next time to ask the store: when the token would idle out, and, with no
            // announcements to rely on, at the recheck.
            let mut ask_at = self.idle_ends_at.map(|at| instant(at, now));
            if !announced {
                ask_at = Some(ask_at.map_or(self.recheck_at, |idle| idle.min(self.recheck_at)));
            }
            let expires_at = self.expires_at.map(|at| instant(at, now));
            tokio::select! {
                // Judged at the top of the loop, by the wall clock the expiry is set in.
                () = sleep_until(expires_at) => {}
                () = sleep_until(ask_at) => self.check_due = true,
                heard = next(&mut self.revocations) => match heard {
                    Revocation::Revoked(hash) if hash == self.hash => {
                        debug!(token_id = %self.hash.id(), "watched token revoked");
                        return WatchEnd::Revoked;
                    }
                    Revocation::Missed => self.check_due = true,
                    Revocation::Closed => self.revocations = None,
                    // Another token's revocation.
                    _ => {}
                },
            }
        }
    }

    /// Asks the store about the token: `None` while it is valid.
    async fn check(&mut self) -> Option<WatchEnd> {
        match self.registry.inspect(&self.token).await {
            Ok(Some(caller)) => {
                self.expires_at = caller.expires_at;
                self.idle_ends_at = caller.idle_expires_at();
                None
            }
            Ok(None) => {
                let now = Utc::now();
                let lapsed = |at: Option<DateTime<Utc>>| at.is_some_and(|at| at <= now);
                Some(if lapsed(self.expires_at) || lapsed(self.idle_ends_at) {
                    WatchEnd::Expired
                } else {
                    WatchEnd::Revoked
                })
            }
            Err(error) => Some(WatchEnd::StoreFailed(error)),
        }
    }
}

/// The instant of the clock that tokio sleeps by at wall-clock time `at` (now if past).
fn instant(at: DateTime<Utc>, now: DateTime<Utc>) -> tokio::time::Instant {
    // A year at most: the sleeps are recomputed on every wake-up anyway.
    let until = (at - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .min(Duration::from_secs(86_400 * 365));
    let now = tokio::time::Instant::now();
    now.checked_add(until).unwrap_or(now)
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The next announcement, or never without a listener.
async fn next(revocations: &mut Option<Revocations>) -> Revocation {
    match revocations {
        Some(revocations) => revocations.next().await,
        None => std::future::pending().await,
    }
}
