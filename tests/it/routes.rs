//! The token routes end to end: a real axum server on a loopback port, a real HTTP client
//! (reqwest), the app assembled as `examples/server.rs` does (token routes and protected
//! demo routes at `/V1`, `/rest/V1` and `/rest/{store_code}/V1`). One suite, run against
//! the memory registry and the Redis registry on a real `redis-server`.

use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_TYPE, DATE, HeaderMap, HeaderName, RETRY_AFTER, WWW_AUTHENTICATE,
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tower_bearer::magento::rest;
use tower_bearer::magento::rest::MAX_BODY_BYTES;
use tower_bearer::sign_in::{
    CustomerAccount, Directory, DirectoryError, DirectoryFuture, INVALID_CREDENTIALS_MESSAGE,
    LockoutPolicy, MemoryDirectory, PasswordError, RemoteAssistance, SignInError,
};
use tower_bearer::store::{MemoryStore, RedisStore, RedisStoreOptions};
use tower_bearer::{Admin, BearerAuthLayer, Caller, Customer, SignIn, TokenKind, TokenRegistry};

use crate::support::{RedisServer, TestRedis, lockout_key};

const CUSTOMER_TOKEN: &str = "/V1/integration/customer/token";
const ADMIN_TOKEN: &str = "/V1/integration/admin/token";
const REVOKE_ALL: &str = "/V1/integration/customer/revoke-customer-token";
const REVOKE: &str = "/V1/integration/token/revoke";
const CUSTOMER_ME: &str = "/V1/customers/me";
const ADMIN_ME: &str = "/V1/admin/me";
/// Where the routes answer: bare, as Magento's `/rest/V1`, and with a store code.
const PREFIXES: [&str; 3] = ["", "/rest", "/rest/default"];

fn force_sign_out(email: &str) -> String {
    format!("/V1/customers/{email}/tokens/revoke")
}

const CUSTOMER: &str = "customer@example.com";
const OTHER: &str = "other@example.com";
const PASSWORD: &str = "password";
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin123";

/// Magento's text, written out here so the constant cannot drift from it unnoticed.
const SIGN_IN_REFUSED: &str = "The account sign-in was incorrect or your account is disabled \
    temporarily. Please wait and try again later.";

// ---------------------------------------------------------------------------------------
// The app, the server and the client
// ---------------------------------------------------------------------------------------

/// The seeded accounts, hashed once for the whole test binary (lockout counters live in
/// the registry's store, so sharing the directory shares no state between tests).
static ACCOUNTS: LazyLock<Arc<MemoryDirectory>> = LazyLock::new(|| {
    let directory = MemoryDirectory::new();
    directory
        .add_customer(CUSTOMER, PASSWORD, RemoteAssistance::Allowed)
        .expect("hash a password");
    directory
        .add_customer(OTHER, PASSWORD, RemoteAssistance::Denied)
        .expect("hash a password");
    directory
        .add_admin(ADMIN, ADMIN_PASSWORD)
        .expect("hash a password");
    // A customer whose email is the admin's username: one name, two subjects.
    directory
        .add_customer(ADMIN, PASSWORD, RemoteAssistance::Denied)
        .expect("hash a password");
    Arc::new(directory)
});

/// The seeded directory, counting how many passwords it is asked to verify, and failing on
/// demand. (No admin has a second factor, so the trait's default for it is the seeded
/// directory's answer.)
struct CountingDirectory {
    accounts: Arc<MemoryDirectory>,
    verifications: Arc<AtomicUsize>,
    outage: Arc<AtomicU8>,
}

/// How the directory fails, set with [`Server::directory_fails`].
#[derive(Clone, Copy)]
#[repr(u8)]
enum Outage {
    None = 0,
    /// The password-check queue is full ([`PasswordError::Busy`]).
    Busy = 1,
    /// The user database is down.
    Down = 2,
}

impl Directory for CountingDirectory {
    fn verify<'a>(
        &'a self,
        kind: TokenKind,
        username: &'a str,
        password: &'a str,
    ) -> DirectoryFuture<'a, Option<String>> {
        let failure = match self.outage.load(Ordering::SeqCst) {
            1 => Some(DirectoryError::from(PasswordError::Busy)),
            2 => Some(DirectoryError("the user database is down".into())),
            _ => None,
        };
        if let Some(failure) = failure {
            return Box::pin(async move { Err(failure) });
        }
        self.verifications.fetch_add(1, Ordering::SeqCst);
        self.accounts.verify(kind, username, password)
    }

    fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>> {
        self.accounts.customer(email)
    }
}

/// The token routes and two protected demo routes, mounted as the example server does.
fn app(service: SignIn) -> Router {
    let demo = Router::new()
        .route(CUSTOMER_ME, get(customer_me))
        .route(ADMIN_ME, get(admin_me))
        .route_layer(BearerAuthLayer::required(service.registry().clone()));
    let api = rest::router(service).merge(demo);
    Router::new()
        .merge(api.clone())
        .nest("/rest", api.clone())
        .nest("/rest/{store_code}", api)
}

async fn customer_me(Customer(caller): Customer) -> Json<Caller> {
    Json(caller)
}

async fn admin_me(Admin(caller): Admin) -> Json<Caller> {
    Json(caller)
}

/// What the registry's store is, so a test can look inside it.
enum Backend {
    Memory(MemoryStore),
    /// Also keeps the test's redis-server running while the server lives.
    Redis(TestRedis),
    /// A store the test manages itself.
    Unobserved,
}

