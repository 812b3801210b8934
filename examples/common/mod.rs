//! What the example servers share: settings from the environment, demo accounts, the REST
//! routes, and serving.
//!
//! Settings: `BIND` (default `127.0.0.1:3000`; the gRPC example's `127.0.0.1:50051`), `REDIS_URL` (default: the in-memory
//! registry), `REDIS_CLUSTER_URLS` (a Redis Cluster instead: comma-separated node URLs,
//! e.g. `redis://127.0.0.1:7000,redis://127.0.0.1:7001`; needs `--features cluster`),
//! `REDIS_SENTINEL_URLS` and `REDIS_SENTINEL_MASTER` (Redis behind Sentinel instead:
//! comma-separated sentinel URLs, e.g. `redis://127.0.0.1:26379,redis://127.0.0.1:26380`,
//! and the name they monitor the primary by; needs `--features sentinel`; one of
//! `REDIS_URL`, `REDIS_CLUSTER_URLS` and `REDIS_SENTINEL_URLS` at most),
//! `CUSTOMER_TOKEN_LIFETIME` / `ADMIN_TOKEN_LIFETIME` (e.g. `30m`, `90s`, `4h`; defaults 1h
//! and 4h), `TOKEN_CACHE_TTL` (with Redis: cache resolved tokens in process for this long,
//! e.g. `5s`; revocations still reach every instance at once), `CUSTOMER_TOKEN_IDLE` /
//! `ADMIN_TOKEN_IDLE` (a token unused this long expires, e.g. `30m`; unset: off),
//! `CUSTOMER_TOKEN_LIMIT` / `ADMIN_TOKEN_LIMIT` (the most live tokens per account; unset: no
//! limit), `TOKEN_LIMIT_ACTION` (`revoke-oldest`, the default, or `refuse`),
//! `TOKEN_LAST_USED_INTERVAL` (how often a use is recorded at most; default `60s`), `RUST_LOG`.
//!
//! Lifecycle events (tokens issued and revoked, sign-ins) are printed on stdout, one JSON
//! line each; logs go to stderr.

pub mod prometheus;
pub mod store_info;

use std::error::Error;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_bearer::bearer::{RequiredScopes, Scoped};
use tower_bearer::magento::rest;
use tower_bearer::registry::SessionRules;
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance, TotpSecret};
use tower_bearer::store::{
    CacheOptions, MAX_TOKENS_PER_SUBJECT, OnLimit, RedisStoreOptions, SubjectLimit,
};
use tower_bearer::telemetry::events::Event;
use tower_bearer::token::{Lifetimes, Scopes};
use tower_bearer::{Admin, BearerAuthLayer, Caller, Customer, SignIn, TokenKind, TokenRegistry};
use tracing_subscriber::EnvFilter;

/// A configured demo: registry, token service with seeded accounts, and what to tell a person.
pub struct Demo {
    pub bind: String,
    pub registry: TokenRegistry,
    pub service: SignIn,
    /// Where tokens live, in words.
    pub store: String,
    pub lifetimes: Lifetimes,
    pub sessions: SessionRules,
    /// The `otpauth://` URI of the `admin2fa` account's TOTP secret.
    pub totp_uri: String,
}

/// Reads the settings, connects the store and seeds the demo accounts.
#[allow(dead_code)] // not used by every example
pub async fn setup() -> Result<Demo, Box<dyn Error>> {
    setup_on("127.0.0.1:3000").await
}

