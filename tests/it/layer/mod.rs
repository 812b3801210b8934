//! `BearerAuthLayer` in-process: every row of the table in the README's "What the layer
//! answers", each on an axum `Router` (handlers using the `Caller` / `Option<Caller>`
//! extractors) and on a plain `tower::service_fn` (reading the request's extensions), in
//! required and optional mode. No sockets: every request goes through `ServiceExt::oneshot`.
//!
//! A file per row or concern: `missing_credentials.rs`, `malformed_headers.rs`,
//! `tokens.rs`, `kinds.rs`, `store_failures.rs`, `custom_responses.rs`, `extractors.rs`.
//! Here: the expected challenges, the harness that sends one request through both stacks
//! and checks what came back, and a store that is down.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::routing::any;
use axum::{Json, Router};
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_bearer::bearer::{MalformedAuthorization, ResponseBody};
use tower_bearer::store::{SignInStore, StoreError, StoreFuture, SubjectLimit, TokenStore};
use tower_bearer::token::{Token, TokenHash};
use tower_bearer::{BearerAuthLayer, Caller, TokenKind, TokenRegistry};

mod custom_responses;
mod extractors;
mod kinds;
mod malformed_headers;
mod missing_credentials;
mod readiness;
mod store_failures;
mod tokens;

// ---------------------------------------------------------------------------------------
// Expected challenges (default realm `api`).

const BARE_CHALLENGE: &str = r#"Bearer realm="api""#;
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="api", error="invalid_token", error_description="The access token is invalid, expired or revoked""#;
const INVALID_REQUEST_PREFIX: &str = r#"Bearer realm="api", error="invalid_request""#;
const ADMIN_SCOPE_CHALLENGE: &str =
    r#"Bearer realm="api", error="insufficient_scope", scope="admin""#;
const CUSTOMER_SCOPE_CHALLENGE: &str =
    r#"Bearer realm="api", error="insufficient_scope", scope="customer""#;

/// The whole `invalid_request` challenge for `reason`.
fn invalid_request(reason: MalformedAuthorization) -> String {
    format!(
        r#"{INVALID_REQUEST_PREFIX}, error_description="{}""#,
        reason.description()
    )
}

// ---------------------------------------------------------------------------------------
// Harness: the same layer over a Router and over a service_fn.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Required,
    Optional,
}

const BOTH_MODES: [Mode; 2] = [Mode::Required, Mode::Optional];

