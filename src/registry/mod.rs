//! The token registry, [`TokenRegistry`]: issues, resolves and
//! revokes tokens over a [`TokenStore`]; what an issue takes and gives
//! ([`IssueRequest`], [`IssuedToken`]); and the watch on a token that holds a long-lived
//! connection open ([`TokenWatch`]).

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use tracing::{debug, warn};

use crate::store::{
    self, MemoryStore, RECORD_NO_USE, SignInStore, StoreError, StoreFuture, TokenStore,
};
use crate::telemetry::events::{Actor, EventDetail, EventHook, Events, RevokeReason};
use crate::telemetry::metrics::{self, Revocation};
use crate::token::{Caller, Lifetimes, Token, TokenFormat, TokenHash, TokenKind};

mod issue;
mod sessions;
mod watch;

#[doc(inline)]
pub use self::issue::{IssueRequest, IssuedToken};
#[doc(inline)]
pub use self::sessions::{DEFAULT_LAST_USED_INTERVAL, SessionRules};
#[doc(inline)]
pub use self::watch::{DEFAULT_RECHECK_EVERY, TokenWatch, WatchEnd};

/// The token registry: issues tokens, resolves them to a [`Caller`], revokes them.
///
/// Cheap to clone (an `Arc`); every clone shares one store. The layer, the token routes and
/// the application all hold clones of the same registry.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::store::StoreError> {
/// use tower_bearer::{TokenKind, TokenRegistry};
///
/// let registry = TokenRegistry::memory();
/// let issued = registry.issue(TokenKind::Customer, "ada@example.com").await?;
///
/// let caller = registry.resolve(issued.token.expose()).await?.expect("live token");
/// assert_eq!(caller.subject, "ada@example.com");
///
/// assert!(registry.revoke(issued.token.expose()).await?);
/// assert_eq!(registry.resolve(issued.token.expose()).await?, None);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenRegistry {
    store: Arc<dyn TokenStore>,
    /// The same store's sign-in side, when it has one (see [`TokenRegistry::tokens_only`]).
    sign_in_store: Option<Arc<dyn SignInStore>>,
    lifetimes: Lifetimes,
    /// The token format of each kind that does not use Magento's.
    formats: Arc<[(TokenKind, TokenFormat)]>,
    sessions: Arc<SessionRules>,
    /// How often a [`TokenWatch`] asks the store, when the store announces no revocations.
    recheck_every: std::time::Duration,
    /// Where tokens are resolved instead of the store, by their text (see
    /// [`TokenRegistry::introspecting`]).
    #[cfg(feature = "introspection-client")]
    remote: Option<crate::store::IntrospectionClient>,
    /// Where lifecycle events go (see [`TokenRegistry::with_event_hook`]).
    events: Events,
    /// Who the revocations through this handle are made by (see
    /// [`TokenRegistry::acting_as`]).
    actor: Option<Arc<Actor>>,
}

impl std::fmt::Debug for TokenRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRegistry")
            .field("lifetimes", &self.lifetimes)
            .field("sessions", &self.sessions)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// What a resolve will be: settled at once, or waiting on the store.
pub(crate) enum Resolving {
    /// The text cannot be a live token; the store was not asked.
    Invalid,
    /// The store's answer, at hand (not yet checked by [`finish_resolve`]).
    Done(TokenHash, Result<Option<Caller>, StoreError>),
    /// The store's answer, still to come.
    Pending(TokenHash, StoreFuture<Option<Caller>>),
}

impl TokenRegistry {
    /// A registry over a store that keeps tokens and what sign-in needs beside them (the
    /// memory and Redis stores, or your own), with default lifetimes.
    ///
    /// ```
    /// use tower_bearer::TokenRegistry;
    /// use tower_bearer::store::MemoryStore;
    ///
    /// let store = MemoryStore::new();
    /// let registry = TokenRegistry::new(store.clone());
    /// assert!(registry.sign_in_store().is_some());
    /// ```
    pub fn new<S: TokenStore + SignInStore>(store: S) -> Self {
        let store = Arc::new(store);
        Self::over(store.clone(), Some(store))
    }