/// [`setup`], listening on `default_bind` when `BIND` is unset.
pub async fn setup_on(default_bind: &str) -> Result<Demo, Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let bind = std::env::var("BIND").unwrap_or_else(|_| default_bind.to_owned());
    let lifetimes = lifetimes_from_env()?;
    let sessions = session_rules_from_env()?;
    let (registry, store) = match (
        std::env::var("REDIS_CLUSTER_URLS"),
        std::env::var("REDIS_URL"),
        std::env::var("REDIS_SENTINEL_URLS"),
    ) {
        (Err(_), Err(_), Ok(urls)) => {
            let master = std::env::var("REDIS_SENTINEL_MASTER").map_err(|_| {
                "REDIS_SENTINEL_URLS is set: set REDIS_SENTINEL_MASTER to the name the \
                 sentinels monitor the primary by (e.g. mymaster)"
            })?;
            redis_sentinel_registry(&urls, &master).await?
        }
        (Ok(urls), Err(_), Err(_)) => redis_cluster_registry(&urls).await?,
        (Err(_), Ok(url), Err(_)) => redis_registry(&url).await?,
        (Err(_), Err(_), Err(_)) => {
            if std::env::var("REDIS_SENTINEL_MASTER").is_ok() {
                return Err(
                    "REDIS_SENTINEL_MASTER is set without REDIS_SENTINEL_URLS: give the \
                     sentinels' URLs too"
                        .into(),
                );
            }
            (TokenRegistry::memory(), "in memory".to_owned())
        }
        _ => {
            return Err(
                "set one of REDIS_URL (one Redis), REDIS_CLUSTER_URLS (a cluster) and \
                 REDIS_SENTINEL_URLS (Redis behind Sentinel), not several"
                    .into(),
            );
        }
    };
    let registry = registry
        .with_lifetimes(lifetimes)
        .with_session_rules(sessions.clone())
        .with_event_hook(print_event);

    let directory = MemoryDirectory::new();
    directory.add_customer(
        "customer@example.com",
        "password",
        RemoteAssistance::Allowed,
    )?;
    directory.add_customer("noassist@example.com", "password", RemoteAssistance::Denied)?;
    directory.add_admin("admin", "admin123")?; // every scope (Magento_Backend::all)
    directory.add_admin_with_scopes("catalog", "admin123", Scopes::new([PRODUCTS])?)?;
    // An admin with two-factor authentication, with a fresh secret at every start: add it to
    // an authenticator app from the otpauth:// URI printed at start.
    let totp = TotpSecret::generate()?;
    let totp_uri = totp.otpauth_uri("tower-bearer example", "admin2fa")?;
    directory.add_admin_with_totp("admin2fa", "admin123", totp)?;

    Ok(Demo {
        bind,
        service: SignIn::new(registry.clone(), directory),
        registry,
        store,
        lifetimes,
        sessions,
        totp_uri,
    })
}

