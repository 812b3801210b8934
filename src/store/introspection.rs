//! [`IntrospectionClient`]: tokens resolved by another service's introspection endpoint
//! (RFC 7662), for a service that cannot reach the token store itself.
//!
//! The other service (the one that issues the tokens) serves
//! `POST /V1/integration/token/introspect`. This client sends it each token it is asked
//! about, with a token of its own that grants the `introspect` scope, and maps the answer
//! to a [`Caller`]. It fails closed as the Redis store does: an unreachable server, a
//! timeout, any status but 200 (a refusal of the client's own token included) or an
//! answer it cannot use is a [`StoreError`] (the layer answers 503), `{"active": false}`
//! is an unknown token (401).
//!
//! Introspection needs the token's text, which a [`TokenStore`] never sees (it gets the
//! hash): a registry made with
//! [`TokenRegistry::introspecting`](crate::TokenRegistry::introspecting) hands the text to
//! this client instead of asking its store. Its store is a read-only stand-in: issuing,
//! revoking and listing fail with a [`StoreError`], since tokens are issued and revoked on
//! the introspection server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;

use super::{StoreError, StoreFuture, SubjectLimit, TokenStore};
use crate::token::{Caller, ConfigError, Scopes, Token, TokenHash, TokenKind};

/// The largest introspection answer read, in bytes: a live token's answer is a few hundred
/// bytes (64 scopes of 128 bytes at most: about 8 KiB). A longer one is an error.
pub const MAX_INTROSPECTION_ANSWER: usize = 16 * 1024;

/// How long an idle connection to the introspection server is kept for the next call.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Settings of an [`IntrospectionClient`]: where the introspection endpoint is, the
/// client's own token, the bound on each call and the cache of active answers.
///
/// The client's token is a secret: `Debug` does not show it.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::store::IntrospectionClientOptions;
///
/// let options = IntrospectionClientOptions::new(
///     "http://auth.internal:8080/rest/V1/integration/token/introspect",
///     "tbi_the-resource-servers-own-token",
/// )
/// .with_timeout(Duration::from_millis(300))
/// .with_cache_ttl(Duration::from_secs(2))
/// .with_cache_max_entries(50_000);
/// assert_eq!(options.timeout(), Duration::from_millis(300));
/// assert!(!format!("{options:?}").contains("tbi_the-resource-servers-own-token"));
/// ```
#[derive(Clone, Debug)]
pub struct IntrospectionClientOptions {
    endpoint: String,
    token: Token,
    timeout: Duration,
    cache_ttl: Duration,
    cache_max_entries: u64,
}

impl IntrospectionClientOptions {
    /// The introspection endpoint, an absolute `http://` URL (the issuing service's
    /// `…/V1/integration/token/introspect`, with its REST root), and this client's own
    /// token, which must grant the `introspect` scope there. Defaults: a 500 ms bound on
    /// each call, active answers cached for 5 s, at most 100 000 of them.
    pub fn new(endpoint: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            token: Token::from_text(token.into()),
            timeout: Duration::from_millis(500),
            cache_ttl: Duration::from_secs(5),
            cache_max_entries: 100_000,
        }
    }

    /// The longest one introspection may take, connecting and reading the answer included
    /// (default 500 ms). Past it the lookup fails with [`StoreError::Timeout`] and the
    /// request gets a 503.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long an active answer is served from memory without asking again (default 5 s;
    /// [`Duration::ZERO`]: no cache). Never past the token's `exp`. This is the bound on
    /// how long a token revoked on the introspection server still works here. Inactive
    /// answers and failures are never cached.
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// The most active answers cached (default 100 000, a few hundred bytes each; 0: no
    /// cache); the least useful are evicted first.
    pub fn with_cache_max_entries(mut self, max_entries: u64) -> Self {
        self.cache_max_entries = max_entries;
        self
    }

    /// The introspection endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How long an active answer may be cached (zero: no cache).
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl
    }

    /// The capacity of the cache (0: no cache).
    pub fn cache_max_entries(&self) -> u64 {
        self.cache_max_entries
    }
}

