//! The benchmark server: one trivial `GET /` handler behind the authorization of `--mode`.
//!
//! ```sh
//! bench-server --mode bearer-redis --redis-url redis://127.0.0.1:6379/ --ready-file /tmp/ready
//! ```
//!
//! Once listening it prints (and writes to `--ready-file`, atomically) two lines:
//! `addr <ip:port>` and `header <the header a client must send>` (empty for `none`), so a
//! load generator can pass the credential to wrk with `-H`.
//!
//! With `--tokens N` (bearer modes), it first issues N more live customer tokens through
//! `TokenRegistry::issue`, `--tokens-per-subject K` to each `subject{i}@example.com`, so
//! the load runs against a store that holds them; progress goes to stderr.

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bench::Mode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_bearer::magento::rest;
use tower_bearer::registry::{IssueRequest, SessionRules};
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};
use tower_bearer::store::{CacheOptions, RedisStoreOptions};
use tower_bearer::token::{Scopes, Token};
use tower_bearer::{BearerAuthLayer, SignIn, TokenKind, TokenRegistry};
use tower_sessions::session::{Id, Record};
use tower_sessions::{Session, SessionManagerLayer, SessionStore};
use tower_sessions_redis_store::RedisStore as SessionRedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config as FredConfig, Pool};

const USAGE: &str = "\
usage: bench-server --mode MODE [--bind ADDR] [--redis-url URL] [--threads N]
                    [--ready-file PATH] [--with-login-routes] [--login-customers N]
                    [--tokens N] [--tokens-per-subject K]

MODE: none | static | jwt | sessions | bearer-memory | bearer-memory-scoped | bearer-redis
      | bearer-redis-idle | bearer-redis-cached | redis-get
  --bind ADDR           listen address (default 127.0.0.1:0, a free port)
  --redis-url URL       Redis for sessions, bearer-redis*, redis-get (default redis://127.0.0.1:6379/)
  --threads N           tokio worker threads (default 1)
  --ready-file PATH     also write `addr …` and `header …` there once listening
  --with-login-routes   merge tower-bearer's token routes (POST /V1/integration/customer/token)
  --login-customers N   customers seeded for the token routes: customer0..N-1@example.com,
                        password `password` (default 8)
  --tokens N            bearer modes: issue N more live customer tokens before serving, to
                        subject0..@example.com (default 0); progress on stderr
  --tokens-per-subject K
                        tokens per subject of those (default 1): subject{i / K}@example.com";

/// The scope the `bearer-memory-scoped` route requires (and its token holds).
const SCOPE: &str = "Magento_Catalog::products";

/// The subject every credential stands for.
const SUBJECT: &str = "customer@example.com";

/// The idle timeout of `bearer-redis-idle`'s tokens, as a shop would set it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

struct Options {
    mode: Mode,
    bind: SocketAddr,
    redis_url: String,
    threads: usize,
    ready_file: Option<String>,
    with_login_routes: bool,
    login_customers: usize,
    tokens: u64,
    tokens_per_subject: u64,
}

fn parse_options() -> Result<Options, String> {
    let mut mode = None;
    let mut options = Options {
        mode: Mode::None,
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        redis_url: "redis://127.0.0.1:6379/".to_owned(),
        threads: 1,
        ready_file: None,
        with_login_routes: false,
        login_customers: 8,
        tokens: 0,
        tokens_per_subject: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--mode" => mode = Some(value()?.parse::<Mode>()?),
            "--bind" => {
                let text = value()?;
                options.bind = text.parse().map_err(|e| format!("--bind {text}: {e}"))?;
            }
            "--redis-url" => options.redis_url = value()?,
            "--threads" => {
                let text = value()?;
                options.threads = text
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--threads {text}: expected a positive integer"))?;
            }
            "--ready-file" => options.ready_file = Some(value()?),
            "--with-login-routes" => options.with_login_routes = true,
            "--login-customers" => {
                let text = value()?;
                options.login_customers =
                    text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--login-customers {text}: expected a positive integer")
                    })?;
            }
            "--tokens" => {
                let text = value()?;
                options.tokens = text
                    .parse()
                    .map_err(|_| format!("--tokens {text}: expected a number"))?;
            }
            "--tokens-per-subject" => {
                let text = value()?;
                options.tokens_per_subject =
                    text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--tokens-per-subject {text}: expected a positive integer")
                    })?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    options.mode = mode.ok_or_else(|| format!("--mode is required\n\n{USAGE}"))?;
    Ok(options)
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(options)),
        Err(error) => Err(error.into()),
    };
    if let Err(error) = result {
        eprintln!("bench-server: {error}");
        std::process::exit(1);
    }
}

