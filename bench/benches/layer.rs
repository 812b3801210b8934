//! The layer alone: one `GET /` through an axum `Router` called in-process (no socket, no
//! HTTP parsing), behind each check the load test compares. What a mode costs beyond `none`
//! here is what it adds to every request. The Redis modes (`bearer-redis` and its floor
//! `redis-get`, `bearer-redis-cached`) run against a `redis-server` the bench starts on a
//! free port (or `REDIS_URL`); their time includes the round trip.
//!
//! ```sh
//! cargo bench -p bench --bench layer
//! valgrind --tool=callgrind target/release/deps/layer-* --bench --profile-time 5 layer/bearer-memory
//! ```

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bench::redis_server::RedisServer;
use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use subtle::ConstantTimeEq;
use tower::{Service, ServiceExt};
use tower_bearer::store::{CacheOptions, RedisStoreOptions};
use tower_bearer::token::{Token, TokenHash};
use tower_bearer::{BearerAuthLayer, TokenKind, TokenRegistry};

async fn hello() -> &'static str {
    "Hello, World!"
}

async fn static_check(State(expected): State<Arc<[u8]>>, request: Request, next: Next) -> Response {
    let valid = request
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|value| bool::from(value.as_bytes().ct_eq(&expected)));
    if valid {
        next.run(request).await
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn redis_get_check(
    State(mut connection): State<ConnectionManager>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let mut key = b"floor:t:".to_vec();
    key.extend_from_slice(TokenHash::of(token).as_bytes());
    match connection.get::<_, Option<Vec<u8>>>(key).await {
        Ok(Some(_)) => next.run(request).await,
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn request(header: &HeaderValue) -> Request {
    let mut request = Request::new(Body::empty());
    request.headers_mut().insert(AUTHORIZATION, header.clone());
    request
}

fn bench_router(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    router: Router,
    header: &str,
) {
    let header = HeaderValue::from_str(header).expect("a valid header value");
    let mut service = router.into_service::<Body>();
    let response = runtime.block_on(async {
        let service = service.ready().await?;
        service.call(request(&header)).await
    });
    assert_eq!(
        response.map(|r| r.status()).ok(),
        Some(StatusCode::OK),
        "{name} must answer 200"
    );
    c.bench_function(&format!("layer/{name}"), |b| {
        b.to_async(runtime).iter(|| {
            let future = service.call(request(black_box(&header)));
            async move {
                let response: Result<Response, Infallible> = future.await;
                response
            }
        })
    });
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let routes = || Router::new().route("/", get(hello));

    bench_router(c, &runtime, "none", routes(), "none");

    let token = Token::generate().expect("the OS CSPRNG");
    let header = format!("Bearer {}", token.expose());
    let expected: Arc<[u8]> = header.clone().into_bytes().into();
    bench_router(
        c,
        &runtime,
        "static",
        routes().route_layer(from_fn_with_state(expected, static_check)),
        &header,
    );

    let memory = TokenRegistry::memory();
    let issued = runtime
        .block_on(memory.issue(TokenKind::Customer, "customer@example.com"))
        .expect("issue in memory");
    let header = format!("Bearer {}", issued.token.expose());
    bench_router(
        c,
        &runtime,
        "bearer-memory",
        routes().route_layer(BearerAuthLayer::required(memory)),
        &header,
    );

    let (_server, url) = match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let server =
                RedisServer::start(None).expect("redis-server (apt-get install redis-server)");
            let url = server.url();
            (Some(server), url)
        }
    };
    let plain = runtime
        .block_on(TokenRegistry::redis(&url))
        .expect("connect to Redis");
    let issued = runtime
        .block_on(plain.issue(TokenKind::Customer, "customer@example.com"))
        .expect("issue in Redis");
    let header = format!("Bearer {}", issued.token.expose());
    bench_router(
        c,
        &runtime,
        "bearer-redis",
        routes().route_layer(BearerAuthLayer::required(plain)),
        &header,
    );

    // The floor under bearer-redis: SHA-256 of the token and one GET, in a middleware.
    let token = Token::generate().expect("the OS CSPRNG");
    let mut floor_key = b"floor:t:".to_vec();
    floor_key.extend_from_slice(TokenHash::of(token.expose()).as_bytes());
    let connection = runtime
        .block_on(async {
            let client = redis::Client::open(url.as_str())?;
            let mut connection = ConnectionManager::new(client).await?;
            let () = connection.set(&floor_key, r#"{"k":"customer"}"#).await?;
            Ok::<_, redis::RedisError>(connection)
        })
        .expect("a ConnectionManager");
    bench_router(
        c,
        &runtime,
        "redis-get",
        routes().route_layer(from_fn_with_state(connection, redis_get_check)),
        &format!("Bearer {}", token.expose()),
    );

    let cached = runtime
        .block_on(TokenRegistry::redis_with(
            &url,
            RedisStoreOptions::default().with_cache(CacheOptions::default()),
        ))
        .expect("connect to Redis");
    let issued = runtime
        .block_on(cached.issue(TokenKind::Customer, "customer@example.com"))
        .expect("issue in Redis");
    let header = format!("Bearer {}", issued.token.expose());
    bench_router(
        c,
        &runtime,
        "bearer-redis-cached",
        routes().route_layer(BearerAuthLayer::required(cached)),
        &header,
    );
}

criterion_group!(benches, layer);
criterion_main!(benches);
