//! Token introspection (RFC 7662) over HTTP, `POST /V1/integration/token/introspect`, on
//! every store: what a live token's answer shows, `{"active": false}` and nothing else for
//! any token that does not work, the form and JSON bodies, who may ask, the refusals of bad
//! bodies, a store failure as a 503 (never `active: false`), and that introspecting a token
//! records no use of it (its `last_used_at` and idle timeout stay as they were).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tower_bearer::magento::integrations::INTEGRATIONS_SUBJECT;
use tower_bearer::magento::{INTROSPECT, rest};
use tower_bearer::registry::{IssueRequest, SessionRules};
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};
use tower_bearer::store::{
    CacheOptions, MemoryStore, RedisStore, RedisStoreOptions, StoreError, StoreFuture,
    SubjectLimit, TokenStore,
};
use tower_bearer::token::{Scopes, TokenHash};
use tower_bearer::{Caller, SignIn, TokenKind, TokenRegistry};

use crate::support::{Make, RedisServer, TestRedis, serve, store_suite, wait_until};

const ROUTE: &str = "/V1/integration/token/introspect";
const FORM: &str = "application/x-www-form-urlencoded";
const PRODUCTS: &str = "Magento_Catalog::products";
const CUSTOMER: &str = "ada@example.com";

store_suite! {
    stores: [memory, redis],
    cases: [
        a_live_tokens_answer_shows_what_it_records,
        revoked_expired_unknown_and_malformed_tokens_are_only_inactive,
        form_and_json_bodies_name_the_token_and_the_hint_is_ignored,
        only_a_token_granting_introspect_may_ask,
        bad_bodies_are_refused_before_any_lookup,
        a_store_failure_is_a_503_never_inactive,
        introspecting_records_no_use_of_the_token,
        introspecting_does_not_keep_an_idle_token_alive,
    ],
}

/// A store and whatever must outlive it (the Redis server).
struct Fixture {
    /// A registry over the store, with its sign-in side.
    registry: TokenRegistry,
    /// The same store, to wrap in a [`FailingGets`].
    store: Arc<dyn TokenStore>,
    _redis: Option<TestRedis>,
}

async fn memory(_: ()) -> Fixture {
    let store = MemoryStore::new();
    Fixture {
        registry: TokenRegistry::new(store.clone()),
        store: Arc::new(store),
        _redis: None,
    }
}

async fn redis(_: ()) -> Fixture {
    let redis = TestRedis::start();
    let store = redis.store().await;
    Fixture {
        registry: TokenRegistry::new(store.clone()),
        store: Arc::new(store),
        _redis: Some(redis),
    }
}

/// The REST routes over `registry`, with the admins `admin` (every scope) and `catalog`
/// (products only), and a customer.
struct App {
    base: String,
    registry: TokenRegistry,
    client: reqwest::Client,
}

/// An answer: status, headers and JSON body (`Null` when not JSON).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap_or("<not text>"))
    }

    /// The reply is `{"active": false}`, exactly: 200, nothing else in it, not cached.
    #[track_caller]
    fn assert_inactive(&self, what: &str) {
        assert_eq!(self.status, StatusCode::OK, "{what}: {}", self.body);
        assert_eq!(self.body, json!({ "active": false }), "{what}");
        assert_eq!(self.header(CACHE_CONTROL), Some("no-store"), "{what}");
    }

    /// The reply is an active token's answer (200, not cached); returns its fields.
    #[track_caller]
    fn assert_active(&self, what: &str) -> &serde_json::Map<String, Value> {
        assert_eq!(self.status, StatusCode::OK, "{what}: {}", self.body);
        assert_eq!(self.body["active"], json!(true), "{what}: {}", self.body);
        assert_eq!(self.header(CACHE_CONTROL), Some("no-store"), "{what}");
        self.body.as_object().unwrap()
    }

    /// The reply is a refusal with `status` and the JSON `message`.
    #[track_caller]
    fn assert_message(&self, status: StatusCode, message: &str, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        assert_eq!(self.body, json!({ "message": message }), "{what}");
    }
}

impl App {
    async fn start(registry: TokenRegistry) -> Self {
        let directory = MemoryDirectory::new();
        directory.add_admin("admin", "admin123").unwrap();
        directory
            .add_admin_with_scopes("catalog", "admin123", Scopes::new([PRODUCTS]).unwrap())
            .unwrap();
        directory
            .add_customer(CUSTOMER, "s3cret", RemoteAssistance::Allowed)
            .unwrap();
        let base = serve(rest::router(SignIn::new(registry.clone(), directory))).await;
        Self {
            base,
            registry,
            client: reqwest::Client::new(),
        }
    }

