//! A second service's layer over `TokenRegistry::introspecting` (feature
//! `introspection-client`), tested with two processes: the issuing service A (REST token
//! routes and introspection over a memory registry) runs in a child process, this test
//! binary run again as [`run_server_a`]; the resource service B (a
//! `BearerAuthLayer` over an introspecting registry) runs here, on a real socket. A fake A
//! served in this process answers what the real one never would (garbage, oversized, slow).
//!
//! What B answers: A's tokens accepted with their subject, kind and scopes; a token revoked
//! on A refused within the cache's TTL; unknown tokens 401; A down, slow, refusing B's own
//! token, or answering garbage: 503, never 401; hot tokens served from B's cache without
//! asking A; issuing, revoking and listing on B fail with a clear error.

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::routing::{get, post};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tower_bearer::magento::integrations::INTEGRATIONS_SUBJECT;
use tower_bearer::magento::{INTROSPECT, rest};
use tower_bearer::registry::IssueRequest;
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};
use tower_bearer::store::{IntrospectionClient, IntrospectionClientOptions, StoreError};
use tower_bearer::token::{Scopes, TokenHash};
use tower_bearer::{BearerAuthLayer, Caller, SignIn, TokenKind, TokenRegistry};

use crate::support::{serve, spawn_server};

const ROUTE: &str = "/V1/integration/token/introspect";
/// A's route that counts the introspections it has answered.
const COUNT_ROUTE: &str = "/test/introspections";
const PRODUCTS: &str = "Magento_Catalog::products";
const CUSTOMER: &str = "ada@example.com";
/// Set in the child's environment: run A.
const SERVER_ENV: &str = "TOWER_BEARER_TEST_INTROSPECTION_SERVER";
/// The line the child prints once A listens, followed by its JSON.
const READY: &str = "INTROSPECTION-SERVER-READY ";
/// A token of Magento's shape that no server issued.
const MADE_UP: &str = "0123456789abcdefghijklmnopqrstuv";

// ---------------------------------------------------------------------------------------
// Service A, in a child process.