    /// A registry over these stores, with default lifetimes, formats and session rules.
    fn over(store: Arc<dyn TokenStore>, sign_in_store: Option<Arc<dyn SignInStore>>) -> Self {
        Self {
            store,
            sign_in_store,
            lifetimes: Lifetimes::default(),
            formats: Arc::new([(TokenKind::Integration, TokenFormat::integration())]),
            sessions: Arc::default(),
            recheck_every: DEFAULT_RECHECK_EVERY,
            #[cfg(feature = "introspection-client")]
            remote: None,
            events: Events::default(),
            actor: None,
        }
    }

    /// A registry over a store of tokens only: all the layer needs (resolve) and all an
    /// application needs to issue and revoke. A [`SignIn`](crate::SignIn) over it has no
    /// lockout counters to keep, so it refuses every sign-in with a store error (503).
    pub fn tokens_only(store: impl TokenStore) -> Self {
        Self::over(Arc::new(store), None)
    }

    /// A registry that resolves tokens through another service's introspection endpoint
    /// (RFC 7662), for a service that cannot reach the token store: put it behind
    /// [`BearerAuthLayer`](crate::BearerAuthLayer) and the layer accepts the tokens the
    /// other service issues.
    ///
    /// It fails closed as the Redis store does: the other service unreachable, slow, or
    /// answering anything but a usable 200 is a [`StoreError`] (503); `{"active": false}`
    /// is an unknown token (401). It is read-only: issuing, revoking and listing fail
    /// with a [`StoreError`] (tokens are issued and revoked on the introspection server),
    /// and a [`SignIn`](crate::SignIn) over it refuses every sign-in.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use axum::{Router, routing::get};
    /// use tower_bearer::store::{IntrospectionClient, IntrospectionClientOptions};
    /// use tower_bearer::{BearerAuthLayer, Caller, TokenRegistry};
    ///
    /// let client = IntrospectionClient::new(IntrospectionClientOptions::new(
    ///     "http://auth.internal:8080/rest/V1/integration/token/introspect",
    ///     std::env::var("INTROSPECTION_TOKEN")?, // grants `introspect` there
    /// ))?;
    /// let registry = TokenRegistry::introspecting(client);
    /// let app: Router = Router::new()
    ///     .route("/me", get(|caller: Caller| async move { caller.subject }))
    ///     .layer(BearerAuthLayer::required(registry));
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8081").await?;
    /// axum::serve(listener, app).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Tokens are still checked for shape before any request, so give this registry the
    /// same [formats](TokenRegistry::with_format) as the issuing service if it issues
    /// prefixed tokens other than the default `tbi_…` of integrations. Expiry is checked
    /// on every answer, cached or not, to the second. Uses of a token here are not
    /// recorded on the issuing service (introspection records none), so they do not keep
    /// a token with an idle timeout alive.
    #[cfg(feature = "introspection-client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection-client")))]
    pub fn introspecting(client: crate::store::IntrospectionClient) -> Self {
        let mut registry = Self::over(Arc::new(crate::store::ReadOnly), None);
        registry.remote = Some(client);
        registry
    }

    /// A registry in this process's memory: the embedded default, for a single instance.
    pub fn memory() -> Self {
        Self::new(MemoryStore::new())
    }

