//! The hot pieces of a protected request, one at a time:
//! header parse, token generation, SHA-256, memory resolve, Redis resolve (plain, with the
//! local cache, and the bare `GET` beneath it).
//!
//! ```sh
//! cargo bench -p bench --bench hot_paths
//! REDIS_URL=redis://127.0.0.1:6379/ cargo bench -p bench --bench hot_paths   # an existing Redis
//! ```
//!
//! Without `REDIS_URL` the Redis benches start their own `redis-server` on a free port.

use std::hint::black_box;

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use bench::redis_server::RedisServer;
use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tower_bearer::bearer::bearer_token;
use tower_bearer::store::{CacheOptions, RedisStoreOptions};
use tower_bearer::token::{Token, TokenHash};
use tower_bearer::{TokenKind, TokenRegistry};

fn hot_paths(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let token = Token::generate().expect("the OS CSPRNG");
    let mut group = c.benchmark_group("hot_paths");

    let mut headers = HeaderMap::new();
    let value = format!("Bearer {}", token.expose());
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&value).expect("a token is a valid header value"),
    );
    group.bench_function("header_parse", |b| {
        b.iter(|| bearer_token(black_box(&headers)))
    });

    group.bench_function("token_generate", |b| b.iter(Token::generate));

    group.bench_function("sha256", |b| {
        b.iter(|| TokenHash::of(black_box(token.expose())))
    });

    let memory = TokenRegistry::memory();
    let issued = runtime
        .block_on(memory.issue(TokenKind::Customer, "customer@example.com"))
        .expect("issue in memory");
    let text = issued.token.expose();
    group.bench_function("memory_resolve", |b| {
        b.to_async(&runtime).iter(|| async {
            let caller = memory.resolve(black_box(text)).await;
            assert!(matches!(caller, Ok(Some(_))));
            caller
        })
    });

    // Redis: the URL given, or a redis-server of our own for the length of the bench.
    let (_server, url) = match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => match RedisServer::start(None) {
            Ok(server) => {
                let url = server.url();
                (Some(server), url)
            }
            Err(error) => {
                eprintln!("skipping the Redis benches: {error}");
                group.finish();
                return;
            }
        },
    };
    let redis_registry = runtime
        .block_on(TokenRegistry::redis(&url))
        .expect("connect to Redis");
    let issued = runtime
        .block_on(redis_registry.issue(TokenKind::Customer, "customer@example.com"))
        .expect("issue in Redis");
    let text = issued.token.expose();
    group.bench_function("redis_resolve", |b| {
        b.to_async(&runtime).iter(|| async {
            let caller = redis_registry.resolve(black_box(text)).await;
            assert!(matches!(caller, Ok(Some(_))));
            caller
        })
    });

    // The same with the store's local cache: a hot token never reaches Redis.
    let cached_registry = runtime
        .block_on(TokenRegistry::redis_with(
            &url,
            RedisStoreOptions::default().with_cache(CacheOptions::default()),
        ))
        .expect("connect to Redis");
    let issued_cached = runtime
        .block_on(cached_registry.issue(TokenKind::Customer, "customer@example.com"))
        .expect("issue in Redis");
    let cached_text = issued_cached.token.expose();
    group.bench_function("redis_resolve_cached", |b| {
        b.to_async(&runtime).iter(|| async {
            let caller = cached_registry.resolve(black_box(cached_text)).await;
            assert!(matches!(caller, Ok(Some(_))));
            caller
        })
    });

    // The floor under redis_resolve: one GET of a same-sized value over one
    // ConnectionManager, with no hashing, key building or decoding.
    let connection = runtime
        .block_on(async {
            let client = redis::Client::open(url.as_str())?;
            let mut connection = ConnectionManager::new(client).await?;
            let record = r#"{"k":"customer","s":"customer@example.com","i":1761955200000,"e":1761958800000}"#;
            let () = connection.set("bench:floor", record).await?;
            Ok::<_, redis::RedisError>(connection)
        })
        .expect("a ConnectionManager");
    group.bench_function("redis_get_floor", |b| {
        b.to_async(&runtime).iter(|| {
            let mut connection = connection.clone();
            async move {
                let value: Option<Vec<u8>> = connection.get("bench:floor").await.expect("GET");
                value
            }
        })
    });
    group.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
