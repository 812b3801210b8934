//! Admin tokens with a TOTP second factor (`POST /V1/tfa/provider/google/authenticate`), end
//! to end: two app instances on loopback ports sharing one store, a real HTTP client, and
//! codes computed here from the admin's secret at the current time. One suite, run against
//! the memory store and Redis on a real `redis-server`.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use reqwest::StatusCode;
use reqwest::header::CACHE_CONTROL;
use serde_json::{Value, json};
use tower_bearer::magento::rest;
use tower_bearer::sign_in::{
    Directory, INVALID_CREDENTIALS_MESSAGE, LockoutPolicy, MemoryDirectory,
    TWO_FACTOR_REQUIRED_MESSAGE, TotpSecret,
};
use tower_bearer::store::MemoryStore;
use tower_bearer::{Admin, BearerAuthLayer, Caller, SignIn, TokenRegistry};

use crate::support::{Make, TestRedis, serve, sha256_hex, store_suite};

const TFA_TOKEN: &str = "/V1/tfa/provider/google/authenticate";
const ADMIN_TOKEN: &str = "/V1/integration/admin/token";
const ADMIN_ME: &str = "/V1/admin/me";

const TFA_ADMIN: &str = "admin2fa";
const PLAIN_ADMIN: &str = "admin";
const PASSWORD: &str = "admin123";
const MAX_FAILURES: u64 = 3;

/// The admin's secret, as an authenticator app holds it.
static SECRET: LazyLock<TotpSecret> =
    LazyLock::new(|| TotpSecret::generate().expect("OS random source"));

/// The accounts, hashed once for the whole suite (lockout counters and used codes live in
/// each test's own store, so sharing the directory shares no state between tests).
static ACCOUNTS: LazyLock<Arc<MemoryDirectory>> = LazyLock::new(|| {
    let directory = MemoryDirectory::new();
    directory
        .add_admin_with_totp(TFA_ADMIN, PASSWORD, SECRET.clone())
        .expect("hash a password");
    directory
        .add_admin(PLAIN_ADMIN, PASSWORD)
        .expect("hash a password");
    Arc::new(directory)
});

/// Two instances of the app over one store (shared memory, or one Redis), as behind a load
/// balancer.
pub struct Deployment {
    first: String,
    second: String,
    client: reqwest::Client,
    redis: Option<TestRedis>,
}

async fn memory(lockout: LockoutPolicy) -> Deployment {
    let store = MemoryStore::new();
    let first = serve_app(TokenRegistry::new(store.clone()), lockout).await;
    let second = serve_app(TokenRegistry::new(store), lockout).await;
    Deployment::new(first, second, None)
}

async fn redis(lockout: LockoutPolicy) -> Deployment {
    let redis = TestRedis::start();
    let first = serve_app(redis.registry().await, lockout).await;
    let second = serve_app(redis.registry().await, lockout).await;
    Deployment::new(first, second, Some(redis))
}

/// The suite's lockout: `MAX_FAILURES` failures within a minute lock an account.
fn lockout() -> LockoutPolicy {
    LockoutPolicy::new(MAX_FAILURES, Duration::from_secs(60)).expect("a valid lockout")
}

/// The token routes and `GET /V1/admin/me`, served on a loopback port for the rest of the
/// test; returns the base URL.
async fn serve_app(registry: TokenRegistry, lockout: LockoutPolicy) -> String {
    let directory: Arc<dyn Directory> = ACCOUNTS.clone();
    let service = SignIn::from_shared(registry.clone(), directory).with_lockout(lockout);
    let app = rest::router(service).merge(
        Router::new()
            .route(ADMIN_ME, get(admin_me))
            .route_layer(BearerAuthLayer::required(registry)),
    );
    serve(app).await
}

async fn admin_me(Admin(caller): Admin) -> Json<Caller> {
    Json(caller)
}

impl Deployment {
    fn new(first: String, second: String, redis: Option<TestRedis>) -> Self {
        Self {
            first,
            second,
            client: reqwest::Client::new(),
            redis,
        }
    }

    /// POSTs `body` as JSON to `path` on the instance at `base`; the status and the JSON
    /// answer (with `Cache-Control`, if any).
    async fn post_to(&self, base: &str, path: &str, body: Value) -> Reply {
        let response = self
            .client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        Reply::read(response).await
    }

    async fn two_factor(&self, username: &str, password: &str, otp: &str) -> Reply {
        let body = json!({ "username": username, "password": password, "otp": otp });
        self.post_to(&self.first, TFA_TOKEN, body).await
    }

    async fn two_factor_on_second(&self, otp: &str) -> Reply {
        let body = json!({ "username": TFA_ADMIN, "password": PASSWORD, "otp": otp });
        self.post_to(&self.second, TFA_TOKEN, body).await
    }

    async fn plain(&self, username: &str, password: &str) -> Reply {
        let body = json!({ "username": username, "password": password });
        self.post_to(&self.first, ADMIN_TOKEN, body).await
    }