/// The app served on a loopback port, and a client for it.
struct Server {
    base: String,
    client: reqwest::Client,
    registry: TokenRegistry,
    verifications: Arc<AtomicUsize>,
    outage: Arc<AtomicU8>,
    backend: Backend,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn memory(lockout: LockoutPolicy) -> Server {
    let store = MemoryStore::new();
    let registry = TokenRegistry::new(store.clone());
    Server::start(registry, Backend::Memory(store), lockout).await
}

async fn redis(lockout: LockoutPolicy) -> Server {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    Server::start(registry, Backend::Redis(redis), lockout).await
}

impl Server {
    async fn start(registry: TokenRegistry, backend: Backend, lockout: LockoutPolicy) -> Self {
        let verifications = Arc::new(AtomicUsize::new(0));
        let outage = Arc::new(AtomicU8::new(Outage::None as u8));
        let directory = CountingDirectory {
            accounts: Arc::clone(&ACCOUNTS),
            verifications: Arc::clone(&verifications),
            outage: Arc::clone(&outage),
        };
        let service = SignIn::new(registry.clone(), directory).with_lockout(lockout);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("the bound address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app(service)).await.expect("serve");
        });
        Self {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            registry,
            verifications,
            outage,
            backend,
            task,
        }
    }

    /// Makes the directory fail (or work again) from now on.
    fn directory_fails(&self, outage: Outage) {
        self.outage.store(outage as u8, Ordering::SeqCst);
    }

    fn store_name(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
            Backend::Unobserved => "unobserved",
        }
    }

    /// POSTs `body` as it is, with the given `Content-Type` and Bearer token, if any.
    async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
        bearer: Option<&str>,
    ) -> Reply {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        self.send(request, bearer).await
    }

    async fn post_json(&self, path: &str, body: &Value, bearer: Option<&str>) -> Reply {
        self.post(path, Some("application/json"), body.to_string(), bearer)
            .await
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request, bearer).await
    }

    async fn send(&self, mut request: reqwest::RequestBuilder, bearer: Option<&str>) -> Reply {
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.expect("the whole body"),
        }
    }

    async fn sign_in(&self, route: &str, username: &str, password: &str) -> Reply {
        let credentials = json!({ "username": username, "password": password });
        self.post_json(route, &credentials, None).await
    }

    /// A token from `route`, checked for Magento's format on the way.
    async fn token(&self, route: &str, username: &str, password: &str) -> String {
        self.sign_in(route, username, password).await.token()
    }

    async fn customer_token(&self, email: &str) -> String {
        self.token(CUSTOMER_TOKEN, email, PASSWORD).await
    }

    async fn admin_token(&self) -> String {
        self.token(ADMIN_TOKEN, ADMIN, ADMIN_PASSWORD).await
    }

    /// Whether `token` opens the protected route `path`: 200 yes, 401 no, else a failure.
    async fn opens(&self, path: &str, token: &str) -> bool {
        let reply = self.get(path, Some(token)).await;
        match reply.status {
            StatusCode::OK => true,
            StatusCode::UNAUTHORIZED => false,
            _ => panic!("GET {path}: expected 200 or 401, got {reply:?}"),
        }
    }

    /// How many passwords the directory was asked to verify.
    fn verifications(&self) -> usize {
        self.verifications.load(Ordering::SeqCst)
    }

    /// The failed sign-ins counted for `username`.
    async fn failures(&self, kind: TokenKind, username: &str) -> u64 {
        self.registry
            .sign_in_store()
            .expect("sign-in state")
            .failures(lockout_key(kind, username))
            .await
            .expect("read the failure counter")
    }

    /// Token records in the store: the memory store's count, or the `token:` keys under the
    /// test's prefix in Redis.
    async fn stored_tokens(&self) -> usize {
        match &self.backend {
            Backend::Memory(store) => store.stored_tokens(),
            Backend::Redis(redis) => redis_keys(redis, "token:*").await.len(),
            Backend::Unobserved => panic!("this server's store is not observed"),
        }
    }

    /// No token issued, no password checked, no failure counted.
    async fn assert_nothing_issued(&self) {
        assert_eq!(self.stored_tokens().await, 0, "a token was stored");
        assert_eq!(self.verifications(), 0, "a password was checked");
        assert_eq!(self.failures(TokenKind::Customer, CUSTOMER).await, 0);
        assert_eq!(self.failures(TokenKind::Admin, ADMIN).await, 0);
    }
}

async fn redis_keys(redis: &TestRedis, pattern: &str) -> Vec<String> {
    ::redis::cmd("KEYS")
        .arg(format!("{}{pattern}", redis.prefix))
        .query_async(&mut redis.inspector().await)
        .await
        .expect("KEYS")
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("a visible ASCII header"))
    }

    fn json(&self) -> Value {
        assert!(
            self.header(CONTENT_TYPE)
                .is_some_and(|value| value.starts_with("application/json")),
            "not JSON: {self:?}"
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|error| panic!("{error}: {self:?}"))
    }

    /// The token of a successful sign-in: a bare JSON string of 32 `[0-9a-z]`, never cached.
    fn token(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "no token: {self:?}");
        assert_eq!(self.header(CACHE_CONTROL), Some("no-store"));
        let token = self.json().as_str().expect("a bare JSON string").to_owned();
        assert_eq!(self.body, format!("\"{token}\"").as_bytes());
        assert_eq!(token.len(), 32, "{token}");
        assert!(
            token
                .bytes()
                .all(|byte| byte.is_ascii_digit() || byte.is_ascii_lowercase()),
            "{token}"
        );
        token
    }

    /// The `message` of a JSON error answer with `status`.
    fn message(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{self:?}");
        let message = self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"message\": {self:?}"))
            .to_owned();
        assert!(!message.is_empty(), "empty message: {self:?}");
        message
    }

    /// Whether two answers are the same bytes: status, headers (but `Date`) and body.
    fn assert_same_as(&self, other: &Reply) {
        let headers = |reply: &Reply| {
            let mut headers = reply.headers.clone();
            headers.remove(DATE);
            headers
        };
        assert_eq!(self.status, other.status);
        assert_eq!(headers(self), headers(other));
        assert_eq!(self.body, other.body);
    }
}