/// Service A, what this binary runs as with [`SERVER_ENV`] set (see
/// [`a_token_issued_by_a_is_accepted_by_b_with_its_caller`], whose process it takes over):
/// the REST token routes over a memory registry, an admin `catalog` (products only) and a customer,
/// with a counter of introspections at [`COUNT_ROUTE`]. Prints [`READY`] and
/// `{"base", "introspector", "unscoped"}`: its URL, an integration token granting
/// `introspect`, and one that does not. Stops when its stdin closes.
async fn run_server_a() {
    let registry = TokenRegistry::memory();
    let directory = MemoryDirectory::new();
    directory
        .add_admin_with_scopes("catalog", "admin123", Scopes::new([PRODUCTS]).unwrap())
        .unwrap();
    directory
        .add_customer(CUSTOMER, "s3cret", RemoteAssistance::Allowed)
        .unwrap();
    let integration = |name: &str, scope: &str| {
        IssueRequest::new(TokenKind::Integration, INTEGRATIONS_SUBJECT)
            .with_name(name)
            .with_scopes(Scopes::new([scope]).unwrap())
    };
    let introspector = registry
        .issue_request(integration("resource-server", INTROSPECT))
        .await
        .unwrap();
    let unscoped = registry
        .issue_request(integration("catalog-sync", PRODUCTS))
        .await
        .unwrap();

    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    let app = rest::router(SignIn::new(registry, directory))
        .layer(from_fn(move |request: Request, next: Next| {
            if request.uri().path() == ROUTE {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            next.run(request)
        }))
        .route(
            COUNT_ROUTE,
            get(move || async move { count.load(Ordering::SeqCst).to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ready = json!({
        "base": base,
        "introspector": introspector.token.expose(),
        "unscoped": unscoped.token.expose(),
    });
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{READY}{ready}").unwrap();
    stdout.flush().unwrap();

    let server = async move { axum::serve(listener, app).await };
    let parent_gone = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    tokio::select! {
        _ = server => {}
        _ = parent_gone => {}
    }
    std::process::exit(0);
}

/// Service A, running in a child process: killed when dropped.
struct ServerA {
    base: String,
    /// An integration token granting `introspect` on A.
    introspector: String,
    /// An integration token of A that does not grant `introspect`.
    unscoped: String,
    child: Child,
    http: reqwest::Client,
}

impl ServerA {
    /// Runs this test binary again, as [`run_server_a`] (through the one test that turns
    /// into it when [`SERVER_ENV`] is set), and waits for it to listen.
    async fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "remote_introspection::a_token_issued_by_a_is_accepted_by_b_with_its_caller",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SERVER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the test binary runs again as service A");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some((_, json)) = line.split_once(READY) {
                    return serde_json::from_str::<Value>(json).unwrap();
                }
            }
            panic!("service A exited before it was ready");
        })
        .await
        .expect("service A is ready within 30 s");
        // Keep reading (and dropping) A's output, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            base: ready["base"].as_str().unwrap().to_owned(),
            introspector: ready["introspector"].as_str().unwrap().to_owned(),
            unscoped: ready["unscoped"].as_str().unwrap().to_owned(),
            child,
            http: reqwest::Client::new(),
        }
    }

    /// A's introspection endpoint.
    fn endpoint(&self) -> String {
        format!("{}{ROUTE}", self.base)
    }

    async fn sign_in(&self, route: &str, username: &str, password: &str) -> String {
        let response = self
            .http
            .post(format!("{}{route}", self.base))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "sign-in at A");
        response.json().await.unwrap()
    }

    /// A token of the admin `catalog`, granting products only.
    async fn catalog_admin(&self) -> String {
        self.sign_in("/V1/integration/admin/token", "catalog", "admin123")
            .await
    }

    async fn customer(&self) -> String {
        self.sign_in("/V1/integration/customer/token", CUSTOMER, "s3cret")
            .await
    }

    /// Revokes `token` on A, as its owner.
    async fn revoke(&self, token: &str) {
        let response = self
            .http
            .post(format!("{}/V1/integration/token/revoke", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "revoked at A");
    }

    /// How many introspections A has answered.
    async fn introspections(&self) -> u64 {
        let response = self
            .http
            .get(format!("{}{COUNT_ROUTE}", self.base))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap().parse().unwrap()
    }

    /// Stops A: its process is killed and gone.
    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Service B, in this process.

/// Service B: `GET /whoami` behind a required layer over an introspecting registry, on a
/// real socket.
struct ServerB {
    base: String,
    registry: TokenRegistry,
    client: IntrospectionClient,
    http: reqwest::Client,
}

/// What B answered: status, headers, JSON body (`Null` when not JSON), and how long it
/// took.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    elapsed: Duration,
}

impl Reply {
    /// A 503 with `Retry-After` and no challenge: an outage, not a credential problem.
    #[track_caller]
    fn assert_unavailable(&self, what: &str) {
        assert_eq!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: fail closed with 503, body {}",
            self.body
        );
        assert!(
            self.headers.contains_key(RETRY_AFTER),
            "{what}: Retry-After"
        );
        assert!(
            !self.headers.contains_key(WWW_AUTHENTICATE),
            "{what}: an outage is not a credential problem"
        );
    }

    /// A 401 with an `invalid_token` challenge.
    #[track_caller]
    fn assert_invalid_token(&self, what: &str) {
        assert_eq!(
            self.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            self.body
        );
        let challenge = self
            .headers
            .get(WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
    }
}

fn options(endpoint: &str, token: &str, cache_ttl: Duration) -> IntrospectionClientOptions {
    IntrospectionClientOptions::new(endpoint, token).with_cache_ttl(cache_ttl)
}

impl ServerB {
    async fn start(options: IntrospectionClientOptions) -> Self {
        let client = IntrospectionClient::new(options).unwrap();
        let registry = TokenRegistry::introspecting(client.clone());
        let app = Router::new()
            .route("/whoami", get(whoami))
            .layer(BearerAuthLayer::required(registry.clone()));
        Self {
            base: serve(app).await,
            registry,
            client,
            http: reqwest::Client::new(),
        }
    }

    /// `GET /whoami` with `token`.
    async fn whoami(&self, token: &str) -> Reply {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}/whoami", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            elapsed: started.elapsed(),
        }
    }
}