    /// A token from a sign-in route.
    async fn sign_in(&self, route: &str, username: &str, password: &str) -> String {
        let response = self
            .client
            .post(format!("{}{route}", self.base))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn admin(&self, username: &str) -> String {
        self.sign_in("/V1/integration/admin/token", username, "admin123")
            .await
    }

    /// An integration token holding `scopes`, issued directly.
    async fn integration(&self, name: &str, scopes: &[&str]) -> String {
        let request = IssueRequest::new(TokenKind::Integration, INTEGRATIONS_SUBJECT)
            .with_name(name)
            .with_scopes(Scopes::new(scopes).unwrap());
        let issued = self.registry.issue_request(request).await.unwrap();
        issued.token.expose().to_owned()
    }

    /// The usual client: an integration token granting `introspect` alone.
    async fn introspector(&self) -> String {
        self.integration("resource-server", &[INTROSPECT]).await
    }

    /// `POST` the introspection route with `body` as `content_type` (none when `None`).
    async fn post(&self, bearer: Option<&str>, content_type: Option<&str>, body: String) -> Reply {
        let mut request = self.client.post(format!("{}{ROUTE}", self.base)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// RFC 7662's request: `token=<token>` as a form.
    async fn introspect(&self, bearer: &str, token: &str) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        self.post(Some(bearer), Some(FORM), body).await
    }

    /// The same as JSON, `{"token": …}`.
    async fn introspect_json(&self, bearer: &str, token: &str) -> Reply {
        let body = json!({ "token": token }).to_string();
        self.post(Some(bearer), Some("application/json"), body)
            .await
    }
}

fn keys(fields: &serde_json::Map<String, Value>) -> BTreeSet<&str> {
    fields.keys().map(String::as_str).collect()
}

async fn a_live_tokens_answer_shows_what_it_records(make: impl Make<(), Fixture>) {
    let fixture = make(()).await;
    let app = App::start(fixture.registry.clone()).await;
    let introspector = app.introspector().await;

    // A customer token: a lifetime, no scope, no acting admin.
    let customer = app
        .registry
        .issue(TokenKind::Customer, CUSTOMER)
        .await
        .unwrap();
    let reply = app.introspect(&introspector, customer.token.expose()).await;
    let fields = reply.assert_active("a customer token");
    assert_eq!(
        keys(fields),
        BTreeSet::from([
            "active",
            "token_type",
            "sub",
            "exp",
            "iat",
            "token_id",
            "kind",
            "acting_admin",
        ]),
        "no scope for a token without one: {}",
        reply.body
    );
    let caller = &customer.caller;
    assert_eq!(fields["token_type"], "Bearer");
    assert_eq!(fields["sub"], CUSTOMER);
    assert_eq!(fields["kind"], "customer");
    assert_eq!(fields["iat"], json!(caller.issued_at.timestamp()));
    assert_eq!(
        fields["exp"],
        json!(caller.expires_at.unwrap().timestamp()),
        "the token's expiry, in Unix seconds"
    );
    assert_eq!(
        fields["exp"].as_i64().unwrap() - fields["iat"].as_i64().unwrap(),
        3600,
        "a customer token lives an hour"
    );
    assert_eq!(fields["token_id"], caller.token_id().as_str());
    assert_eq!(fields["acting_admin"], Value::Null);

    // An integration token: scopes, no expiry.
    let integration = app
        .integration("erp-sync", &[PRODUCTS, "Magento_Sales::sales"])
        .await;
    let reply = app.introspect(&introspector, &integration).await;
    let fields = reply.assert_active("an integration token");
    assert_eq!(fields["kind"], "integration");
    assert_eq!(fields["sub"], INTEGRATIONS_SUBJECT);
    assert_eq!(
        fields["scope"], "Magento_Catalog::products Magento_Sales::sales",
        "space-separated, as RFC 6749 writes scopes"
    );
    assert!(
        !fields.contains_key("exp"),
        "a token that never expires has no exp: {}",
        reply.body
    );
    assert!(fields["iat"].is_i64());

    // A customer token an admin obtained on the customer's behalf.
    let on_behalf = app
        .registry
        .issue_on_behalf(CUSTOMER, "admin")
        .await
        .unwrap();
    let reply = app
        .introspect(&introspector, on_behalf.token.expose())
        .await;
    let fields = reply.assert_active("a token issued on behalf");
    assert_eq!(fields["acting_admin"], "admin");
    assert_eq!(fields["sub"], CUSTOMER);
    assert_eq!(fields["token_id"], on_behalf.caller.token_id().as_str());

    // The introspector's own token.
    let reply = app.introspect(&introspector, &introspector).await;
    let fields = reply.assert_active("the caller's own token");
    assert_eq!(fields["scope"], INTROSPECT);
}

async fn revoked_expired_unknown_and_malformed_tokens_are_only_inactive(
    make: impl Make<(), Fixture>,
) {
    let fixture = make(()).await;
    let app = App::start(fixture.registry.clone()).await;
    let introspector = app.introspector().await;

    let revoked = app
        .registry
        .issue(TokenKind::Customer, CUSTOMER)
        .await
        .unwrap();
    app.introspect(&introspector, revoked.token.expose())
        .await
        .assert_active("before the revoke");
    assert!(app.registry.revoke(revoked.token.expose()).await.unwrap());
    app.introspect(&introspector, revoked.token.expose())
        .await
        .assert_inactive("a revoked token");

    let short = IssueRequest::new(TokenKind::Customer, CUSTOMER)
        .with_lifetime(Duration::from_secs(1))
        .unwrap();
    let expiring = app.registry.issue_request(short).await.unwrap();
    app.introspect(&introspector, expiring.token.expose())
        .await
        .assert_active("before its expiry");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    app.introspect(&introspector, expiring.token.expose())
        .await
        .assert_inactive("an expired token");

    // Never issued, though of the right shape; of no known shape at all.
    let unknown = tower_bearer::token::TokenFormat::Magento
        .generate()
        .unwrap();
    app.introspect(&introspector, unknown.expose())
        .await
        .assert_inactive("an unknown token");
    for malformed in ["x", "not a token at all", "tbi_0000", &"z".repeat(5_000)] {
        app.introspect(&introspector, malformed)
            .await
            .assert_inactive(&format!("malformed {:.20}", malformed));
    }
}

async fn form_and_json_bodies_name_the_token_and_the_hint_is_ignored(make: impl Make<(), Fixture>) {
    let fixture = make(()).await;
    let app = App::start(fixture.registry.clone()).await;
    let introspector = app.introspector().await;
    let token = app.integration("erp-sync", &[PRODUCTS]).await;

    let json = app.introspect_json(&introspector, &token).await;
    let form = app.introspect(&introspector, &token).await;
    json.assert_active("JSON");
    form.assert_active("form");
    assert_eq!(json.body, form.body, "one answer whatever the body");

    // Every byte percent-encoded; a charset parameter on the media type; the hint (even
    // a wrong one), before or after the token, and unknown parameters.
    let encoded: String = token.bytes().map(|byte| format!("%{byte:02X}")).collect();
    for (content_type, body) in [
        (FORM, format!("token={encoded}")),
        (
            "application/x-www-form-urlencoded; charset=UTF-8",
            format!("token={token}"),
        ),
        (FORM, format!("token_type_hint=access_token&token={token}")),
        (FORM, format!("token={token}&token_type_hint=refresh_token")),
        (FORM, format!("client_id=rs&token={token}&extra=1")),
        (
            "application/json; charset=utf-8",
            json!({ "token": token, "token_type_hint": "access_token" }).to_string(),
        ),
    ] {
        let reply = app
            .post(Some(&introspector), Some(content_type), body.clone())
            .await;
        reply.assert_active(&format!("{content_type}: {body}"));
        assert_eq!(reply.body, form.body, "{content_type}: {body}");
    }

    // A hint on a token that is not live changes nothing either.
    assert!(app.registry.revoke(&token).await.unwrap());
    let body = format!("token={token}&token_type_hint=access_token");
    app.post(Some(&introspector), Some(FORM), body)
        .await
        .assert_inactive("a revoked token, with a hint");
}

async fn only_a_token_granting_introspect_may_ask(make: impl Make<(), Fixture>) {
    let fixture = make(()).await;
    let app = App::start(fixture.registry.clone()).await;
    let target = app
        .registry
        .issue(TokenKind::Customer, CUSTOMER)
        .await
        .unwrap();
    let target = target.token.expose();

    // No Bearer token at all: the layer's 401 challenge.
    let body = format!("token={target}");
    let reply = app.post(None, Some(FORM), body.clone()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .header(WWW_AUTHENTICATE)
            .unwrap()
            .starts_with("Bearer"),
        "{:?}",
        reply.headers
    );
    assert_ne!(
        reply.body["active"],
        json!(false),
        "a refusal, not an answer"
    );
    // A Bearer token that is not live: 401 too.
    let reply = app.post(Some("not-a-token"), Some(FORM), body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // Tokens without the scope: 403 insufficient_scope naming it.
    let customer = app
        .sign_in("/V1/integration/customer/token", CUSTOMER, "s3cret")
        .await;
    let catalog_admin = app.admin("catalog").await;
    let catalog_integration = app.integration("catalog", &[PRODUCTS]).await;
    for (bearer, what) in [
        (&customer, "a customer token"),
        (&catalog_admin, "an admin token without the scope"),
        (
            &catalog_integration,
            "an integration token without the scope",
        ),
    ] {
        let reply = app.introspect(bearer, target).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{what}: {}",
            reply.body
        );
        let challenge = reply.header(WWW_AUTHENTICATE).unwrap_or_default();
        assert!(
            challenge.contains("error=\"insufficient_scope\""),
            "{what}: {challenge}"
        );
        assert!(challenge.contains("introspect"), "{what}: {challenge}");
        assert!(reply.body.get("active").is_none(), "{what}: {}", reply.body);
    }

    // Any kind of token granting it: the wildcard admin, an integration, an admin token
    // issued with the scope alone.
    let admin = app.admin("admin").await;
    let scoped_admin = app
        .registry
        .issue_request(
            IssueRequest::new(TokenKind::Admin, "auditor")
                .with_scopes(Scopes::new([INTROSPECT]).unwrap()),
        )
        .await
        .unwrap();
    let introspector = app.introspector().await;
    for (bearer, what) in [
        (admin.as_str(), "an admin with Magento_Backend::all"),
        (introspector.as_str(), "an integration granting introspect"),
        (
            scoped_admin.token.expose(),
            "an admin token granting introspect",
        ),
    ] {
        let reply = app.introspect(bearer, target).await;
        let fields = reply.assert_active(what);
        assert_eq!(fields["sub"], CUSTOMER, "{what}");
    }
}

async fn bad_bodies_are_refused_before_any_lookup(make: impl Make<(), Fixture>) {
    let fixture = make(()).await;
    let app = App::start(fixture.registry.clone()).await;
    let introspector = app.introspector().await;
    let token = app.integration("erp-sync", &[PRODUCTS]).await;
    let required = "\"token\" is required. Enter and try again.";

    for (content_type, body, what) in [
        (Some("text/plain"), format!("token={token}"), "text/plain"),
        (None, format!("token={token}"), "no Content-Type"),
        (
            Some("multipart/form-data; boundary=x"),
            format!("token={token}"),
            "multipart",
        ),
    ] {
        let reply = app.post(Some(&introspector), content_type, body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{what}: {}",
            reply.body
        );
        assert!(reply.body["message"].is_string(), "{what}: {}", reply.body);
    }

    for (content_type, body, what) in [
        (Some(FORM), String::new(), "an empty form"),
        (None, String::new(), "no body at all"),
        (Some(FORM), "token=".to_owned(), "an empty token"),
        (
            Some(FORM),
            "token_type_hint=access_token".to_owned(),
            "a hint without a token",
        ),
        (
            Some("application/json"),
            "{}".to_owned(),
            "JSON without a token",
        ),
        (
            Some("application/json"),
            r#"{"token": ""}"#.to_owned(),
            "an empty JSON token",
        ),
        (
            Some("application/json"),
            r#"{"token": 42}"#.to_owned(),
            "a JSON token that is no string",
        ),
    ] {
        app.post(Some(&introspector), content_type, body)
            .await
            .assert_message(StatusCode::BAD_REQUEST, required, what);
    }

    let reply = app
        .post(
            Some(&introspector),
            Some(FORM),
            format!("token={token}&token=other"),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "a repeated token: {}",
        reply.body
    );
    let reply = app
        .post(
            Some(&introspector),
            Some("application/json"),
            "{\"token\":".to_owned(),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "broken JSON: {}",
        reply.body
    );
    let reply = app
        .post(
            Some(&introspector),
            Some("application/json"),
            format!("[\"{token}\"]"),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "a JSON array: {}",
        reply.body
    );

    let padding = "x".repeat(rest::MAX_BODY_BYTES);
    let reply = app
        .post(
            Some(&introspector),
            Some(FORM),
            format!("token={token}&pad={padding}"),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );

    // The token asked about was not touched by any of it.
    app.introspect(&introspector, &token)
        .await
        .assert_active("after the refusals");
}

/// A store that fails every `get` of one token (as when its Redis shard is down), and
/// passes everything else to the store it wraps.
#[derive(Clone)]
struct FailingGets {
    inner: Arc<dyn TokenStore>,
    failing: Arc<Mutex<Option<TokenHash>>>,
}

impl TokenStore for FailingGets {
    fn insert(
        &self,
        caller: Caller,
        ttl: Option<Duration>,
        limit: SubjectLimit,
    ) -> StoreFuture<Vec<TokenHash>> {
        self.inner.insert(caller, ttl, limit)
    }

    fn get(&self, hash: TokenHash, record_use_every: Duration) -> StoreFuture<Option<Caller>> {
        if *self.failing.lock().unwrap() == Some(hash) {
            return Box::pin(async { Err(StoreError::Timeout(Duration::from_millis(250))) });
        }
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

async fn a_store_failure_is_a_503_never_inactive(make: impl Make<(), Fixture>) {
    let fixture = make(()).await;
    let store = FailingGets {
        inner: fixture.store.clone(),
        failing: Arc::default(),
    };
    let app = App::start(TokenRegistry::tokens_only(store.clone())).await;
    let introspector = app.introspector().await;
    let target = app
        .registry
        .issue(TokenKind::Customer, CUSTOMER)
        .await
        .unwrap();
    app.introspect(&introspector, target.token.expose())
        .await
        .assert_active("while the store answers");

    *store.failing.lock().unwrap() = Some(target.caller.token_hash);
    for reply in [
        app.introspect(&introspector, target.token.expose()).await,
        app.introspect_json(&introspector, target.token.expose())
            .await,
    ] {
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert!(reply.header(RETRY_AFTER).is_some(), "{:?}", reply.headers);
        assert!(reply.body["message"].is_string(), "{}", reply.body);
        assert!(
            reply.body.get("active").is_none(),
            "an outage is not an inactive token: {}",
            reply.body
        );
        assert_eq!(reply.header(CACHE_CONTROL), Some("no-store"));
        assert!(
            reply.header(WWW_AUTHENTICATE).is_none(),
            "not a credential problem"
        );
    }

    *store.failing.lock().unwrap() = None;
    app.introspect(&introspector, target.token.expose())
        .await
        .assert_active("once the store answers again");
}

// One store only: the test stops its Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_while_redis_is_down_is_a_503_never_inactive() {
    let mut server = RedisServer::start();
    let options = RedisStoreOptions::default().with_timeout(Duration::from_millis(300));
    let store = RedisStore::connect_with(&server.url(), options)
        .await
        .expect("connect to the test redis-server");
    let app = App::start(TokenRegistry::new(store)).await;
    let introspector = app.introspector().await;
    let target = app
        .registry
        .issue(TokenKind::Customer, CUSTOMER)
        .await
        .unwrap();
    app.introspect(&introspector, target.token.expose())
        .await
        .assert_active("while Redis runs");

    server.stop();
    for reply in [
        app.introspect(&introspector, target.token.expose()).await,
        app.introspect(&introspector, "never-issued").await,
    ] {
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert!(reply.header(RETRY_AFTER).is_some(), "{:?}", reply.headers);
        assert!(
            reply.body.get("active").is_none(),
            "an outage is not an inactive token: {}",
            reply.body
        );
    }
}

/// A use is recorded at most once a second.
fn every_second() -> SessionRules {
    SessionRules::default()
        .with_last_used_interval(Duration::from_secs(1))
        .unwrap()
}

async fn last_used_at(
    registry: &TokenRegistry,
    caller: &Caller,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let listed = registry.list(caller.kind, &caller.subject).await.unwrap();
    let token = listed
        .iter()
        .find(|token| token.token_hash == caller.token_hash)
        .expect("the token is listed");
    token.last_used_at
}

async fn introspecting_records_no_use_of_the_token(make: impl Make<(), Fixture>) {
    let fixture = make(()).await;
    let registry = fixture.registry.clone().with_session_rules(every_second());
    let app = App::start(registry.clone()).await;
    let introspector = app.introspector().await;
    let watched = registry.issue(TokenKind::Customer, CUSTOMER).await.unwrap();
    let issued_use = watched.caller.last_used_at;
    assert_eq!(last_used_at(&registry, &watched.caller).await, issued_use);

    // Past the interval, so any lookup that records uses would record one now.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for _ in 0..3 {
        app.introspect(&introspector, watched.token.expose())
            .await
            .assert_active("the watched token");
        app.introspect_json(&introspector, watched.token.expose())
            .await
            .assert_active("the watched token");
    }
    assert_eq!(
        last_used_at(&registry, &watched.caller).await,
        issued_use,
        "introspection recorded a use"
    );

    // A real use is recorded: what the check above would have seen.
    registry
        .resolve(watched.token.expose())
        .await
        .unwrap()
        .unwrap();
    let used = last_used_at(&registry, &watched.caller).await;
    assert!(used > issued_use, "{used:?} after {issued_use:?}");
}

async fn introspecting_does_not_keep_an_idle_token_alive(make: impl Make<(), Fixture>) {
    let fixture = make(()).await;
    let idle = Duration::from_secs(2);
    let rules = every_second()
        .with_idle_timeout(TokenKind::Customer, idle)
        .unwrap();
    let registry = fixture.registry.clone().with_session_rules(rules);
    let app = App::start(registry.clone()).await;
    let introspector = app.introspector().await;
    let inspected = registry.issue(TokenKind::Customer, CUSTOMER).await.unwrap();
    let used = registry.issue(TokenKind::Customer, CUSTOMER).await.unwrap();
    let started = Instant::now();

    let reply = app
        .introspect(&introspector, inspected.token.expose())
        .await;
    let fields = reply.assert_active("a fresh idle-timeout token");
    let idle_end = inspected.caller.issued_at + chrono::Duration::from_std(idle).unwrap();
    assert_eq!(
        fields["exp"],
        json!(idle_end.timestamp()),
        "exp is the end of its idle period, before its absolute expiry"
    );

    // Both tokens are looked at twice, 0.6 s apart: one introspected, the other used (a
    // use is recorded every quarter of the idle timeout, 0.5 s).
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        app.introspect(&introspector, inspected.token.expose())
            .await
            .assert_active("within its idle timeout");
        assert!(
            registry
                .resolve(used.token.expose())
                .await
                .unwrap()
                .is_some()
        );
    }
    let deadline = started + idle + Duration::from_millis(400);
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
    app.introspect(&introspector, inspected.token.expose())
        .await
        .assert_inactive("idled out: introspection is not a use");
    app.introspect(&introspector, used.token.expose())
        .await
        .assert_active("the used token lives on");
}

/// Two instances with local caches on one Redis: the one introspecting holds a cached
/// record that missed a use the other recorded since, and looks idled out. The answer must
/// come from Redis: active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_record_that_missed_a_use_is_read_again_not_called_inactive() {
    let redis = TestRedis::start();
    let idle = Duration::from_secs(4);
    let rules = every_second()
        .with_idle_timeout(TokenKind::Customer, idle)
        .unwrap();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let options = redis
            .options()
            .with_cache(CacheOptions::default().with_ttl(Duration::from_secs(60)));
        let store = RedisStore::connect_with(&redis.url, options).await.unwrap();
        wait_until(
            Duration::from_secs(5),
            "the revocation feed is subscribed",
            || store.cache_stats().unwrap().live,
        )
        .await;
        instances.push(TokenRegistry::new(store).with_session_rules(rules.clone()));
    }
    let (introspecting, using) = (&instances[0], &instances[1]);
    let issued = using.issue(TokenKind::Customer, CUSTOMER).await.unwrap();
    let token = issued.token.expose();
    let started = Instant::now();
    // Cached on the introspecting instance, as issued.
    assert!(introspecting.resolve(token).await.unwrap().is_some());

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let used = using.resolve(token).await.unwrap().unwrap();
    assert!(
        used.last_used_at > issued.caller.last_used_at,
        "a use recorded"
    );

    // Past the idle period the cached record shows, within the one Redis shows.
    let deadline = started + idle + Duration::from_millis(500);
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
    let seen = introspecting.inspect(token).await.unwrap();
    assert_eq!(
        seen.and_then(|caller| caller.last_used_at),
        used.last_used_at,
        "read from Redis, with the use recorded elsewhere"
    );
}
