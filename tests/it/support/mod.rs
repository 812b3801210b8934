//! Test fixtures and helpers, each written once: a Redis, a Redis proxy and a Redis Cluster
//! of the tests' own, facts of the stores' keys, serving and calling an app, waiting for
//! the background, and the suite macro that runs one suite against every store.

#[cfg(feature = "cluster")]
mod cluster;
mod http;
mod redis;
#[cfg(feature = "sentinel")]
mod sentinel;
mod store;
mod suite;
mod wait;

#[cfg(feature = "cluster")]
pub use self::cluster::{RedisCluster, TestCluster};
pub use self::http::{Answer, assert_unavailable, get_me, get_me_until, serve, spawn_server};
pub use self::redis::{RedisProxy, RedisServer, TestRedis, set_default_user_acl};
#[cfg(feature = "sentinel")]
pub use self::sentinel::{MASTER, SentinelSetup};
pub use self::store::{lockout_key, sha256_hex, short_lifetimes};
pub use self::suite::Make;
pub(crate) use self::suite::store_suite;
pub use self::wait::{time_until_refused, wait_until};

/// Call before capturing `tracing` output with a thread-local subscriber
/// (`tracing::subscriber::set_default`). Tests share one process under `cargo test`, and a
/// callsite first reached on a thread without a subscriber may cache "never interested", so
/// a thread-local subscriber installed meanwhile on another thread can miss its events. A
/// global subscriber interested in everything (a bare registry, which prints nothing)
/// keeps every callsite's interest open; the thread-local one still receives the events.
pub fn keep_tracing_interest_open() {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
}
