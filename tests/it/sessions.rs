//! A user's tokens as sessions over HTTP: listed with where they came from, when each was
//! last used and which one is current, ended one by one or all but the current one, and an
//! admin's view of a customer's; a sign-in past a refusing limit, a failing store, and the
//! wrong kind or no token on every route. Every case runs on the memory store and on Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tower_bearer::magento::{rest, token_limit_message};
use tower_bearer::registry::SessionRules;
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};
use tower_bearer::store::{
    OnLimit, SignInStore, StoreError, StoreFuture, SubjectLimit, TokenStore,
};
use tower_bearer::token::{Scopes, TokenHash};
use tower_bearer::{Caller, SignIn, TokenKind, TokenRegistry};

use crate::support::{Make, TestRedis, serve, store_suite};

/// A store in front of the memory or Redis store that can be made to fail: its listings
/// only (the layer still resolves tokens, so the session routes' own handling of a store
/// failure shows), or every call (the store is down).
#[derive(Clone)]
struct FailingStore {
    tokens: Arc<dyn TokenStore>,
    sign_in: Arc<dyn SignInStore>,
    lists_fail: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
}

impl FailingStore {
    fn new<S: TokenStore + SignInStore + Clone>(store: S) -> Self {
        Self {
            tokens: Arc::new(store.clone()),
            sign_in: Arc::new(store),
            lists_fail: Arc::default(),
            down: Arc::default(),
        }
    }

    /// From now on, listings fail (`true`) or work (`false`).
    fn fail_lists(&self, fail: bool) {
        self.lists_fail.store(fail, Ordering::SeqCst);
    }

    /// From now on, every call fails (`true`) or works (`false`).
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn fail<T: Send + 'static>() -> StoreFuture<T> {
        Box::pin(std::future::ready(Err(StoreError::Timeout(
            Duration::from_millis(250),
        ))))
    }
}

impl TokenStore for FailingStore {
    fn insert(
        &self,
        caller: Caller,
        ttl: Option<Duration>,
        limit: SubjectLimit,
    ) -> StoreFuture<Vec<TokenHash>> {
        if self.is_down() {
            return Self::fail();
        }
        self.tokens.insert(caller, ttl, limit)
    }

    fn get(&self, hash: TokenHash, record_use_every: Duration) -> StoreFuture<Option<Caller>> {
        if self.is_down() {
            return Self::fail();
        }
        self.tokens.get(hash, record_use_every)
    }

    fn remove(&self, hash: TokenHash) -> StoreFuture<Option<Caller>> {
        if self.is_down() {
            return Self::fail();
        }
        self.tokens.remove(hash)
    }

    fn remove_subject(&self, kind: TokenKind, subject: String) -> StoreFuture<u64> {
        if self.is_down() {
            return Self::fail();
        }
        self.tokens.remove_subject(kind, subject)
    }

    fn list(&self, kind: TokenKind, subject: String) -> StoreFuture<Vec<Caller>> {
        if self.is_down() || self.lists_fail.load(Ordering::SeqCst) {
            return Self::fail();
        }
        self.tokens.list(kind, subject)
    }
}

impl SignInStore for FailingStore {
    fn record_failure(&self, key: String, window: Duration) -> StoreFuture<u64> {
        if self.is_down() {
            return Self::fail();
        }
        self.sign_in.record_failure(key, window)
    }

    fn forgive_failure(&self, key: String) -> StoreFuture<()> {
        if self.is_down() {
            return Self::fail();
        }
        self.sign_in.forgive_failure(key)
    }

    fn failures(&self, key: String) -> StoreFuture<u64> {
        if self.is_down() {
            return Self::fail();
        }
        self.sign_in.failures(key)
    }

    fn clear_failures(&self, key: String) -> StoreFuture<()> {
        if self.is_down() {
            return Self::fail();
        }
        self.sign_in.clear_failures(key)
    }

    fn claim_once(&self, key: String, ttl: Duration) -> StoreFuture<bool> {
        if self.is_down() {
            return Self::fail();
        }
        self.sign_in.claim_once(key, ttl)
    }
}

