//! The local token cache of the Redis store: two registries on one Redis stand for two
//! instances of an app.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tower_bearer::store::{CacheOptions, RedisStore};
use tower_bearer::token::{Lifetimes, Token};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::support::{RedisProxy, TestRedis, time_until_refused, wait_until};

/// How often the store pings its revocation feed (the crate's `PING_EVERY`): a feed that
/// stops answering must be noticed within about twice this.
const PING_EVERY: Duration = Duration::from_secs(1);

struct Instance {
    store: RedisStore,
    registry: TokenRegistry,
}

async fn instance(redis: &TestRedis, ttl: Duration) -> Instance {
    instance_through(redis, &redis.url, ttl).await
}

/// An instance of the app on `redis`, reached at `url` (e.g. a [`RedisProxy`]'s).
async fn instance_through(redis: &TestRedis, url: &str, ttl: Duration) -> Instance {
    let options = redis
        .options()
        .with_cache(CacheOptions::default().with_ttl(ttl));
    let store = RedisStore::connect_with(url, options).await.unwrap();
    wait_until(
        Duration::from_secs(5),
        "the revocation feed is subscribed",
        || store.cache_stats().unwrap().live,
    )
    .await;
    Instance {
        registry: TokenRegistry::new(store.clone()),
        store,
    }
}

impl Instance {
    async fn accepts(&self, token: &Token) -> bool {
        self.registry
            .resolve(token.expose())
            .await
            .unwrap()
            .is_some()
    }
}

async fn delete_behind_the_caches_back(redis: &TestRedis, token: &Token) {
    let key = redis.token_key(&token.hash());
    let mut inspect = redis.inspector().await;
    let deleted: u64 = inspect.del(&key).await.unwrap();
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn a_cached_token_is_served_without_asking_redis() {
    let redis = TestRedis::start();
    let b = instance(&redis, Duration::from_secs(30)).await;
    let issued = b.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(b.accepts(&issued.token).await);
    assert_eq!(b.store.cache_stats().unwrap().entries, 1);

    // Redis no longer has it, and no revocation was announced: the cache still answers.
    delete_behind_the_caches_back(&redis, &issued.token).await;
    let cached = b.registry.resolve(issued.token.expose()).await.unwrap();
    assert_eq!(cached, Some(issued.caller.clone()));
    // A read that records no use (an introspection's) is answered by the cache too.
    let inspected = b.registry.inspect(issued.token.expose()).await.unwrap();
    assert_eq!(inspected, Some(issued.caller));
}

#[tokio::test]
async fn revoke_on_one_instance_is_refused_by_the_other_within_100_ms() {
    let redis = TestRedis::start();
    let a = instance(&redis, Duration::from_secs(30)).await;
    let b = instance(&redis, Duration::from_secs(30)).await;
    let issued = a.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let kept = a.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    for instance in [&a, &b] {
        for token in [&issued.token, &kept.token] {
            assert!(instance.accepts(token).await);
        }
    }

    assert_eq!(
        b.store.cache_stats().unwrap().entries,
        2,
        "both are cached by B"
    );

    assert!(a.registry.revoke(issued.token.expose()).await.unwrap());
    let took = time_until_refused(&b.registry, &issued.token, Duration::from_millis(100)).await;
    eprintln!("revoke reached the other instance in {took:?}");
    assert!(
        b.accepts(&kept.token).await,
        "only the revoked token is evicted"
    );
}

#[tokio::test]
async fn revoke_all_on_one_instance_is_refused_by_the_other_within_100_ms() {
    let redis = TestRedis::start();
    let a = instance(&redis, Duration::from_secs(30)).await;
    let b = instance(&redis, Duration::from_secs(30)).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let issued = a.registry.issue(TokenKind::Customer, "ada").await.unwrap();
        assert!(b.accepts(&issued.token).await);
        tokens.push(issued.token);
    }
    let bob = a.registry.issue(TokenKind::Customer, "bob").await.unwrap();
    assert!(b.accepts(&bob.token).await);
    assert_eq!(
        b.store.cache_stats().unwrap().entries,
        4,
        "all are cached by B"
    );

    assert_eq!(
        a.registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        3
    );
    for token in &tokens {
        time_until_refused(&b.registry, token, Duration::from_millis(100)).await;
    }
    assert!(b.accepts(&bob.token).await);
}

