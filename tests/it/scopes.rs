//! Scopes: stored with the token on every store, checked by the layer and the `Scoped`
//! extractor with RFC 6750's `insufficient_scope` challenge, and granted to admins by the
//! directory.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use tower::ServiceExt;
use tower_bearer::bearer::{RequiredScopes, Scoped};
use tower_bearer::magento::rest;
use tower_bearer::registry::IssueRequest;
use tower_bearer::sign_in::MemoryDirectory;
use tower_bearer::token::{ALL_SCOPES, Scopes};
use tower_bearer::{AuthError, BearerAuthLayer, Caller, SignIn, TokenKind, TokenRegistry};

use crate::support::{TestRedis, sha256_hex};

const PRODUCTS: &str = "Magento_Catalog::products";
const SALES: &str = "Magento_Sales::sales";

fn scopes(list: &[&str]) -> Scopes {
    Scopes::new(list).expect("valid scopes")
}

async fn issue_with(registry: &TokenRegistry, kind: TokenKind, granted: &[&str]) -> String {
    let request = IssueRequest::new(kind, "ada").with_scopes(scopes(granted));
    let issued = registry.issue_request(request).await.expect("issued");
    issued.token.expose().to_owned()
}

// --- stored on every store ---------------------------------------------------------------

async fn scopes_are_stored_and_resolved(registry: TokenRegistry) {
    let granted = scopes(&[SALES, PRODUCTS]);
    let request = IssueRequest::new(TokenKind::Admin, "catalog").with_scopes(granted.clone());
    let issued = registry.issue_request(request).await.unwrap();
    let caller = registry
        .resolve(issued.token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.scopes, granted);
    assert!(caller.has_scope(PRODUCTS) && caller.has_scope(SALES));
    assert!(!caller.has_scope("Magento_Customer::manage"));
    assert_eq!(caller, issued.caller);

    let plain = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let caller = registry
        .resolve(plain.token.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(caller.scopes.is_empty(), "a customer token holds no scope");
}

#[tokio::test]
async fn scopes_are_stored_and_resolved_in_memory() {
    scopes_are_stored_and_resolved(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn scopes_are_stored_and_resolved_in_redis() {
    let redis = TestRedis::start();
    scopes_are_stored_and_resolved(redis.registry().await).await;
}

#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_stored_and_resolved_in_a_redis_cluster() {
    let cluster = crate::support::TestCluster::shared();
    scopes_are_stored_and_resolved(cluster.registry().await).await;
}

/// Writes `fields` (JSON members after kind, subject and instants) as the record of
/// `token`, live for a minute, as some other writer (an earlier version, a hostile one) would.
async fn write_record(redis: &TestRedis, token: &str, fields: &str) {
    let now = chrono::Utc::now().timestamp_millis();
    let record = format!(
        r#"{{"k":"admin","s":"root","i":{now},"e":{}{fields}}}"#,
        now + 60_000
    );
    let key = format!("{}token:{}", redis.prefix, sha256_hex(token));
    let mut inspect = redis.inspector().await;
    let _: () = ::redis::cmd("SET")
        .arg(&key)
        .arg(record)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut inspect)
        .await
        .unwrap();
}

const TOKEN: &str = "0123456789abcdefghijklmnopqrstuv";

#[tokio::test]
async fn a_record_written_before_scopes_existed_still_resolves_without_scopes() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    // The record as 0.1 wrote it: no scopes, no client details.
    write_record(&redis, TOKEN, "").await;
    let caller = registry.resolve(TOKEN).await.unwrap().expect("still live");
    assert_eq!(caller.subject, "root");
    assert!(caller.scopes.is_empty());
    assert!(caller.client.is_empty());
}

#[tokio::test]
async fn a_record_with_a_malformed_scope_fails_closed_as_a_store_error() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    write_record(&redis, TOKEN, r#","c":["has space"]"#).await;
    assert!(
        registry.resolve(TOKEN).await.is_err(),
        "neither a pass nor a 401"
    );
}

// --- checked by the layer ----------------------------------------------------------------

async fn whoami(caller: Caller) -> String {
    caller.subject
}

fn scoped_app(registry: TokenRegistry, required: &[&str]) -> Router {
    Router::new().route("/", get(whoami)).layer(
        BearerAuthLayer::required(registry)
            .with_realm("shop")
            .with_scopes(scopes(required)),
    )
}