// ---------------------------------------------------------------------------------------
// The suite, on both stores
// ---------------------------------------------------------------------------------------

trait MakeServer: Fn(LockoutPolicy) -> Self::Fut {
    type Fut: Future<Output = Server>;
}

impl<F, Fut> MakeServer for F
where
    F: Fn(LockoutPolicy) -> Fut,
    Fut: Future<Output = Server>,
{
    type Fut = Fut;
}

macro_rules! route_suite {
    ($store:ident) => {
        mod $store {
            route_suite!(@cases $store:
                customer_token_is_a_bare_uncached_string_that_opens_customer_routes_only,
                admin_token_is_a_bare_uncached_string_that_opens_admin_routes_only,
                every_route_answers_at_v1_rest_v1_and_rest_store_code_v1,
                json_content_type_is_matched_by_essence_ignoring_case_and_parameters,
                missing_empty_null_or_non_string_username_is_a_400_and_issues_nothing,
                missing_empty_null_or_non_string_password_is_a_400_and_issues_nothing,
                malformed_empty_or_non_object_json_is_a_400_and_issues_nothing,
                a_body_that_is_not_json_by_content_type_is_a_415_and_issues_nothing,
                a_body_over_16_kib_is_a_413_and_issues_nothing,
                wrong_password_unknown_user_and_locked_account_get_one_identical_401,
                six_failures_lock_the_account_until_the_window_passes,
                a_success_clears_the_failure_count,
                lockout_is_per_kind_and_lower_cased_username,
                fifty_parallel_wrong_passwords_check_at_most_six_passwords,
                a_directory_outage_answers_503_and_counts_toward_no_lockout,
                a_full_password_check_queue_answers_503_and_locks_nobody_out,
                made_up_usernames_get_fixed_length_counters_that_pick_no_cluster_slot,
                revoke_customer_token_kills_every_token_of_the_caller_and_no_other,
                revoke_customer_token_refuses_admin_tokens_and_anonymous_calls,
                revoke_without_a_body_kills_only_the_callers_own_token,
                revoke_of_a_named_token_kills_that_token,
                revoke_of_an_unknown_or_revoked_token_answers_true,
                customer_cannot_revoke_another_customers_token,
                a_customer_cannot_revoke_the_token_of_an_admin_of_the_same_name,
                admin_may_revoke_any_customers_token,
                revoke_of_a_non_string_token_is_a_400,
                admin_force_sign_out_kills_every_token_of_the_customer,
                admin_force_sign_out_matches_the_email_case_insensitively,
                admin_force_sign_out_of_an_unknown_email_is_a_404,
                admin_force_sign_out_refuses_customer_tokens,
                admin_force_sign_out_answers_at_v1_rest_v1_and_rest_store_code_v1,
            );
        }
    };
    (@cases $store:ident: $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(super::$store).await;
            }
        )+
    };
}

route_suite!(memory);
route_suite!(redis);

// --- issuing ---------------------------------------------------------------------------

async fn customer_token_is_a_bare_uncached_string_that_opens_customer_routes_only(
    make: impl MakeServer,
) {
    let server = make(LockoutPolicy::default()).await;
    let token = server.customer_token(CUSTOMER).await;

    let me = server.get(CUSTOMER_ME, Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.json()["kind"], "customer");
    assert_eq!(me.json()["subject"], CUSTOMER);

    let admin_route = server.get(ADMIN_ME, Some(&token)).await;
    admin_route.message(StatusCode::FORBIDDEN);
    assert!(
        admin_route
            .header(WWW_AUTHENTICATE)
            .is_some_and(|value| value.contains("insufficient_scope"))
    );
    assert_eq!(server.stored_tokens().await, 1);
}

async fn admin_token_is_a_bare_uncached_string_that_opens_admin_routes_only(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let token = server.admin_token().await;

    let me = server.get(ADMIN_ME, Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.json()["kind"], "admin");
    assert_eq!(me.json()["subject"], ADMIN);

    server
        .get(CUSTOMER_ME, Some(&token))
        .await
        .message(StatusCode::FORBIDDEN);
}

