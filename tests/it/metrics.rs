//! The metrics (`tower_bearer::telemetry::metrics`) move as requests are made.
//!
//! Each test records into a `DebuggingRecorder` of its own, installed for its thread only
//! (`metrics::with_local_recorder`), and runs on a current-thread runtime on that thread: so
//! what other tests record meanwhile (cargo test runs them on other threads of the same
//! process; nextest, in processes of their own) never reaches it. A snapshot of that
//! recorder takes the counters back to 0, so each look shows what moved since the last.

use std::future::Future;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower::{ServiceExt, service_fn};
use tower_bearer::registry::SessionRules;
use tower_bearer::sign_in::{LockoutPolicy, MemoryDirectory, RemoteAssistance, TotpSecret};
use tower_bearer::store::{
    CacheOptions, OnLimit, RedisStore, SignInStore, StoreError, StoreFuture, SubjectLimit,
    TokenStore,
};
use tower_bearer::telemetry::metrics::{
    CACHE_LOOKUPS, PASSWORD_CHECKS_RUNNING, PASSWORD_CHECKS_WAITING, REQUESTS, SIGN_INS,
    STORE_CALL_DURATION, STORE_ERRORS, TOKENS_ISSUED, TOKENS_REVOKED,
};
use tower_bearer::token::{Scopes, TokenHash};
use tower_bearer::{BearerAuthLayer, Caller, SignIn, TokenKind, TokenRegistry};

use crate::support::{RedisProxy, RedisServer, TestRedis, wait_until};

/// The example server's `GET /metrics` (`examples/common/prometheus.rs`), as it is.
#[allow(dead_code)] // `install` sets the process's recorder: the example's, not a test's.
#[path = "../../examples/common/prometheus.rs"]
mod prometheus;

// ---------------------------------------------------------------------------------------
// Harness.

/// Runs `test` on a current-thread runtime with a recorder of its own thread.
fn with_metrics<F: Future<Output = ()>>(test: impl FnOnce(Metrics) -> F) {
    let recorder = DebuggingRecorder::new();
    let metrics = Metrics(recorder.snapshotter());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    ::metrics::with_local_recorder(&recorder, || runtime.block_on(test(metrics)));
}

/// Reads the test's recorder.
struct Metrics(Snapshotter);

impl Metrics {
    /// What was recorded since the last look.
    fn moved(&self) -> Moved {
        let series = self
            .0
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Labels = key
                    .labels()
                    .map(|label| (label.key().to_owned(), label.value().to_owned()))
                    .collect();
                labels.sort();
                (key.name().to_owned(), labels, value)
            });
        Moved(series.collect())
    }
}

/// Labels as `(key, value)`, sorted.
type Labels = Vec<(String, String)>;

/// The series that moved: name, labels, value.
#[derive(Debug)]
struct Moved(Vec<(String, Labels, DebugValue)>);

impl Moved {
    fn values<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a DebugValue> {
        let mut wanted: Labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        wanted.sort();
        self.0
            .iter()
            .filter(move |(of, with, _)| of == name && *with == wanted)
            .map(|(_, _, value)| value)
    }

