//! How fast a revocation reaches another instance's cache: two registries (instances A and
//! B) over one redis-server, each with the store's local cache
//! (`RedisStoreOptions::default().with_cache(CacheOptions::default())`). For each token:
//! issue on A, resolve it twice on B (so B caches it), then revoke on A and resolve on B
//! until it answers `Ok(None)`.

use std::time::{Duration, Instant};

use serde::Serialize;
use tower_bearer::store::{CacheOptions, RedisStore, RedisStoreOptions};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::Result;
use crate::config::SERVER_CPU;
use crate::redis_server::RedisServer;
use crate::stats::round_to;

/// The target: the 99th percentile from the revoke call to B's `Ok(None)` under this, in ms.
pub const TARGET_P99_MS: f64 = 5.0;

/// How long B may keep answering with the revoked token before the step gives up.
const GIVE_UP: Duration = Duration::from_secs(10);

/// Percentiles of one latency, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// 50th percentile.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The largest.
    pub max_ms: f64,
}

/// The `propagation` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Propagation {
    /// Tokens revoked, one after the other.
    pub tokens: usize,
    /// From just before `A.revoke(token)` to B's first `Ok(None)`.
    pub from_revoke_call: Latency,
    /// From `A.revoke(token)` returning to B's first `Ok(None)` (0 when B already answered
    /// `Ok(None)` on its first resolve after the call returned).
    pub from_revoke_return: Latency,
    /// Median resolves on B per token until `Ok(None)`.
    pub median_polls: f64,
    /// The target on `from_revoke_call.p99_ms`.
    pub target_p99_ms: f64,
    /// Whether `from_revoke_call.p99_ms` < [`TARGET_P99_MS`].
    pub meets_target: bool,
}

/// Measures `tokens` revocations in this process (a 2-worker tokio runtime, unpinned) against
/// a fresh redis-server pinned to the server CPU; prints the result (`started`: the run's
/// start).
///
/// # Errors
/// When redis-server or a registry call fails, a cache's revocation feed is not live within
/// 10 s, or B still resolves a revoked token after 10 s.
pub fn measure(tokens: usize, started: Instant) -> Result<Propagation> {
    let redis = RedisServer::start(Some(SERVER_CPU))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (from_call, from_return, polls) = runtime.block_on(revocations(&redis, tokens))?;
    let from_revoke_call = latency(from_call);
    let result = Propagation {
        tokens,
        meets_target: from_revoke_call.p99_ms < TARGET_P99_MS,
        from_revoke_call,
        from_revoke_return: latency(from_return),
        median_polls: crate::stats::median(&polls),
        target_p99_ms: TARGET_P99_MS,
    };
    println!(
        "[{:>4.0} s] propagation: {tokens} revocations, A's revoke call to B's Ok(None) p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (target p99 < {TARGET_P99_MS} ms); from the call's return p50 {:.3}, p99 {:.3}, max {:.3} ms; {} resolves on B per token",
        started.elapsed().as_secs_f64(),
        result.from_revoke_call.p50_ms,
        result.from_revoke_call.p99_ms,
        result.from_revoke_call.max_ms,
        result.from_revoke_return.p50_ms,
        result.from_revoke_return.p99_ms,
        result.from_revoke_return.max_ms,
        result.median_polls,
    );
    Ok(result)
}

/// A cached registry at `url`, and its store (for [`RedisStore::cache_stats`]).
async fn instance(url: &str) -> Result<(TokenRegistry, RedisStore)> {
    let options = RedisStoreOptions::default().with_cache(CacheOptions::default());
    let store = RedisStore::connect_with(url, options).await?;
    Ok((TokenRegistry::new(store.clone()), store))
}

/// Waits until the store's revocation feed is subscribed (its cache in use).
async fn wait_live(store: &RedisStore) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.cache_stats() {
            Some(stats) if stats.live => return Ok(()),
            None => return Err("the store has no cache".into()),
            Some(_) if Instant::now() > deadline => {
                return Err("the cache's revocation feed is not live after 10 s".into());
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Checks that B answers a token it resolved twice from its cache: ten more resolves must
/// not reach Redis (fewer than ten `GET`s and `EVALSHA`s), else the step would measure Redis,
/// not the cache's eviction.
async fn check_cached(redis: &RedisServer, a: &TokenRegistry, b: &TokenRegistry) -> Result<()> {
    let issued = a.issue(TokenKind::Customer, "probe@example.com").await?;
    let token = issued.token.expose();
    b.resolve(token).await?;
    b.resolve(token).await?;
    let reads = |calls: &std::collections::BTreeMap<String, u64>| {
        calls.get("get").copied().unwrap_or(0) + calls.get("evalsha").copied().unwrap_or(0)
    };
    let before = reads(&redis.command_calls()?);
    for _ in 0..10 {
        if b.resolve(token).await?.is_none() {
            return Err("B does not resolve the probe token A issued".into());
        }
    }
    let grown = reads(&redis.command_calls()?) - before;
    if grown >= 10 {
        return Err(
            format!("B's resolves of a cached token reached Redis ({grown} reads for 10)").into(),
        );
    }
    a.revoke(token).await?;
    Ok(())
}

/// The revocations: per token, ms from the revoke call and from its return to B's
/// `Ok(None)`, and B's resolves until then.
async fn revocations(redis: &RedisServer, tokens: usize) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let url = redis.url();
    let (a, a_store) = instance(&url).await?;
    let (b, b_store) = instance(&url).await?;
    wait_live(&a_store).await?;
    wait_live(&b_store).await?;
    check_cached(redis, &a, &b).await?;
    let mut from_call = Vec::with_capacity(tokens);
    let mut from_return = Vec::with_capacity(tokens);
    let mut polls = Vec::with_capacity(tokens);
    for index in 0..tokens {
        let issued = a
            .issue(TokenKind::Customer, format!("revoked{index}@example.com"))
            .await?;
        let token = issued.token.expose();
        for _ in 0..2 {
            if b.resolve(token).await?.is_none() {
                return Err(format!("B does not resolve token {index} A issued").into());
            }
        }
        let called = Instant::now();
        if !a.revoke(token).await? {
            return Err(format!("A's revoke of token {index} found it not live").into());
        }
        let returned = Instant::now();
        let mut count = 0u32;
        let seen = loop {
            count += 1;
            if b.resolve(token).await?.is_none() {
                break Instant::now();
            }
            if called.elapsed() > GIVE_UP {
                return Err(format!(
                    "B still resolves token {index} {} s after A revoked it",
                    GIVE_UP.as_secs()
                )
                .into());
            }
            // A resolve served from the cache does not yield: let the feed's task run.
            tokio::task::yield_now().await;
        };
        from_call.push(seen.duration_since(called).as_secs_f64() * 1e3);
        from_return.push(seen.saturating_duration_since(returned).as_secs_f64() * 1e3);
        polls.push(f64::from(count));
    }
    Ok((from_call, from_return, polls))
}

/// p50, p99 and max of `values` (nearest rank), rounded to µs.
fn latency(mut values: Vec<f64>) -> Latency {
    values.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        if values.is_empty() {
            return f64::NAN;
        }
        let at = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
        round_to(values[at], 3)
    };
    Latency {
        p50_ms: rank(0.50),
        p99_ms: rank(0.99),
        max_ms: rank(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(
            latency(values),
            Latency {
                p50_ms: 100.0,
                p99_ms: 198.0,
                max_ms: 200.0
            }
        );
        assert!(latency(Vec::new()).p99_ms.is_nan());
    }
}