/// Every route but the admin force sign-out (see the next test) under every prefix.
async fn every_route_answers_at_v1_rest_v1_and_rest_store_code_v1(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    for prefix in PREFIXES {
        let route = |path: &str| format!("{prefix}{path}");
        let customer = server
            .token(&route(CUSTOMER_TOKEN), CUSTOMER, PASSWORD)
            .await;
        let admin = server
            .token(&route(ADMIN_TOKEN), ADMIN, ADMIN_PASSWORD)
            .await;
        // A token issued under one prefix works under every prefix: one registry.
        for other in PREFIXES {
            assert!(
                server
                    .opens(&format!("{other}{CUSTOMER_ME}"), &customer)
                    .await
            );
            assert!(server.opens(&format!("{other}{ADMIN_ME}"), &admin).await);
        }

        let revoked = server.post(&route(REVOKE), None, "", Some(&customer)).await;
        assert_eq!(revoked.json(), json!(true), "{prefix}");
        assert!(!server.opens(CUSTOMER_ME, &customer).await);

        let customer = server.customer_token(CUSTOMER).await;
        let all = server
            .post(&route(REVOKE_ALL), None, "", Some(&customer))
            .await;
        assert_eq!(all.json(), json!(true), "{prefix}");
        assert!(!server.opens(CUSTOMER_ME, &customer).await);
    }
}

async fn json_content_type_is_matched_by_essence_ignoring_case_and_parameters(
    make: impl MakeServer,
) {
    let server = make(LockoutPolicy::default()).await;
    let credentials = json!({ "username": CUSTOMER, "password": PASSWORD }).to_string();
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=UTF-8",
    ] {
        server
            .post(
                CUSTOMER_TOKEN,
                Some(content_type),
                credentials.clone(),
                None,
            )
            .await
            .token();
    }
}

// --- refused requests ------------------------------------------------------------------

/// Every way of not sending a non-empty string.
fn not_a_string() -> [Option<Value>; 7] {
    [
        None,
        Some(json!("")),
        Some(Value::Null),
        Some(json!(42)),
        Some(json!({ "value": CUSTOMER })),
        Some(json!([CUSTOMER])),
        Some(json!(true)),
    ]
}