    /// How much the counter `name` with exactly these `labels` went up.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.values(name, labels)
            .map(|value| match value {
                DebugValue::Counter(count) => *count,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    /// How much every series of the counter `name` went up together.
    fn counter_total(&self, name: &str) -> u64 {
        self.0
            .iter()
            .filter(|(of, _, _)| of == name)
            .map(|(_, _, value)| match value {
                DebugValue::Counter(count) => *count,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    /// The values the histogram `name` with exactly these `labels` recorded.
    fn observations(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.values(name, labels)
            .flat_map(|value| match value {
                DebugValue::Histogram(values) => values.iter().map(|value| value.0),
                other => panic!("{name} is not a histogram: {other:?}"),
            })
            .collect()
    }

    /// The last value the gauge `name` was set to, if it was.
    fn gauge(&self, name: &str) -> Option<f64> {
        self.values(name, &[]).find_map(|value| match value {
            DebugValue::Gauge(value) => Some(value.0),
            _ => None,
        })
    }
}

/// A token store that is down: every call fails.
struct Down;

fn down<T: Send + 'static>() -> StoreFuture<T> {
    Box::pin(std::future::ready(Err(StoreError::Backend("down".into()))))
}

impl TokenStore for Down {
    fn insert(
        &self,
        _: Caller,
        _: Option<Duration>,
        _: SubjectLimit,
    ) -> StoreFuture<Vec<tower_bearer::token::TokenHash>> {
        down()
    }
    fn get(&self, _: TokenHash, _: Duration) -> StoreFuture<Option<Caller>> {
        down()
    }
    fn remove(&self, _: TokenHash) -> StoreFuture<Option<Caller>> {
        down()
    }
    fn remove_subject(&self, _: TokenKind, _: String) -> StoreFuture<u64> {
        down()
    }
    fn list(&self, _: TokenKind, _: String) -> StoreFuture<Vec<Caller>> {
        down()
    }
}

/// Sends a request with `authorization` (if any) through `layer` to a handler answering
/// 200; returns the status.
async fn status_through(layer: BearerAuthLayer, authorization: Option<&str>) -> StatusCode {
    let service = tower::ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|_: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        }));
    let mut request = Request::builder();
    if let Some(authorization) = authorization {
        request = request.header(AUTHORIZATION, authorization);
    }
    let request = request.body(String::new()).unwrap();
    service.oneshot(request).await.unwrap().status()
}

// ---------------------------------------------------------------------------------------
// The layer.

#[test]
fn every_outcome_of_the_layer_is_counted_once_per_request() {
    with_metrics(|metrics| async move {
        let registry = TokenRegistry::memory();
        let customer = registry.issue(TokenKind::Customer, "ada").await.unwrap();
        let bearer = format!("Bearer {}", customer.token.expose());
        let unknown = TokenRegistry::memory()
            .issue(TokenKind::Customer, "ada")
            .await
            .unwrap();
        let unknown = format!("Bearer {}", unknown.token.expose());
        let required = BearerAuthLayer::required(registry.clone());
        let products = Scopes::new(["Magento_Catalog::products"]).unwrap();
        metrics.moved();

        let rows = [
            (
                required.clone(),
                Some(bearer.as_str()),
                StatusCode::OK,
                "allowed",
            ),
            (
                BearerAuthLayer::optional(registry.clone()),
                None,
                StatusCode::OK,
                "guest",
            ),
            (required.clone(), None, StatusCode::UNAUTHORIZED, "missing"),
            (
                required.clone(),
                Some("Bearer a b"),
                StatusCode::BAD_REQUEST,
                "malformed",
            ),
            (
                required.clone(),
                Some(unknown.as_str()),
                StatusCode::UNAUTHORIZED,
                "invalid",
            ),
            (
                required.clone().with_kind(TokenKind::Admin),
                Some(bearer.as_str()),
                StatusCode::FORBIDDEN,
                "wrong_kind",
            ),
            (
                required.clone().with_scopes(products),
                Some(bearer.as_str()),
                StatusCode::FORBIDDEN,
                "insufficient_scope",
            ),
            (
                BearerAuthLayer::required(TokenRegistry::tokens_only(Down)),
                Some(bearer.as_str()),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
            ),
        ];
        for (layer, authorization, status, outcome) in rows {
            assert_eq!(
                status_through(layer, authorization).await,
                status,
                "{outcome}"
            );
            let moved = metrics.moved();
            assert_eq!(
                moved.counter(REQUESTS, &[("outcome", outcome)]),
                1,
                "{outcome}: {moved:?}"
            );
            assert_eq!(moved.counter_total(REQUESTS), 1, "{outcome}: one request");
        }
    });
}

// ---------------------------------------------------------------------------------------
// Store calls.

#[test]
fn every_call_of_the_redis_store_is_timed_by_operation() {
    let redis = TestRedis::start();
    with_metrics(|metrics| async move {
        let registry = redis.registry().await;
        let timed = |moved: &Moved, operation: &str| {
            let labels = [("store", "redis"), ("operation", operation)];
            let seconds = moved.observations(STORE_CALL_DURATION, &labels);
            assert_eq!(seconds.len(), 1, "one {operation}: {moved:?}");
            assert!(seconds[0] > 0.0 && seconds[0] < 5.0, "{seconds:?}");
        };
        metrics.moved();

        let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
        timed(&metrics.moved(), "insert");
        registry.resolve(issued.token.expose()).await.unwrap();
        timed(&metrics.moved(), "get");
        registry.list(TokenKind::Customer, "ada").await.unwrap();
        timed(&metrics.moved(), "list");
        registry.revoke(issued.token.expose()).await.unwrap();
        timed(&metrics.moved(), "remove");
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap();
        timed(&metrics.moved(), "remove_subject");

        let store = redis.store().await;
        store
            .record_failure("k".to_owned(), Duration::from_secs(60))
            .await
            .unwrap();
        timed(&metrics.moved(), "record_failure");
        store.failures("k".to_owned()).await.unwrap();
        timed(&metrics.moved(), "failures");
        store.forgive_failure("k".to_owned()).await.unwrap();
        timed(&metrics.moved(), "forgive_failure");
        store.clear_failures("k".to_owned()).await.unwrap();
        timed(&metrics.moved(), "clear_failures");
        store
            .claim_once("c".to_owned(), Duration::from_secs(60))
            .await
            .unwrap();
        timed(&metrics.moved(), "claim_once");
        assert_eq!(metrics.moved().counter_total(STORE_ERRORS), 0);
    });
}

#[test]
fn calls_of_the_memory_store_are_timed_but_its_resolves() {
    with_metrics(|metrics| async move {
        let registry = TokenRegistry::memory();
        let issued = registry.issue(TokenKind::Admin, "root").await.unwrap();
        registry.resolve(issued.token.expose()).await.unwrap();
        let moved = metrics.moved();
        let insert = [("store", "memory"), ("operation", "insert")];
        assert_eq!(moved.observations(STORE_CALL_DURATION, &insert).len(), 1);
        // A resolve, a map lookup per request, is not timed: the clock would cost more.
        let get = [("store", "memory"), ("operation", "get")];
        assert!(moved.observations(STORE_CALL_DURATION, &get).is_empty());
    });
}

#[test]
fn a_store_call_that_times_out_is_counted_as_a_timeout_error() {
    let server = RedisServer::start();
    with_metrics(|metrics| async move {
        let options = tower_bearer::store::RedisStoreOptions::default()
            .with_timeout(Duration::from_millis(200));
        let store = RedisStore::connect_with(&server.url(), options)
            .await
            .unwrap();
        let registry = TokenRegistry::new(store);
        let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
        metrics.moved();

        server.pause();
        let answer = registry.resolve(issued.token.expose()).await;
        server.resume();
        // The store's bound or redis-rs's response timeout (set to the same): a timeout.
        assert!(answer.is_err(), "{answer:?}");
        let moved = metrics.moved();
        let get = [("store", "redis"), ("operation", "get")];
        let seconds = moved.observations(STORE_CALL_DURATION, &get);
        assert_eq!(seconds.len(), 1, "a failed call is timed too");
        assert!(seconds[0] >= 0.2, "timed out after its bound: {seconds:?}");
        let timeout = [
            ("store", "redis"),
            ("operation", "get"),
            ("error", "timeout"),
        ];
        assert_eq!(moved.counter(STORE_ERRORS, &timeout), 1, "{moved:?}");
        assert_eq!(moved.counter_total(STORE_ERRORS), 1);
    });
}

// ---------------------------------------------------------------------------------------
// The Redis store's local cache.

#[test]
fn lookups_in_the_local_cache_are_counted_as_hit_miss_or_bypass() {
    let redis = TestRedis::start();
    with_metrics(|metrics| async move {
        let proxy = RedisProxy::start(&redis.url).await;
        let options = redis
            .options()
            .with_cache(CacheOptions::default().with_ttl(Duration::from_secs(30)));
        let store = RedisStore::connect_with(&proxy.url, options).await.unwrap();
        wait_until(Duration::from_secs(5), "the feed is subscribed", || {
            store.cache_stats().unwrap().live
        })
        .await;
        let registry = TokenRegistry::new(store.clone());
        let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
        let get = [("store", "redis"), ("operation", "get")];
        metrics.moved();

        registry.resolve(issued.token.expose()).await.unwrap();
        let moved = metrics.moved();
        assert_eq!(moved.counter(CACHE_LOOKUPS, &[("result", "miss")]), 1);
        assert_eq!(moved.counter_total(CACHE_LOOKUPS), 1);
        assert_eq!(moved.observations(STORE_CALL_DURATION, &get).len(), 1);

        registry.resolve(issued.token.expose()).await.unwrap();
        let moved = metrics.moved();
        assert_eq!(moved.counter(CACHE_LOOKUPS, &[("result", "hit")]), 1);
        assert_eq!(moved.counter_total(CACHE_LOOKUPS), 1);
        assert!(
            moved.observations(STORE_CALL_DURATION, &get).is_empty(),
            "a hit is no store call"
        );

        proxy.black_hole_subscribers();
        wait_until(Duration::from_secs(5), "the hung feed is noticed", || {
            !store.cache_stats().unwrap().live
        })
        .await;
        metrics.moved();
        registry.resolve(issued.token.expose()).await.unwrap();
        let moved = metrics.moved();
        assert_eq!(moved.counter(CACHE_LOOKUPS, &[("result", "bypass")]), 1);
        assert_eq!(moved.counter_total(CACHE_LOOKUPS), 1);
        assert_eq!(moved.observations(STORE_CALL_DURATION, &get).len(), 1);
    });
}

// ---------------------------------------------------------------------------------------
// Sign-in.

#[test]
fn sign_ins_are_counted_by_kind_and_outcome() {
    with_metrics(|metrics| async move {
        let directory = MemoryDirectory::new();
        directory
            .add_customer("ada@example.com", "s3cret", RemoteAssistance::Denied)
            .unwrap();
        directory.add_admin("root", "r00t").unwrap();
        let secret = TotpSecret::generate().unwrap();
        directory
            .add_admin_with_totp("guarded", "g0rded", secret)
            .unwrap();
        let lockout = LockoutPolicy::new(2, Duration::from_secs(60)).unwrap();
        let sign_in = SignIn::new(TokenRegistry::memory(), directory).with_lockout(lockout);
        metrics.moved();
        let counted = |moved: Moved, kind: &str, outcome: &str| {
            let labels = [("kind", kind), ("outcome", outcome)];
            assert_eq!(moved.counter(SIGN_INS, &labels), 1, "{moved:?}");
            assert_eq!(moved.counter_total(SIGN_INS), 1, "{moved:?}");
        };

        let customer = TokenKind::Customer;
        sign_in
            .sign_in(customer, "ada@example.com", "s3cret")
            .await
            .unwrap();
        counted(metrics.moved(), "customer", "succeeded");
        sign_in
            .sign_in(customer, "ada@example.com", "guess")
            .await
            .unwrap_err();
        counted(metrics.moved(), "customer", "failed");
        sign_in
            .sign_in(customer, "nobody@example.com", "guess")
            .await
            .unwrap_err();
        counted(metrics.moved(), "customer", "failed");
        sign_in
            .sign_in(customer, "ada@example.com", "guess")
            .await
            .unwrap_err();
        counted(metrics.moved(), "customer", "failed");
        sign_in
            .sign_in(customer, "ada@example.com", "s3cret")
            .await
            .unwrap_err();
        counted(metrics.moved(), "customer", "locked");

        sign_in
            .sign_in(TokenKind::Admin, "root", "r00t")
            .await
            .unwrap();
        counted(metrics.moved(), "admin", "succeeded");
        sign_in
            .sign_in(TokenKind::Admin, "guarded", "g0rded")
            .await
            .unwrap_err();
        counted(metrics.moved(), "admin", "second_factor_required");
        sign_in
            .sign_in_with_totp("guarded", "g0rded", "12345x")
            .await
            .unwrap_err();
        counted(metrics.moved(), "admin", "second_factor_refused");

        let tokens_only = SignIn::new(TokenRegistry::tokens_only(Down), MemoryDirectory::new());
        tokens_only
            .sign_in(customer, "ada@example.com", "s3cret")
            .await
            .unwrap_err();
        counted(metrics.moved(), "customer", "unavailable");
    });
}

#[test]
fn password_checks_waiting_and_running_are_gauged() {
    with_metrics(|metrics| async move {
        let sign_in = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new());
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        // More checks than threads: some wait. Unknown users: each costs a dummy check.
        let attempts: Vec<_> = (0..4 * threads + 4)
            .map(|index| {
                let sign_in = sign_in.clone();
                tokio::spawn(async move {
                    let username = format!("nobody{index}@example.com");
                    sign_in
                        .sign_in(TokenKind::Customer, &username, "guess")
                        .await
                })
            })
            .collect();
        // Each attempt runs up to its wait for the hashing threads.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let moved = metrics.moved();
        let waiting = moved.gauge(PASSWORD_CHECKS_WAITING).expect("gauged");
        let running = moved.gauge(PASSWORD_CHECKS_RUNNING).expect("gauged");
        assert!(
            waiting + running >= 1.0,
            "{waiting} waiting, {running} running"
        );

        for attempt in attempts {
            attempt.await.unwrap().unwrap_err();
        }
        let moved = metrics.moved();
        assert!(moved.gauge(PASSWORD_CHECKS_WAITING).is_some(), "set again");
        assert_eq!(
            moved.counter(SIGN_INS, &[("kind", "customer"), ("outcome", "failed")]),
            u64::try_from(4 * threads + 4).unwrap()
        );
    });
}

