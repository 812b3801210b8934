//! Lifecycle events: each action fires its events once, with the right fields, to the hook
//! and as `tracing` events, and never a token, a password or a one-time code. Sign-ins go
//! through `SignIn`; revocations through the real routes on a loopback port, so that `by`
//! names the caller who asked. The limit's evictions run on the memory store and on a real
//! `redis-server`.

use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_bearer::magento::rest;
use tower_bearer::registry::SessionRules;
use tower_bearer::sign_in::{LockoutPolicy, MemoryDirectory, RemoteAssistance, TotpSecret};
use tower_bearer::store::{OnLimit, SubjectLimit};
use tower_bearer::telemetry::events::{
    Actor, EVENT_QUEUE_CAPACITY, Event, EventDetail, RevokeReason, SecondFactorRefusal,
};
use tower_bearer::token::ClientDetails;
use tower_bearer::{SignIn, TokenKind, TokenRegistry};
use tracing_subscriber::fmt::MakeWriter;

use crate::support::{TestRedis, keep_tracing_interest_open, serve, wait_until};

const CUSTOMER: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";
const ADMIN: &str = "grace";
const TFA_ADMIN: &str = "hopper";
const ADMIN_PASSWORD: &str = "admin password 123";

static SECRET: LazyLock<TotpSecret> =
    LazyLock::new(|| TotpSecret::generate().expect("OS random source"));

/// The accounts, hashed once for the whole binary (lockout counters live in each test's
/// own store).
static ACCOUNTS: LazyLock<Arc<MemoryDirectory>> = LazyLock::new(|| {
    let directory = MemoryDirectory::new();
    directory
        .add_customer(CUSTOMER, PASSWORD, RemoteAssistance::Allowed)
        .expect("hash a password");
    directory
        .add_admin(ADMIN, ADMIN_PASSWORD)
        .expect("hash a password");
    directory
        .add_admin_with_totp(TFA_ADMIN, ADMIN_PASSWORD, SECRET.clone())
        .expect("hash a password");
    Arc::new(directory)
});