/// Posts credentials to both token routes with `field` replaced by each non-string.
async fn assert_field_is_required(server: &Server, field: &str) {
    for (route, username, password) in [
        (CUSTOMER_TOKEN, CUSTOMER, PASSWORD),
        (ADMIN_TOKEN, ADMIN, ADMIN_PASSWORD),
    ] {
        for value in not_a_string() {
            let mut body = json!({ "username": username, "password": password });
            let fields = body.as_object_mut().expect("an object");
            match value {
                Some(value) => fields.insert(field.to_owned(), value),
                None => fields.remove(field),
            };
            let reply = server.post_json(route, &body, None).await;
            assert_eq!(
                reply.message(StatusCode::BAD_REQUEST),
                format!("\"{field}\" is required. Enter and try again."),
                "{route} {body}"
            );
            assert_eq!(
                reply.body,
                format!(r#"{{"message":"\"{field}\" is required. Enter and try again."}}"#)
                    .as_bytes()
            );
        }
    }
    server.assert_nothing_issued().await;
}

async fn missing_empty_null_or_non_string_username_is_a_400_and_issues_nothing(
    make: impl MakeServer,
) {
    assert_field_is_required(&make(LockoutPolicy::default()).await, "username").await;
}

async fn missing_empty_null_or_non_string_password_is_a_400_and_issues_nothing(
    make: impl MakeServer,
) {
    assert_field_is_required(&make(LockoutPolicy::default()).await, "password").await;
}

async fn malformed_empty_or_non_object_json_is_a_400_and_issues_nothing(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let bodies: [&[u8]; 12] = [
        br#"{"username":"customer@example.com","password":"password""#,
        br#"{username:"customer@example.com",password:"password"}"#,
        br#"{"username":"customer@example.com","password":"password"} trailing"#,
        b"not json",
        b"\xff\xfe{}",
        b"",
        br#""customer@example.com""#,
        br#"["customer@example.com","password"]"#,
        b"42",
        b"null",
        b"true",
        br#"[{"username":"customer@example.com","password":"password"}]"#,
    ];
    for route in [CUSTOMER_TOKEN, ADMIN_TOKEN] {
        for body in bodies {
            let reply = server
                .post(route, Some("application/json"), body.to_vec(), None)
                .await;
            reply.message(StatusCode::BAD_REQUEST);
        }
    }
    server.assert_nothing_issued().await;
}

async fn a_body_that_is_not_json_by_content_type_is_a_415_and_issues_nothing(
    make: impl MakeServer,
) {
    let server = make(LockoutPolicy::default()).await;
    let json = json!({ "username": CUSTOMER, "password": PASSWORD }).to_string();
    let form = "username=customer%40example.com&password=password".to_owned();
    for route in [CUSTOMER_TOKEN, ADMIN_TOKEN] {
        for (content_type, body) in [
            (Some("text/plain"), json.clone()),
            (Some("application/x-www-form-urlencoded"), form.clone()),
            (Some("application/xml"), json.clone()),
            (Some("application/jsonp"), json.clone()),
            (None, json.clone()),
        ] {
            let reply = server.post(route, content_type, body, None).await;
            reply.message(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }
    server.assert_nothing_issued().await;
}

async fn a_body_over_16_kib_is_a_413_and_issues_nothing(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let credentials = json!({ "username": CUSTOMER, "password": PASSWORD }).to_string();
    let padded = |len: usize| credentials.clone() + &" ".repeat(len - credentials.len());
    for route in [CUSTOMER_TOKEN, ADMIN_TOKEN] {
        for len in [MAX_BODY_BYTES + 1, 100 * 1024] {
            let reply = server
                .post(route, Some("application/json"), padded(len), None)
                .await;
            reply.message(StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
    server.assert_nothing_issued().await;

    // Exactly the limit is still read.
    let body = padded(MAX_BODY_BYTES);
    assert_eq!(body.len(), 16 * 1024);
    server
        .post(CUSTOMER_TOKEN, Some("application/json"), body, None)
        .await
        .token();
}

// --- bad credentials and lockout -------------------------------------------------------

async fn wrong_password_unknown_user_and_locked_account_get_one_identical_401(
    make: impl MakeServer,
) {
    let server = make(LockoutPolicy::default()).await;
    assert_eq!(INVALID_CREDENTIALS_MESSAGE, SIGN_IN_REFUSED);
    let expected_body = json!({ "message": SIGN_IN_REFUSED }).to_string();

    let wrong = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await;
    assert_eq!(wrong.message(StatusCode::UNAUTHORIZED), SIGN_IN_REFUSED);
    assert_eq!(wrong.body, expected_body.as_bytes());

    let refusals = [
        server
            .sign_in(CUSTOMER_TOKEN, "nobody@example.com", PASSWORD)
            .await,
        server.sign_in(ADMIN_TOKEN, ADMIN, "wrong").await,
        server.sign_in(ADMIN_TOKEN, "nobody", ADMIN_PASSWORD).await,
        // The kinds are separate: a customer is no admin, an admin no customer.
        server.sign_in(ADMIN_TOKEN, CUSTOMER, PASSWORD).await,
        server.sign_in(CUSTOMER_TOKEN, ADMIN, ADMIN_PASSWORD).await,
    ];
    for refusal in &refusals {
        refusal.assert_same_as(&wrong);
    }

    for _ in 0..5 {
        server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await;
    }
    let locked = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
    locked.assert_same_as(&wrong);
    assert_eq!(server.stored_tokens().await, 0);
}

async fn six_failures_lock_the_account_until_the_window_passes(make: impl MakeServer) {
    let window = Duration::from_secs(2);
    let server = make(LockoutPolicy::new(6, window).expect("a valid policy")).await;
    for _ in 0..6 {
        let reply = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await;
        assert_eq!(reply.message(StatusCode::UNAUTHORIZED), SIGN_IN_REFUSED);
    }
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 6);

    let locked = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
    assert_eq!(locked.message(StatusCode::UNAUTHORIZED), SIGN_IN_REFUSED);
    assert_eq!(
        server.verifications(),
        6,
        "a locked account's password is not checked"
    );
    assert_eq!(server.stored_tokens().await, 0);

    tokio::time::sleep(window + Duration::from_millis(200)).await;
    let token = server.customer_token(CUSTOMER).await;
    assert!(server.opens(CUSTOMER_ME, &token).await);
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 0);
}

async fn a_success_clears_the_failure_count(make: impl MakeServer) {
    let server = make(LockoutPolicy::new(6, Duration::from_secs(2)).expect("a valid policy")).await;
    for _ in 0..2 {
        for _ in 0..5 {
            let reply = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await;
            reply.message(StatusCode::UNAUTHORIZED);
        }
        assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 5);
        server.customer_token(CUSTOMER).await;
        assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 0);
    }
}

async fn lockout_is_per_kind_and_lower_cased_username(make: impl MakeServer) {
    let server = make(LockoutPolicy::new(6, Duration::from_secs(2)).expect("a valid policy")).await;
    for _ in 0..6 {
        server
            .sign_in(CUSTOMER_TOKEN, "Customer@Example.com", "wrong")
            .await
            .message(StatusCode::UNAUTHORIZED);
    }
    for spelling in [CUSTOMER, "CUSTOMER@EXAMPLE.COM", "Customer@Example.com"] {
        let reply = server.sign_in(CUSTOMER_TOKEN, spelling, PASSWORD).await;
        assert_eq!(
            reply.message(StatusCode::UNAUTHORIZED),
            SIGN_IN_REFUSED,
            "{spelling}"
        );
    }
    // Another customer and the admin are not locked.
    server.customer_token(OTHER).await;
    server.admin_token().await;

    if let Backend::Redis(redis) = &server.backend {
        let key = format!(
            "{}lock:{}",
            redis.prefix,
            lockout_key(TokenKind::Customer, "customer@example.com")
        );
        let mut inspector = redis.inspector().await;
        let count: Option<u64> = ::redis::cmd("GET")
            .arg(&key)
            .query_async(&mut inspector)
            .await
            .expect("GET");
        assert!(count.is_some_and(|count| count > 6), "{key}: {count:?}");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut inspector)
            .await
            .expect("PTTL");
        assert!(0 < ttl && ttl <= 2000, "{key} PTTL {ttl}");
        assert_eq!(redis_keys(redis, "lock:*").await, [key]);
    }
}

async fn fifty_parallel_wrong_passwords_check_at_most_six_passwords(make: impl MakeServer) {
    let server = Arc::new(make(LockoutPolicy::default()).await);
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let server = Arc::clone(&server);
        attempts.spawn(async move { server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await });
    }
    let first = attempts
        .join_next()
        .await
        .expect("an attempt")
        .expect("joined");
    assert_eq!(first.message(StatusCode::UNAUTHORIZED), SIGN_IN_REFUSED);
    while let Some(reply) = attempts.join_next().await {
        reply.expect("joined").assert_same_as(&first);
    }

    let verified = server.verifications();
    eprintln!(
        "[{}] 50 parallel wrong passwords: {verified} password verifications",
        server.store_name()
    );
    assert!((1..=6).contains(&verified), "{verified} passwords verified");
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 50);
    let locked = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
    locked.assert_same_as(&first);
    assert_eq!(server.verifications(), verified);
}

