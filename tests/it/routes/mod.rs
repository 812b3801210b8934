//! The token routes end to end: a real axum server on a loopback port, a real HTTP client
//! (reqwest), the app assembled as `examples/server.rs` does (token routes and protected
//! demo routes at `/V1`, `/rest/V1` and `/rest/{store_code}/V1`). One suite, run against
//! the memory registry and the Redis registry on a real `redis-server`, its cases by topic:
//! `sign_in.rs`, `lockout.rs`, `revocation.rs`, `force_sign_out.rs`. Here: the app, the
//! server and client every case uses, and the suite.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, DATE, HeaderMap, HeaderName};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tower_bearer::magento::rest;
use tower_bearer::sign_in::{
    CustomerAccount, Directory, DirectoryError, DirectoryFuture, LockoutPolicy, MemoryDirectory,
    PasswordError, RemoteAssistance,
};
use tower_bearer::store::MemoryStore;
use tower_bearer::{Admin, BearerAuthLayer, Caller, Customer, SignIn, TokenKind, TokenRegistry};

use crate::support::{TestRedis, lockout_key, spawn_server, store_suite};

mod force_sign_out;
mod lockout;
mod revocation;
mod sign_in;

// The suite's cases, for `store_suite!` below.
use self::force_sign_out::*;
use self::lockout::*;
use self::revocation::*;
use self::sign_in::*;

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
        let (base, task) = spawn_server(app(service)).await;
        Self {
            base,
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

    /// Token records in the store: the memory store's count, or the `t:` keys under the
    /// test's prefix in Redis.
    async fn stored_tokens(&self) -> usize {
        match &self.backend {
            Backend::Memory(store) => store.stored_tokens(),
            Backend::Redis(redis) => ::redis::cmd("KEYS")
                .arg(format!("{}t:*", redis.prefix))
                .query_async::<Vec<Vec<u8>>>(&mut redis.inspector().await)
                .await
                .expect("KEYS")
                .len(),
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

// ---------------------------------------------------------------------------------------
// The suite, on both stores
// ---------------------------------------------------------------------------------------

store_suite! {
    stores: [memory, redis],
    cases: [
        // sign_in.rs
        customer_token_is_a_bare_uncached_string_that_opens_customer_routes_only,
        admin_token_is_a_bare_uncached_string_that_opens_admin_routes_only,
        every_route_answers_at_v1_rest_v1_and_rest_store_code_v1,
        json_content_type_is_matched_by_essence_ignoring_case_and_parameters,
        missing_empty_null_or_non_string_username_is_a_400_and_issues_nothing,
        missing_empty_null_or_non_string_password_is_a_400_and_issues_nothing,
        malformed_empty_or_non_object_json_is_a_400_and_issues_nothing,
        a_body_that_is_not_json_by_content_type_is_a_415_and_issues_nothing,
        a_body_over_16_kib_is_a_413_and_issues_nothing,
        a_directory_outage_answers_503_and_counts_toward_no_lockout,
        a_full_password_check_queue_answers_503_and_locks_nobody_out,
        // lockout.rs
        wrong_password_unknown_user_and_locked_account_get_one_identical_401,
        six_failures_lock_the_account_until_the_window_passes,
        a_success_clears_the_failure_count,
        lockout_is_per_kind_and_lower_cased_username,
        fifty_parallel_wrong_passwords_check_at_most_six_passwords,
        made_up_usernames_get_fixed_length_counters_that_pick_no_cluster_slot,
        // revocation.rs
        revoke_customer_token_kills_every_token_of_the_caller_and_no_other,
        revoke_customer_token_refuses_admin_tokens_and_anonymous_calls,
        revoke_without_a_body_kills_only_the_callers_own_token,
        revoke_of_a_named_token_kills_that_token,
        revoke_of_an_unknown_or_revoked_token_answers_true,
        customer_cannot_revoke_another_customers_token,
        a_customer_cannot_revoke_the_token_of_an_admin_of_the_same_name,
        admin_may_revoke_any_customers_token,
        revoke_of_a_non_string_token_is_a_400,
        // force_sign_out.rs
        admin_force_sign_out_kills_every_token_of_the_customer,
        admin_force_sign_out_matches_the_email_case_insensitively,
        admin_force_sign_out_answers_at_v1_rest_v1_and_rest_store_code_v1,
        admin_force_sign_out_of_an_unknown_email_is_a_404,
        admin_force_sign_out_refuses_customer_tokens,
    ],
}