/// `url` without the user and password it may carry, to print.
fn without_password(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

/// Prints a lifecycle event as one JSON line on stdout.
fn print_event(event: &Event) {
    if let Ok(line) = serde_json::to_string(event) {
        println!("{line}");
    }
}

/// The Redis registry, with the local cache when `TOKEN_CACHE_TTL` is set.
async fn redis_registry(url: &str) -> Result<(TokenRegistry, String), Box<dyn Error>> {
    let (options, cached) = redis_options()?;
    let label = format!("in Redis at {}{cached}", without_password(url));
    Ok((TokenRegistry::redis_with(url, options).await?, label))
}

/// The Redis Cluster registry behind the comma-separated node URLs of `REDIS_CLUSTER_URLS`.
#[cfg(feature = "cluster")]
async fn redis_cluster_registry(urls: &str) -> Result<(TokenRegistry, String), Box<dyn Error>> {
    let urls: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect();
    if urls.is_empty() {
        return Err("REDIS_CLUSTER_URLS is empty: give node URLs separated by commas".into());
    }
    let (options, cached) = redis_options()?;
    let shown: Vec<String> = urls.iter().map(|url| without_password(url)).collect();
    let label = format!("in the Redis Cluster at {}{cached}", shown.join(", "));
    Ok((TokenRegistry::redis_cluster(&urls, options).await?, label))
}

#[cfg(not(feature = "cluster"))]
async fn redis_cluster_registry(_urls: &str) -> Result<(TokenRegistry, String), Box<dyn Error>> {
    Err(
        "REDIS_CLUSTER_URLS is set, but this example was built without the `cluster` \
         feature: run it with `cargo run --example server --features cluster`"
            .into(),
    )
}

/// The registry in the Redis whose primary the sentinels of the comma-separated
/// `REDIS_SENTINEL_URLS` name `master`.
#[cfg(feature = "sentinel")]
async fn redis_sentinel_registry(
    urls: &str,
    master: &str,
) -> Result<(TokenRegistry, String), Box<dyn Error>> {
    let urls: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect();
    if urls.is_empty() {
        return Err("REDIS_SENTINEL_URLS is empty: give sentinel URLs separated by commas".into());
    }
    let (options, cached) = redis_options()?;
    let label = format!(
        "in Redis, the primary the sentinels at {} name \"{master}\", followed through \
         failovers{cached}",
        urls.iter()
            .map(|url| without_password(url))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((
        TokenRegistry::redis_sentinel(&urls, master, options).await?,
        label,
    ))
}

#[cfg(not(feature = "sentinel"))]
async fn redis_sentinel_registry(
    _urls: &str,
    _master: &str,
) -> Result<(TokenRegistry, String), Box<dyn Error>> {
    Err(
        "REDIS_SENTINEL_URLS is set, but this example was built without the `sentinel` \
         feature: run it with `cargo run --example server --features sentinel`"
            .into(),
    )
}

/// The store options from the environment: the local cache when `TOKEN_CACHE_TTL` is set,
/// and the words that say so.
fn redis_options() -> Result<(RedisStoreOptions, String), Box<dyn Error>> {
    match std::env::var("TOKEN_CACHE_TTL") {
        Ok(text) => {
            let ttl = parse_duration("TOKEN_CACHE_TTL", &text)?;
            let options =
                RedisStoreOptions::default().with_cache(CacheOptions::default().with_ttl(ttl));
            Ok((options, format!(", cached locally for {ttl:?}")))
        }
        Err(_) => Ok((RedisStoreOptions::default(), String::new())),
    }
}

/// The token routes and the demo routes, at `/V1/…`, `/rest/V1/…` and
/// `/rest/<store_code>/V1/…` as Magento serves them.
pub fn rest_app(demo: &Demo) -> Router {
    let protected = Router::new()
        .route("/V1/customers/me", get(customer_me))
        .route("/V1/admin/me", get(admin_me))
        .route("/V1/products", get(products))
        .route("/V1/orders", get(orders))
        .route_layer(BearerAuthLayer::required(demo.registry.clone()));
    let api = rest::router(demo.service.clone())
        .merge(protected)
        .merge(store_info::routes(demo.registry.clone()));
    let app = Router::new()
        .merge(api.clone())
        .nest("/rest", api.clone())
        .nest("/rest/{store_code}", api);
    // Built with `--features openapi`: the token routes' OpenAPI document.
    #[cfg(feature = "openapi")]
    let app = app.route("/openapi.json", get(openapi_json));
    app
}

/// `GET /openapi.json`: the document of the token routes (`tower_bearer::magento::openapi`),
/// merged into the example's own, as an application would.
#[cfg(feature = "openapi")]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::openapi::{InfoBuilder, OpenApiBuilder};

    let mut api = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("tower-bearer example server")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The token routes, documented at their bare paths (`/V1/…`); they also \
                     answer under `/rest/V1/…` and `/rest/{store_code}/V1/…`.",
                ))
                .build(),
        )
        .build();
    api.merge(tower_bearer::magento::openapi());
    Json(api)
}

