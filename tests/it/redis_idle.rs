//! Idle timeouts as Redis itself keeps them: the token key's TTL is the idle timeout, a
//! recorded use extends it (never past the absolute expiry), and the local cache never
//! serves a token that idled out.

use std::time::{Duration, Instant};

use chrono::Utc;
use redis::AsyncCommands;
use tower_bearer::registry::SessionRules;
use tower_bearer::store::{CacheOptions, RedisStore};
use tower_bearer::token::{Lifetimes, Token};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::support::{TestRedis, wait_until};

fn token_key(redis: &TestRedis, token: &Token) -> Vec<u8> {
    redis.token_key(&token.hash())
}

#[tokio::test]
async fn the_idle_timeout_is_the_token_keys_ttl_and_a_recorded_use_extends_it() {
    let redis = TestRedis::start();
    // Idle 2 s, a use recorded every 0.5 s (a quarter of it), lifetime 3 s.
    let rules = SessionRules::default()
        .with_last_used_interval(Duration::from_secs(1))
        .unwrap()
        .with_idle_timeout(TokenKind::Customer, Duration::from_secs(2))
        .unwrap();
    let lifetimes = Lifetimes::default()
        .with_customer(Duration::from_secs(3))
        .unwrap();
    let registry = redis
        .registry()
        .await
        .with_lifetimes(lifetimes)
        .with_session_rules(rules);
    let mut inspect = redis.inspector().await;
    let used = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let unused = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let key = token_key(&redis, &used.token);
    let unused_key = token_key(&redis, &unused.token);
    let expires_at = used.caller.expires_at.unwrap();

    let ttl: i64 = inspect.pttl(&key).await.unwrap();
    assert!(
        (1_500..=2_000).contains(&ttl),
        "the key lives for the idle timeout, not the lifetime: PTTL {ttl}"
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    let waned: i64 = inspect.pttl(&key).await.unwrap();
    assert!(waned <= 1_300, "PTTL {waned} after 0.7 s");
    let caller = registry
        .resolve(used.token.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(
        caller.last_used_at > Some(used.caller.issued_at),
        "a use was recorded"
    );
    let extended: i64 = inspect.pttl(&key).await.unwrap();
    assert!(
        (1_800..=2_000).contains(&extended),
        "the recorded use restarted the idle count in Redis: PTTL {extended}"
    );

    // 1.5 s after issue, a use would extend the key to 3.5 s: past the 3 s lifetime.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        registry
            .resolve(used.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    let remaining = (expires_at - Utc::now()).num_milliseconds();
    let capped: i64 = inspect.pttl(&key).await.unwrap();
    assert!(
        0 < capped && capped <= remaining + 1 && capped < 1_800,
        "the key never outlives the token's absolute expiry: PTTL {capped}, {remaining} ms left"
    );
    let used_in_redis: bool = inspect.exists(&key).await.unwrap();
    let unused_in_redis: bool = inspect.exists(&unused_key).await.unwrap();
    assert!(used_in_redis);
    // 2.2 s after issue: the unused token's key has expired in Redis.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let unused_in_redis_later: bool = inspect.exists(&unused_key).await.unwrap();
    assert!(unused_in_redis, "still there at 1.5 s");
    assert!(
        !unused_in_redis_later,
        "Redis dropped the key of the token unused for its idle timeout"
    );
    assert!(
        registry
            .resolve(unused.token.expose())
            .await
            .unwrap()
            .is_none()
    );

    // The used one goes at its absolute expiry.
    let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    let gone: bool = inspect.exists(&key).await.unwrap();
    assert!(
        !gone,
        "Redis dropped the key at the token's absolute expiry"
    );
    assert!(
        registry
            .resolve(used.token.expose())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_local_cache_never_serves_an_idle_expired_token() {
    let redis = TestRedis::start();
    let options = redis
        .options()
        .with_cache(CacheOptions::default().with_ttl(Duration::from_secs(30)));
    let store = RedisStore::connect_with(&redis.url, options).await.unwrap();
    wait_until(
        Duration::from_secs(5),
        "the revocation feed is subscribed",
        || store.cache_stats().unwrap().live,
    )
    .await;
    // Idle 1 s, so a use is recorded every 250 ms; the cache keeps entries for 30 s.
    let rules = SessionRules::default()
        .with_idle_timeout(TokenKind::Customer, Duration::from_secs(1))
        .unwrap();
    let cached = TokenRegistry::new(store.clone()).with_session_rules(rules.clone());
    let uncached = redis.registry().await.with_session_rules(rules);
    let in_use = cached.issue(TokenKind::Customer, "ada").await.unwrap();
    let idle = cached.issue(TokenKind::Customer, "ada").await.unwrap();
    for issued in [&in_use, &idle] {
        assert!(
            cached
                .resolve(issued.token.expose())
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(store.cache_stats().unwrap().entries, 2, "both cached");

    // Used on the caching instance only, every 100 ms for 2 s (twice the idle timeout):
    // the uses reach Redis, though most are answered from the cache.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(
            cached
                .resolve(in_use.token.expose())
                .await
                .unwrap()
                .is_some(),
            "in use"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        uncached
            .resolve(in_use.token.expose())
            .await
            .unwrap()
            .is_some(),
        "the uses answered by the cache were recorded in Redis"
    );

    assert_eq!(
        store.cache_stats().unwrap().entries,
        2,
        "the idle token's entry is still cached"
    );
    assert_eq!(
        cached.resolve(idle.token.expose()).await.unwrap(),
        None,
        "the cache does not serve a token unused for its idle timeout"
    );
    assert_eq!(uncached.resolve(idle.token.expose()).await.unwrap(), None);

    // Now unused on both instances: refused once idle, on the caching one too.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(cached.resolve(in_use.token.expose()).await.unwrap(), None);
    assert_eq!(uncached.resolve(in_use.token.expose()).await.unwrap(), None);
}
