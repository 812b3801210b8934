//! `BearerAuthLayer` in-process: every row of DESIGN.md's "Responses of the layer" table,
//! each on an axum `Router` (handlers using the `Caller` / `Option<Caller>` extractors) and
//! on a plain `tower::service_fn` (reading the request's extensions), in required and
//! optional mode. No sockets: every request goes through `ServiceExt::oneshot`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::routing::any;
use axum::{Json, Router};
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_bearer::bearer::{ErrorBody, ResponseBody};
use tower_bearer::bearer::{MAX_TOKEN_LEN, MalformedAuthorization};
use tower_bearer::store::StoreError;
use tower_bearer::store::{SignInStore, StoreFuture, TokenStore};
use tower_bearer::token::{Token, TokenHash};
use tower_bearer::{Admin, AuthError, BearerAuthLayer, Caller, Customer, TokenKind, TokenRegistry};

use crate::support;

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
    fn insert(&self, _caller: Caller, _ttl: Duration) -> StoreFuture<()> {
        self.fail()
    }

    fn get(&self, _hash: TokenHash) -> StoreFuture<Option<Caller>> {
        self.fail()
    }

    fn remove(&self, _hash: TokenHash) -> StoreFuture<Option<Caller>> {
        self.fail()
    }

    fn remove_subject(&self, _kind: TokenKind, _subject: String) -> StoreFuture<u64> {
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

// ---------------------------------------------------------------------------------------
// Row: no Authorization header.

#[tokio::test]
async fn a_request_without_authorization_is_challenged_when_required() {
    let registry = TokenRegistry::memory();
    let outcomes = send_both(
        Mode::Required,
        Mode::Required.layer(&registry),
        &[],
        "no header",
    )
    .await;
    assert_refused(
        &outcomes,
        StatusCode::UNAUTHORIZED,
        Challenge::Exactly(BARE_CHALLENGE),
    );
}

#[tokio::test]
async fn a_request_without_authorization_passes_as_a_guest_when_optional() {
    let registry = TokenRegistry::memory();
    let outcomes = send_both(
        Mode::Optional,
        Mode::Optional.layer(&registry),
        &[],
        "no header",
    )
    .await;
    assert_passed(&outcomes, None);
}

// Row: empty Authorization value (Magento PWA Studio sends `authorization: ''` for guests).

/// Refused with the bare challenge when required, let through as a guest when optional.
async fn assert_counts_as_no_credentials(value: HeaderValue, name: &str) {
    let registry = TokenRegistry::memory();
    let value = [value];
    let required = send_both(
        Mode::Required,
        Mode::Required.layer(&registry),
        &value,
        name,
    )
    .await;
    assert_refused(
        &required,
        StatusCode::UNAUTHORIZED,
        Challenge::Exactly(BARE_CHALLENGE),
    );
    let optional = send_both(
        Mode::Optional,
        Mode::Optional.layer(&registry),
        &value,
        name,
    )
    .await;
    assert_passed(&optional, None);
}

#[tokio::test]
async fn an_empty_authorization_value_counts_as_no_credentials() {
    assert_counts_as_no_credentials(HeaderValue::from_static(""), "empty").await;
}

// Row: another scheme.

#[tokio::test]
async fn another_scheme_counts_as_no_bearer_credentials() {
    assert_counts_as_no_credentials(HeaderValue::from_static("Basic dXNlcjpwYXNz"), "Basic").await;
}

#[tokio::test]
async fn values_that_are_not_bearer_credentials_count_as_no_credentials() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("spaces only", b"   ".to_vec()),
        ("a tab only", b"\t".to_vec()),
        ("Basic", b"Basic dXNlcjpwYXNz".to_vec()),
        ("Digest", br#"Digest username="a", realm="api""#.to_vec()),
        ("Negotiate", b"Negotiate YIIB".to_vec()),
        (
            "a scheme that only starts with Bearer",
            b"Bearerx abc".to_vec(),
        ),
        (
            "Bearerx with a real token",
            format!("Bearerx {token}").into_bytes(),
        ),
        ("a bare token with no scheme", token.clone().into_bytes()),
        (
            "Token scheme with a real token",
            format!("Token {token}").into_bytes(),
        ),
    ];
    for (name, bytes) in &cases {
        let value = [header(bytes)];
        let case = format!("not bearer credentials: {name}");
        let required = send_both(
            Mode::Required,
            Mode::Required.layer(&registry),
            &value,
            &case,
        )
        .await;
        assert_refused(
            &required,
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(BARE_CHALLENGE),
        );
        let optional = send_both(
            Mode::Optional,
            Mode::Optional.layer(&registry),
            &value,
            &case,
        )
        .await;
        assert_passed(&optional, None);
    }
}