/// A client of another service's token introspection endpoint (RFC 7662), with a bounded
/// cache of active answers. Cheap to clone (an `Arc`): clones share the connection pool
/// and the cache.
///
/// Put it behind a registry with
/// [`TokenRegistry::introspecting`](crate::TokenRegistry::introspecting), and that registry
/// behind [`BearerAuthLayer`](crate::BearerAuthLayer): the layer then accepts the tokens
/// the other service issued.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_bearer::store::{IntrospectionClient, IntrospectionClientOptions};
///
/// let client = IntrospectionClient::new(IntrospectionClientOptions::new(
///     "http://auth.internal:8080/rest/V1/integration/token/introspect",
///     std::env::var("INTROSPECTION_TOKEN")?,
/// ))?;
/// let active = client.introspect("abcdefghijklmnopqrstuvwxyz012345").await?;
/// let subject = active.map(|caller| caller.subject); // None: not an active token
/// # Ok(()) }
/// ```
///
/// Only `http://` is spoken: to reach the server over TLS, go through a local
/// TLS-terminating proxy (a sidecar) or a private network. Every call is bounded by
/// [`IntrospectionClientOptions::with_timeout`]; connections are kept alive and reused.
/// It needs a Tokio runtime (with I/O) to run its calls.
///
/// What the answer must hold for an active token: `sub`, `kind` (`customer`, `admin` or
/// `integration`) and `iat`; `exp`, `scope`, `acting_admin` and `token_id` when they
/// apply. An answer that lacks one, has another `kind`, a malformed `scope`, or a
/// `token_id` of another token is an error, never a caller.
#[derive(Clone)]
pub struct IntrospectionClient {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Uri,
    authorization: HeaderValue,
    timeout: Duration,
    http: Client<HttpConnector, Full<Bytes>>,
    cache: Option<moka::sync::Cache<TokenHash, Entry>>,
    cache_ttl: Duration,
}

impl std::fmt::Debug for IntrospectionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionClient")
            .field("endpoint", &self.inner.endpoint)
            .field("timeout", &self.inner.timeout)
            .field("cache", &self.inner.cache.is_some())
            .finish_non_exhaustive()
    }
}

/// A cached active answer, and how long it may stay: the cache's TTL, or less if the token
/// expires sooner.
#[derive(Clone)]
struct Entry {
    caller: Caller,
    lifetime: Duration,
}

/// Lets each cached answer live for its own [`Entry::lifetime`].
struct EntryExpiry;

impl moka::Expiry<TokenHash, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _hash: &TokenHash,
        entry: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.lifetime)
    }

    fn expire_after_update(
        &self,
        _hash: &TokenHash,
        entry: &Entry,
        _updated_at: Instant,
        _until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.lifetime)
    }
}

impl IntrospectionClient {
    /// A client as `options` describe.
    ///
    /// ```
    /// use tower_bearer::store::{IntrospectionClient, IntrospectionClientOptions};
    ///
    /// let options = IntrospectionClientOptions::new("https://auth.example.com/introspect", "t");
    /// assert!(IntrospectionClient::new(options).is_err(), "TLS needs a terminating proxy");
    /// let options = IntrospectionClientOptions::new("http://127.0.0.1:8080/introspect", "t");
    /// assert!(IntrospectionClient::new(options).is_ok());
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::InvalidIntrospectionClient`] when the endpoint is not an absolute
    /// `http://` URL with a host, or the token is empty or cannot be sent in a header.
    pub fn new(options: IntrospectionClientOptions) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidIntrospectionClient {
            reason: reason.to_owned(),
        };
        let endpoint: Uri = options
            .endpoint
            .parse()
            .map_err(|_| invalid("the endpoint is not a URL"))?;
        match endpoint.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "the endpoint must be an http:// URL: for TLS, go through a local \
                     TLS-terminating proxy",
                ));
            }
            _ => return Err(invalid("the endpoint must be an absolute http:// URL")),
        }
        if endpoint.host().is_none_or(str::is_empty) {
            return Err(invalid("the endpoint has no host"));
        }
        if endpoint
            .authority()
            .is_some_and(|authority| authority.as_str().contains('@'))
        {
            return Err(invalid(
                "the endpoint must not hold credentials: the client authenticates with its token",
            ));
        }
        let token = options.token.expose();
        if token.is_empty() {
            return Err(invalid("the client token is empty"));
        }
        let mut authorization = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| invalid("the client token cannot be sent in a header"))?;
        authorization.set_sensitive(true);

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(options.timeout));
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        let cache = (!options.cache_ttl.is_zero() && options.cache_max_entries > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(options.cache_max_entries)
                .expire_after(EntryExpiry)
                .build()
        });
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                authorization,
                timeout: options.timeout,
                http,
                cache,
                cache_ttl: options.cache_ttl,
            }),
        })
    }
}