/// The revoking instance evicts its own entries at once: it does not wait for its own
/// announcement to come back on the feed, which may be late or lost.
#[tokio::test]
async fn the_revoking_instance_refuses_at_once_though_its_own_announcement_is_lost() {
    let redis = TestRedis::start();
    let proxy = RedisProxy::start(&redis.url).await;
    let a = instance_through(&redis, &proxy.url, Duration::from_secs(30)).await;
    let ada = a.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let mut bobs = Vec::new();
    for _ in 0..2 {
        bobs.push(a.registry.issue(TokenKind::Customer, "bob").await.unwrap());
    }
    for issued in bobs.iter().chain([&ada]) {
        assert!(a.accepts(&issued.token).await);
    }
    assert_eq!(a.store.cache_stats().unwrap().entries, 3, "all are cached");

    // Nothing comes in on the feed from now on. Its pings notice that after a ping period
    // at the earliest, long after the revocations below.
    proxy.black_hole_subscribers();
    assert!(a.registry.revoke(ada.token.expose()).await.unwrap());
    assert_eq!(
        a.registry.resolve(ada.token.expose()).await.unwrap(),
        None,
        "revoke: served from the revoking instance's own cache"
    );
    assert_eq!(
        a.registry
            .revoke_all(TokenKind::Customer, "bob")
            .await
            .unwrap(),
        2
    );
    for issued in &bobs {
        assert_eq!(
            a.registry.resolve(issued.token.expose()).await.unwrap(),
            None,
            "revoke-all: served from the revoking instance's own cache"
        );
    }
    assert!(
        a.store.cache_stats().unwrap().live,
        "the cache was in use throughout (the lost feed not yet noticed)"
    );
}

/// A feed that hangs (its connection open, nothing coming back) while Redis itself still
/// answers is noticed by its pings: within about two ping periods the cache is bypassed.
#[tokio::test]
async fn a_hung_revocation_feed_is_noticed_by_its_pings_and_the_cache_bypassed() {
    let redis = TestRedis::start();
    let proxy = RedisProxy::start(&redis.url).await;
    let b = instance_through(&redis, &proxy.url, Duration::from_secs(30)).await;
    let issued = b.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(b.accepts(&issued.token).await);
    delete_behind_the_caches_back(&redis, &issued.token).await;
    assert!(
        b.accepts(&issued.token).await,
        "the cache serves the deleted token while its feed is healthy"
    );

    proxy.black_hole_subscribers();
    let hung = Instant::now();
    wait_until(
        PING_EVERY * 2 + Duration::from_millis(500),
        "the hung feed is noticed",
        || !b.store.cache_stats().unwrap().live,
    )
    .await;
    eprintln!("a hung feed was noticed after {:?}", hung.elapsed());
    assert_eq!(
        b.registry.resolve(issued.token.expose()).await.unwrap(),
        None,
        "the token deleted behind the cache's back is refused once the feed is known dead"
    );

    // Redis itself answers all along; the cache stays bypassed while the feed is hung.
    let next = b.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(b.accepts(&next.token).await);
    delete_behind_the_caches_back(&redis, &next.token).await;
    assert!(
        !b.accepts(&next.token).await,
        "served from a bypassed cache"
    );
    assert!(!b.store.cache_stats().unwrap().live);

    // And once the feed answers again, the cache is back in use.
    proxy.heal();
    wait_until(
        Duration::from_secs(5),
        "the feed is subscribed again",
        || b.store.cache_stats().unwrap().live,
    )
    .await;
}

#[tokio::test]
async fn staleness_never_exceeds_the_cache_ttl_even_when_the_message_is_lost() {
    let redis = TestRedis::start();
    let b = instance(&redis, Duration::from_secs(1)).await;
    let issued = b.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(b.accepts(&issued.token).await);
    let cached_at = Instant::now();

    // A deletion nobody announces stands for a lost revocation message.
    delete_behind_the_caches_back(&redis, &issued.token).await;
    time_until_refused(&b.registry, &issued.token, Duration::from_millis(1500)).await;
    assert!(
        cached_at.elapsed() <= Duration::from_millis(1500),
        "served past its TTL"
    );
}