/// What a test saw: the events its hook received, and the `tracing` output of its thread.
#[derive(Clone, Default)]
struct Seen {
    events: Arc<Mutex<Vec<Event>>>,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Seen {
    fn registry(&self, registry: TokenRegistry) -> TokenRegistry {
        let events = self.events.clone();
        registry.with_event_hook(move |event: &Event| events.lock().unwrap().push(event.clone()))
    }

    /// The `tracing` output (JSON lines) of this thread until the guard drops; the tests
    /// run on a current-thread runtime, so the served routes log here too.
    fn capture_tracing(&self) -> tracing::subscriber::DefaultGuard {
        keep_tracing_interest_open();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Waits for `count` events, then returns them all.
    async fn events(&self, count: usize) -> Vec<Event> {
        let events = self.events.clone();
        wait_until(
            Duration::from_secs(10),
            "the hook to receive the events",
            || events.lock().unwrap().len() >= count,
        )
        .await;
        // A moment for an unexpected extra event to show.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.events.lock().unwrap().clone()
    }

    fn details(events: &[Event]) -> Vec<EventDetail> {
        events.iter().map(|event| event.detail.clone()).collect()
    }

    /// The events as their JSON lines, without `at`.
    fn lines(events: &[Event]) -> Vec<Value> {
        events
            .iter()
            .map(|event| {
                let mut line = serde_json::to_value(event).expect("JSON");
                let at = line.as_object_mut().and_then(|line| line.remove("at"));
                assert!(
                    at.is_some_and(|at| at.is_string()),
                    "every event has its time"
                );
                line
            })
            .collect()
    }

    /// The `tracing` lines of lifecycle events, as JSON.
    fn traced(&self) -> Vec<Value> {
        let log = String::from_utf8(self.log.lock().unwrap().clone()).expect("UTF-8 log");
        log.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["target"] == "tower_bearer::events")
            .collect()
    }

    /// Neither the hook's events (as JSON) nor anything traced holds any of `secrets`.
    fn assert_none_holds(&self, secrets: &[&str]) {
        let events = serde_json::to_string(&*self.events.lock().unwrap()).expect("JSON");
        let log = String::from_utf8(self.log.lock().unwrap().clone()).expect("UTF-8 log");
        for secret in secrets {
            assert!(
                !events.contains(secret),
                "an event holds a secret: {events}"
            );
            assert!(!log.contains(secret), "the log holds a secret: {log}");
        }
    }
}

impl std::io::Write for Seen {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.log.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Seen {
    type Writer = Seen;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn client() -> ClientDetails {
    let ip: IpAddr = "203.0.113.7".parse().expect("an address");
    ClientDetails::new(Some("events-test/1.0"), Some(ip))
}

fn sign_in_over(registry: TokenRegistry) -> SignIn {
    SignIn::from_shared(registry, ACCOUNTS.clone())
        .with_lockout(LockoutPolicy::new(2, Duration::from_secs(60)).expect("a valid policy"))
}

#[tokio::test]
async fn a_sign_in_emits_token_issued_then_sign_in_succeeded_without_the_token() {
    let seen = Seen::default();
    let _tracing = seen.capture_tracing();
    let sign_in = sign_in_over(seen.registry(TokenRegistry::memory()));

    let issued = sign_in
        .sign_in_from(client(), TokenKind::Customer, CUSTOMER, PASSWORD)
        .await
        .expect("signed in");

    let events = seen.events(2).await;
    let caller = &issued.caller;
    let client = json!({ "user_agent": "events-test/1.0", "ip": "203.0.113.7" });
    assert_eq!(
        Seen::lines(&events),
        [
            json!({
                "event": "token_issued",
                "kind": "customer",
                "subject": CUSTOMER,
                "token_id": caller.token_id(),
                "acting_admin": null,
                "second_factor": null,
                "scopes": [],
                "client": client,
                "name": null,
                "expires_at": caller.expires_at,
            }),
            json!({
                "event": "sign_in_succeeded",
                "kind": "customer",
                "subject": CUSTOMER,
                "token_id": caller.token_id(),
                "second_factor": null,
                "client": client,
            }),
        ]
    );

    let traced = seen.traced();
    let names: Vec<_> = traced
        .iter()
        .map(|line| line["fields"]["event"].clone())
        .collect();
    assert_eq!(names, [json!("token_issued"), json!("sign_in_succeeded")]);
    assert_eq!(traced[0]["fields"]["subject"], CUSTOMER);
    assert_eq!(traced[0]["fields"]["token_id"], caller.token_id().as_str());
    assert_eq!(traced[0]["fields"]["client_ip"], "203.0.113.7");
    assert_eq!(traced[0]["level"], "INFO");
    seen.assert_none_holds(&[issued.token.expose(), PASSWORD]);
}

#[tokio::test]
async fn wrong_passwords_emit_failures_then_the_lock_then_refusals_while_locked() {
    let seen = Seen::default();
    let _tracing = seen.capture_tracing();
    let sign_in = sign_in_over(seen.registry(TokenRegistry::memory()));
    let wrong = "wrong password 1";

    for _ in 0..2 {
        sign_in
            .sign_in_from(client(), TokenKind::Customer, CUSTOMER, wrong)
            .await
            .expect_err("refused");
    }
    // The right password, refused: the account is locked.
    sign_in
        .sign_in_from(client(), TokenKind::Customer, CUSTOMER, PASSWORD)
        .await
        .expect_err("locked");

    let events = seen.events(4).await;
    let client = serde_json::to_value(client()).expect("JSON");
    let failed = |attempt| {
        json!({
            "event": "sign_in_failed",
            "kind": "customer",
            "username": CUSTOMER,
            "attempt": attempt,
            "client": client,
        })
    };
    assert_eq!(
        Seen::lines(&events),
        [
            failed(1),
            failed(2),
            json!({
                "event": "account_locked",
                "kind": "customer",
                "username": CUSTOMER,
                "failures": 2,
                "locked_for_seconds": 60,
                "client": client,
            }),
            json!({
                "event": "sign_in_locked",
                "kind": "customer",
                "username": CUSTOMER,
                "client": client,
            }),
        ]
    );
    let levels: Vec<_> = seen
        .traced()
        .iter()
        .map(|line| line["level"].clone())
        .collect();
    assert_eq!(levels, ["INFO", "INFO", "WARN", "INFO"]);
    seen.assert_none_holds(&[wrong, PASSWORD]);
}

#[tokio::test]
async fn an_unknown_user_fails_as_a_wrong_password_does() {
    let seen = Seen::default();
    let sign_in = sign_in_over(seen.registry(TokenRegistry::memory()));

    sign_in
        .sign_in_from(
            client(),
            TokenKind::Customer,
            "nobody@example.com",
            PASSWORD,
        )
        .await
        .expect_err("refused");

    let events = seen.events(1).await;
    assert_eq!(
        Seen::lines(&events),
        [json!({
            "event": "sign_in_failed",
            "kind": "customer",
            "username": "nobody@example.com",
            "attempt": 1,
            "client": client(),
        })]
    );
}

#[tokio::test]
async fn second_factor_refusals_name_their_reason_and_never_the_code() {
    let seen = Seen::default();
    let _tracing = seen.capture_tracing();
    let sign_in = sign_in_over(seen.registry(TokenRegistry::memory()));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let code = SECRET.code_at(now);
    let wrong = if code == "123456" { "654321" } else { "123456" };

    let attempts = [
        (ADMIN, "123456"),  // no second factor set up
        (TFA_ADMIN, wrong), // wrong code
        (TFA_ADMIN, &code), // accepted
        (TFA_ADMIN, &code), // the same code again
    ];
    let mut issued = Vec::new();
    for (username, otp) in attempts {
        if let Ok(token) = sign_in
            .sign_in_with_totp_from(client(), username, ADMIN_PASSWORD, otp)
            .await
        {
            issued.push(token);
        }
    }
    assert_eq!(issued.len(), 1, "only the first use of the right code");

    let events = seen.events(5).await;
    let refused = |username: &str, reason: SecondFactorRefusal| {
        json!({
            "event": "second_factor_refused",
            "kind": "admin",
            "username": username,
            "reason": reason.as_str(),
            "client": client(),
        })
    };
    let lines = Seen::lines(&events);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0], refused(ADMIN, SecondFactorRefusal::NotSetUp));
    assert_eq!(lines[1], refused(TFA_ADMIN, SecondFactorRefusal::WrongCode));
    assert_eq!(lines[2]["event"], "token_issued");
    assert_eq!(lines[3]["event"], "sign_in_succeeded");
    assert_eq!(lines[3]["second_factor"], "totp");
    assert_eq!(lines[3]["subject"], TFA_ADMIN);
    assert_eq!(
        lines[4],
        refused(TFA_ADMIN, SecondFactorRefusal::CodeReused)
    );
    let reasons: Vec<_> = seen
        .traced()
        .iter()
        .filter(|line| line["fields"]["event"] == "second_factor_refused")
        .map(|line| line["fields"]["reason"].clone())
        .collect();
    assert_eq!(reasons, ["not_set_up", "wrong_code", "code_reused"]);
    seen.assert_none_holds(&[&code, wrong, issued[0].token.expose(), ADMIN_PASSWORD]);
}

/// A client of the routes, served over `registry`.
struct Routes {
    base: String,
    http: reqwest::Client,
}

impl Routes {
    async fn serve(registry: TokenRegistry) -> Self {
        let api = rest::router(SignIn::from_shared(registry, ACCOUNTS.clone()));
        Self {
            base: serve(api).await,
            http: reqwest::Client::new(),
        }
    }