/// Binds, prints `welcome` (with `{base}` replaced by the server's URL), serves `app` and
/// `GET /metrics` until Ctrl-C.
pub async fn serve(demo: &Demo, app: Router, welcome: &str) -> Result<(), Box<dyn Error>> {
    let app = app.merge(prometheus::route(prometheus::install()?));
    let listener = tokio::net::TcpListener::bind(&demo.bind).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!(
        "tower-bearer example server on {base} (tokens {store})\n\
         customer token lifetime {customer:?}, admin token lifetime {admin:?}\n\
         idle timeout: customer {customer_idle}, admin {admin_idle}\n\
         token limit per account: customer {customer_limit}, admin {admin_limit}\n\
         last use recorded at most every {interval:?}\n",
        store = demo.store,
        customer = demo.lifetimes.of(TokenKind::Customer).unwrap_or_default(),
        admin = demo.lifetimes.of(TokenKind::Admin).unwrap_or_default(),
        customer_idle = describe_idle(&demo.sessions, TokenKind::Customer),
        admin_idle = describe_idle(&demo.sessions, TokenKind::Admin),
        customer_limit = describe_limit(&demo.sessions, TokenKind::Customer),
        admin_limit = describe_limit(&demo.sessions, TokenKind::Admin),
        interval = demo.sessions.last_used_interval(),
    );
    println!("{}", welcome.replace("{base}", &base));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// The curl commands of the REST flow.
pub fn rest_help(demo: &Demo) -> String {
    let totp_uri = &demo.totp_uri;
    format!(
        r#"Get a customer token:
  TOKEN=$(curl -s -X POST {{base}}/V1/integration/customer/token \
    -H 'Content-Type: application/json' \
    -d '{{"username":"customer@example.com","password":"password"}}' | tr -d '"')
Call a protected route with it:
  curl -s {{base}}/V1/customers/me -H "Authorization: Bearer $TOKEN"
Revoke all of that customer's tokens:
  curl -s -X POST {{base}}/V1/integration/customer/revoke-customer-token -H "Authorization: Bearer $TOKEN"
Admin token (admin / admin123):
  curl -s -X POST {{base}}/V1/integration/admin/token \
    -H 'Content-Type: application/json' -d '{{"username":"admin","password":"admin123"}}'
Admin token with two-factor authentication (admin2fa / admin123 and the 6-digit code of an
authenticator app holding this secret, new at each start; the plain admin route refuses admin2fa):
  {totp_uri}
  OTP=123456   # the code the app shows now (or: oathtool --totp -b <the secret= of the URI>)
  ADMIN_TOKEN=$(curl -s -X POST {{base}}/V1/tfa/provider/google/authenticate \
    -H 'Content-Type: application/json' \
    -d '{{"username":"admin2fa","password":"admin123","otp":"'$OTP'"}}' | tr -d '"')
  curl -s {{base}}/V1/admin/me -H "Authorization: Bearer $ADMIN_TOKEN"   # "second_factor":"totp"
Scopes: admin holds every scope; catalog / admin123 only Magento_Catalog::products:
  CATALOG=$(curl -s -X POST {{base}}/V1/integration/admin/token \
    -H 'Content-Type: application/json' -d '{{"username":"catalog","password":"admin123"}}' | tr -d '"')
  curl -s {{base}}/V1/products -H "Authorization: Bearer $CATALOG"     # 200
  curl -si {{base}}/V1/orders -H "Authorization: Bearer $CATALOG"      # 403, scope="Magento_Sales::sales"
The same routes answer under /rest/V1/... and /rest/<store_code>/V1/...
With --features openapi, the token routes' OpenAPI 3.1 document:
  curl -s {{base}}/openapi.json
Metrics (requests by outcome, store latency, sign-ins, tokens issued and revoked), in
Prometheus' text format:
  curl -s {{base}}/metrics
"#
    )
}

/// Magento's ACL resource of the catalog, the scope `GET /V1/products` requires.
pub const PRODUCTS: &str = "Magento_Catalog::products";
/// Magento's ACL resource of orders, the scope `GET /V1/orders` requires.
pub const SALES: &str = "Magento_Sales::sales";

struct Products;
impl RequiredScopes for Products {
    const SCOPES: &'static [&'static str] = &[PRODUCTS];
}

struct Sales;
impl RequiredScopes for Sales {
    const SCOPES: &'static [&'static str] = &[SALES];
}

async fn products(_: Scoped<Products>) -> Json<Value> {
    Json(json!([
        { "sku": "24-MB01", "name": "Joust Duffle Bag", "price": 34.0 },
        { "sku": "24-MB04", "name": "Strive Shoulder Pack", "price": 32.0 }
    ]))
}