async fn run(options: Options) -> Result<(), Box<dyn Error>> {
    let (protected, header, registry) = protected_app(&options).await?;
    if options.tokens > 0 {
        let registry = registry
            .as_ref()
            .ok_or_else(|| format!("--tokens: mode {} has no token registry", options.mode))?;
        bench::fill::issue_many(registry, options.tokens, options.tokens_per_subject, true).await?;
    }
    let mut app = protected;
    if options.with_login_routes {
        let registry = registry.unwrap_or_else(TokenRegistry::memory);
        let directory = MemoryDirectory::new();
        for index in 0..options.login_customers {
            let email = format!("customer{index}@example.com");
            directory.add_customer(&email, "password", RemoteAssistance::Denied)?;
        }
        app = app.merge(rest::router(SignIn::new(registry, directory)));
    }

    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    let address = listener.local_addr()?;
    let ready = format!("addr {address}\nheader {header}\n");
    print!("{ready}");
    if let Some(path) = &options.ready_file {
        // Write then rename, so a reader never sees half the file.
        let partial = format!("{path}.partial");
        std::fs::write(&partial, &ready)?;
        std::fs::rename(&partial, path)?;
    }
    axum::serve(listener, app).await?;
    Ok(())
}

async fn hello() -> &'static str {
    "Hello, World!"
}

