//! Waiting for what happens in the background: a condition to hold, a revocation to reach
//! another instance.

use std::time::{Duration, Instant};

use tower_bearer::TokenRegistry;
use tower_bearer::token::Token;

/// Polls `condition` every 5 ms until it holds; fails the test after `limit`, naming `what`.
pub async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `registry` every 2 ms until it refuses `token`; returns how long that took, and
/// fails the test if it is still accepted after `limit`.
pub async fn time_until_refused(
    registry: &TokenRegistry,
    token: &Token,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        if registry.resolve(token.expose()).await.unwrap().is_none() {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "still accepted after {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