#[tokio::test]
async fn a_killed_subscription_empties_the_cache_and_falls_back_to_redis() {
    let redis = TestRedis::start();
    let proxy = RedisProxy::start(&redis.url).await;
    let b = instance_through(&redis, &proxy.url, Duration::from_secs(30)).await;
    let issued = b.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(b.accepts(&issued.token).await);
    delete_behind_the_caches_back(&redis, &issued.token).await;
    let before = b.store.cache_stats().unwrap().subscriptions;

    // Redis drops this instance's subscriber connection, and only that one: the server may
    // be shared with other tests (REDIS_URL).
    let mut inspect = redis.inspector().await;
    let mut killed = 0;
    for address in proxy.subscriber_addresses() {
        killed += redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ADDR")
            .arg(address.to_string())
            .arg("TYPE")
            .arg("pubsub")
            .query_async::<u64>(&mut inspect)
            .await
            .unwrap();
    }
    assert_eq!(killed, 1, "the subscription was killed");

    // Whatever the instance may have missed, it does not serve the revoked token again:
    // the cache is emptied when the loss is noticed, and refilled only from Redis.
    wait_until(Duration::from_secs(5), "the feed is resubscribed", || {
        b.store.cache_stats().unwrap().subscriptions > before
    })
    .await;
    assert_eq!(
        b.registry.resolve(issued.token.expose()).await.unwrap(),
        None
    );

    // And revocations flow again after the resubscription.
    let a = instance(&redis, Duration::from_secs(30)).await;
    let next = a.registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(b.accepts(&next.token).await);
    a.registry.revoke(next.token.expose()).await.unwrap();
    time_until_refused(&b.registry, &next.token, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn token_expiry_is_honoured_exactly_when_cached() {
    let redis = TestRedis::start();
    let b = instance(&redis, Duration::from_secs(30)).await;
    let lifetimes = Lifetimes::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    let registry = b.registry.clone().with_lifetimes(lifetimes);
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(
        registry
            .resolve(issued.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    let until_expiry = (issued.caller.expires_at.expect("an expiry") - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until_expiry + Duration::from_millis(20)).await;
    // The cache keeps the entry for its TTL: the registry's check of every answer is what
    // refuses the expired token (see `finish_resolve`).
    assert_eq!(
        b.store.cache_stats().unwrap().entries,
        1,
        "still cached past its expiry"
    );
    assert_eq!(registry.resolve(issued.token.expose()).await.unwrap(), None);
}

#[tokio::test]
async fn unknown_tokens_are_not_cached() {
    let redis = TestRedis::start();
    let b = instance(&redis, Duration::from_secs(30)).await;
    for _ in 0..200 {
        let unknown = Token::generate().unwrap();
        assert_eq!(b.registry.resolve(unknown.expose()).await.unwrap(), None);
    }
    assert_eq!(b.store.cache_stats().unwrap().entries, 0);
}

/// A flood of valid tokens past `max_entries` leaves the cache at its bound, keeps the tokens
/// it already held cached, and every token still resolves (the uncached ones in Redis).
#[tokio::test]
async fn the_cache_holds_at_most_its_bound_and_keeps_what_it_holds() {
    let redis = TestRedis::start();
    let options = redis.options().with_cache(
        CacheOptions::default()
            .with_ttl(Duration::from_secs(30))
            .with_max_entries(32),
    );
    let store = RedisStore::connect_with(&redis.url, options).await.unwrap();
    wait_until(
        Duration::from_secs(5),
        "the revocation feed is subscribed",
        || store.cache_stats().unwrap().live,
    )
    .await;
    let registry = TokenRegistry::new(store.clone());
    let hot = registry.issue(TokenKind::Customer, "hot").await.unwrap();
    assert!(
        registry
            .resolve(hot.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    for n in 0..500 {
        let issued = registry
            .issue(TokenKind::Customer, &format!("flood{n}"))
            .await
            .unwrap();
        assert!(
            registry
                .resolve(issued.token.expose())
                .await
                .unwrap()
                .is_some()
        );
    }
    let entries = store.cache_stats().unwrap().entries;
    assert!((1..=32).contains(&entries), "{entries} entries cached");

    // The hot token is still served from the cache: deleted behind its back, it resolves.
    delete_behind_the_caches_back(&redis, &hot.token).await;
    assert!(
        registry
            .resolve(hot.token.expose())
            .await
            .unwrap()
            .is_some()
    );
}