/// The `GET /` router of a mode, the header a client must send, and the token registry
/// when the mode has one.
async fn protected_app(
    options: &Options,
) -> Result<(Router, String, Option<TokenRegistry>), Box<dyn Error>> {
    let routes = Router::new().route("/", get(hello));
    Ok(match options.mode {
        Mode::None => (routes, String::new(), None),
        Mode::Static => {
            let token = Token::generate()?;
            let expected: Arc<[u8]> = format!("Bearer {}", token.expose()).into_bytes().into();
            let header = format!("Authorization: Bearer {}", token.expose());
            (
                routes.route_layer(from_fn_with_state(expected, static_check)),
                header,
                None,
            )
        }
        Mode::Jwt => {
            let secret = Token::generate()?;
            let claims = Claims {
                sub: SUBJECT.to_owned(),
                exp: unix_now() + 24 * 3600,
            };
            let jwt = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.expose().as_bytes()),
            )?;
            let keys = Arc::new(JwtKeys {
                decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
                validation: Validation::new(Algorithm::HS256),
            });
            (
                routes.route_layer(from_fn_with_state(keys, jwt_check)),
                format!("Authorization: Bearer {jwt}"),
                None,
            )
        }
        Mode::Sessions => {
            // As the store's README sets it up: a fred pool of 6 connections. No rolling
            // expiry, so a request costs one GET and no write: the peer's cheapest setup.
            let pool = Pool::new(
                FredConfig::from_url(&options.redis_url)?,
                None,
                None,
                None,
                6,
            )?;
            pool.init().await?;
            let store = SessionRedisStore::new(pool);
            let mut record = Record {
                id: Id::default(),
                data: HashMap::from([("user".to_owned(), serde_json::json!(SUBJECT))]),
                expiry_date: time::OffsetDateTime::now_utc() + time::Duration::days(1),
            };
            store.create(&mut record).await?;
            let layer = SessionManagerLayer::new(store).with_secure(false);
            (
                routes
                    .route_layer(from_fn(session_check))
                    .route_layer(layer),
                format!("Cookie: id={}", record.id),
                None,
            )
        }
        Mode::BearerMemory => {
            let registry = TokenRegistry::memory();
            let issued = registry.issue(TokenKind::Customer, SUBJECT).await?;
            (
                routes.route_layer(BearerAuthLayer::required(registry.clone())),
                format!("Authorization: Bearer {}", issued.token.expose()),
                Some(registry),
            )
        }
        Mode::BearerMemoryScoped => {
            let registry = TokenRegistry::memory();
            let scopes = Scopes::new([SCOPE])?;
            let request = IssueRequest::new(TokenKind::Admin, SUBJECT).with_scopes(scopes.clone());
            let issued = registry.issue_request(request).await?;
            (
                routes.route_layer(BearerAuthLayer::required(registry.clone()).with_scopes(scopes)),
                format!("Authorization: Bearer {}", issued.token.expose()),
                Some(registry),
            )
        }
        Mode::BearerRedis => {
            let registry = TokenRegistry::redis(&options.redis_url).await?;
            let issued = registry.issue(TokenKind::Customer, SUBJECT).await?;
            (
                routes.route_layer(BearerAuthLayer::required(registry.clone())),
                format!("Authorization: Bearer {}", issued.token.expose()),
                Some(registry),
            )
        }
        Mode::BearerRedisIdle => {
            // Both kinds, whichever the bench issues: a resolve must still be one GET, with
            // the use (and the idle deadline) recorded by one script call per interval.
            let rules = SessionRules::default()
                .with_idle_timeout(TokenKind::Customer, IDLE_TIMEOUT)?
                .with_idle_timeout(TokenKind::Admin, IDLE_TIMEOUT)?;
            let registry = TokenRegistry::redis(&options.redis_url)
                .await?
                .with_session_rules(rules);
            let issued = registry.issue(TokenKind::Customer, SUBJECT).await?;
            (
                routes.route_layer(BearerAuthLayer::required(registry.clone())),
                format!("Authorization: Bearer {}", issued.token.expose()),
                Some(registry),
            )
        }
        Mode::BearerRedisCache => {
            let store_options = RedisStoreOptions::default().with_cache(CacheOptions::default());
            let registry = TokenRegistry::redis_with(&options.redis_url, store_options).await?;
            let issued = registry.issue(TokenKind::Customer, SUBJECT).await?;
            (
                routes.route_layer(BearerAuthLayer::required(registry.clone())),
                format!("Authorization: Bearer {}", issued.token.expose()),
                Some(registry),
            )
        }
        Mode::RedisGet => {
            let client = redis::Client::open(options.redis_url.as_str())?;
            let mut connection = ConnectionManager::new(client).await?;
            let token = Token::generate()?;
            // A record of the size tower-bearer stores, so both modes move the same bytes.
            let record = serde_json::json!({
                "k": "customer", "s": SUBJECT, "i": unix_now() * 1000, "e": (unix_now() + 3600) * 1000,
            });
            let () = connection
                .set_ex(
                    floor_key(token.expose()),
                    record.to_string(),
                    Duration::from_secs(24 * 3600).as_secs(),
                )
                .await?;
            (
                routes.route_layer(from_fn_with_state(connection, redis_get_check)),
                format!("Authorization: Bearer {}", token.expose()),
                None,
            )
        }
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn unauthorized() -> Response {
    StatusCode::UNAUTHORIZED.into_response()
}

/// `static`: a constant-time comparison of the whole header with one fixed value.
async fn static_check(State(expected): State<Arc<[u8]>>, request: Request, next: Next) -> Response {
    let valid = request
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|value| bool::from(value.as_bytes().ct_eq(&expected)));
    if valid {
        next.run(request).await
    } else {
        unauthorized()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

struct JwtKeys {
    decoding: DecodingKey,
    validation: Validation,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// `jwt`: stateless HS256 validation (signature and `exp`); the claims go to the handler.
async fn jwt_check(State(keys): State<Arc<JwtKeys>>, mut request: Request, next: Next) -> Response {
    let claims = bearer(request.headers())
        .and_then(|jwt| jsonwebtoken::decode::<Claims>(jwt, &keys.decoding, &keys.validation).ok());
    match claims {
        Some(data) => {
            request.extensions_mut().insert(data.claims);
            next.run(request).await
        }
        None => unauthorized(),
    }
}

/// `sessions`: the session (looked up in Redis by its cookie) must name a user.
async fn session_check(session: Session, mut request: Request, next: Next) -> Response {
    match session.get::<String>("user").await {
        Ok(Some(user)) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Ok(None) => unauthorized(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn floor_key(token: &str) -> Vec<u8> {
    // The 32 raw bytes of the digest, as tower-bearer's keys: the floor moves no more bytes.
    let mut key = b"floor:t:".to_vec();
    key.extend_from_slice(&Sha256::digest(token.as_bytes()));
    key
}

async fn redis_get_check(
    State(connection): State<ConnectionManager>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(request.headers()) else {
        return unauthorized();
    };
    let key = floor_key(token);
    let mut connection = connection.clone();
    match connection.get::<_, Option<Vec<u8>>>(key).await {
        Ok(Some(_)) => next.run(request).await,
        Ok(None) => unauthorized(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