async fn a_directory_outage_answers_503_and_counts_toward_no_lockout(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    server.directory_fails(Outage::Down);
    // More retries than the lockout allows, all with the right password.
    for _ in 0..10 {
        let reply = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.header(RETRY_AFTER).is_some(), "{reply:?}");
    }
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 0);

    server.directory_fails(Outage::None);
    let token = server.customer_token(CUSTOMER).await;
    assert!(server.opens(CUSTOMER_ME, &token).await);
}

async fn a_full_password_check_queue_answers_503_and_locks_nobody_out(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    server.directory_fails(Outage::Busy);
    // A flood of made-up names, and the victim retrying with the right password.
    for i in 0..50 {
        let reply = server
            .sign_in(CUSTOMER_TOKEN, &format!("flood{i}@example.com"), "x")
            .await;
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
    }
    for _ in 0..10 {
        let reply = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.header(RETRY_AFTER).is_some(), "{reply:?}");
    }
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 0);
    assert_eq!(
        server
            .failures(TokenKind::Customer, "flood0@example.com")
            .await,
        0
    );
    if let Backend::Redis(redis) = &server.backend {
        assert_eq!(
            redis_keys(redis, "lock:*").await,
            Vec::<String>::new(),
            "refused attempts leave no counter behind"
        );
    }

    server.directory_fails(Outage::None);
    let token = server.customer_token(CUSTOMER).await;
    assert!(server.opens(CUSTOMER_ME, &token).await);
}

async fn made_up_usernames_get_fixed_length_counters_that_pick_no_cluster_slot(
    make: impl MakeServer,
) {
    let server = make(LockoutPolicy::default()).await;
    let names = [
        "{victim}a@example.com",
        "{victim}b@example.com",
        "x",
        &"y".repeat(255),
    ];
    for name in names {
        server
            .sign_in(CUSTOMER_TOKEN, name, "wrong")
            .await
            .message(StatusCode::UNAUTHORIZED);
        assert_eq!(
            server.failures(TokenKind::Customer, name).await,
            1,
            "{name}"
        );
    }
    if let Backend::Redis(redis) = &server.backend {
        let keys = redis_keys(redis, "lock:*").await;
        assert_eq!(keys.len(), names.len(), "{keys:?}");
        let prefix = format!("{}lock:customer:", redis.prefix);
        for key in keys {
            let hash = key.strip_prefix(&prefix).expect("a customer counter");
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{key}: the username enters the key only as its SHA-256"
            );
        }
    }
}

// --- revocation ------------------------------------------------------------------------

async fn revoke_customer_token_kills_every_token_of_the_caller_and_no_other(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(server.customer_token(CUSTOMER).await);
    }
    let other = server.customer_token(OTHER).await;
    let admin = server.admin_token().await;

    let reply = server.post(REVOKE_ALL, None, "", Some(&mine[0])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "true");
    for token in &mine {
        assert!(!server.opens(CUSTOMER_ME, token).await);
    }
    assert!(server.opens(CUSTOMER_ME, &other).await);
    assert!(server.opens(ADMIN_ME, &admin).await);
    assert_eq!(server.stored_tokens().await, 2);

    // The revoked token no longer authenticates the route itself.
    server
        .post(REVOKE_ALL, None, "", Some(&mine[1]))
        .await
        .message(StatusCode::UNAUTHORIZED);
}

async fn revoke_customer_token_refuses_admin_tokens_and_anonymous_calls(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let customer = server.customer_token(CUSTOMER).await;
    let admin = server.admin_token().await;

    let as_admin = server.post(REVOKE_ALL, None, "", Some(&admin)).await;
    as_admin.message(StatusCode::FORBIDDEN);
    assert!(
        as_admin
            .header(WWW_AUTHENTICATE)
            .is_some_and(|value| value.contains("insufficient_scope"))
    );

    let anonymous = server.post(REVOKE_ALL, None, "", None).await;
    anonymous.message(StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .header(WWW_AUTHENTICATE)
            .is_some_and(|value| value.starts_with("Bearer"))
    );

    assert!(server.opens(CUSTOMER_ME, &customer).await);
    assert!(server.opens(ADMIN_ME, &admin).await);
}

async fn revoke_without_a_body_kills_only_the_callers_own_token(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let first = server.customer_token(CUSTOMER).await;
    let second = server.customer_token(CUSTOMER).await;

    let reply = server.post(REVOKE, None, "", Some(&first)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "true");
    assert!(!server.opens(CUSTOMER_ME, &first).await);
    assert!(server.opens(CUSTOMER_ME, &second).await);
    assert_eq!(server.stored_tokens().await, 1);

    server
        .post(REVOKE, None, "", None)
        .await
        .message(StatusCode::UNAUTHORIZED);
}

async fn revoke_of_a_named_token_kills_that_token(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let caller = server.customer_token(CUSTOMER).await;
    let target = server.customer_token(CUSTOMER).await;

    let reply = server
        .post_json(REVOKE, &json!({ "token": target }), Some(&caller))
        .await;
    assert_eq!(reply.json(), json!(true));
    assert!(!server.opens(CUSTOMER_ME, &target).await);
    assert!(server.opens(CUSTOMER_ME, &caller).await);
}