impl IntrospectionClient {
    /// Asks the introspection server about `token`: its caller when the token is active,
    /// `None` when it is not (unknown, expired, revoked: the server does not say which).
    /// An active answer still in the cache is served without asking; an inactive one is
    /// never cached, so made-up tokens cost a request each but no memory.
    ///
    /// The caller is what the answer shows: `sub`, `kind`, `iat`, `exp` (when it expires
    /// unless used before, to the second), `scope`, `acting_admin`; its
    /// [`token_hash`](Caller::token_hash) is the hash of `token`. The expiry is not checked
    /// here but by the registry, on every answer, cached or not.
    ///
    /// # Errors
    /// [`StoreError::Timeout`] when the server does not answer within the bound;
    /// [`StoreError::Backend`] when it cannot be reached, answers anything but 200 (a 401
    /// or 403 means it refused this client's own token, also logged as an error), or
    /// answers something unusable (not JSON, longer than [`MAX_INTROSPECTION_ANSWER`], an
    /// active token without `sub`, `kind` or `iat`, an unknown `kind`, a malformed `scope`,
    /// the `token_id` of another token).
    pub fn introspect(&self, token: &str) -> StoreFuture<Option<Caller>> {
        self.introspect_hashed(token, TokenHash::of(token))
    }

    /// [`IntrospectionClient::introspect`], with the hash of `token` already computed.
    pub(crate) fn introspect_hashed(
        &self,
        token: &str,
        hash: TokenHash,
    ) -> StoreFuture<Option<Caller>> {
        if let Some(entry) = self.inner.cache.as_ref().and_then(|cache| cache.get(&hash)) {
            return Box::pin(std::future::ready(Ok(Some(entry.caller))));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let answer = match tokio::time::timeout(inner.timeout, inner.ask(body)).await {
                Ok(answer) => answer?,
                Err(_) => return Err(StoreError::Timeout(inner.timeout)),
            };
            let caller = answer.into_caller(hash)?;
            if let (Some(caller), Some(cache)) = (&caller, &inner.cache)
                && let Some(lifetime) = cache_lifetime(caller, inner.cache_ttl, Utc::now())
            {
                let caller = caller.clone();
                cache.insert(hash, Entry { caller, lifetime });
            }
            Ok(caller)
        })
    }

    /// How many active answers the cache holds (approximate; 0 without a cache), for
    /// metrics.
    pub fn cached_answers(&self) -> u64 {
        self.inner.cache.as_ref().map_or(0, |cache| {
            cache.run_pending_tasks();
            cache.entry_count()
        })
    }
}

impl Inner {
    /// One request and its answer, read whole (bounded), unbounded in time: the caller
    /// bounds it.
    async fn ask(&self, body: String) -> Result<Answer, Failure> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body)))
            .map_err(Failure::Request)?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(Failure::Unreachable)?;
        let status = response.status();
        if status != StatusCode::OK {
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                tracing::error!(
                    status = status.as_u16(),
                    endpoint = %self.endpoint,
                    "the introspection server refused this service's own token: check the \
                     client token, and that it grants the `introspect` scope"
                );
            }
            return Err(Failure::Status(status));
        }
        let body = Limited::new(response.into_body(), MAX_INTROSPECTION_ANSWER)
            .collect()
            .await
            .map_err(|error| {
                if error.downcast_ref::<LengthLimitError>().is_some() {
                    Failure::TooLarge
                } else {
                    Failure::Body(error)
                }
            })?
            .to_bytes();
        serde_json::from_slice(&body).map_err(Failure::Json)
    }
}

