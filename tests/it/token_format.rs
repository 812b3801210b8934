//! The identifiable token format: prefixed tokens with a checksum are issued and accepted,
//! and one that fails its checksum is refused without a store round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use tower::ServiceExt;
use tower_bearer::store::{MemoryStore, StoreFuture, SubjectLimit, TokenStore};
use tower_bearer::token::{TokenFormat, TokenHash};
use tower_bearer::{BearerAuthLayer, Caller, TokenKind, TokenRegistry};

use crate::support::TestRedis;

/// A memory store that counts the reads the layer makes.
#[derive(Clone, Default)]
struct CountingStore {
    inner: MemoryStore,
    reads: Arc<AtomicUsize>,
}

impl TokenStore for CountingStore {
    fn insert(
        &self,
        caller: Caller,
        ttl: Option<Duration>,
        limit: SubjectLimit,
    ) -> StoreFuture<Vec<TokenHash>> {
        self.inner.insert(caller, ttl, limit)
    }

    fn get(&self, hash: TokenHash, record_use_every: Duration) -> StoreFuture<Option<Caller>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(hash, record_use_every)
    }

    fn remove(&self, hash: TokenHash) -> StoreFuture<Option<Caller>> {
        self.inner.remove(hash)
    }

    fn remove_subject(&self, kind: TokenKind, subject: String) -> StoreFuture<u64> {
        self.inner.remove_subject(kind, subject)
    }

    fn list(&self, kind: TokenKind, subject: String) -> StoreFuture<Vec<Caller>> {
        self.inner.list(kind, subject)
    }
}

fn admin_prefixed(registry: TokenRegistry) -> TokenRegistry {
    registry.with_format(TokenKind::Admin, TokenFormat::prefixed("shopadm").unwrap())
}

async fn status_of(registry: &TokenRegistry, token: &str) -> (StatusCode, Option<String>) {
    let app = Router::new()
        .route("/", get(|caller: Caller| async move { caller.subject }))
        .layer(BearerAuthLayer::required(registry.clone()));
    let request = Request::get("/")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status(), challenge)
}

/// `text` with its last character changed: a typo the checksum catches.
fn mistyped(text: &str) -> String {
    let mut typo = text.to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    typo
}

#[tokio::test]
async fn a_token_failing_its_checksum_is_refused_without_asking_the_store() {
    let store = CountingStore::default();
    let registry = admin_prefixed(TokenRegistry::tokens_only(store.clone()));
    let issued = registry.issue(TokenKind::Admin, "root").await.unwrap();
    let text = issued.token.expose();
    assert!(text.starts_with("shopadm_"), "{text}");

    assert_eq!(status_of(&registry, text).await.0, StatusCode::OK);
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);

    let (status, challenge) = status_of(&registry, &mistyped(text)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    let made_up = format!("shopadm_{}", "A".repeat(36));
    assert_eq!(
        status_of(&registry, &made_up).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        1,
        "neither the typo nor the forgery reached the store"
    );

    // A Magento-shaped token may be live (another kind's, or one issued before the format
    // changed): that one is looked up.
    let unknown = "0123456789abcdefghijklmnopqrstuv";
    assert_eq!(
        status_of(&registry, unknown).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn customers_keep_magentos_format_while_admins_are_prefixed() {
    let registry = admin_prefixed(TokenRegistry::memory());
    let customer = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(tower_bearer::token::Token::has_issued_shape(
        customer.token.expose()
    ));
    assert_eq!(
        status_of(&registry, customer.token.expose()).await.0,
        StatusCode::OK
    );

    // Tokens issued before a kind's format changed stay valid.
    let before = TokenRegistry::new(MemoryStore::new());
    let old = before.issue(TokenKind::Admin, "root").await.unwrap();
    let after = admin_prefixed(before);
    assert_eq!(
        status_of(&after, old.token.expose()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn prefixed_tokens_are_issued_resolved_and_revoked_in_redis() {
    let redis = TestRedis::start();
    let registry = admin_prefixed(redis.registry().await);
    let issued = registry.issue(TokenKind::Admin, "root").await.unwrap();
    assert_eq!(
        status_of(&registry, issued.token.expose()).await.0,
        StatusCode::OK
    );
    assert!(registry.revoke(issued.token.expose()).await.unwrap());
    assert_eq!(
        status_of(&registry, issued.token.expose()).await.0,
        StatusCode::UNAUTHORIZED
    );
}