async fn revoke_of_an_unknown_or_revoked_token_answers_true(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let caller = server.customer_token(CUSTOMER).await;
    let revoked = server.customer_token(CUSTOMER).await;
    let first = server
        .post_json(REVOKE, &json!({ "token": revoked }), Some(&caller))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_eq!(first.json(), json!(true));
    assert!(
        !server.opens(CUSTOMER_ME, &revoked).await,
        "the first revoke took"
    );

    for token in [
        revoked.as_str(),
        "0123456789abcdefghijklmnopqrstuv",
        "not a token at all",
    ] {
        let reply = server
            .post_json(REVOKE, &json!({ "token": token }), Some(&caller))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{token}: {reply:?}");
        assert_eq!(reply.json(), json!(true), "{token}");
    }
    assert!(server.opens(CUSTOMER_ME, &caller).await);
}

async fn customer_cannot_revoke_another_customers_token(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let mine = server.customer_token(CUSTOMER).await;
    let theirs = server.customer_token(OTHER).await;
    let admin = server.admin_token().await;

    for target in [&theirs, &admin] {
        server
            .post_json(REVOKE, &json!({ "token": target }), Some(&mine))
            .await
            .message(StatusCode::FORBIDDEN);
    }
    assert!(server.opens(CUSTOMER_ME, &theirs).await);
    assert!(server.opens(ADMIN_ME, &admin).await);
    assert!(server.opens(CUSTOMER_ME, &mine).await);
}

async fn a_customer_cannot_revoke_the_token_of_an_admin_of_the_same_name(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    // The customer `admin` and the admin `admin`: same subject text, different kinds.
    let customer = server.customer_token(ADMIN).await;
    let admin = server.admin_token().await;

    server
        .post_json(REVOKE, &json!({ "token": admin }), Some(&customer))
        .await
        .message(StatusCode::FORBIDDEN);
    assert!(server.opens(ADMIN_ME, &admin).await);
}

async fn admin_may_revoke_any_customers_token(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    let customer = server.customer_token(CUSTOMER).await;
    let other = server.customer_token(OTHER).await;

    let reply = server
        .post_json(REVOKE, &json!({ "token": customer }), Some(&admin))
        .await;
    assert_eq!(reply.json(), json!(true));
    assert!(!server.opens(CUSTOMER_ME, &customer).await);
    assert!(server.opens(CUSTOMER_ME, &other).await);
    assert!(server.opens(ADMIN_ME, &admin).await);
}

async fn revoke_of_a_non_string_token_is_a_400(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let caller = server.customer_token(CUSTOMER).await;
    for token in not_a_string().into_iter().flatten() {
        let reply = server
            .post_json(REVOKE, &json!({ "token": token }), Some(&caller))
            .await;
        assert_eq!(
            reply.message(StatusCode::BAD_REQUEST),
            "\"token\" is required. Enter and try again.",
            "{token}"
        );
    }
    assert!(server.opens(CUSTOMER_ME, &caller).await);
}

// --- admin force sign-out --------------------------------------------------------------