/// A registry with the case's session rules over a [`FailingStore`] (working until told
/// otherwise), and whatever must outlive it (the Redis server).
struct Backend {
    registry: TokenRegistry,
    store: FailingStore,
    _redis: Option<TestRedis>,
}

async fn memory(rules: SessionRules) -> Backend {
    let store = FailingStore::new(tower_bearer::store::MemoryStore::new());
    Backend {
        registry: TokenRegistry::new(store.clone()).with_session_rules(rules),
        store,
        _redis: None,
    }
}

async fn redis(rules: SessionRules) -> Backend {
    let redis = TestRedis::start();
    let store = FailingStore::new(redis.store().await);
    Backend {
        registry: TokenRegistry::new(store.clone()).with_session_rules(rules),
        store,
        _redis: Some(redis),
    }
}

store_suite! {
    stores: [memory, redis],
    cases: [
        a_customer_sees_and_ends_their_sessions,
        admins_manage_their_own_sessions_and_see_and_end_a_customers,
        the_wrong_kind_or_no_token_is_refused_as_elsewhere,
        the_listing_shows_when_each_token_was_last_used,
        signing_in_past_a_refusing_limit_answers_409_with_a_message,
        a_failing_store_answers_503_with_a_message_on_every_session_route,
    ],
}

struct App {
    base: String,
    client: reqwest::Client,
}

impl App {
    async fn start(backend: &Backend) -> Self {
        let directory = MemoryDirectory::new();
        directory
            .add_customer("ada@example.com", "s3cret", RemoteAssistance::Allowed)
            .unwrap();
        directory
            .add_customer("bob@example.com", "s3cret", RemoteAssistance::Denied)
            .unwrap();
        directory.add_admin("root", "admin123").unwrap();
        directory
            .add_admin_with_scopes(
                "catalog",
                "admin123",
                Scopes::new(["Magento_Catalog::products"]).unwrap(),
            )
            .unwrap();
        let sign_in = SignIn::new(backend.registry.clone(), directory);
        let base = serve(rest::router(sign_in)).await;
        Self {
            base,
            client: reqwest::Client::new(),
        }
    }