/// What B's handler sees of its caller.
async fn whoami(caller: Caller) -> axum::Json<Value> {
    axum::Json(json!({
        "subject": caller.subject,
        "kind": caller.kind,
        "scopes": caller.scopes.iter().collect::<Vec<_>>(),
        "expires_at": caller.expires_at.map(|at| at.timestamp()),
        "token_id": caller.token_id().as_str(),
    }))
}

// ---------------------------------------------------------------------------------------
// The cases.

#[tokio::test]
async fn a_token_issued_by_a_is_accepted_by_b_with_its_caller() {
    // Run again as a child with SERVER_ENV set, this test is service A (see ServerA::start).
    if std::env::var_os(SERVER_ENV).is_some() {
        return run_server_a().await;
    }
    let a = ServerA::start().await;
    let b = ServerB::start(options(&a.endpoint(), &a.introspector, Duration::ZERO)).await;

    let admin = a.catalog_admin().await;
    let reply = b.whoami(&admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["subject"], "catalog");
    assert_eq!(reply.body["kind"], "admin");
    assert_eq!(reply.body["scopes"], json!([PRODUCTS]));
    assert_eq!(
        reply.body["token_id"],
        TokenHash::of(&admin).id().as_str(),
        "the caller's hash is the hash of the token presented"
    );
    let lifetime = reply.body["expires_at"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(
        (4 * 3600 - 60..=4 * 3600).contains(&lifetime),
        "an admin token expires 4 hours after issue, as A says: {lifetime} s left"
    );

    let customer = a.customer().await;
    let reply = b.whoami(&customer).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["subject"], CUSTOMER);
    assert_eq!(reply.body["kind"], "customer");
    assert_eq!(reply.body["scopes"], json!([]));

    // An integration token that lives until revoked.
    let reply = b.whoami(&a.unscoped).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["kind"], "integration");
    assert_eq!(reply.body["subject"], INTEGRATIONS_SUBJECT);
    assert_eq!(reply.body["expires_at"], Value::Null);

    // The registry resolves as the layer does; `inspect` too.
    let caller = b.registry.resolve(&customer).await.unwrap().unwrap();
    assert_eq!(caller.subject, CUSTOMER);
    assert_eq!(b.registry.inspect(&customer).await.unwrap(), Some(caller));
}

#[tokio::test]
async fn a_token_revoked_on_a_is_refused_by_b_within_the_cache_ttl() {
    let a = ServerA::start().await;
    let ttl = Duration::from_millis(200);
    let cached = ServerB::start(options(&a.endpoint(), &a.introspector, ttl)).await;
    let uncached = ServerB::start(options(&a.endpoint(), &a.introspector, Duration::ZERO)).await;

    let token = a.customer().await;
    assert_eq!(cached.whoami(&token).await.status, StatusCode::OK);
    assert_eq!(uncached.whoami(&token).await.status, StatusCode::OK);

    a.revoke(&token).await;
    let revoked_at = Instant::now();
    uncached
        .whoami(&token)
        .await
        .assert_invalid_token("without a cache, refused at once");
    tokio::time::sleep(ttl.saturating_sub(revoked_at.elapsed()) + Duration::from_millis(100)).await;
    cached
        .whoami(&token)
        .await
        .assert_invalid_token("with a 200 ms cache, refused once the TTL has passed");
}

#[tokio::test]
async fn an_unknown_token_is_401_at_b_and_its_answer_is_not_cached() {
    let a = ServerA::start().await;
    let b = ServerB::start(options(
        &a.endpoint(),
        &a.introspector,
        Duration::from_secs(60),
    ))
    .await;

    let before = a.introspections().await;
    b.whoami(MADE_UP)
        .await
        .assert_invalid_token("a made-up token");
    b.whoami(MADE_UP)
        .await
        .assert_invalid_token("the same, again");
    assert_eq!(
        a.introspections().await - before,
        2,
        "an inactive answer is not cached: A was asked each time"
    );
    assert_eq!(b.client.cached_answers(), 0, "nothing cached");

    b.whoami("not-a-token")
        .await
        .assert_invalid_token("a malformed token");
    assert_eq!(
        a.introspections().await - before,
        2,
        "a malformed token is refused without asking A"
    );
}