/// How long `caller` may stay cached from `now`: the TTL, or until its `exp` if sooner;
/// `None` when it expires now or has expired.
fn cache_lifetime(caller: &Caller, ttl: Duration, now: DateTime<Utc>) -> Option<Duration> {
    let left = match caller.expires_at {
        None => ttl,
        Some(expires_at) => (expires_at - now).to_std().ok()?.min(ttl),
    };
    (!left.is_zero()).then_some(left)
}

/// An introspection answer (RFC 7662 §2.2), as the issuing service writes it. Every field
/// but `active` may be absent; which an active token needs is checked by
/// [`Answer::into_caller`].
#[derive(Deserialize)]
struct Answer {
    active: bool,
    sub: Option<String>,
    kind: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    scope: Option<String>,
    acting_admin: Option<String>,
    token_id: Option<String>,
}

impl Answer {
    /// The caller an active answer describes for the token hashed `hash`; `None` for an
    /// inactive one.
    fn into_caller(self, hash: TokenHash) -> Result<Option<Caller>, Failure> {
        if !self.active {
            return Ok(None);
        }
        let subject = self
            .sub
            .filter(|subject| !subject.is_empty())
            .ok_or(Failure::Unusable("an active token without `sub`"))?;
        let kind: TokenKind = self
            .kind
            .ok_or(Failure::Unusable("an active token without `kind`"))?
            .parse()
            .map_err(|_| Failure::Unusable("an unknown `kind`"))?;
        let issued_at = self
            .iat
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .ok_or(Failure::Unusable("an active token without a valid `iat`"))?;
        let expires_at = match self.exp {
            None => None,
            Some(seconds) => Some(
                DateTime::from_timestamp(seconds, 0)
                    .ok_or(Failure::Unusable("an `exp` out of range"))?,
            ),
        };
        let scopes = match self.scope {
            None => Scopes::default(),
            Some(text) => Scopes::parse(&text).map_err(Failure::Scope)?,
        };
        if self
            .token_id
            .is_some_and(|token_id| token_id != hash.id().as_str())
        {
            return Err(Failure::Unusable("the `token_id` of another token"));
        }
        let mut caller =
            Caller::new(kind, subject, hash, issued_at, expires_at).with_scopes(scopes);
        if let Some(admin) = self.acting_admin {
            caller = caller.with_acting_admin(admin);
        }
        Ok(Some(caller))
    }
}