async fn get_with(app: &Router, path: &str, token: Option<&str>) -> http::Response<Body> {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_without_a_required_scope_gets_403_naming_the_scopes_required() {
    let registry = TokenRegistry::memory();
    let app = scoped_app(registry.clone(), &[SALES, PRODUCTS]);
    let catalog = issue_with(&registry, TokenKind::Admin, &[PRODUCTS]).await;
    let customer = issue_with(&registry, TokenKind::Customer, &[]).await;

    for token in [&catalog, &customer] {
        let response = get_with(&app, "/", Some(token)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"shop\", error=\"insufficient_scope\", \
             scope=\"Magento_Catalog::products Magento_Sales::sales\""
        );
        assert_eq!(
            response.extensions().get::<AuthError>(),
            Some(&AuthError::MissingScope {
                required: scopes(&[PRODUCTS, SALES])
            })
        );
    }
}

#[tokio::test]
async fn a_token_granting_every_required_scope_or_the_wildcard_passes() {
    let registry = TokenRegistry::memory();
    let app = scoped_app(registry.clone(), &[SALES, PRODUCTS]);
    for granted in [
        &[PRODUCTS, SALES][..],
        &[SALES, PRODUCTS, "Other::x"],
        &[ALL_SCOPES],
    ] {
        let token = issue_with(&registry, TokenKind::Admin, granted).await;
        let response = get_with(&app, "/", Some(&token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{granted:?}");
    }
    // A layer without scopes checks none.
    let open = scoped_app(registry.clone(), &[]);
    let customer = issue_with(&registry, TokenKind::Customer, &[]).await;
    assert_eq!(
        get_with(&open, "/", Some(&customer)).await.status(),
        StatusCode::OK
    );
}

// --- checked by the extractor, with the layer's realm ------------------------------------

struct Products;
impl RequiredScopes for Products {
    const SCOPES: &'static [&'static str] = &[PRODUCTS];
}

async fn products(Scoped(caller, _): Scoped<Products>) -> String {
    caller.subject
}

#[tokio::test]
async fn the_scoped_extractor_refuses_as_the_layer_in_front_of_it() {
    let registry = TokenRegistry::memory();
    let app = Router::new()
        .route("/products", get(products))
        .layer(BearerAuthLayer::optional(registry.clone()).with_realm("shop"));
    let catalog = issue_with(&registry, TokenKind::Admin, &[PRODUCTS]).await;
    let sales = issue_with(&registry, TokenKind::Admin, &[SALES]).await;

    assert_eq!(
        get_with(&app, "/products", Some(&catalog)).await.status(),
        StatusCode::OK
    );
    let refused = get_with(&app, "/products", Some(&sales)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.headers()[WWW_AUTHENTICATE],
        "Bearer realm=\"shop\", error=\"insufficient_scope\", scope=\"Magento_Catalog::products\""
    );
    let guest = get_with(&app, "/products", None).await;
    assert_eq!(guest.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(guest.headers()[WWW_AUTHENTICATE], "Bearer realm=\"shop\"");
}

// --- granted at sign-in by the directory -------------------------------------------------

#[tokio::test]
async fn admins_sign_in_with_the_scopes_their_directory_entry_grants() {
    let registry = TokenRegistry::memory();
    let directory = MemoryDirectory::new();
    directory.add_admin("root", "admin123").unwrap();
    directory
        .add_admin_with_scopes("catalog", "admin123", scopes(&[PRODUCTS]))
        .unwrap();
    let sign_in = SignIn::new(registry.clone(), directory);
    let app = rest::router(sign_in).merge(
        Router::new()
            .route("/products", get(products))
            .layer(BearerAuthLayer::required(registry.clone())),
    );
    let token_of = |username: &'static str| {
        let app = app.clone();
        async move {
            let body = format!(r#"{{"username":"{username}","password":"admin123"}}"#);
            let request = Request::post("/V1/integration/admin/token")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            serde_json::from_slice::<String>(&bytes).unwrap()
        }
    };
    let root = token_of("root").await;
    let catalog = token_of("catalog").await;

    let caller = registry.resolve(&root).await.unwrap().unwrap();
    assert_eq!(caller.scopes, Scopes::all());
    let caller = registry.resolve(&catalog).await.unwrap().unwrap();
    assert_eq!(caller.scopes, scopes(&[PRODUCTS]));
    assert_eq!(
        get_with(&app, "/products", Some(&catalog)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_with(&app, "/products", Some(&root)).await.status(),
        StatusCode::OK
    );
}

// --- admin powers need their scopes --------------------------------------------------------

#[tokio::test]
async fn an_admin_without_the_customer_scope_can_neither_sign_customers_out_nor_revoke_their_tokens()
 {
    let registry = TokenRegistry::memory();
    let directory = MemoryDirectory::new();
    directory
        .add_admin_with_scopes("catalog", "admin123", scopes(&[PRODUCTS]))
        .unwrap();
    directory
        .add_customer(
            "ada@example.com",
            "s3cret",
            tower_bearer::sign_in::RemoteAssistance::Allowed,
        )
        .unwrap();
    let app = rest::router(SignIn::new(registry.clone(), directory));
    let catalog = registry
        .issue_request(
            IssueRequest::new(TokenKind::Admin, "catalog").with_scopes(scopes(&[PRODUCTS])),
        )
        .await
        .unwrap();
    let root = issue_with(&registry, TokenKind::Admin, &[ALL_SCOPES]).await;
    let ada = registry
        .issue(TokenKind::Customer, "ada@example.com")
        .await
        .unwrap();
    let post = |path: &str, token: &str, body: String| {
        Request::post(path)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let force = "/V1/customers/ada@example.com/tokens/revoke";
    let revoke_body = format!(r#"{{"token":"{}"}}"#, ada.token.expose());

    let refused = app
        .clone()
        .oneshot(post(force, catalog.token.expose(), String::new()))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("scope=\"Magento_Customer::manage\"")
    );
    let refused = app
        .clone()
        .oneshot(post(
            "/V1/integration/token/revoke",
            catalog.token.expose(),
            revoke_body.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        registry
            .resolve(ada.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    // An integration granted the scope holds no admin's power over customers' tokens.
    let integration = issue_with(
        &registry,
        TokenKind::Integration,
        &["Magento_Customer::manage"],
    )
    .await;
    let refused = app
        .clone()
        .oneshot(post(force, &integration, String::new()))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        registry
            .resolve(ada.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    // The wildcard admin may.
    let allowed = app
        .oneshot(post("/V1/integration/token/revoke", &root, revoke_body))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert!(
        registry
            .resolve(ada.token.expose())
            .await
            .unwrap()
            .is_none()
    );
}