impl Mode {
    fn layer(self, registry: &TokenRegistry) -> BearerAuthLayer {
        match self {
            Mode::Required => BearerAuthLayer::required(registry.clone()),
            Mode::Optional => BearerAuthLayer::optional(registry.clone()),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Stack {
    Router,
    ServiceFn,
}

type BoxedService = BoxCloneService<Request<Body>, Response<Body>, Infallible>;

/// What the inner service saw: how often it ran and the caller it found each time.
#[derive(Default)]
struct Probe {
    calls: AtomicUsize,
    seen: Mutex<Vec<Option<Caller>>>,
}

impl Probe {
    fn record(&self, caller: Option<&Caller>) -> Value {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(caller.cloned());
        json!({ "subject": caller.map(|caller| caller.subject.clone()) })
    }
}

/// An axum app: in required mode the handler takes `Caller` (behind `route_layer`), in
/// optional mode `Option<Caller>` (behind `layer`, as the crate's docs show).
fn router(mode: Mode, layer: BearerAuthLayer, probe: Arc<Probe>) -> Router {
    match mode {
        Mode::Required => Router::new()
            .route(
                "/",
                any(move |caller: Caller| {
                    let probe = probe.clone();
                    async move { Json(probe.record(Some(&caller))) }
                }),
            )
            .route_layer(layer),
        Mode::Optional => Router::new()
            .route(
                "/",
                any(move |caller: Option<Caller>| {
                    let probe = probe.clone();
                    async move { Json(probe.record(caller.as_ref())) }
                }),
            )
            .layer(layer),
    }
}

/// A bare tower service that reads the caller from the request's extensions.
fn plain_service(layer: BearerAuthLayer, probe: Arc<Probe>) -> BoxedService {
    let inner = service_fn(move |request: Request<Body>| {
        let probe = probe.clone();
        async move {
            let echo = probe.record(request.extensions().get::<Caller>());
            let mut response = Response::new(Body::from(echo.to_string()));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok::<_, Infallible>(response)
        }
    });
    BoxCloneService::new(
        ServiceBuilder::new()
            .map_response(|response: Response<ResponseBody<Body>>| response.map(Body::new))
            .layer(layer)
            .service(inner),
    )
}

/// One response, read in full, and what the inner service saw.
#[derive(Debug)]
struct Outcome {
    context: String,
    sent: Vec<HeaderValue>,
    status: StatusCode,
    headers: HeaderMap,
    www_authenticate: Option<String>,
    retry_after: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
    json: Value,
    calls: usize,
    seen: Vec<Option<Caller>>,
}

fn header_text(headers: &HeaderMap, name: http::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

async fn send_to(
    stack: Stack,
    mode: Mode,
    layer: BearerAuthLayer,
    authorization: &[HeaderValue],
    case: &str,
) -> Outcome {
    let probe = Arc::new(Probe::default());
    let service = match stack {
        Stack::Router => BoxCloneService::new(router(mode, layer, probe.clone())),
        Stack::ServiceFn => plain_service(layer, probe.clone()),
    };
    let mut request = Request::new(Body::empty());
    for value in authorization {
        request.headers_mut().append(AUTHORIZATION, value.clone());
    }
    let response = service
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .expect("the response body can be read")
        .to_bytes()
        .to_vec();
    let seen = probe.seen.lock().unwrap().clone();
    Outcome {
        context: format!("{case} [{mode:?} mode, {stack:?}]"),
        sent: authorization.to_vec(),
        status: parts.status,
        www_authenticate: header_text(&parts.headers, WWW_AUTHENTICATE),
        retry_after: header_text(&parts.headers, RETRY_AFTER),
        content_type: header_text(&parts.headers, CONTENT_TYPE),
        headers: parts.headers,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body,
        calls: probe.calls.load(Ordering::SeqCst),
        seen,
    }
}

/// Sends the same `Authorization` header(s) through the layer over a `Router` and over a
/// `service_fn`.
async fn send_both(
    mode: Mode,
    layer: BearerAuthLayer,
    authorization: &[HeaderValue],
    case: &str,
) -> [Outcome; 2] {
    [
        send_to(Stack::Router, mode, layer.clone(), authorization, case).await,
        send_to(Stack::ServiceFn, mode, layer, authorization, case).await,
    ]
}

fn header(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).expect("a value HeaderValue accepts")
}

fn bearer(token: &str) -> HeaderValue {
    header(format!("Bearer {token}").as_bytes())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The credentials part (after the scheme) of each header sent, when long enough to be
/// recognisable in a response.
fn secrets_sent(sent: &[HeaderValue]) -> Vec<Vec<u8>> {
    sent.iter()
        .filter_map(|value| {
            let value = value.as_bytes().trim_ascii();
            let space = value.iter().position(|byte| *byte == b' ')?;
            let secret = value[space..].trim_ascii();
            (secret.len() >= 8).then(|| secret.to_vec())
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Challenge<'a> {
    Absent,
    Exactly(&'a str),
    StartsWith(&'a str),
}

/// Status, challenge, `Retry-After` (only on 503), inner service not called, no echo of
/// the credentials: everything a refusal has whatever its body.
fn assert_refusal_shape(outcome: &Outcome, status: StatusCode, challenge: Challenge<'_>) {
    let context = &outcome.context;
    assert_eq!(
        outcome.status, status,
        "{context}: status (body {})",
        outcome.json
    );
    match challenge {
        Challenge::Absent => assert_eq!(
            outcome.www_authenticate, None,
            "{context}: no WWW-Authenticate expected"
        ),
        Challenge::Exactly(expected) => assert_eq!(
            outcome.www_authenticate.as_deref(),
            Some(expected),
            "{context}: WWW-Authenticate"
        ),
        Challenge::StartsWith(prefix) => {
            let actual = outcome.www_authenticate.as_deref().unwrap_or_default();
            assert!(
                actual.starts_with(prefix),
                "{context}: WWW-Authenticate {actual:?} should start with {prefix:?}"
            );
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let retry_after = outcome.retry_after.as_deref().unwrap_or_default();
        assert!(
            retry_after.parse::<u64>().is_ok_and(|seconds| seconds >= 1),
            "{context}: Retry-After should be a positive number of seconds, got {retry_after:?}"
        );
    } else {
        assert_eq!(
            outcome.retry_after, None,
            "{context}: unexpected Retry-After"
        );
    }
    assert_eq!(
        outcome.calls, 0,
        "{context}: the inner service must not run on a refusal"
    );
    for secret in secrets_sent(&outcome.sent) {
        let shown = String::from_utf8_lossy(&secret);
        assert!(
            !contains(&outcome.body, &secret),
            "{context}: the body repeats the credentials {shown:?}"
        );
        for (name, value) in &outcome.headers {
            assert!(
                !contains(value.as_bytes(), &secret),
                "{context}: header {name} repeats the credentials {shown:?}"
            );
        }
    }
}

/// A refusal with the default body `{"message": "<non-empty text>"}`.
fn assert_refused(outcomes: &[Outcome], status: StatusCode, challenge: Challenge<'_>) {
    for outcome in outcomes {
        assert_refusal_shape(outcome, status, challenge);
        let context = &outcome.context;
        assert_eq!(
            outcome.content_type.as_deref(),
            Some("application/json"),
            "{context}: content type"
        );
        let message = outcome.json["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{context}: body should be {{\"message\": <text>}}, got {}",
            String::from_utf8_lossy(&outcome.body)
        );
    }
}

/// The request reached the inner service once, with exactly `expected` as its caller.
fn assert_passed(outcomes: &[Outcome], expected: Option<&Caller>) {
    for outcome in outcomes {
        let context = &outcome.context;
        assert_eq!(
            outcome.status,
            StatusCode::OK,
            "{context}: status (body {})",
            String::from_utf8_lossy(&outcome.body)
        );
        assert_eq!(outcome.calls, 1, "{context}: the inner service runs once");
        assert_eq!(
            outcome.seen,
            vec![expected.cloned()],
            "{context}: the caller the inner service saw"
        );
        assert_eq!(
            outcome.json,
            json!({ "subject": expected.map(|caller| caller.subject.clone()) }),
            "{context}: the echoed subject"
        );
        assert_eq!(
            outcome.www_authenticate, None,
            "{context}: no challenge on success"
        );
    }
}

/// A text of the issued shape (32 of `[0-9a-z]`) that no registry has issued.
fn never_issued_token() -> String {
    Token::generate()
        .expect("the OS random source works")
        .expose()
        .to_owned()
}

async fn issue(registry: &TokenRegistry, kind: TokenKind, subject: &str) -> (String, Caller) {
    let issued = registry
        .issue(kind, subject)
        .await
        .expect("the memory store issues tokens");
    (issued.token.expose().to_owned(), issued.caller)
}

// ---------------------------------------------------------------------------------------
// A store that is down: every call fails with a timeout after a short wait.

#[derive(Clone, Default)]
struct DownStore {
    asked: Arc<AtomicUsize>,
}

impl DownStore {
    const LIMIT: Duration = Duration::from_millis(250);

    fn fail<T: Send + 'static>(&self) -> StoreFuture<T> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            // Answer later, not at once, so the layer really waits on the store.
            tokio::time::sleep(Duration::from_millis(5)).await;
            Err(StoreError::Timeout(Self::LIMIT))
        })
    }
}

impl TokenStore for DownStore {
    fn insert(
        &self,
        _caller: Caller,
        _ttl: Option<Duration>,
        _limit: SubjectLimit,
    ) -> StoreFuture<Vec<TokenHash>> {
        self.fail()
    }

    fn get(&self, _hash: TokenHash, _record_use_every: Duration) -> StoreFuture<Option<Caller>> {
        self.fail()
    }

    fn remove(&self, _hash: TokenHash) -> StoreFuture<Option<Caller>> {
        self.fail()
    }

    fn remove_subject(&self, _kind: TokenKind, _subject: String) -> StoreFuture<u64> {
        self.fail()
    }

    fn list(&self, _kind: TokenKind, _subject: String) -> StoreFuture<Vec<Caller>> {
        self.fail()
    }
}

impl SignInStore for DownStore {
    fn record_failure(&self, _key: String, _window: Duration) -> StoreFuture<u64> {
        self.fail()
    }

    fn forgive_failure(&self, _key: String) -> StoreFuture<()> {
        self.fail()
    }

    fn failures(&self, _key: String) -> StoreFuture<u64> {
        self.fail()
    }

    fn clear_failures(&self, _key: String) -> StoreFuture<()> {
        self.fail()
    }

    fn claim_once(&self, _key: String, _ttl: Duration) -> StoreFuture<bool> {
        self.fail()
    }
}