/// Why an introspection failed (the source of the [`StoreError::Backend`]).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(
        "the token store of an introspecting registry is read-only: tokens are issued and \
         revoked by the introspection server"
    )]
    ReadOnly,
    #[error(
        "the token store of an introspecting registry cannot look a token up by its hash: \
         the registry sends the token's text to the introspection server"
    )]
    NeedsText,
    #[error("the introspection request could not be built: {0}")]
    Request(#[source] http::Error),
    #[error("the introspection server could not be reached: {0}")]
    Unreachable(#[source] hyper_util::client::legacy::Error),
    #[error("the introspection server answered {0}")]
    Status(StatusCode),
    #[error("the introspection answer is longer than {MAX_INTROSPECTION_ANSWER} bytes")]
    TooLarge,
    #[error("the introspection answer could not be read: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the introspection answer is not RFC 7662 JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the introspection answer has a malformed `scope`: {0}")]
    Scope(#[source] crate::token::InvalidScope),
    #[error("the introspection answer is unusable: {0}")]
    Unusable(&'static str),
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        StoreError::Backend(Box::new(failure))
    }
}

/// The store of a registry made with
/// [`TokenRegistry::introspecting`](crate::TokenRegistry::introspecting): tokens live on
/// the introspection server, so every verb fails with a [`StoreError`] saying so. The
/// registry resolves tokens through its [`IntrospectionClient`], never through this.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadOnly;

fn refused<T: Send + 'static>(failure: Failure) -> StoreFuture<T> {
    Box::pin(std::future::ready(Err(failure.into())))
}

impl TokenStore for ReadOnly {
    fn insert(
        &self,
        _: Caller,
        _: Option<Duration>,
        _: SubjectLimit,
    ) -> StoreFuture<Vec<TokenHash>> {
        refused(Failure::ReadOnly)
    }

    fn get(&self, _: TokenHash, _: Duration) -> StoreFuture<Option<Caller>> {
        refused(Failure::NeedsText)
    }

    fn remove(&self, _: TokenHash) -> StoreFuture<Option<Caller>> {
        refused(Failure::ReadOnly)
    }

    fn remove_subject(&self, _: TokenKind, _: String) -> StoreFuture<u64> {
        refused(Failure::ReadOnly)
    }

    fn list(&self, _: TokenKind, _: String) -> StoreFuture<Vec<Caller>> {
        refused(Failure::ReadOnly)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;

    fn answer(value: serde_json::Value) -> Answer {
        serde_json::from_value(value).expect("an answer")
    }

    #[test]
    fn an_active_answer_maps_to_its_caller() {
        let hash = TokenHash::of("the token");
        let caller = answer(json!({
            "active": true, "token_type": "Bearer", "sub": "catalog", "kind": "admin",
            "scope": "b::x a::y", "iat": 1_700_000_000, "exp": 1_700_014_400,
            "token_id": hash.id().as_str(), "acting_admin": null,
        }))
        .into_caller(hash)
        .expect("usable")
        .expect("active");
        assert_eq!(caller.subject, "catalog");
        assert_eq!(caller.kind, TokenKind::Admin);
        assert_eq!(
            caller.scopes,
            Scopes::new(["a::y", "b::x"]).expect("scopes")
        );
        assert_eq!(caller.issued_at.timestamp(), 1_700_000_000);
        assert_eq!(
            caller.expires_at.map(|at| at.timestamp()),
            Some(1_700_014_400)
        );
        assert_eq!(caller.token_hash, hash);
        assert_eq!(caller.acting_admin, None);
    }

    #[test]
    fn an_inactive_answer_is_no_caller() {
        let found = answer(json!({ "active": false })).into_caller(TokenHash::of("t"));
        assert!(matches!(found, Ok(None)));
    }

    #[test]
    fn unusable_active_answers_are_errors() {
        let hash = TokenHash::of("t");
        let base = json!({ "active": true, "sub": "ada", "kind": "customer", "iat": 1 });
        assert!(matches!(
            answer(base.clone()).into_caller(hash),
            Ok(Some(_))
        ));
        let spoil = |field: &str, value: serde_json::Value| {
            let mut spoiled = base.clone();
            spoiled[field] = value;
            answer(spoiled).into_caller(hash)
        };
        for (field, value) in [
            ("kind", json!("robot")),
            ("kind", json!(null)),
            ("sub", json!(null)),
            ("sub", json!("")),
            ("iat", json!(null)),
            ("scope", json!("has\"quote")),
            ("token_id", json!("000000000000")),
            ("exp", json!(i64::MAX)),
        ] {
            assert!(spoil(field, value.clone()).is_err(), "{field}: {value}");
        }
    }

    #[test]
    fn a_cached_answer_lives_the_ttl_but_never_past_its_expiry() {
        let now = Utc::now();
        let ttl = Duration::from_secs(5);
        let caller = |expires_at| {
            Caller::new(
                TokenKind::Customer,
                "ada",
                TokenHash::of("t"),
                now,
                expires_at,
            )
        };
        assert_eq!(cache_lifetime(&caller(None), ttl, now), Some(ttl));
        assert_eq!(
            cache_lifetime(&caller(Some(now + TimeDelta::hours(1))), ttl, now),
            Some(ttl)
        );
        assert_eq!(
            cache_lifetime(&caller(Some(now + TimeDelta::seconds(2))), ttl, now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(cache_lifetime(&caller(Some(now)), ttl, now), None);
        assert_eq!(
            cache_lifetime(&caller(Some(now - TimeDelta::seconds(1))), ttl, now),
            None
        );
    }
}