    async fn me(&self, token: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}{ADMIN_ME}", self.first))
            .bearer_auth(token)
            .send()
            .await
            .expect("the server answers");
        Reply::read(response).await
    }
}

struct Reply {
    status: StatusCode,
    cache_control: Option<String>,
    body: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let cache_control = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.expect("a JSON answer");
        Self {
            status,
            cache_control,
            body,
        }
    }

    /// Asserts a 200 with a bare JSON string and returns the token.
    #[track_caller]
    fn token(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.cache_control.as_deref(), Some("no-store"));
        let token = self.body.as_str().expect("a bare JSON string");
        assert_eq!(token.len(), 32);
        token.to_owned()
    }

    #[track_caller]
    fn assert_refused(&self, message: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.body);
        assert_eq!(self.body, json!({ "message": message }));
    }
}

/// The current Unix time, taken well inside a step (waiting out the last seconds of one),
/// so a test and the server agree on the step even if a second ticks between them.
async fn now_inside_a_step() -> u64 {
    let now = unix_now();
    if now % 30 >= 26 {
        tokio::time::sleep(Duration::from_secs(30 - now % 30)).await;
        return unix_now();
    }
    now
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

store_suite! {
    stores: [memory, redis],
    cases: [
        current_code_gets_an_admin_token_that_records_totp,
        codes_of_the_previous_and_next_step_are_accepted,
        codes_two_steps_off_are_refused,
        malformed_codes_are_refused_with_the_generic_message,
        used_code_is_refused_on_every_instance,
        older_code_is_refused_once_a_newer_one_was_used,
        wrong_password_with_a_valid_code_is_refused_and_leaves_the_code_usable,
        unknown_user_is_refused_with_the_generic_message,
        lockout_is_shared_with_the_password_route_and_across_instances,
        accepted_code_clears_the_failure_count,
        plain_admin_route_refuses_a_two_factor_admin_and_counts_the_attempt,
        admin_without_two_factor_uses_the_plain_route_only,
        missing_fields_are_400_in_order_username_password_otp,
    ],
}

async fn current_code_gets_an_admin_token_that_records_totp(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    let token = app
        .two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now))
        .await
        .token();

    let me = app.me(&token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["kind"], "admin");
    assert_eq!(me.body["subject"], TFA_ADMIN);
    assert_eq!(me.body["second_factor"], "totp");
    assert_eq!(me.body["acting_admin"], Value::Null);
}

async fn codes_of_the_previous_and_next_step_are_accepted(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now - 30))
        .await
        .token();
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now + 30))
        .await
        .token();
}

async fn codes_two_steps_off_are_refused(make: impl Make<LockoutPolicy, Deployment>) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    for code in [SECRET.code_at(now - 60), SECRET.code_at(now + 60)] {
        app.two_factor(TFA_ADMIN, PASSWORD, &code)
            .await
            .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    }
}

async fn malformed_codes_are_refused_with_the_generic_message(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    let code = SECRET.code_at(now);
    let malformed = [format!(" {code}"), format!("{code}0"), code[1..].to_owned()];
    // Each is refused without using the code up...
    for malformed in &malformed[..2] {
        app.two_factor(TFA_ADMIN, PASSWORD, malformed)
            .await
            .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    }
    app.two_factor(TFA_ADMIN, PASSWORD, &code).await.token();
    // ...and counts as a failure: MAX_FAILURES of them lock the admin, even with the next
    // step's right code.
    assert_eq!(malformed.len() as u64, MAX_FAILURES);
    for malformed in &malformed {
        app.two_factor(TFA_ADMIN, PASSWORD, malformed)
            .await
            .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    }
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now + 30))
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
}

async fn used_code_is_refused_on_every_instance(make: impl Make<LockoutPolicy, Deployment>) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    let code = SECRET.code_at(now);
    app.two_factor(TFA_ADMIN, PASSWORD, &code).await.token();

    app.two_factor(TFA_ADMIN, PASSWORD, &code)
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    app.two_factor_on_second(&code)
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);

    // The second instance is not refusing everything: the next step's code is new to it.
    app.two_factor_on_second(&SECRET.code_at(now + 30))
        .await
        .token();

    if let Some(redis) = &app.redis {
        let mut redis_connection = redis.inspector().await;
        let admin = sha256_hex(&TFA_ADMIN.to_lowercase());
        let key = format!("{}used:totp:{admin}:{}", redis.prefix, now / 30);
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut redis_connection)
            .await
            .unwrap();
        assert!(
            ttl > 60_000 && ttl <= 120_000,
            "{key} is claimed for the code's window plus a step, PTTL {ttl}"
        );
    }
}

async fn older_code_is_refused_once_a_newer_one_was_used(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now + 30))
        .await
        .token();
    for older in [SECRET.code_at(now), SECRET.code_at(now - 30)] {
        app.two_factor_on_second(&older)
            .await
            .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    }
}