async fn orders(_: Scoped<Sales>) -> Json<Value> {
    Json(json!([
        { "increment_id": "000000001", "status": "pending", "grand_total": 36.39 }
    ]))
}

async fn customer_me(Customer(caller): Customer) -> Json<Value> {
    Json(with_caller(json!({ "email": caller.subject }), &caller))
}

async fn admin_me(Admin(caller): Admin) -> Json<Value> {
    Json(with_caller(json!({ "username": caller.subject }), &caller))
}

/// `body` with the caller's fields added.
fn with_caller(mut body: Value, caller: &Caller) -> Value {
    if let (Some(fields), Ok(Value::Object(caller))) =
        (body.as_object_mut(), serde_json::to_value(caller))
    {
        fields.extend(caller);
    }
    body
}

fn lifetimes_from_env() -> Result<Lifetimes, Box<dyn Error>> {
    let mut lifetimes = Lifetimes::default();
    for (variable, kind) in [
        ("CUSTOMER_TOKEN_LIFETIME", TokenKind::Customer),
        ("ADMIN_TOKEN_LIFETIME", TokenKind::Admin),
    ] {
        if let Ok(text) = std::env::var(variable) {
            lifetimes = lifetimes.with(kind, parse_duration(variable, &text)?)?;
        }
    }
    Ok(lifetimes)
}

fn session_rules_from_env() -> Result<SessionRules, Box<dyn Error>> {
    let mut rules = SessionRules::default();
    if let Ok(text) = std::env::var("TOKEN_LAST_USED_INTERVAL") {
        rules =
            rules.with_last_used_interval(parse_duration("TOKEN_LAST_USED_INTERVAL", &text)?)?;
    }
    let on_limit = match std::env::var("TOKEN_LIMIT_ACTION").as_deref() {
        Err(_) | Ok("revoke-oldest") => OnLimit::RevokeOldest,
        Ok("refuse") => OnLimit::Refuse,
        Ok(other) => {
            return Err(
                format!("TOKEN_LIMIT_ACTION={other:?}: use revoke-oldest or refuse").into(),
            );
        }
    };
    for (idle_variable, limit_variable, kind) in [
        (
            "CUSTOMER_TOKEN_IDLE",
            "CUSTOMER_TOKEN_LIMIT",
            TokenKind::Customer,
        ),
        ("ADMIN_TOKEN_IDLE", "ADMIN_TOKEN_LIMIT", TokenKind::Admin),
    ] {
        if let Ok(text) = std::env::var(idle_variable) {
            rules = rules.with_idle_timeout(kind, parse_duration(idle_variable, &text)?)?;
        }
        if let Ok(text) = std::env::var(limit_variable) {
            let max: usize = text
                .parse()
                .ok()
                .filter(|max| (1..=MAX_TOKENS_PER_SUBJECT).contains(max))
                .ok_or_else(|| {
                    format!(
                        "{limit_variable}={text:?}: a number from 1 to {MAX_TOKENS_PER_SUBJECT} is required"
                    )
                })?;
            rules = rules.with_limit(kind, SubjectLimit::new(max, on_limit));
        }
    }
    Ok(rules)
}

fn describe_idle(rules: &SessionRules, kind: TokenKind) -> String {
    rules
        .idle_timeout(kind)
        .map_or_else(|| "off".to_owned(), |idle| format!("{idle:?}"))
}

fn describe_limit(rules: &SessionRules, kind: TokenKind) -> String {
    match rules.limit(kind) {
        None => "none".to_owned(),
        Some(limit) if limit.on_limit() == OnLimit::Refuse => {
            format!("{} (refusing more)", limit.max())
        }
        Some(limit) => format!("{} (revoking the oldest)", limit.max()),
    }
}

/// A human duration (`30m`, `90s`, `4h`) from an environment variable, with a clear error.
pub fn parse_duration(variable: &str, text: &str) -> Result<Duration, Box<dyn Error>> {
    humantime::parse_duration(text)
        .map_err(|error| format!("{variable}={text:?}: {error} (try e.g. 30m, 90s, 4h)").into())
}