// ---------------------------------------------------------------------------------------
// Tokens issued and revoked.

/// Issues and revokes tokens of every kind in every way on `registry`, whose customers may
/// hold one token each (the oldest revoked past it), checking the counters at each step.
async fn issued_and_revoked_are_counted(metrics: Metrics, registry: TokenRegistry) {
    let counted = |moved: &Moved, name: &str, labels: &[(&str, &str)]| {
        assert_eq!(
            moved.counter(name, labels),
            1,
            "{name} {labels:?}: {moved:?}"
        );
        assert_eq!(moved.counter_total(name), 1, "{name}: {moved:?}");
    };
    metrics.moved();

    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let moved = metrics.moved();
    counted(&moved, TOKENS_ISSUED, &[("kind", "customer")]);
    assert_eq!(moved.counter_total(TOKENS_REVOKED), 0);

    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let moved = metrics.moved();
    counted(&moved, TOKENS_ISSUED, &[("kind", "customer")]);
    counted(
        &moved,
        TOKENS_REVOKED,
        &[("kind", "customer"), ("reason", "limit")],
    );

    let admin = registry.issue(TokenKind::Admin, "root").await.unwrap();
    counted(&metrics.moved(), TOKENS_ISSUED, &[("kind", "admin")]);
    assert!(registry.revoke(admin.token.expose()).await.unwrap());
    counted(
        &metrics.moved(),
        TOKENS_REVOKED,
        &[("kind", "admin"), ("reason", "one")],
    );
    assert!(!registry.revoke(admin.token.expose()).await.unwrap());
    assert_eq!(metrics.moved().counter_total(TOKENS_REVOKED), 0, "not live");

    let erp = registry.issue(TokenKind::Integration, "erp").await.unwrap();
    counted(&metrics.moved(), TOKENS_ISSUED, &[("kind", "integration")]);
    let id = erp.caller.token_id();
    assert!(
        registry
            .revoke_by_id(TokenKind::Integration, "erp", id.as_str())
            .await
            .unwrap()
    );
    let by_id = [("kind", "integration"), ("reason", "by_id")];
    counted(&metrics.moved(), TOKENS_REVOKED, &by_id);

    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        1
    );
    counted(
        &metrics.moved(),
        TOKENS_REVOKED,
        &[("kind", "customer"), ("reason", "all")],
    );
}