    async fn sign_in(&self, kind: &str, username: &str, password: &str) -> String {
        let response = self
            .http
            .post(format!("{}/V1/integration/{kind}/token", self.base))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<String>().await.expect("a token")
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.expect("JSON")
    }
}

/// The JSON line of a customer token's revocation.
fn revoked(token: &str, reason: RevokeReason, by: Option<Actor>) -> Value {
    json!({
        "event": "token_revoked",
        "kind": "customer",
        "subject": CUSTOMER,
        "token_id": tower_bearer::token::TokenHash::of(token).id(),
        "reason": reason.as_str(),
        "by": by,
    })
}

fn only_revocations(events: &[Event]) -> Vec<Value> {
    Seen::lines(events)
        .into_iter()
        .filter(|line| line["event"] == "token_revoked" || line["event"] == "all_tokens_revoked")
        .collect()
}

#[tokio::test]
async fn revocations_through_the_routes_name_the_caller_who_asked() {
    use reqwest::Method;

    let seen = Seen::default();
    let _tracing = seen.capture_tracing();
    let routes = Routes::serve(seen.registry(TokenRegistry::memory())).await;
    let tokens: Vec<String> = {
        let mut tokens = Vec::new();
        for _ in 0..4 {
            tokens.push(routes.sign_in("customer", CUSTOMER, PASSWORD).await);
        }
        tokens
    };
    let admin = routes.sign_in("admin", ADMIN, ADMIN_PASSWORD).await;
    let customer = Some(Actor::new(TokenKind::Customer, CUSTOMER));

    // One by its id, from the list of sessions.
    let id = tower_bearer::token::TokenHash::of(&tokens[0]).id();
    let path = format!("/V1/customers/me/tokens/{id}");
    routes
        .call(Method::DELETE, &path, &tokens[3], json!({}))
        .await;
    // One by its text.
    let body = json!({ "token": tokens[1] });
    routes
        .call(
            Method::POST,
            "/V1/integration/token/revoke",
            &tokens[3],
            body,
        )
        .await;
    // Every other one ("sign out everywhere else").
    let path = "/V1/customers/me/tokens/revoke-others";
    assert_eq!(
        routes.call(Method::POST, path, &tokens[3], json!({})).await,
        1
    );
    // All of them, by an admin.
    let path = format!("/V1/customers/{CUSTOMER}/tokens/revoke");
    assert_eq!(routes.call(Method::POST, &path, &admin, json!({})).await, 1);

    // 5 issued, 5 signed in, then the 4 revocations.
    let events = seen.events(14).await;
    assert_eq!(events.len(), 14);
    assert_eq!(
        only_revocations(&events),
        [
            revoked(&tokens[0], RevokeReason::ById, customer.clone()),
            revoked(&tokens[1], RevokeReason::One, customer.clone()),
            revoked(&tokens[2], RevokeReason::OthersSignedOut, customer),
            json!({
                "event": "all_tokens_revoked",
                "kind": "customer",
                "subject": CUSTOMER,
                "count": 1,
                "by": { "kind": "admin", "subject": ADMIN },
            }),
        ]
    );
    let all = seen
        .traced()
        .into_iter()
        .find(|line| line["fields"]["event"] == "all_tokens_revoked")
        .expect("traced");
    assert_eq!(all["fields"]["by_kind"], "admin");
    assert_eq!(all["fields"]["by_subject"], ADMIN);
    assert_eq!(all["fields"]["count"], 1);
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secrets.extend([admin.as_str(), PASSWORD, ADMIN_PASSWORD]);
    seen.assert_none_holds(&secrets);
}

#[tokio::test]
async fn integration_tokens_created_and_deleted_name_the_admin() {
    use reqwest::Method;

    let seen = Seen::default();
    let routes = Routes::serve(seen.registry(TokenRegistry::memory())).await;
    let admin = routes.sign_in("admin", ADMIN, ADMIN_PASSWORD).await;
    let created = routes
        .call(
            Method::POST,
            "/V1/integration/tokens",
            &admin,
            json!({ "name": "erp", "scopes": ["introspect"] }),
        )
        .await;
    let token_id = created["token_id"].as_str().expect("an id").to_owned();
    let path = format!("/V1/integration/tokens/{token_id}");
    assert_eq!(
        routes.call(Method::DELETE, &path, &admin, json!({})).await,
        true
    );

    // The admin's sign-in (2), the integration's issue and creation, its revocation and
    // deletion.
    let events = seen.events(6).await;
    let details = Seen::details(&events);
    let names: Vec<_> = details.iter().map(EventDetail::name).collect();
    assert_eq!(
        names,
        [
            "token_issued",
            "sign_in_succeeded",
            "token_issued",
            "integration_token_created",
            "token_revoked",
            "integration_token_deleted",
        ]
    );
    let by = json!({ "kind": "admin", "subject": ADMIN });
    let lines = Seen::lines(&events);
    assert_eq!(
        lines[3],
        json!({
            "event": "integration_token_created",
            "token_id": token_id,
            "name": "erp",
            "scopes": ["introspect"],
            "by": by,
        })
    );
    assert_eq!(lines[4]["kind"], "integration");
    assert_eq!(lines[4]["reason"], "by_id");
    assert_eq!(lines[4]["by"], by);
    assert_eq!(
        lines[5],
        json!({ "event": "integration_token_deleted", "token_id": token_id, "by": by })
    );
    let token = created["token"].as_str().expect("the token");
    seen.assert_none_holds(&[token, &admin]);
}

/// Past the limit, the oldest token is revoked by the limit (by nobody), on either store.
async fn limit_evictions_are_revocations_by_the_limit(registry: TokenRegistry) {
    let seen = Seen::default();
    let rules = SessionRules::default().with_limit(
        TokenKind::Customer,
        SubjectLimit::new(1, OnLimit::RevokeOldest),
    );
    let registry = seen.registry(registry.with_session_rules(rules));

    let first = registry
        .issue(TokenKind::Customer, CUSTOMER)
        .await
        .expect("issued");
    registry
        .issue(TokenKind::Customer, CUSTOMER)
        .await
        .expect("issued");

    let events = seen.events(3).await;
    assert_eq!(events.len(), 3);
    assert_eq!(
        Seen::lines(&events)[2],
        revoked(first.token.expose(), RevokeReason::Limit, None)
    );
}

#[tokio::test]
async fn limit_evictions_are_revocations_by_the_limit_in_memory() {
    limit_evictions_are_revocations_by_the_limit(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn limit_evictions_are_revocations_by_the_limit_on_redis() {
    let redis = TestRedis::start();
    limit_evictions_are_revocations_by_the_limit(redis.registry().await).await;
}

#[tokio::test]
async fn a_stuck_hook_holds_no_request_and_its_queue_stays_bounded() {
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let delivered = Arc::new(Mutex::new(0usize));
    let count = delivered.clone();
    let registry = TokenRegistry::memory().with_event_hook(move |_: &Event| {
        // Stuck on the first event until the test lets go.
        let _ = released.lock().unwrap().recv();
        *count.lock().unwrap() += 1;
    });

    // Every issue returns although the hook is stuck (a hook run in the request would hang
    // here), and the events past the queue's room are dropped, not queued.
    let issues = EVENT_QUEUE_CAPACITY + 100;
    let all_issued = async {
        for _ in 0..issues {
            registry
                .issue(TokenKind::Customer, CUSTOMER)
                .await
                .expect("issued");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all_issued)
        .await
        .expect("issuing does not wait for the hook");
    drop(release); // every later `recv` returns at once

    wait_until(Duration::from_secs(10), "the queue to drain", || {
        *delivered.lock().unwrap() >= EVENT_QUEUE_CAPACITY
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let delivered = *delivered.lock().unwrap();
    // The queue's room, plus the event the hook held when it got stuck.
    assert!(
        delivered <= EVENT_QUEUE_CAPACITY + 1,
        "{delivered} delivered"
    );
    assert!(delivered < issues);
}

#[tokio::test]
async fn a_panicking_hook_loses_only_the_event_it_panicked_on() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    let registry = TokenRegistry::memory().with_event_hook(move |event: &Event| {
        let EventDetail::TokenIssued { subject, .. } = &event.detail else {
            return;
        };
        if subject == "panics" {
            panic!("a hook's bug");
        }
        seen.lock().unwrap().push(subject.clone());
    });

    for subject in ["before", "panics", "after"] {
        registry
            .issue(TokenKind::Customer, subject)
            .await
            .expect("issued");
    }

    wait_until(Duration::from_secs(10), "the later events", || {
        received.lock().unwrap().len() >= 2
    })
    .await;
    assert_eq!(*received.lock().unwrap(), ["before", "after"]);
}

/// The attempt that locks the account may have the right password and a refused second
/// factor: the lock is announced all the same.
#[tokio::test]
async fn a_refused_second_factor_can_be_the_failure_that_locks_the_account() {
    let seen = Seen::default();
    let sign_in = sign_in_over(seen.registry(TokenRegistry::memory()));

    sign_in
        .sign_in_from(client(), TokenKind::Admin, TFA_ADMIN, "wrong password 2")
        .await
        .expect_err("refused");
    sign_in
        .sign_in_with_totp_from(client(), TFA_ADMIN, ADMIN_PASSWORD, "abcdef")
        .await
        .expect_err("refused");

    let events = seen.events(3).await;
    let lines = Seen::lines(&events);
    let names: Vec<_> = lines.iter().map(|line| line["event"].clone()).collect();
    assert_eq!(
        names,
        ["sign_in_failed", "second_factor_refused", "account_locked"]
    );
    assert_eq!(lines[2]["failures"], 2);
    assert_eq!(lines[2]["username"], TFA_ADMIN);
}
