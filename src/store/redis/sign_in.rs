//! [`SignInStore`] on Redis: lockout counters and one-time claims.

use std::time::Duration;

use super::{RedisStore, millis, timed};
use crate::store::{SignInStore, StoreFuture, bounded};
use crate::telemetry::metrics::Operation;

/// Atomically takes back one counted failure, deleting the counter when it reaches 0 (a
/// plain `DECR` on a counter that expired meanwhile would leave a -1 behind).
const FORGIVE_FAILURE: &str = "local n = redis.call('DECR', KEYS[1]) \
    if n <= 0 then redis.call('DEL', KEYS[1]) end return n";

impl SignInStore for RedisStore {
    fn record_failure(&self, key: String, window: Duration) -> StoreFuture<u64> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.lock_key(&key);
        timed(Operation::RecordFailure, async move {
            let (count,): (u64,) = bounded(
                timeout,
                redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg(&key)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(millis(window))
                    .ignore()
                    .query_async(&mut connection),
            )
            .await?;
            Ok(count)
        })
    }

    fn forgive_failure(&self, key: String) -> StoreFuture<()> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.lock_key(&key);
        timed(Operation::ForgiveFailure, async move {
            bounded(
                timeout,
                redis::cmd("EVAL")
                    .arg(FORGIVE_FAILURE)
                    .arg(1)
                    .arg(key)
                    .query_async::<i64>(&mut connection),
            )
            .await
            .map(drop)
        })
    }

    fn failures(&self, key: String) -> StoreFuture<u64> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.lock_key(&key);
        timed(Operation::Failures, async move {
            let count: Option<u64> = bounded(
                timeout,
                redis::cmd("GET").arg(key).query_async(&mut connection),
            )
            .await?;
            Ok(count.unwrap_or(0))
        })
    }

    fn clear_failures(&self, key: String) -> StoreFuture<()> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.lock_key(&key);
        timed(Operation::ClearFailures, async move {
            bounded(
                timeout,
                redis::cmd("DEL")
                    .arg(key)
                    .query_async::<()>(&mut connection),
            )
            .await
        })
    }

    fn claim_once(&self, key: String, ttl: Duration) -> StoreFuture<bool> {
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.used_key(&key);
        timed(Operation::ClaimOnce, async move {
            // `OK` for the first claim, nil while the key exists.
            let reply: Option<String> = bounded(
                timeout,
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut connection),
            )
            .await?;
            Ok(reply.is_some())
        })
    }
}
