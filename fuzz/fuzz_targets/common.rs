//! What the route targets share: the bundled REST routes over a memory registry, a
//! directory that answers at once (no Argon2: the fuzzer hunts parsing bugs, not passwords),
//! tokens of each kind, and the invariants every answer keeps.

use std::sync::LazyLock;

use axum::Router;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_bearer::magento::rest;
use tower_bearer::registry::SessionRules;
use tower_bearer::sign_in::{CustomerAccount, Directory, DirectoryFuture};
use tower_bearer::store::{OnLimit, SubjectLimit};
use tower_bearer::{SignIn, TokenKind, TokenRegistry};

pub const CUSTOMER: &str = "customer@example.com";
pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "pw";

/// Two accounts, password `pw`: the subjects stay two however many sign-ins the fuzzer
/// makes, and the limit below keeps their tokens few.
struct FastDirectory;

impl Directory for FastDirectory {
    fn verify<'a>(
        &'a self,
        kind: TokenKind,
        username: &'a str,
        password: &'a str,
    ) -> DirectoryFuture<'a, Option<String>> {
        let known = match kind {
            TokenKind::Customer => username.eq_ignore_ascii_case(CUSTOMER),
            TokenKind::Admin => username.eq_ignore_ascii_case(ADMIN),
            _ => false,
        };
        let subject = (known && password == PASSWORD).then(|| username.to_lowercase());
        Box::pin(async move { Ok(subject) })
    }

    fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>> {
        let found = email
            .eq_ignore_ascii_case(CUSTOMER)
            .then(|| CustomerAccount {
                subject: CUSTOMER.to_owned(),
                allows_remote_assistance: true,
            });
        Box::pin(async move { Ok(found) })
    }
}

/// The routes and a live token of each kind.
pub struct App {
    pub runtime: tokio::runtime::Runtime,
    pub router: Router,
    pub customer_token: String,
    pub admin_token: String,
}

pub static APP: LazyLock<App> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let few = SubjectLimit::new(8, OnLimit::RevokeOldest);
    let rules = [
        TokenKind::Customer,
        TokenKind::Admin,
        TokenKind::Integration,
    ]
    .into_iter()
    .fold(SessionRules::default(), |rules, kind| {
        rules.with_limit(kind, few)
    });
    let registry = TokenRegistry::memory().with_session_rules(rules);
    let (customer_token, admin_token) = runtime.block_on(async {
        // Issued beside the limit's reach: the fuzzer's sign-ins evict the oldest tokens,
        // so these are re-issued when gone (see `App::token`).
        let customer = registry
            .issue(TokenKind::Customer, "kept@example.com")
            .await;
        let admin = registry.issue(TokenKind::Admin, "kept-admin").await;
        (
            customer.expect("issued").token.expose().to_owned(),
            admin.expect("issued").token.expose().to_owned(),
        )
    });
    // An application's own fallback, so that an empty 404 could only come from the routes.
    let router = rest::router(SignIn::new(registry, FastDirectory)).fallback(|| async {
        let body = axum::Json(serde_json::json!({ "message": "no such route" }));
        (StatusCode::NOT_FOUND, body)
    });
    App {
        runtime,
        router,
        customer_token,
        admin_token,
    }
});

/// Sends `request` to the routes; checks what every answer must be: a status that is not a
/// server error (the memory store never fails), and for a refusal a JSON body with a
/// message. Returns the status and body.
pub fn send(request: Request<axum::body::Body>) -> (StatusCode, Bytes) {
    let app = &*APP;
    let (status, body) = app.runtime.block_on(async {
        let response = app
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("axum routers are infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        (status, body)
    });
    assert!(!status.is_server_error(), "{status}: {body:?}");
    if status.is_client_error() && status != StatusCode::METHOD_NOT_ALLOWED {
        let json: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{status} without a JSON body: {body:?}"));
        assert!(json["message"].is_string(), "{status}: {json}");
    }
    (status, body)
}

pub const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/json; charset=utf-8",
    "",
];
