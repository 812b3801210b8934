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