// Row: malformed Bearer credentials.

/// Malformed `Authorization` inputs: each is one or more header values. `token_a` and
/// `token_b` are live tokens, to show that even valid tokens are refused when the header
/// around them is malformed.
fn malformed_inputs(token_a: &str, token_b: &str) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let one = |bytes: &[u8]| vec![bytes.to_vec()];
    let too_long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
    vec![
        ("Bearer with no token", one(b"Bearer")),
        ("Bearer and a trailing space", one(b"Bearer ")),
        ("lower-case bearer with no token", one(b"bearer")),
        ("Bearer and only spaces and a tab", one(b"Bearer  \t")),
        ("a tab as separator", one(b"Bearer\tabc")),
        ("a comma as separator", one(b"Bearer,abc")),
        ("an equals sign as separator", one(b"Bearer=abc")),
        ("a slash as separator", one(b"Bearer/abc")),
        ("two tokens", one(b"Bearer abc def")),
        ("a tab inside the token", one(b"Bearer abc\tdef")),
        ("padding only", one(b"Bearer ====")),
        ("padding in the middle", one(b"Bearer ab=c")),
        ("padding first", one(b"Bearer =abc")),
        ("a quoted token", one(b"Bearer \"abc\"")),
        ("a semicolon", one(b"Bearer abc;")),
        ("a comma inside the token", one(b"Bearer abc,def")),
        ("an at sign", one(b"Bearer a@b")),
        ("a backslash", one(b"Bearer a\\b")),
        ("braces", one(b"Bearer {}")),
        ("a colon", one(b"Bearer a:b")),
        ("a percent escape", one(b"BEARER a%20b")),
        ("a question mark", one(b"Bearer a?b")),
        ("an exclamation mark", one(b"Bearer a!b")),
        ("an asterisk", one(b"Bearer a*b")),
        ("a hash sign", one(b"Bearer a#b")),
        ("brackets", one(b"Bearer a[b]")),
        ("a token longer than the bound", one(too_long.as_bytes())),
        ("a non-ASCII byte in the token", one(b"Bearer abc\xe9")),
        ("UTF-8 in the token", one("Bearer abcé".as_bytes())),
        ("a non-breaking space as separator", one(b"Bearer\xa0abc")),
        (
            "a live token followed by junk",
            one(format!("Bearer {token_a} extra").as_bytes()),
        ),
        (
            "a live token with a semicolon",
            one(format!("Bearer {token_a};").as_bytes()),
        ),
        (
            "two Authorization headers with live tokens",
            vec![
                format!("Bearer {token_a}").into_bytes(),
                format!("Bearer {token_b}").into_bytes(),
            ],
        ),
        (
            "the same live token twice",
            vec![
                format!("Bearer {token_a}").into_bytes(),
                format!("Bearer {token_a}").into_bytes(),
            ],
        ),
        (
            "an empty header then a live token",
            vec![Vec::new(), format!("Bearer {token_a}").into_bytes()],
        ),
        (
            "Basic then a live bearer token",
            vec![
                b"Basic dXNlcjpwYXNz".to_vec(),
                format!("Bearer {token_a}").into_bytes(),
            ],
        ),
    ]
}