async fn wrong_password_with_a_valid_code_is_refused_and_leaves_the_code_usable(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    let code = SECRET.code_at(now);
    app.two_factor(TFA_ADMIN, "wrong", &code)
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    app.two_factor(TFA_ADMIN, PASSWORD, &code).await.token();
}

async fn unknown_user_is_refused_with_the_generic_message(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    app.two_factor("nobody", PASSWORD, &SECRET.code_at(now))
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
}

async fn lockout_is_shared_with_the_password_route_and_across_instances(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    // Three failures, on both routes and both instances: a wrong password on the plain
    // route, a wrong code and a wrong password on the two-factor routes.
    app.plain(TFA_ADMIN, "wrong")
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    app.two_factor_on_second("000000")
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    app.two_factor(TFA_ADMIN, "wrong", &SECRET.code_at(now))
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);

    // Locked: the right password and a valid code are refused alike, on either route.
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now))
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    app.two_factor_on_second(&SECRET.code_at(now))
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    app.plain(TFA_ADMIN, PASSWORD)
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);

    // The lock is per account: the plain admin is unaffected.
    app.plain(PLAIN_ADMIN, PASSWORD).await.token();
}

async fn accepted_code_clears_the_failure_count(make: impl Make<LockoutPolicy, Deployment>) {
    let app = make(lockout()).await;
    let now = now_inside_a_step().await;
    for _ in 0..MAX_FAILURES - 1 {
        app.two_factor(TFA_ADMIN, PASSWORD, "000000")
            .await
            .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    }
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now - 30))
        .await
        .token();
    for _ in 0..MAX_FAILURES - 1 {
        app.two_factor(TFA_ADMIN, "wrong", "000000")
            .await
            .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    }
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now))
        .await
        .token();
}

async fn plain_admin_route_refuses_a_two_factor_admin_and_counts_the_attempt(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    for _ in 0..MAX_FAILURES {
        app.plain(TFA_ADMIN, PASSWORD)
            .await
            .assert_refused(TWO_FACTOR_REQUIRED_MESSAGE);
    }
    // Each of those counted: the two-factor route is now locked too.
    let now = now_inside_a_step().await;
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now))
        .await
        .assert_refused(INVALID_CREDENTIALS_MESSAGE);
}

async fn admin_without_two_factor_uses_the_plain_route_only(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let token = app.plain(PLAIN_ADMIN, PASSWORD).await.token();
    let me = app.me(&token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["subject"], PLAIN_ADMIN);
    assert_eq!(me.body["second_factor"], Value::Null);

    let now = now_inside_a_step().await;
    for code in ["123456".to_owned(), SECRET.code_at(now)] {
        app.two_factor(PLAIN_ADMIN, PASSWORD, &code)
            .await
            .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    }
}

async fn missing_fields_are_400_in_order_username_password_otp(
    make: impl Make<LockoutPolicy, Deployment>,
) {
    let app = make(lockout()).await;
    let cases = [
        (json!({ "otp": "123456" }), "username"),
        (
            json!({ "username": TFA_ADMIN, "otp": "123456" }),
            "password",
        ),
        (
            json!({ "username": TFA_ADMIN, "password": PASSWORD }),
            "otp",
        ),
        (
            json!({ "username": TFA_ADMIN, "password": PASSWORD, "otp": "" }),
            "otp",
        ),
        (
            json!({ "username": TFA_ADMIN, "password": PASSWORD, "otp": null }),
            "otp",
        ),
        (
            json!({ "username": TFA_ADMIN, "password": PASSWORD, "otp": 123456 }),
            "otp",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post_to(&app.first, TFA_TOKEN, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            reply.body,
            json!({ "message": format!("\"{field}\" is required. Enter and try again.") }),
            "{body}"
        );
    }
    // None of them reached the password check: no failure was counted.
    let now = now_inside_a_step().await;
    for _ in 0..MAX_FAILURES - 1 {
        app.two_factor(TFA_ADMIN, "wrong", "000000")
            .await
            .assert_refused(INVALID_CREDENTIALS_MESSAGE);
    }
    app.two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now))
        .await
        .token();
}

/// Redis only: the stored record says which factor was used, in a short optional field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_record_of_a_two_factor_token_carries_the_factor_and_others_do_not() {
    let app = redis(lockout()).await;
    let now = now_inside_a_step().await;
    let with_totp = app
        .two_factor(TFA_ADMIN, PASSWORD, &SECRET.code_at(now))
        .await
        .token();
    let password_only = app.plain(PLAIN_ADMIN, PASSWORD).await.token();

    let redis = app.redis.as_ref().expect("a redis deployment");
    let mut connection = redis.inspector().await;
    for (token, factor) in [(with_totp, Some("totp")), (password_only, None)] {
        let key = redis.token_key(&tower_bearer::token::TokenHash::of(&token));
        let record: String = ::redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        let record: Value = serde_json::from_str(&record).unwrap();
        assert_eq!(record.get("f").and_then(Value::as_str), factor, "{record}");
    }
}