fn one_customer_token_each() -> SessionRules {
    let limit = SubjectLimit::new(1, OnLimit::RevokeOldest);
    SessionRules::default().with_limit(TokenKind::Customer, limit)
}

#[test]
fn tokens_issued_and_revoked_in_memory_are_counted_by_kind_and_reason() {
    with_metrics(|metrics| async move {
        let registry = TokenRegistry::memory().with_session_rules(one_customer_token_each());
        issued_and_revoked_are_counted(metrics, registry).await;
    });
}

#[test]
fn tokens_issued_and_revoked_in_redis_are_counted_by_kind_and_reason() {
    let redis = TestRedis::start();
    with_metrics(|metrics| async move {
        let registry = redis
            .registry()
            .await
            .with_session_rules(one_customer_token_each());
        issued_and_revoked_are_counted(metrics, registry).await;
    });
}

// ---------------------------------------------------------------------------------------
// The example server's `GET /metrics`.

#[test]
fn the_example_servers_metrics_route_renders_them_for_prometheus() {
    let recorder = prometheus::builder().unwrap().build_recorder();
    let route = prometheus::route(recorder.handle());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = ::metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            tower_bearer::telemetry::metrics::describe();
            let registry = TokenRegistry::memory();
            let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
            let bearer = format!("Bearer {}", issued.token.expose());
            let layer = BearerAuthLayer::required(registry);
            assert_eq!(status_through(layer, Some(&bearer)).await, StatusCode::OK);

            let request = Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = route.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(body.to_vec()).unwrap()
        })
    });
    for line in [
        "# HELP tower_bearer_requests_total",
        "# TYPE tower_bearer_requests_total counter",
        r#"tower_bearer_requests_total{outcome="allowed"} 1"#,
        r#"tower_bearer_tokens_issued_total{kind="customer"} 1"#,
        "# TYPE tower_bearer_store_call_duration_seconds histogram",
        r#"tower_bearer_store_call_duration_seconds_count{store="memory",operation="insert"} 1"#,
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}
