//! The layer alone: one `GET /` through an axum `Router` called in-process (no socket, no
//! HTTP parsing), behind each check the load test compares. What a mode costs beyond `none`
//! here is what it adds to every request.
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
use subtle::ConstantTimeEq;
use tower::{Service, ServiceExt};
use tower_bearer::store::{CacheOptions, RedisStoreOptions};
use tower_bearer::token::Token;
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