#[tokio::test]
async fn malformed_bearer_credentials_are_rejected_with_invalid_request() {
    let registry = TokenRegistry::memory();
    let (token_a, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (token_b, _) = issue(&registry, TokenKind::Customer, "bob@example.com").await;
    let cases = malformed_inputs(&token_a, &token_b);
    assert!(cases.len() >= 20, "at least 20 malformed inputs");
    for (name, values) in &cases {
        let values: Vec<HeaderValue> = values.iter().map(|bytes| header(bytes)).collect();
        for mode in BOTH_MODES {
            let case = format!("malformed: {name}");
            let outcomes = send_both(mode, mode.layer(&registry), &values, &case).await;
            assert_refused(
                &outcomes,
                StatusCode::BAD_REQUEST,
                Challenge::StartsWith(INVALID_REQUEST_PREFIX),
            );
        }
    }
}

/// RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token` — a tab is not a separator,
/// neither alone nor after a space.
#[tokio::test]
async fn a_tab_after_the_separating_space_is_rejected_with_invalid_request() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let value = [header(format!("Bearer \t{token}").as_bytes())];
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &value, "space then tab").await;
        assert_refused(
            &outcomes,
            StatusCode::BAD_REQUEST,
            Challenge::StartsWith(INVALID_REQUEST_PREFIX),
        );
    }
}

// Row: unknown, expired or revoked token.

#[tokio::test]
async fn an_unknown_token_is_rejected_with_invalid_token() {
    let registry = TokenRegistry::memory();
    let _someone_else = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let unknown = [bearer(&never_issued_token())];
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &unknown, "unknown token").await;
        assert_refused(
            &outcomes,
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        );
    }
}

#[tokio::test]
async fn a_well_formed_token_of_a_shape_never_issued_is_rejected_without_asking_the_store() {
    // Even with the store down: such a token cannot be live, so 401 (not 503) is right.
    let store = DownStore::default();
    let registry = TokenRegistry::new(store.clone());
    for token in ["abc", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "a-b.c_d~e+f/g=="] {
        let value = [bearer(token)];
        for mode in BOTH_MODES {
            let case = format!("token {token:?}");
            let outcomes = send_both(mode, mode.layer(&registry), &value, &case).await;
            assert_refused(
                &outcomes,
                StatusCode::UNAUTHORIZED,
                Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
            );
        }
    }
    assert_eq!(store.asked.load(Ordering::SeqCst), 0, "the store was asked");
}

#[tokio::test]
async fn an_expired_token_is_rejected_with_invalid_token() {
    let registry = TokenRegistry::memory().with_lifetimes(support::short_lifetimes());
    let (customer_token, customer) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (admin_token, admin) = issue(&registry, TokenKind::Admin, "root").await;
    let customer_value = [bearer(&customer_token)];
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &customer_value, "fresh").await;
        assert_passed(&outcomes, Some(&customer));
    }

    tokio::time::sleep(Duration::from_millis(1100)).await;

    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &customer_value, "expired").await;
        assert_refused(
            &outcomes,
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        );
    }
    // The admin lifetime (2 s) is its own: that token is still good.
    let admin_value = [bearer(&admin_token)];
    let outcomes = send_both(
        Mode::Required,
        Mode::Required.layer(&registry),
        &admin_value,
        "admin",
    )
    .await;
    assert_passed(&outcomes, Some(&admin));
}

#[tokio::test]
async fn a_revoked_token_is_rejected_with_invalid_token() {
    let registry = TokenRegistry::memory();
    let (revoked, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (kept, ada) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (bob_first, _) = issue(&registry, TokenKind::Customer, "bob@example.com").await;
    let (bob_second, _) = issue(&registry, TokenKind::Customer, "bob@example.com").await;

    assert!(registry.revoke(&revoked).await.expect("revoke"));
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "bob@example.com")
            .await
            .expect("revoke all"),
        2
    );

    for (name, token) in [
        ("revoked one by one", &revoked),
        ("revoked with revoke_all (first)", &bob_first),
        ("revoked with revoke_all (second)", &bob_second),
    ] {
        for mode in BOTH_MODES {
            let outcomes = send_both(mode, mode.layer(&registry), &[bearer(token)], name).await;
            assert_refused(
                &outcomes,
                StatusCode::UNAUTHORIZED,
                Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
            );
        }
    }
    // Revoking one token leaves the subject's other tokens alive.
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &[bearer(&kept)], "kept").await;
        assert_passed(&outcomes, Some(&ada));
    }
}

// Row: valid token of the wrong kind.