    async fn try_sign_in(
        &self,
        route: &str,
        username: &str,
        password: &str,
        agent: &str,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}{route}", self.base))
            .header("user-agent", agent)
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap()
    }

    async fn sign_in(&self, route: &str, username: &str, password: &str, agent: &str) -> String {
        let response = self.try_sign_in(route, username, password, agent).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn customer(&self, email: &str, agent: &str) -> String {
        self.sign_in("/V1/integration/customer/token", email, "s3cret", agent)
            .await
    }

    async fn admin(&self, username: &str) -> String {
        self.sign_in(
            "/V1/integration/admin/token",
            username,
            "admin123",
            "admin-console",
        )
        .await
    }

    /// `method path`, with `token` as a Bearer token if any.
    async fn send(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn call(&self, method: Method, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self.send(method, path, Some(token)).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn opens(&self, token: &str) -> bool {
        self.call(Method::GET, "/V1/customers/me/tokens", token)
            .await
            .0
            == StatusCode::OK
    }

    /// The token ids `token`'s owner sees on `listing` (`/V1/customers/me/tokens` or
    /// `/V1/admin/me/tokens`), newest first.
    async fn ids(&self, listing: &str, token: &str) -> Vec<String> {
        let (status, listed) = self.call(Method::GET, listing, token).await;
        assert_eq!(status, StatusCode::OK, "{listing}: {listed}");
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["token_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The id of `token` itself, as its owner's listing shows it.
    async fn own_id(&self, listing: &str, token: &str) -> String {
        let (status, listed) = self.call(Method::GET, listing, token).await;
        assert_eq!(status, StatusCode::OK, "{listing}: {listed}");
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["current"] == true)
            .expect("the caller's own token is listed")["token_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A `{"message": <non-empty text>}` body in JSON.
#[track_caller]
fn assert_message(content_type: Option<&str>, body: &Value, what: &str) {
    assert_eq!(
        content_type,
        Some("application/json"),
        "{what}: content type"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{what}: a message, got {body}"
    );
}

async fn read(response: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn content_type(headers: &reqwest::header::HeaderMap) -> Option<&str> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
}

/// An instant of a listing: RFC 3339 in UTC, to the second.
#[track_caller]
fn instant(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("an instant, got {value}"));
    assert!(
        text.len() == 20 && text.ends_with('Z'),
        "RFC 3339 in UTC to the second: {text}"
    );
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

async fn a_customer_sees_and_ends_their_sessions(make: impl Make<SessionRules, Backend>) {
    let backend = make(SessionRules::default()).await;
    let app = App::start(&backend).await;
    let phone = app.customer("ada@example.com", "ShopApp/2 (iOS)").await;
    let laptop = app.customer("ada@example.com", "Firefox/140").await;
    let tablet = app.customer("ada@example.com", "Safari/18").await;
    let bob = app.customer("bob@example.com", "Chrome/130").await;

    let (status, listed) = app
        .call(Method::GET, "/V1/customers/me/tokens", &laptop)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 3, "only ada's tokens: {listed:?}");
    assert_eq!(listed[0]["user_agent"], "Safari/18", "newest first");
    let current: Vec<&Value> = listed.iter().filter(|t| t["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "Firefox/140");
    for entry in &listed {
        let text = entry.to_string();
        assert!(
            !text.contains(&phone) && !text.contains(&laptop),
            "no secret: {text}"
        );
        assert_eq!(entry["kind"], "customer");
    }

    // End the phone's session by its id; an id of bob's, or of nothing, is a 404 alike.
    let phone_id = listed
        .iter()
        .find(|t| t["user_agent"] == "ShopApp/2 (iOS)")
        .unwrap()["token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/V1/customers/me/tokens/{phone_id}");
    assert_eq!(
        app.call(Method::DELETE, &path, &laptop).await,
        (StatusCode::OK, json!(true))
    );
    assert!(!app.opens(&phone).await);
    let (_, bobs) = app.call(Method::GET, "/V1/customers/me/tokens", &bob).await;
    let bob_id = bobs[0]["token_id"].as_str().unwrap();
    for id in [bob_id, "000000000000", phone_id.as_str()] {
        let path = format!("/V1/customers/me/tokens/{id}");
        let (status, body) = app.call(Method::DELETE, &path, &laptop).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(body["message"], "No live token of yours has this id.");
    }
    assert!(app.opens(&bob).await, "bob's token untouched");

    // Sign out everywhere else.
    let (status, count) = app
        .call(
            Method::POST,
            "/V1/customers/me/tokens/revoke-others",
            &laptop,
        )
        .await;
    assert_eq!((status, count), (StatusCode::OK, json!(1)));
    assert!(!app.opens(&tablet).await);
    assert!(
        app.opens(&laptop).await,
        "the caller's own token stays valid"
    );
    assert!(app.opens(&bob).await);
}

async fn admins_manage_their_own_sessions_and_see_and_end_a_customers(
    make: impl Make<SessionRules, Backend>,
) {
    let backend = make(SessionRules::default()).await;
    let app = App::start(&backend).await;
    let root = app.admin("root").await;
    let other_root = app.admin("root").await;
    let ada = app.customer("ada@example.com", "Firefox/140").await;

    let (status, mine) = app.call(Method::GET, "/V1/admin/me/tokens", &root).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let (status, count) = app
        .call(Method::POST, "/V1/admin/me/tokens/revoke-others", &root)
        .await;
    assert_eq!((status, count), (StatusCode::OK, json!(1)));
    assert_eq!(
        app.call(Method::GET, "/V1/admin/me/tokens", &other_root)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let (status, adas) = app
        .call(Method::GET, "/V1/customers/ada@example.com/tokens", &root)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(adas[0]["user_agent"], "Firefox/140");
    assert_eq!(adas[0]["current"], false);
    let path = format!(
        "/V1/customers/ada@example.com/tokens/{}",
        adas[0]["token_id"].as_str().unwrap()
    );
    assert_eq!(
        app.call(Method::DELETE, &path, &root).await,
        (StatusCode::OK, json!(true))
    );
    assert!(!app.opens(&ada).await);
    assert_eq!(
        app.call(Method::DELETE, &path, &root).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(
            Method::GET,
            "/V1/customers/nobody@example.com/tokens",
            &root
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

/// A route: its method and path.
type Row = (Method, String);
/// A description of a token, and the token.
type Who<'a> = (&'a str, &'a str);

async fn the_wrong_kind_or_no_token_is_refused_as_elsewhere(
    make: impl Make<SessionRules, Backend>,
) {
    let backend = make(SessionRules::default()).await;
    let app = App::start(&backend).await;
    let ada = app.customer("ada@example.com", "Firefox/140").await;
    let ada_spare = app.customer("ada@example.com", "Safari/18").await;
    let ada_third = app.customer("ada@example.com", "Chrome/130").await;
    let root = app.admin("root").await;
    let root_spare = app.admin("root").await;
    let catalog = app.admin("catalog").await;
    let ada_spare_id = app.own_id("/V1/customers/me/tokens", &ada_spare).await;
    let ada_third_id = app.own_id("/V1/customers/me/tokens", &ada_third).await;
    let root_spare_id = app.own_id("/V1/admin/me/tokens", &root_spare).await;
    // Of the issued shape, never issued.
    let unknown = tower_bearer::token::Token::generate().unwrap();

    let customer_rows = [
        (Method::GET, "/V1/customers/me/tokens".to_owned()),
        (
            Method::DELETE,
            format!("/V1/customers/me/tokens/{ada_spare_id}"),
        ),
        (
            Method::POST,
            "/V1/customers/me/tokens/revoke-others".to_owned(),
        ),
    ];
    let admin_rows = [
        (Method::GET, "/V1/admin/me/tokens".to_owned()),
        (
            Method::DELETE,
            format!("/V1/admin/me/tokens/{root_spare_id}"),
        ),
        (Method::POST, "/V1/admin/me/tokens/revoke-others".to_owned()),
    ];
    let manage_rows = [
        (
            Method::GET,
            "/V1/customers/ada@example.com/tokens".to_owned(),
        ),
        (
            Method::DELETE,
            format!("/V1/customers/ada@example.com/tokens/{ada_third_id}"),
        ),
    ];
    // Each row, and the tokens it refuses with 403: of the wrong kind, or without the scope.
    let refusals: [(&[Row], Vec<Who>); 3] = [
        (
            &customer_rows,
            vec![
                ("root's admin token", root.as_str()),
                ("catalog's admin token", catalog.as_str()),
            ],
        ),
        (&admin_rows, vec![("ada's customer token", ada.as_str())]),
        (
            &manage_rows,
            vec![
                ("ada's customer token", ada.as_str()),
                (
                    "an admin token without Magento_Customer::manage",
                    catalog.as_str(),
                ),
            ],
        ),
    ];
    for (rows, wrong) in &refusals {
        for (method, path) in rows.iter() {
            for (who, token) in [
                ("no token", None),
                ("an unknown token", Some(unknown.expose())),
            ] {
                let row = format!("{method} {path} with {who}");
                let (status, headers, body) =
                    read(app.send(method.clone(), path, token).await).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{row}");
                assert!(
                    headers
                        .get(WWW_AUTHENTICATE)
                        .is_some_and(|value| value.as_bytes().starts_with(b"Bearer")),
                    "{row}: a Bearer challenge"
                );
                assert_message(content_type(&headers), &body, &row);
            }
            for (who, token) in wrong {
                let row = format!("{method} {path} with {who}");
                let (status, headers, body) =
                    read(app.send(method.clone(), path, Some(*token)).await).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{row}");
                assert_message(content_type(&headers), &body, &row);
            }
        }
    }

    // None of those requests ended a session.
    assert_eq!(app.ids("/V1/customers/me/tokens", &ada).await.len(), 3);
    assert_eq!(app.ids("/V1/admin/me/tokens", &root).await.len(), 2);

    // Each row works with the right token.
    let (status, adas) = app
        .call(Method::GET, "/V1/customers/ada@example.com/tokens", &root)
        .await;
    assert_eq!(
        (status, adas.as_array().map(Vec::len)),
        (StatusCode::OK, Some(3))
    );
    for (method, path, token, answer) in [
        (
            Method::DELETE,
            format!("/V1/customers/me/tokens/{ada_spare_id}"),
            &ada,
            json!(true),
        ),
        (
            Method::DELETE,
            format!("/V1/admin/me/tokens/{root_spare_id}"),
            &root,
            json!(true),
        ),
        (
            Method::DELETE,
            format!("/V1/customers/ada@example.com/tokens/{ada_third_id}"),
            &root,
            json!(true),
        ),
        (
            Method::POST,
            "/V1/customers/me/tokens/revoke-others".to_owned(),
            &ada,
            json!(0),
        ),
        (
            Method::POST,
            "/V1/admin/me/tokens/revoke-others".to_owned(),
            &root,
            json!(0),
        ),
    ] {
        assert_eq!(
            app.call(method.clone(), &path, token).await,
            (StatusCode::OK, answer),
            "{method} {path}"
        );
    }
    assert!(!app.opens(&ada_spare).await);
    assert!(!app.opens(&ada_third).await);
    assert_eq!(app.ids("/V1/admin/me/tokens", &root).await.len(), 1);
    assert_eq!(app.ids("/V1/customers/me/tokens", &ada).await.len(), 1);
}

async fn the_listing_shows_when_each_token_was_last_used(make: impl Make<SessionRules, Backend>) {
    let rules = SessionRules::default()
        .with_last_used_interval(Duration::from_secs(1))
        .unwrap()
        .with_idle_timeout(TokenKind::Customer, Duration::from_secs(30))
        .unwrap();
    let backend = make(rules).await;
    let app = App::start(&backend).await;
    app.customer("ada@example.com", "ShopApp/2 (iOS)").await;
    let laptop = app.customer("ada@example.com", "Firefox/140").await;

    let (status, listed) = app
        .call(Method::GET, "/V1/customers/me/tokens", &laptop)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 2);
    for entry in &listed {
        let created = instant(&entry["created_at"]);
        assert_eq!(
            instant(&entry["last_used_at"]),
            created,
            "the sign-in is the last use so far: {entry}"
        );
        assert_eq!(
            instant(&entry["idle_expires_at"]),
            created + TimeDelta::seconds(30),
            "{entry}"
        );
        assert_eq!(
            instant(&entry["expires_at"]),
            created + TimeDelta::hours(1),
            "{entry}"
        );
    }

    // An interval later, the request that lists is itself a use, and is recorded.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, listed) = app
        .call(Method::GET, "/V1/customers/me/tokens", &laptop)
        .await;
    assert_eq!(status, StatusCode::OK);
    let entry = |agent: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["user_agent"] == agent)
            .unwrap_or_else(|| panic!("{agent}'s token is listed: {listed}"))
            .clone()
    };
    let current = entry("Firefox/140");
    assert_eq!(current["current"], true);
    let created = instant(&current["created_at"]);
    let last_used = instant(&current["last_used_at"]);
    assert!(
        last_used >= created + TimeDelta::seconds(1) && last_used <= Utc::now(),
        "the use was recorded: created {created}, last used {last_used}"
    );
    assert_eq!(
        instant(&current["idle_expires_at"]),
        last_used + TimeDelta::seconds(30),
        "the recorded use restarted the idle count"
    );
    let phone = entry("ShopApp/2 (iOS)");
    assert_eq!(
        instant(&phone["last_used_at"]),
        instant(&phone["created_at"]),
        "the unused token's last use is its sign-in"
    );
}

async fn signing_in_past_a_refusing_limit_answers_409_with_a_message(
    make: impl Make<SessionRules, Backend>,
) {
    let rules = SessionRules::default()
        .with_limit(TokenKind::Customer, SubjectLimit::new(2, OnLimit::Refuse));
    let backend = make(rules).await;
    let app = App::start(&backend).await;
    let route = "/V1/integration/customer/token";
    let first = app.customer("ada@example.com", "Firefox/140").await;
    let second = app.customer("ada@example.com", "Safari/18").await;

    let (status, headers, body) = read(
        app.try_sign_in(route, "ada@example.com", "s3cret", "Chrome/130")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_message(content_type(&headers), &body, "past the limit");
    assert_eq!(body["message"], token_limit_message(2));
    assert_eq!(
        app.ids("/V1/customers/me/tokens", &first).await.len(),
        2,
        "the refused sign-in issued nothing"
    );
    let (status, _, _) = read(
        app.try_sign_in(route, "ada@example.com", "wrong", "Chrome/130")
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "without the password, the limit is not revealed"
    );

    // Another customer, or an admin, is not held to ada's limit.
    app.customer("bob@example.com", "Chrome/130").await;
    app.admin("root").await;

    // Ending one session makes room for one sign-in, and only one.
    let second_id = app.own_id("/V1/customers/me/tokens", &second).await;
    let path = format!("/V1/customers/me/tokens/{second_id}");
    assert_eq!(
        app.call(Method::DELETE, &path, &first).await,
        (StatusCode::OK, json!(true))
    );
    let third = app.customer("ada@example.com", "Chrome/130").await;
    assert!(app.opens(&third).await);
    let (status, _, body) = read(
        app.try_sign_in(route, "ada@example.com", "s3cret", "Edge/130")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

async fn a_failing_store_answers_503_with_a_message_on_every_session_route(
    make: impl Make<SessionRules, Backend>,
) {
    let backend = make(SessionRules::default()).await;
    let app = App::start(&backend).await;
    let ada = app.customer("ada@example.com", "Firefox/140").await;
    let root = app.admin("root").await;
    let ada_id = app.own_id("/V1/customers/me/tokens", &ada).await;
    let root_id = app.own_id("/V1/admin/me/tokens", &root).await;

    // Tokens still resolve, but the session routes cannot read the subject's tokens.
    backend.store.fail_lists(true);
    for (method, path, token) in [
        (Method::GET, "/V1/customers/me/tokens".to_owned(), &ada),
        (
            Method::DELETE,
            format!("/V1/customers/me/tokens/{ada_id}"),
            &ada,
        ),
        (
            Method::POST,
            "/V1/customers/me/tokens/revoke-others".to_owned(),
            &ada,
        ),
        (Method::GET, "/V1/admin/me/tokens".to_owned(), &root),
        (
            Method::DELETE,
            format!("/V1/admin/me/tokens/{root_id}"),
            &root,
        ),
        (
            Method::POST,
            "/V1/admin/me/tokens/revoke-others".to_owned(),
            &root,
        ),
        (
            Method::GET,
            "/V1/customers/ada@example.com/tokens".to_owned(),
            &root,
        ),
        (
            Method::DELETE,
            format!("/V1/customers/ada@example.com/tokens/{ada_id}"),
            &root,
        ),
    ] {
        let row = format!("{method} {path}");
        assert_unavailable(
            read(app.send(method.clone(), &path, Some(token)).await).await,
            &row,
        );
    }
    backend.store.fail_lists(false);
    assert_eq!(
        app.ids("/V1/customers/me/tokens", &ada).await,
        std::slice::from_ref(&ada_id),
        "nothing was ended, and the listing works again"
    );
    assert_eq!(app.ids("/V1/admin/me/tokens", &root).await, [root_id]);

    // The store down altogether: the layer cannot check the token, and says so alike.
    backend.store.set_down(true);
    for (path, token) in [
        ("/V1/customers/me/tokens", &ada),
        ("/V1/admin/me/tokens", &root),
    ] {
        let row = format!("GET {path} with the store down");
        assert_unavailable(
            read(app.send(Method::GET, path, Some(token)).await).await,
            &row,
        );
    }
    backend.store.set_down(false);
    assert_eq!(app.ids("/V1/customers/me/tokens", &ada).await, [ada_id]);
}

/// 503 with `Retry-After` and `{"message": …}`, no challenge: an outage, not a credential
/// problem, nor a "no such token".
#[track_caller]
fn assert_unavailable(
    (status, headers, body): (StatusCode, reqwest::header::HeaderMap, Value),
    row: &str,
) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{row}: {body}");
    assert!(
        headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .is_some_and(|seconds| seconds >= 1),
        "{row}: Retry-After in seconds"
    );
    assert!(
        !headers.contains_key(WWW_AUTHENTICATE),
        "{row}: no challenge"
    );
    assert_message(content_type(&headers), &body, row);
}