    /// A registry in Redis at `url`, with default options (see
    /// [`RedisStore`](crate::store::RedisStore)).
    ///
    /// # Errors
    /// A [`StoreError`] when Redis cannot be reached in time.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(crate::store::RedisStore::connect(url).await?))
    }

    /// A registry in Redis at `url` with the given options, e.g. a local cache of resolved
    /// tokens that spares hot tokens their Redis round trip:
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::TokenRegistry;
    /// use tower_bearer::store::{CacheOptions, RedisStoreOptions};
    ///
    /// let options = RedisStoreOptions::default().with_cache(CacheOptions::default());
    /// let registry = TokenRegistry::redis_with("redis://127.0.0.1/", options).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when Redis cannot be reached in time.
    #[cfg(feature = "redis")]
    pub async fn redis_with(
        url: &str,
        options: crate::store::RedisStoreOptions,
    ) -> Result<Self, StoreError> {
        Ok(Self::new(
            crate::store::RedisStore::connect_with(url, options).await?,
        ))
    }

    /// A registry in a Redis Cluster reached through any of `urls`, with the given options
    /// (see [`RedisStore::connect_cluster`](crate::store::RedisStore::connect_cluster)):
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::TokenRegistry;
    /// use tower_bearer::store::RedisStoreOptions;
    ///
    /// let nodes = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001", "redis://127.0.0.1:7002"];
    /// let registry = TokenRegistry::redis_cluster(&nodes, RedisStoreOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when no URL is given, a URL is invalid, or the cluster cannot be
    /// reached in time.
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub async fn redis_cluster(
        urls: &[&str],
        options: crate::store::RedisStoreOptions,
    ) -> Result<Self, StoreError> {
        Ok(Self::new(
            crate::store::RedisStore::connect_cluster(urls, options).await?,
        ))
    }

    /// A registry in the Redis whose primary the sentinels at `sentinel_urls` name for
    /// `master_name`, followed through failovers, with the given options (see
    /// [`RedisStore::connect_sentinel`](crate::store::RedisStore::connect_sentinel)):
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_bearer::store::StoreError> {
    /// use std::time::Duration;
    /// use tower_bearer::TokenRegistry;
    /// use tower_bearer::store::RedisStoreOptions;
    ///
    /// let sentinels = ["redis://127.0.0.1:26379", "redis://127.0.0.1:26380", "redis://127.0.0.1:26381"];
    /// // Revocations count once a replica has them, so none is lost in a failover.
    /// let options = RedisStoreOptions::default().with_replica_acks(1, Duration::from_millis(100));
    /// let registry = TokenRegistry::redis_sentinel(&sentinels, "mymaster", options).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when no sentinel URL is given, a URL is invalid, or no sentinel
    /// names a reachable primary for `master_name` in time.
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub async fn redis_sentinel(
        sentinel_urls: &[&str],
        master_name: &str,
        options: crate::store::RedisStoreOptions,
    ) -> Result<Self, StoreError> {
        Ok(Self::new(
            crate::store::RedisStore::connect_sentinel(sentinel_urls, master_name, options).await?,
        ))
    }

    /// Replaces the token lifetimes (defaults: customer 1 hour, admin 4 hours).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::TokenRegistry;
    /// use tower_bearer::token::Lifetimes;
    ///
    /// let lifetimes = Lifetimes::default().with_customer(Duration::from_secs(900))?;
    /// let registry = TokenRegistry::memory().with_lifetimes(lifetimes);
    /// # Ok::<(), tower_bearer::token::ConfigError>(())
    /// ```
    pub fn with_lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Issues tokens of `kind` in `format` (default: [`TokenFormat::Magento`] for customers and
    /// admins, [`TokenFormat::integration`] for integrations).
    /// Tokens already issued in another format stay valid; a token that claims a configured
    /// prefix but fails its checksum is refused without asking the store.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_bearer::token::TokenFormat;
    /// use tower_bearer::{TokenKind, TokenRegistry};
    ///
    /// let registry = TokenRegistry::memory().with_format(TokenKind::Admin, TokenFormat::prefixed("shopadm")?);
    /// let issued = registry.issue(TokenKind::Admin, "root").await?;
    /// assert!(issued.token.expose().starts_with("shopadm_"));
    /// assert!(registry.resolve(issued.token.expose()).await?.is_some());
    /// # Ok(()) }
    /// ```
    pub fn with_format(mut self, kind: TokenKind, format: TokenFormat) -> Self {
        let mut formats: Vec<_> = self
            .formats
            .iter()
            .filter(|(of, _)| *of != kind)
            .cloned()
            .collect();
        if format != TokenFormat::Magento {
            formats.push((kind, format));
        }
        self.formats = formats.into();
        self
    }

    /// The format of the tokens issued for `kind`.
    pub fn format(&self, kind: TokenKind) -> &TokenFormat {
        static MAGENTO: TokenFormat = TokenFormat::Magento;
        self.formats
            .iter()
            .find(|(of, _)| *of == kind)
            .map_or(&MAGENTO, |(_, format)| format)
    }

    /// Whether `text` can be a live token: Magento's shape (whatever the formats now, tokens
    /// issued before may have it), or a configured prefixed format with a valid checksum.
    fn may_be_live(&self, text: &str) -> bool {
        Token::has_issued_shape(text) || self.formats.iter().any(|(_, format)| format.accepts(text))
    }

    /// Replaces what applies to tokens between issue and expiry: idle timeouts, limits per
    /// subject, how often a use is recorded (default: only uses recorded, once a minute).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use tower_bearer::{TokenKind, TokenRegistry};
    /// use tower_bearer::registry::SessionRules;
    /// use tower_bearer::store::{OnLimit, SubjectLimit};
    ///
    /// let rules = SessionRules::default()
    ///     .with_idle_timeout(TokenKind::Customer, Duration::from_secs(1800))?
    ///     .with_limit(TokenKind::Customer, SubjectLimit::new(2, OnLimit::RevokeOldest));
    /// let registry = TokenRegistry::memory().with_session_rules(rules);
    /// let first = registry.issue(TokenKind::Customer, "ada").await?;
    /// registry.issue(TokenKind::Customer, "ada").await?;
    /// registry.issue(TokenKind::Customer, "ada").await?;
    /// assert_eq!(registry.list(TokenKind::Customer, "ada").await?.len(), 2);
    /// assert_eq!(registry.resolve(first.token.expose()).await?, None, "the oldest was revoked");
    /// # Ok(()) }
    /// ```
    pub fn with_session_rules(mut self, rules: SessionRules) -> Self {
        self.sessions = Arc::new(rules);
        self
    }

    /// What applies to tokens between issue and expiry.
    pub fn session_rules(&self) -> &SessionRules {
        &self.sessions
    }

    /// The token lifetimes.
    pub fn lifetimes(&self) -> &Lifetimes {
        &self.lifetimes
    }

    /// The token store (for a registry made by `TokenRegistry::introspecting`, a
    /// read-only stand-in whose every verb fails: tokens live on the introspection server).
    pub fn store(&self) -> &dyn TokenStore {
        &*self.store
    }

    /// What sign-in keeps beside the tokens (lockout counters, one-time claims), in the
    /// same store; `None` for a [`tokens_only`](TokenRegistry::tokens_only) registry.
    pub fn sign_in_store(&self) -> Option<&dyn SignInStore> {
        self.sign_in_store.as_deref()
    }

    /// Delivers every lifecycle event of this registry (tokens issued and revoked) and of
    /// the [`SignIn`](crate::SignIn) over it (sign-ins succeeded, failed, refused; accounts
    /// locked) to `hook`, on a thread of its own: see [`telemetry::events`](crate::telemetry::events).
    /// Events are emitted as `tracing` events with or without a hook.
    ///
    /// ```
    /// use tower_bearer::TokenRegistry;
    /// use tower_bearer::telemetry::events::Event;
    ///
    /// let (audit, _log) = std::sync::mpsc::channel::<String>();
    /// let audit = std::sync::Mutex::new(audit);
    /// let registry = TokenRegistry::memory().with_event_hook(move |event: &Event| {
    ///     // One JSON line per event, to the application's audit log.
    ///     if let (Ok(line), Ok(audit)) = (serde_json::to_string(event), audit.lock()) {
    ///         let _ = audit.send(line);
    ///     }
    /// });
    /// ```
    pub fn with_event_hook(mut self, hook: impl EventHook) -> Self {
        self.events = Events::with_hook(hook);
        self
    }

    /// The same registry, recording `actor` as who makes the revocations through it (the
    /// `by` of their [events](crate::telemetry::events)): what a route does for the caller
    /// it serves.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::telemetry::events::Actor;
    /// use tower_bearer::{TokenKind, TokenRegistry};
    ///
    /// let registry = TokenRegistry::memory();
    /// registry.issue(TokenKind::Customer, "ada").await?;
    /// let by_admin = registry.acting_as(Actor::new(TokenKind::Admin, "grace"));
    /// assert_eq!(by_admin.revoke_all(TokenKind::Customer, "ada").await?, 1);
    /// # Ok(()) }
    /// ```
    pub fn acting_as(&self, actor: Actor) -> Self {
        Self {
            actor: Some(Arc::new(actor)),
            ..self.clone()
        }
    }

    /// Emits a lifecycle event (to `tracing`, and to the hook if one is installed).
    pub(crate) fn emit(&self, detail: EventDetail) {
        self.events.emit(detail);
    }

    fn actor(&self) -> Option<Actor> {
        self.actor.as_deref().cloned()
    }

    /// Issues a token of `kind` to `subject`, valid for that kind's lifetime.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails (nothing usable was issued then).
    pub async fn issue(
        &self,
        kind: TokenKind,
        subject: impl Into<String>,
    ) -> Result<IssuedToken, StoreError> {
        self.issue_request(IssueRequest::new(kind, subject)).await
    }

    /// Issues a customer token that an admin obtained on the customer's behalf (Magento's
    /// remote shopping assistance). The token records the acting admin.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails.
    pub async fn issue_on_behalf(
        &self,
        customer: impl Into<String>,
        admin: impl Into<String>,
    ) -> Result<IssuedToken, StoreError> {
        self.issue_request(
            IssueRequest::new(TokenKind::Customer, customer).with_acting_admin(admin),
        )
        .await
    }

    /// Issues a token as `request` describes: of its kind, to its subject, valid for that
    /// kind's lifetime (and idle timeout), recording its acting admin and second factor.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails (nothing usable was issued then);
    /// [`StoreError::LimitReached`] when the subject holds as many tokens of the kind as its
    /// [limit](SessionRules::with_limit) allows and the limit refuses more.
    pub async fn issue_request(&self, request: IssueRequest) -> Result<IssuedToken, StoreError> {
        let IssueRequest {
            kind,
            subject,
            acting_admin,
            second_factor,
            scopes,
            client,
            name,
            lifetime,
        } = request;
        let token = self.format(kind).generate()?;
        // A lifetime set on the request's public field skipped `with_lifetime`'s check.
        let lifetime = lifetime
            .or(self.lifetimes.of(kind))
            .map(|lifetime| lifetime.min(crate::token::MAX_LIFETIME));
        // Milliseconds: the precision every store keeps, so a resolved caller equals the
        // issued one. Lifetimes are bounded by MAX_LIFETIME, so the conversion holds.
        let issued_at = Utc::now().trunc_subsecs(3);
        let expires_at = lifetime
            .map(|lifetime| issued_at + chrono::Duration::from_std(lifetime).unwrap_or_default());
        let caller = Caller {
            kind,
            subject,
            issued_at,
            expires_at,
            // The sign-in is the token's first use: the next is recorded an interval later.
            last_used_at: Some(issued_at),
            idle_timeout: self.sessions.idle_timeout(kind),
            name,
            acting_admin,
            second_factor,
            scopes,
            client,
            token_hash: token.hash(),
        };
        let limit = self.sessions.limit(kind).unwrap_or_default();
        let evicted = self.store.insert(caller.clone(), lifetime, limit).await?;
        metrics::token_issued(kind);
        metrics::tokens_revoked(kind, Revocation::Limit, evicted.len() as u64);
        self.emit(EventDetail::TokenIssued {
            kind,
            subject: caller.subject.clone(),
            token_id: caller.token_id(),
            acting_admin: caller.acting_admin.clone(),
            second_factor: caller.second_factor,
            scopes: caller.scopes.clone(),
            client: caller.client.clone(),
            name: caller.name.clone(),
            expires_at: caller.expires_at,
        });
        for hash in evicted {
            self.emit(EventDetail::TokenRevoked {
                kind,
                subject: caller.subject.clone(),
                token_id: hash.id(),
                reason: RevokeReason::Limit,
                by: None,
            });
        }
        Ok(IssuedToken { token, caller })
    }

    /// Resolves token text to its caller: `Ok(None)` when the token is unknown, expired or
    /// revoked; `Err` when the store could not say.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails or times out.
    pub async fn resolve(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        match self.lookup(token) {
            Resolving::Invalid => Ok(None),
            Resolving::Done(hash, answer) => finish_resolve(hash, answer),
            Resolving::Pending(hash, answer) => finish_resolve(hash, answer.await),
        }
    }

    /// Looks token text up as [`resolve`](TokenRegistry::resolve) does, with the same
    /// expiry checks, but records no use of it: its
    /// [`last_used_at`](Caller::last_used_at) stays as it is and its idle timeout is not
    /// extended. For token introspection (RFC 7662), where a resource server asks about a
    /// token that its owner did not use.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::{TokenKind, TokenRegistry};
    ///
    /// let registry = TokenRegistry::memory();
    /// let issued = registry.issue(TokenKind::Customer, "ada").await?;
    /// let token = issued.token.expose();
    ///
    /// let seen = registry.inspect(token).await?.expect("live token");
    /// assert_eq!(seen, issued.caller, "as issued: no use recorded");
    ///
    /// registry.revoke(token).await?;
    /// assert_eq!(registry.inspect(token).await?, None);
    /// assert_eq!(registry.inspect("not a token").await?, None);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails or times out.
    pub async fn inspect(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        if !self.may_be_live(token) {
            debug!(outcome = "malformed", "token refused without lookup");
            return Ok(None);
        }
        let hash = TokenHash::of(token);
        #[cfg(feature = "introspection-client")]
        if let Some(remote) = &self.remote {
            return finish_resolve(hash, remote.introspect_hashed(token, hash).await);
        }
        finish_resolve(hash, self.store.get(hash, RECORD_NO_USE).await)
    }

    /// Starts a resolve: the part that needs the token text (shape check, hash) runs now,
    /// the store's answer comes as a `'static` future the layer can hold.
    pub(crate) fn lookup(&self, token: &str) -> Resolving {
        if !self.may_be_live(token) {
            debug!(outcome = "malformed", "token refused without lookup");
            return Resolving::Invalid;
        }
        let hash = TokenHash::of(token);
        #[cfg(feature = "introspection-client")]
        if let Some(remote) = &self.remote {
            return Resolving::Pending(hash, remote.introspect_hashed(token, hash));
        }
        match self.store.lookup(hash, self.sessions.last_used_interval()) {
            store::Lookup::Done(answer) => Resolving::Done(hash, answer),
            store::Lookup::Pending(future) => Resolving::Pending(hash, future),
        }
    }

    /// Revokes one token. Returns whether it was live.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails.
    pub async fn revoke(&self, token: &str) -> Result<bool, StoreError> {
        if !self.may_be_live(token) {
            return Ok(false);
        }
        self.revoke_hash(TokenHash::of(token)).await
    }

    /// Revokes one token by its hash (e.g. [`Caller::token_hash`]). Returns whether it was live.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails.
    pub async fn revoke_hash(&self, hash: TokenHash) -> Result<bool, StoreError> {
        self.revoke_for(hash, RevokeReason::One).await
    }

    async fn revoke_for(&self, hash: TokenHash, reason: RevokeReason) -> Result<bool, StoreError> {
        let removed = self.store.remove(hash).await?;
        let live = removed.filter(|caller| !caller.is_expired_at(Utc::now()));
        debug!(token_id = %hash.id(), live = live.is_some(), "token revoked");
        let Some(caller) = live else {
            return Ok(false);
        };
        metrics::tokens_revoked(caller.kind, reason.into(), 1);
        self.emit(EventDetail::TokenRevoked {
            kind: caller.kind,
            subject: caller.subject,
            token_id: hash.id(),
            reason,
            by: self.actor(),
        });
        Ok(true)
    }

    /// Revokes every token of `subject` of `kind` (Magento's revoke-customer-token).
    /// Returns how many live tokens were revoked.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails.
    pub async fn revoke_all(&self, kind: TokenKind, subject: &str) -> Result<u64, StoreError> {
        let count = self.store.remove_subject(kind, subject.to_owned()).await?;
        metrics::tokens_revoked(kind, Revocation::All, count);
        self.emit(EventDetail::AllTokensRevoked {
            kind,
            subject: subject.to_owned(),
            count,
            by: self.actor(),
        });
        Ok(count)
    }

    /// The live tokens of `subject` of `kind`, newest first: what they record, never a
    /// secret.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::store::StoreError> {
    /// use tower_bearer::{TokenKind, TokenRegistry};
    ///
    /// let registry = TokenRegistry::memory();
    /// let first = registry.issue(TokenKind::Customer, "ada").await?;
    /// let second = registry.issue(TokenKind::Customer, "ada").await?;
    /// registry.revoke(first.token.expose()).await?;
    /// let listed = registry.list(TokenKind::Customer, "ada").await?;
    /// assert_eq!(listed, [second.caller]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails.
    pub async fn list(&self, kind: TokenKind, subject: &str) -> Result<Vec<Caller>, StoreError> {
        let now = Utc::now();
        let mut callers = self.store.list(kind, subject.to_owned()).await?;
        callers.retain(|caller| !caller.is_expired_at(now));
        callers.sort_by(|a, b| {
            b.issued_at
                .cmp(&a.issued_at)
                .then(a.token_hash.cmp(&b.token_hash))
        });
        Ok(callers)
    }

    /// Revokes every live token of `subject` of `kind` but the one hashed `keep` (the
    /// caller's own: "sign out everywhere else"). Returns how many were revoked.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails (the tokens revoked so far stay revoked).
    pub async fn revoke_all_but(
        &self,
        kind: TokenKind,
        subject: &str,
        keep: TokenHash,
    ) -> Result<u64, StoreError> {
        let mut revoked = 0;
        for caller in self.store.list(kind, subject.to_owned()).await? {
            if caller.token_hash != keep
                && self
                    .revoke_for(caller.token_hash, RevokeReason::OthersSignedOut)
                    .await?
            {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Revokes the token whose [`TokenId`](crate::token::TokenId) is `token_id`, if it is one
    /// of the live tokens of `subject` of `kind`: an id of anybody else's token revokes
    /// nothing. Returns whether one was revoked.
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails.
    pub async fn revoke_by_id(
        &self,
        kind: TokenKind,
        subject: &str,
        token_id: &str,
    ) -> Result<bool, StoreError> {
        let found = self
            .store
            .list(kind, subject.to_owned())
            .await?
            .into_iter()
            .find(|caller| caller.token_id().as_str() == token_id);
        match found {
            Some(caller) => self.revoke_for(caller.token_hash, RevokeReason::ById).await,
            None => Ok(false),
        }
    }
}

/// Applies the wall-clock expiry check on top of the store's own expiry, and logs the
/// outcome (never the token).
///
/// This check is THE guard on expiry: every resolve, the layer's included, passes here,
/// whatever the store. A store's own expiry is only housekeeping: Redis keeps a record a
/// few milliseconds past `expires_at` (its `PX` counts from when the write lands), and the
/// Redis store's local cache keeps an entry for its TTL, not until the token expires.
pub(crate) fn finish_resolve(
    hash: TokenHash,
    answer: Result<Option<Caller>, StoreError>,
) -> Result<Option<Caller>, StoreError> {
    match answer {
        Ok(Some(caller)) if !caller.is_expired_at(Utc::now()) => {
            debug!(token_id = %hash.id(), kind = %caller.kind, outcome = "valid", "token resolved");
            Ok(Some(caller))
        }
        Ok(Some(caller)) => {
            debug!(token_id = %hash.id(), kind = %caller.kind, outcome = "expired", "token resolved");
            Ok(None)
        }
        Ok(None) => {
            debug!(token_id = %hash.id(), outcome = "unknown", "token resolved");
            Ok(None)
        }
        Err(error) => {
            warn!(token_id = %hash.id(), outcome = "store_error", %error, "token store failed");
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn caller_expiring_at(expires_at: chrono::DateTime<Utc>) -> Caller {
        Caller {
            kind: TokenKind::Customer,
            subject: "ada".to_owned(),
            issued_at: expires_at - TimeDelta::hours(1),
            expires_at: Some(expires_at),
            name: None,
            acting_admin: None,
            second_factor: None,
            last_used_at: None,
            idle_timeout: None,
            scopes: Default::default(),
            client: Default::default(),
            token_hash: TokenHash::of("ada's token"),
        }
    }

    /// What a registry was built with is what it reports, and its `Debug` shows the
    /// settings, never the store's contents.
    #[tokio::test]
    async fn a_registry_reports_its_settings_and_debug_shows_only_them() {
        let lifetimes = Lifetimes::default()
            .with_customer(std::time::Duration::from_secs(900))
            .expect("15 minutes is a valid lifetime");
        let rules = SessionRules::default()
            .with_idle_timeout(TokenKind::Customer, std::time::Duration::from_secs(600))
            .expect("10 minutes is a valid idle timeout");
        let registry = TokenRegistry::memory()
            .with_lifetimes(lifetimes)
            .with_session_rules(rules.clone());
        assert_eq!(registry.lifetimes(), &lifetimes);
        assert_eq!(registry.session_rules(), &rules);
        assert!(registry.sign_in_store().is_some());
        assert!(
            TokenRegistry::tokens_only(MemoryStore::new())
                .sign_in_store()
                .is_none()
        );

        let issued = registry.issue(TokenKind::Customer, "ada").await;
        let issued = issued.expect("the memory store issues");
        let shown = format!("{registry:?}");
        assert!(
            shown.starts_with("TokenRegistry { lifetimes: ") && shown.ends_with(", .. }"),
            "{shown}"
        );
        assert!(shown.contains(&format!("{lifetimes:?}")), "{shown}");
        assert!(shown.contains(&format!("{rules:?}")), "{shown}");
        assert!(!shown.contains("ada"), "{shown}");
        assert!(!shown.contains(issued.token.expose()), "{shown}");
    }

    /// Setting a kind's format replaces that kind's only, and Magento's format is the
    /// absence of a setting.
    #[test]
    fn a_format_set_for_a_kind_replaces_that_kinds_and_leaves_the_others() {
        let shop = TokenFormat::prefixed("shop").expect("a valid prefix");
        let store = TokenFormat::prefixed("store").expect("a valid prefix");
        let registry = TokenRegistry::memory()
            .with_format(TokenKind::Admin, shop)
            .with_format(TokenKind::Admin, store.clone());
        assert_eq!(registry.format(TokenKind::Admin), &store);
        assert_eq!(registry.format(TokenKind::Customer), &TokenFormat::Magento);
        assert_eq!(
            registry.format(TokenKind::Integration),
            &TokenFormat::integration()
        );

        let registry = registry.with_format(TokenKind::Admin, TokenFormat::Magento);
        assert_eq!(registry.format(TokenKind::Admin), &TokenFormat::Magento);
        assert_eq!(
            registry.formats.len(),
            1,
            "only the integration format is set"
        );
    }

    #[test]
    fn a_record_the_store_returns_past_its_expiry_is_refused() {
        let expired = caller_expiring_at(Utc::now() - TimeDelta::milliseconds(1));
        let answer = finish_resolve(expired.token_hash, Ok(Some(expired)));
        assert_eq!(answer.ok(), Some(None));
    }

    #[test]
    fn a_record_before_its_expiry_is_accepted() {
        let live = caller_expiring_at(Utc::now() + TimeDelta::seconds(60));
        let answer = finish_resolve(live.token_hash, Ok(Some(live.clone())));
        assert_eq!(answer.ok(), Some(Some(live)));
    }
}