#[tokio::test]
async fn a_customer_token_on_an_admin_layer_is_rejected_with_insufficient_scope() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    for mode in BOTH_MODES {
        let layer = mode.layer(&registry).with_kind(TokenKind::Admin);
        let outcomes = send_both(mode, layer, &[bearer(&token)], "customer on admin").await;
        assert_refused(
            &outcomes,
            StatusCode::FORBIDDEN,
            Challenge::Exactly(ADMIN_SCOPE_CHALLENGE),
        );
    }
}

#[tokio::test]
async fn an_admin_token_on_a_customer_layer_is_rejected_with_insufficient_scope() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Admin, "root").await;
    for mode in BOTH_MODES {
        let layer = mode.layer(&registry).with_kind(TokenKind::Customer);
        let outcomes = send_both(mode, layer, &[bearer(&token)], "admin on customer").await;
        assert_refused(
            &outcomes,
            StatusCode::FORBIDDEN,
            Challenge::Exactly(CUSTOMER_SCOPE_CHALLENGE),
        );
    }
}

#[tokio::test]
async fn a_token_of_the_required_kind_passes_a_kind_restricted_layer() {
    let registry = TokenRegistry::memory();
    let (admin_token, admin) = issue(&registry, TokenKind::Admin, "root").await;
    let (customer_token, customer) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    for mode in BOTH_MODES {
        let layer = mode.layer(&registry).with_kind(TokenKind::Admin);
        let outcomes = send_both(mode, layer, &[bearer(&admin_token)], "admin on admin").await;
        assert_passed(&outcomes, Some(&admin));
        let layer = mode.layer(&registry).with_kind(TokenKind::Customer);
        let outcomes = send_both(
            mode,
            layer,
            &[bearer(&customer_token)],
            "customer on customer",
        )
        .await;
        assert_passed(&outcomes, Some(&customer));
    }
}

// Row: store unreachable or timed out.

#[tokio::test]
async fn a_store_failure_answers_503_with_retry_after_and_never_calls_the_service() {
    let store = DownStore::default();
    let registry = TokenRegistry::new(store.clone());
    let value = [bearer(&never_issued_token())];
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &value, "store down").await;
        assert_refused(
            &outcomes,
            StatusCode::SERVICE_UNAVAILABLE,
            Challenge::Absent,
        );
        for outcome in &outcomes {
            assert_eq!(
                outcome.retry_after.as_deref(),
                Some("1"),
                "{}: default Retry-After",
                outcome.context
            );
        }
        // Also with a kind restriction: the kind cannot be known, so still 503.
        let layer = mode.layer(&registry).with_kind(TokenKind::Admin);
        let outcomes = send_both(mode, layer, &value, "store down, admin layer").await;
        assert_refused(
            &outcomes,
            StatusCode::SERVICE_UNAVAILABLE,
            Challenge::Absent,
        );
    }
    assert_eq!(
        store.asked.load(Ordering::SeqCst),
        8,
        "every request asked the store once"
    );
}

// Row: valid token.

#[tokio::test]
async fn a_valid_token_passes_and_the_handler_sees_its_caller() {
    let registry = TokenRegistry::memory();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    for (kind, subject, lifetime) in [
        (TokenKind::Customer, "ada@example.com", 3600),
        (TokenKind::Admin, "root", 4 * 3600),
    ] {
        let (token, caller) = issue(&registry, kind, subject).await;
        assert_eq!(caller.kind, kind);
        assert_eq!(caller.subject, subject);
        assert_eq!(
            (caller.expires_at - caller.issued_at).num_seconds(),
            lifetime
        );
        let issued_at = u64::try_from(caller.issued_at.timestamp()).expect("after 1970");
        assert!(
            issued_at.abs_diff(before) <= 5,
            "issued_at {issued_at} is now ({before})"
        );
        for mode in BOTH_MODES {
            let outcomes = send_both(mode, mode.layer(&registry), &[bearer(&token)], subject).await;
            assert_passed(&outcomes, Some(&caller));
        }
    }
}