async fn admin_force_sign_out_kills_every_token_of_the_customer(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    let first = server.customer_token(CUSTOMER).await;
    let second = server.customer_token(CUSTOMER).await;
    let other = server.customer_token(OTHER).await;

    let reply = server
        .post(&force_sign_out(CUSTOMER), None, "", Some(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "2");
    assert!(!server.opens(CUSTOMER_ME, &first).await);
    assert!(!server.opens(CUSTOMER_ME, &second).await);
    assert!(server.opens(CUSTOMER_ME, &other).await);

    // Nothing left to revoke.
    let again = server
        .post(&force_sign_out(CUSTOMER), None, "", Some(&admin))
        .await;
    assert_eq!(again.json(), json!(0));
}

async fn admin_force_sign_out_matches_the_email_case_insensitively(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    let customer = server.customer_token(CUSTOMER).await;

    let reply = server
        .post(
            &force_sign_out("CUSTOMER@example.com"),
            None,
            "",
            Some(&admin),
        )
        .await;
    assert_eq!(reply.json(), json!(1));
    assert!(!server.opens(CUSTOMER_ME, &customer).await);
}

/// Fails under `/rest/{store_code}`: the handler's `Path<String>` finds two parameters
/// (`store_code`, `email`) and axum answers 500 in plain text.
async fn admin_force_sign_out_answers_at_v1_rest_v1_and_rest_store_code_v1(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    for prefix in PREFIXES {
        let customer = server.customer_token(CUSTOMER).await;
        let route = format!("{prefix}{}", force_sign_out(CUSTOMER));
        let reply = server.post(&route, None, "", Some(&admin)).await;
        assert_eq!(reply.status, StatusCode::OK, "{route}: {reply:?}");
        assert_eq!(reply.json(), json!(1), "{route}");
        assert!(!server.opens(CUSTOMER_ME, &customer).await);
    }
}

async fn admin_force_sign_out_of_an_unknown_email_is_a_404(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    let reply = server
        .post(
            &force_sign_out("nobody@example.com"),
            None,
            "",
            Some(&admin),
        )
        .await;
    reply.message(StatusCode::NOT_FOUND);
}

async fn admin_force_sign_out_refuses_customer_tokens(make: impl MakeServer) {
    let server = make(LockoutPolicy::default()).await;
    let customer = server.customer_token(CUSTOMER).await;
    let other = server.customer_token(OTHER).await;
    for (target, caller) in [(CUSTOMER, &customer), (OTHER, &customer)] {
        server
            .post(&force_sign_out(target), None, "", Some(caller))
            .await
            .message(StatusCode::FORBIDDEN);
    }
    server
        .post(&force_sign_out(CUSTOMER), None, "", None)
        .await
        .message(StatusCode::UNAUTHORIZED);
    assert!(server.opens(CUSTOMER_ME, &customer).await);
    assert!(server.opens(CUSTOMER_ME, &other).await);
}

// ---------------------------------------------------------------------------------------
// One store only
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_while_redis_is_down_is_a_503_with_retry_after_never_a_401() {
    let mut redis_server = RedisServer::start();
    let options = RedisStoreOptions::default().with_timeout(Duration::from_millis(300));
    let store = RedisStore::connect_with(&redis_server.url(), options)
        .await
        .expect("connect to the test redis-server");
    let server = Server::start(
        TokenRegistry::new(store),
        Backend::Unobserved,
        LockoutPolicy::default(),
    )
    .await;
    let token = server.customer_token(CUSTOMER).await;

    redis_server.stop();
    for (username, password) in [
        (CUSTOMER, PASSWORD),
        (CUSTOMER, PASSWORD),
        (CUSTOMER, "wrong"),
    ] {
        let started = Instant::now();
        let reply = server.sign_in(CUSTOMER_TOKEN, username, password).await;
        eprintln!(
            "sign-in with redis down answered {} in {:?}",
            reply.status,
            started.elapsed()
        );
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.header(RETRY_AFTER).is_some(), "{reply:?}");
        assert!(reply.header(CACHE_CONTROL).is_none(), "{reply:?}");
    }
    // The layer in front of the protected and the revoke routes fails closed too.
    for reply in [
        server.get(CUSTOMER_ME, Some(&token)).await,
        server.post(REVOKE, None, "", Some(&token)).await,
    ] {
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.header(RETRY_AFTER).is_some(), "{reply:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Limits on what a sign-in may cost
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_over_long_username_is_refused_without_counting_or_checking_a_password() {
    let verifications = Arc::new(AtomicUsize::new(0));
    let directory = CountingDirectory {
        accounts: ACCOUNTS.clone(),
        verifications: verifications.clone(),
        outage: Arc::default(),
    };
    let store = MemoryStore::new();
    let service = SignIn::new(TokenRegistry::new(store.clone()), directory);
    let name = format!(
        "{}@example.com",
        "a".repeat(tower_bearer::sign_in::MAX_USERNAME_LEN)
    );

    let refused = service.sign_in(TokenKind::Customer, &name, PASSWORD).await;
    assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
    assert_eq!(
        verifications.load(Ordering::SeqCst),
        0,
        "no password checked"
    );
    let counted =
        tower_bearer::store::SignInStore::failures(&store, lockout_key(TokenKind::Customer, &name));
    assert_eq!(
        counted.await.unwrap(),
        0,
        "no counter stored for a made-up name"
    );
}

/// A directory that, like many databases, ignores surrounding spaces in usernames.
struct TrimmingDirectory;

impl Directory for TrimmingDirectory {
    fn verify<'a>(
        &'a self,
        kind: TokenKind,
        username: &'a str,
        password: &'a str,
    ) -> DirectoryFuture<'a, Option<String>> {
        ACCOUNTS.verify(kind, username.trim(), password)
    }

    fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>> {
        ACCOUNTS.customer(email.trim())
    }

    fn lockout_name(&self, _kind: TokenKind, username: &str) -> String {
        username.trim().to_lowercase()
    }
}

#[tokio::test]
async fn a_success_clears_the_counter_the_directory_counts_failures_under() {
    let lockout = LockoutPolicy::new(6, Duration::from_secs(60)).expect("a valid policy");
    let service = SignIn::new(TokenRegistry::memory(), TrimmingDirectory).with_lockout(lockout);
    for _ in 0..3 {
        // Five failures under one spelling, a success under another: the success must
        // clear the counter both share (the directory's lockout name), or the next round's
        // failures would lock the account.
        for _ in 0..5 {
            let refused = service
                .sign_in(TokenKind::Customer, &format!(" {CUSTOMER} "), "wrong")
                .await;
            assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
        }
        let padded = format!("{CUSTOMER}   ");
        let signed_in = service
            .sign_in(TokenKind::Customer, &padded, PASSWORD)
            .await;
        assert!(signed_in.is_ok(), "{signed_in:?}");
    }
}

#[tokio::test]
async fn every_spelling_the_directory_accepts_shares_one_lockout_counter() {
    let service = SignIn::new(TokenRegistry::memory(), TrimmingDirectory);
    let paddings = [
        ("", " "),
        (" ", ""),
        (" ", " "),
        ("  ", ""),
        ("", "  "),
        ("  ", "  "),
    ];
    for (before, after) in paddings {
        let name = format!("{before}{CUSTOMER}{after}");
        let refused = service.sign_in(TokenKind::Customer, &name, "wrong").await;
        assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
    }
    let locked = service
        .sign_in(TokenKind::Customer, CUSTOMER, PASSWORD)
        .await;
    assert!(
        matches!(locked, Err(SignInError::InvalidCredentials)),
        "six failures under six spellings lock the one account"
    );
}

#[tokio::test]
async fn a_malformed_email_in_the_force_sign_out_path_is_a_json_400() {
    let server = memory(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    // %FF decodes to a byte that is not UTF-8.
    let reply = server
        .post(&force_sign_out("%FF"), None, "", Some(&admin))
        .await;
    reply.message(StatusCode::BAD_REQUEST);
}
