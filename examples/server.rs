//! A Magento-compatible token server with two protected routes.
//!
//! ```sh
//! cargo run --example server                                  # in-memory registry
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example server # tokens in Redis
//! ```
//!
//! Settings (environment): `BIND` (default `127.0.0.1:3000`), `REDIS_URL` (default: the
//! in-memory registry), `CUSTOMER_TOKEN_LIFETIME` / `ADMIN_TOKEN_LIFETIME` (e.g. `30m`,
//! `90s`, `4h`; defaults 1h and 4h), `RUST_LOG`.

use std::error::Error;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_bearer::{
    Admin, BearerAuthLayer, Customer, Lifetimes, MemoryDirectory, RemoteAssistance, TokenKind,
    TokenRegistry, TokenService, token_routes,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let lifetimes = lifetimes_from_env()?;
    let (registry, store) = match std::env::var("REDIS_URL") {
        Ok(url) => (TokenRegistry::redis(&url).await?, format!("Redis at {url}")),
        Err(_) => (TokenRegistry::memory(), "in memory".to_owned()),
    };
    let registry = registry.with_lifetimes(lifetimes);

    let directory = MemoryDirectory::new();
    directory.add_customer(
        "customer@example.com",
        "password",
        RemoteAssistance::Allowed,
    )?;
    directory.add_customer("noassist@example.com", "password", RemoteAssistance::Denied)?;
    directory.add_admin("admin", "admin123")?;

    let app = app(TokenService::new(registry.clone(), directory), registry);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let address = listener.local_addr()?;
    print_welcome(&address.to_string(), &store, &lifetimes);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The token routes and the demo routes, at `/V1/…`, `/rest/V1/…` and
/// `/rest/<store_code>/V1/…` as Magento serves them.
fn app(service: TokenService, registry: TokenRegistry) -> Router {
    let demo = Router::new()
        .route("/V1/customers/me", get(customer_me))
        .route("/V1/admin/me", get(admin_me))
        .route_layer(BearerAuthLayer::required(registry));
    let api = token_routes(service).merge(demo);
    Router::new()
        .merge(api.clone())
        .nest("/rest", api.clone())
        .nest("/rest/{store_code}", api)
}

async fn customer_me(Customer(caller): Customer) -> Json<Value> {
    let mut body = json!({ "email": caller.subject });
    merge(&mut body, &caller);
    Json(body)
}

async fn admin_me(Admin(caller): Admin) -> Json<Value> {
    let mut body = json!({ "username": caller.subject });
    merge(&mut body, &caller);
    Json(body)
}

fn merge(body: &mut Value, caller: &tower_bearer::Caller) {
    if let (Some(body), Ok(Value::Object(fields))) =
        (body.as_object_mut(), serde_json::to_value(caller))
    {
        body.extend(fields);
    }
}

fn lifetimes_from_env() -> Result<Lifetimes, Box<dyn Error>> {
    let mut lifetimes = Lifetimes::default();
    for (variable, kind) in [
        ("CUSTOMER_TOKEN_LIFETIME", TokenKind::Customer),
        ("ADMIN_TOKEN_LIFETIME", TokenKind::Admin),
    ] {
        if let Ok(text) = std::env::var(variable) {
            let lifetime: Duration = humantime::parse_duration(&text)
                .map_err(|error| format!("{variable}={text:?}: {error} (try e.g. 30m, 90s, 4h)"))?;
            lifetimes = lifetimes
                .with(kind, lifetime)
                .map_err(|error| format!("{variable}={text:?}: {error}"))?;
        }
    }
    Ok(lifetimes)
}

fn print_welcome(address: &str, store: &str, lifetimes: &Lifetimes) {
    let base = format!("http://{address}");
    println!(
        r#"tower-bearer example server on {base} (tokens {store})
customer token lifetime {customer:?}, admin token lifetime {admin:?}

Get a customer token:
  TOKEN=$(curl -s -X POST {base}/V1/integration/customer/token \
    -H 'Content-Type: application/json' \
    -d '{{"username":"customer@example.com","password":"password"}}' | tr -d '"')
Call a protected route with it:
  curl -s {base}/V1/customers/me -H "Authorization: Bearer $TOKEN"
Revoke all of that customer's tokens:
  curl -s -X POST {base}/V1/integration/customer/revoke-customer-token -H "Authorization: Bearer $TOKEN"
Admin token (admin / admin123):
  curl -s -X POST {base}/V1/integration/admin/token \
    -H 'Content-Type: application/json' -d '{{"username":"admin","password":"admin123"}}'
The same routes answer under /rest/V1/... and /rest/<store_code>/V1/...
"#,
        customer = lifetimes.of(TokenKind::Customer),
        admin = lifetimes.of(TokenKind::Admin),
    );
}