#[tokio::test]
async fn the_scheme_is_case_insensitive_and_may_be_followed_by_several_spaces() {
    let registry = TokenRegistry::memory();
    let (token, caller) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    for form in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("bEaReR {token}"),
        format!("Bearer    {token}"),
        format!("  Bearer {token}  "),
        format!("\tBearer {token}\t"),
    ] {
        let value = [header(form.as_bytes())];
        let case = format!("{:?}", form.replace(&token, "<token>"));
        for mode in BOTH_MODES {
            let outcomes = send_both(mode, mode.layer(&registry), &value, &case).await;
            assert_passed(&outcomes, Some(&caller));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Shaping the refusals: custom body, realm, Retry-After.

fn graphql_error_body(error: &AuthError) -> ErrorBody {
    ErrorBody::json(&json!({
        "errors": [{
            "message": error.to_string(),
            "extensions": { "category": "graphql-authentication" },
        }]
    }))
}

#[tokio::test]
async fn a_custom_error_body_keeps_the_status_and_challenge() {
    let registry = TokenRegistry::memory();
    let down = TokenRegistry::new(DownStore::default());
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let unknown = never_issued_token();

    let cases = [
        (
            "no header",
            &registry,
            None,
            Vec::new(),
            AuthError::MissingCredentials,
            Challenge::Exactly(BARE_CHALLENGE),
        ),
        (
            "malformed",
            &registry,
            None,
            vec![HeaderValue::from_static("Bearer")],
            AuthError::InvalidRequest(MalformedAuthorization::MissingToken),
            Challenge::StartsWith(INVALID_REQUEST_PREFIX),
        ),
        (
            "unknown token",
            &registry,
            None,
            vec![bearer(&unknown)],
            AuthError::InvalidToken,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        ),
        (
            "wrong kind",
            &registry,
            Some(TokenKind::Admin),
            vec![bearer(&customer_token)],
            AuthError::InsufficientScope {
                required: TokenKind::Admin,
            },
            Challenge::Exactly(ADMIN_SCOPE_CHALLENGE),
        ),
        (
            "store down",
            &down,
            None,
            vec![bearer(&unknown)],
            AuthError::StoreUnavailable,
            Challenge::Absent,
        ),
    ];
    for (name, registry, kind, values, error, challenge) in cases {
        let mut layer = Mode::Required
            .layer(registry)
            .with_error_body(graphql_error_body);
        if let Some(kind) = kind {
            layer = layer.with_kind(kind);
        }
        let outcomes = send_both(Mode::Required, layer, &values, name).await;
        let expected = json!({
            "errors": [{
                "message": error.to_string(),
                "extensions": { "category": "graphql-authentication" },
            }]
        });
        for outcome in &outcomes {
            assert_refusal_shape(outcome, error.status(), challenge);
            assert_eq!(outcome.json, expected, "{}: custom body", outcome.context);
            assert_eq!(
                outcome.content_type.as_deref(),
                Some("application/json"),
                "{}: content type",
                outcome.context
            );
        }
    }
}

#[tokio::test]
async fn a_custom_realm_appears_in_every_challenge() {
    let registry = TokenRegistry::memory();
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let layer = || Mode::Required.layer(&registry).with_realm("shop");

    let outcomes = send_both(Mode::Required, layer(), &[], "no header").await;
    assert_refused(
        &outcomes,
        StatusCode::UNAUTHORIZED,
        Challenge::Exactly(r#"Bearer realm="shop""#),
    );
    let outcomes = send_both(
        Mode::Required,
        layer(),
        &[HeaderValue::from_static("Bearer")],
        "malformed",
    )
    .await;
    assert_refused(
        &outcomes,
        StatusCode::BAD_REQUEST,
        Challenge::StartsWith(r#"Bearer realm="shop", error="invalid_request""#),
    );
    let unknown = [bearer(&never_issued_token())];
    let outcomes = send_both(Mode::Required, layer(), &unknown, "unknown token").await;
    assert_refused(
        &outcomes,
        StatusCode::UNAUTHORIZED,
        Challenge::Exactly(
            r#"Bearer realm="shop", error="invalid_token", error_description="The access token is invalid, expired or revoked""#,
        ),
    );
    let admin_only = layer().with_kind(TokenKind::Admin);
    let outcomes = send_both(
        Mode::Required,
        admin_only,
        &[bearer(&customer_token)],
        "wrong kind",
    )
    .await;
    assert_refused(
        &outcomes,
        StatusCode::FORBIDDEN,
        Challenge::Exactly(r#"Bearer realm="shop", error="insufficient_scope", scope="admin""#),
    );
}

#[tokio::test]
async fn a_custom_retry_after_is_sent_with_503() {
    let registry = TokenRegistry::new(DownStore::default());
    let value = [bearer(&never_issued_token())];
    for mode in BOTH_MODES {
        let layer = mode
            .layer(&registry)
            .with_retry_after(Duration::from_secs(7));
        let outcomes = send_both(mode, layer, &value, "store down").await;
        assert_refused(
            &outcomes,
            StatusCode::SERVICE_UNAVAILABLE,
            Challenge::Absent,
        );
        for outcome in &outcomes {
            assert_eq!(
                outcome.retry_after.as_deref(),
                Some("7"),
                "{}",
                outcome.context
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Extractors on their own: wrong kind, guests, no layer at all.

async fn call_router(app: Router, authorization: Option<&str>) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::new(Body::empty());
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert(AUTHORIZATION, header(value.as_bytes()));
    }
    let response = app
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the response body can be read")
        .to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn assert_extractor_refusal(
    (status, headers, json): &(StatusCode, HeaderMap, Value),
    expected_status: StatusCode,
    challenge: &str,
    case: &str,
) {
    assert_eq!(*status, expected_status, "{case}: status");
    assert_eq!(
        header_text(headers, WWW_AUTHENTICATE).as_deref(),
        Some(challenge),
        "{case}: WWW-Authenticate"
    );
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "{case}: body {json}"
    );
}

#[tokio::test]
async fn the_customer_extractor_refuses_an_admin_token_with_insufficient_scope() {
    let registry = TokenRegistry::memory();
    let (admin_token, _) = issue(&registry, TokenKind::Admin, "root").await;
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/",
            any(move |Customer(caller): Customer| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { caller.subject }
            }),
        )
        .layer(BearerAuthLayer::required(registry.clone()));

    let refused = call_router(app.clone(), Some(&format!("Bearer {admin_token}"))).await;
    assert_extractor_refusal(
        &refused,
        StatusCode::FORBIDDEN,
        CUSTOMER_SCOPE_CHALLENGE,
        "admin token",
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");

    let (status, _, _) = call_router(app, Some(&format!("Bearer {customer_token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_admin_extractor_refuses_a_customer_token_with_insufficient_scope() {
    let registry = TokenRegistry::memory();
    let (admin_token, _) = issue(&registry, TokenKind::Admin, "root").await;
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/",
            any(move |Admin(caller): Admin| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { caller.subject }
            }),
        )
        .layer(BearerAuthLayer::optional(registry.clone()));

    let refused = call_router(app.clone(), Some(&format!("Bearer {customer_token}"))).await;
    assert_extractor_refusal(
        &refused,
        StatusCode::FORBIDDEN,
        ADMIN_SCOPE_CHALLENGE,
        "customer token",
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");

    let guest = call_router(app.clone(), None).await;
    assert_extractor_refusal(&guest, StatusCode::UNAUTHORIZED, BARE_CHALLENGE, "guest");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");

    let (status, _, _) = call_router(app, Some(&format!("Bearer {admin_token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_caller_extractor_refuses_a_guest_let_through_by_the_optional_layer() {
    let registry = TokenRegistry::memory();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/",
            any(move |caller: Caller| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { caller.subject }
            }),
        )
        .layer(BearerAuthLayer::optional(registry));
    for (name, authorization) in [("no header", None), ("empty header", Some(""))] {
        let refused = call_router(app.clone(), authorization).await;
        assert_extractor_refusal(&refused, StatusCode::UNAUTHORIZED, BARE_CHALLENGE, name);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");
}

#[tokio::test]
async fn the_optional_caller_extractor_gives_none_for_a_guest() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let app = Router::new()
        .route(
            "/",
            any(|caller: Option<Caller>| async move {
                Json(json!({ "subject": caller.map(|caller| caller.subject) }))
            }),
        )
        .layer(BearerAuthLayer::optional(registry));
    for authorization in [None, Some(""), Some("Basic dXNlcjpwYXNz")] {
        let (status, _, json) = call_router(app.clone(), authorization).await;
        assert_eq!(status, StatusCode::OK, "{authorization:?}");
        assert_eq!(json, json!({ "subject": null }), "{authorization:?}");
    }
    let (status, _, json) = call_router(app, Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({ "subject": "ada@example.com" }));
}

#[tokio::test]
async fn extractors_without_the_layer_fail_closed() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let app = Router::new()
        .route(
            "/caller",
            any(|caller: Caller| async move { caller.subject }),
        )
        .route(
            "/customer",
            any(|Customer(caller): Customer| async move { caller.subject }),
        )
        .route(
            "/admin",
            any(|Admin(caller): Admin| async move { caller.subject }),
        )
        .route(
            "/optional",
            any(|caller: Option<Caller>| async move { format!("{}", caller.is_some()) }),
        );
    for path in ["/caller", "/customer", "/admin"] {
        let mut request = Request::get(path).body(Body::empty()).expect("request");
        request.headers_mut().insert(AUTHORIZATION, bearer(&token));
        let response = app
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            header_text(response.headers(), WWW_AUTHENTICATE).as_deref(),
            Some(BARE_CHALLENGE),
            "{path}"
        );
    }
    let mut request = Request::get("/optional")
        .body(Body::empty())
        .expect("request");
    request.headers_mut().insert(AUTHORIZATION, bearer(&token));
    let response = app
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"false", "no layer, no caller");
}

// ---------------------------------------------------------------------------------------
// The token never comes back.

#[tokio::test]
async fn refusals_never_echo_the_token() {
    let registry = TokenRegistry::memory().with_lifetimes(support::short_lifetimes());
    let down = TokenRegistry::new(DownStore::default());
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (revoked_token, _) = issue(&registry, TokenKind::Customer, "bob@example.com").await;
    registry.revoke(&revoked_token).await.expect("revoke");
    let unknown = never_issued_token();
    let invalid_character = invalid_request(MalformedAuthorization::InvalidCharacter);
    let multiple_headers = invalid_request(MalformedAuthorization::MultipleHeaders);

    // (case, registry, layer kind, header values, status, challenge)
    let cases = [
        (
            "unknown",
            &registry,
            None,
            vec![bearer(&unknown)],
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        ),
        (
            "revoked",
            &registry,
            None,
            vec![bearer(&revoked_token)],
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        ),
        (
            "wrong kind",
            &registry,
            Some(TokenKind::Admin),
            vec![bearer(&customer_token)],
            StatusCode::FORBIDDEN,
            Challenge::Exactly(ADMIN_SCOPE_CHALLENGE),
        ),
        (
            "store down",
            &down,
            None,
            vec![bearer(&unknown)],
            StatusCode::SERVICE_UNAVAILABLE,
            Challenge::Absent,
        ),
        (
            "junk after token",
            &registry,
            None,
            vec![header(format!("Bearer {customer_token} x").as_bytes())],
            StatusCode::BAD_REQUEST,
            Challenge::Exactly(&invalid_character),
        ),
        (
            "two headers",
            &registry,
            None,
            vec![bearer(&customer_token), bearer(&unknown)],
            StatusCode::BAD_REQUEST,
            Challenge::Exactly(&multiple_headers),
        ),
        (
            "upper-case token",
            &registry,
            None,
            vec![bearer(&customer_token.to_uppercase())],
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        ),
    ];
    for (name, registry, kind, values, status, challenge) in cases {
        for mode in BOTH_MODES {
            for with_custom_body in [false, true] {
                let mut layer = mode.layer(registry);
                if let Some(kind) = kind {
                    layer = layer.with_kind(kind);
                }
                if with_custom_body {
                    layer = layer.with_error_body(graphql_error_body);
                }
                let outcomes = send_both(mode, layer, &values, name).await;
                for outcome in &outcomes {
                    // Also checks that neither body nor headers carry what was sent.
                    assert_refusal_shape(outcome, status, challenge);
                }
            }
        }
    }

    // And an expired one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for mode in BOTH_MODES {
        let outcomes = send_both(
            mode,
            mode.layer(&registry),
            &[bearer(&customer_token)],
            "expired",
        )
        .await;
        assert_refused(
            &outcomes,
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        );
    }
}