#[tokio::test]
async fn a_stopped_a_is_503_at_b_never_401() {
    let a = ServerA::start().await;
    let b = ServerB::start(options(&a.endpoint(), &a.introspector, Duration::ZERO)).await;
    let token = a.customer().await;
    assert_eq!(b.whoami(&token).await.status, StatusCode::OK);

    a.stop().await;
    for (what, token) in [
        ("a live token", token.as_str()),
        ("a made-up token", MADE_UP),
    ] {
        let reply = b.whoami(token).await;
        reply.assert_unavailable(what);
        assert!(
            reply.elapsed < Duration::from_secs(2),
            "{what}: answered after {:?}",
            reply.elapsed
        );
    }
    assert!(
        matches!(
            b.registry.resolve(MADE_UP).await,
            Err(StoreError::Backend(_))
        ),
        "the registry reports the failure"
    );
}

#[tokio::test]
async fn bs_own_token_refused_by_a_is_503_at_b_and_logged() {
    let a = ServerA::start().await;
    let token = a.customer().await;
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    crate::support::keep_tracing_interest_open();
    let _logging = tracing::subscriber::set_default(subscriber);

    // B's client token lacks the `introspect` scope: A answers 403.
    let unscoped = ServerB::start(options(&a.endpoint(), &a.unscoped, Duration::ZERO)).await;
    unscoped
        .whoami(&token)
        .await
        .assert_unavailable("a client token without `introspect`");
    let logged = logs.text();
    assert!(
        logged.contains("refused this service's own token") && logged.contains("403"),
        "the misconfiguration is logged: {logged}"
    );

    // B's client token is not one of A's: A answers 401.
    let unknown = ServerB::start(options(&a.endpoint(), MADE_UP, Duration::ZERO)).await;
    unknown
        .whoami(&token)
        .await
        .assert_unavailable("a client token A does not know");
    assert!(logs.text().contains("401"), "logged: {}", logs.text());

    // The same token, with B's client token right: accepted.
    let right = ServerB::start(options(&a.endpoint(), &a.introspector, Duration::ZERO)).await;
    assert_eq!(right.whoami(&token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_cache_serves_a_hot_token_without_asking_a() {
    let a = ServerA::start().await;
    let cached = ServerB::start(options(
        &a.endpoint(),
        &a.introspector,
        Duration::from_secs(60),
    ))
    .await;
    let uncached = ServerB::start(options(&a.endpoint(), &a.introspector, Duration::ZERO)).await;
    let token = a.catalog_admin().await;

    let before = a.introspections().await;
    for _ in 0..10 {
        let reply = cached.whoami(&token).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["subject"], "catalog");
    }
    assert_eq!(
        a.introspections().await - before,
        1,
        "ten requests, one introspection"
    );
    assert_eq!(cached.client.cached_answers(), 1);

    let before = a.introspections().await;
    for _ in 0..3 {
        assert_eq!(uncached.whoami(&token).await.status, StatusCode::OK);
    }
    assert_eq!(
        a.introspections().await - before,
        3,
        "without a cache, every request asks A"
    );
}

#[tokio::test]
async fn an_introspecting_registry_is_read_only() {
    let a = ServerA::start().await;
    let b = ServerB::start(options(&a.endpoint(), &a.introspector, Duration::ZERO)).await;
    let token = a.customer().await;

    fn assert_read_only<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
        match result {
            Err(error @ StoreError::Backend(_)) => {
                assert!(error.to_string().contains("read-only"), "{what}: {error}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    let registry = &b.registry;
    assert_read_only(registry.issue(TokenKind::Customer, CUSTOMER).await, "issue");
    assert_read_only(registry.revoke(&token).await, "revoke");
    assert_read_only(
        registry.revoke_all(TokenKind::Customer, CUSTOMER).await,
        "revoke all",
    );
    assert_read_only(registry.list(TokenKind::Customer, CUSTOMER).await, "list");
    assert!(registry.sign_in_store().is_none(), "no sign-in side");

    // Nothing was done on A: the token still works there, and at B.
    assert_eq!(b.whoami(&token).await.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// A fake A, for the answers the real one never gives.

/// A fake A at `/<case>`: every case answers the introspection of any token as its name
/// says; `/valid` is a correct answer about the token asked, proving the fake works.
async fn fake_a() -> String {
    async fn valid(body: String) -> axum::Json<Value> {
        let token = form_urlencoded::parse(body.as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        axum::Json(json!({
            "active": true, "token_type": "Bearer", "sub": "fake", "kind": "customer",
            "iat": chrono::Utc::now().timestamp(), "token_id": TokenHash::of(&token).id().as_str(),
            "acting_admin": null,
        }))
    }
    let live = |extra: Value| {
        let mut answer =
            json!({ "active": true, "sub": "fake", "kind": "customer", "iat": 1_700_000_000 });
        for (key, value) in extra.as_object().unwrap() {
            answer[key] = value.clone();
        }
        answer.to_string()
    };
    let oversized = live(json!({ "sub": "x".repeat(20 * 1024) }));
    let unknown_kind = live(json!({ "kind": "robot" }));
    let bad_scope = live(json!({ "scope": "a\"b" }));
    let other_token = live(json!({ "token_id": "000000000000" }));
    let fixed =
        |body: String| post(move || async move { ([("content-type", "application/json")], body) });
    let app = Router::new()
        .route("/valid", post(valid))
        .route("/inactive", fixed(json!({ "active": false }).to_string()))
        .route("/garbage", fixed("this is not json".to_owned()))
        .route("/no-active", fixed(json!({ "sub": "fake" }).to_string()))
        .route("/oversized", fixed(oversized))
        .route("/unknown-kind", fixed(unknown_kind))
        .route("/bad-scope", fixed(bad_scope))
        .route("/other-token", fixed(other_token))
        .route(
            "/5xx",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "{\"active\": true}") }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                json!({ "active": false }).to_string()
            }),
        );
    spawn_server(app).await.0
}

#[tokio::test]
async fn garbage_oversized_slow_or_failed_answers_are_503() {
    let fake = fake_a().await;
    let at = |case: &str| format!("{fake}/{case}");

    let b = ServerB::start(options(&at("valid"), "tbi_client", Duration::ZERO)).await;
    let reply = b.whoami(MADE_UP).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the fake works: {}",
        reply.body
    );
    assert_eq!(reply.body["subject"], "fake");
    let b = ServerB::start(options(&at("inactive"), "tbi_client", Duration::ZERO)).await;
    b.whoami(MADE_UP).await.assert_invalid_token("inactive");

    for case in [
        "garbage",
        "no-active",
        "oversized",
        "unknown-kind",
        "bad-scope",
        "other-token",
        "5xx",
        "nowhere", // 404
    ] {
        let b = ServerB::start(options(&at(case), "tbi_client", Duration::from_secs(60))).await;
        b.whoami(MADE_UP).await.assert_unavailable(case);
        assert_eq!(b.client.cached_answers(), 0, "{case}: nothing cached");
    }

    let timeout = Duration::from_millis(200);
    let b =
        ServerB::start(options(&at("slow"), "tbi_client", Duration::ZERO).with_timeout(timeout))
            .await;
    let reply = b.whoami(MADE_UP).await;
    reply.assert_unavailable("slow");
    assert!(
        reply.elapsed < timeout + Duration::from_secs(1),
        "bounded by the timeout: {:?}",
        reply.elapsed
    );
    assert!(matches!(
        b.registry.resolve(MADE_UP).await,
        Err(StoreError::Timeout(bound)) if bound == timeout
    ));
}

#[test]
fn endpoints_and_client_tokens_are_checked_and_the_token_is_never_shown() {
    for (endpoint, token) in [
        ("https://auth.example.com/introspect", "t"),
        ("auth.example.com/introspect", "t"),
        ("/introspect", "t"),
        ("http://user:secret@auth.example.com/introspect", "t"),
        ("http://auth.example.com/introspect", ""),
        ("http://auth.example.com/introspect", "line\nbreak"),
    ] {
        let options = IntrospectionClientOptions::new(endpoint, token);
        assert!(
            IntrospectionClient::new(options).is_err(),
            "{endpoint} {token:?}"
        );
    }
    let options = IntrospectionClientOptions::new("http://127.0.0.1:1/introspect", "s3cret-token");
    let client = IntrospectionClient::new(options.clone()).unwrap();
    assert!(!format!("{options:?}").contains("s3cret-token"));
    assert!(!format!("{client:?}").contains("s3cret-token"));
}

/// Log lines written by a test's own subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}
