//! The connection of a [`RedisStore`](super::RedisStore): one Redis, a Redis Cluster, or the
//! primary the Redis Sentinels name.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A reconnecting connection to one Redis; or (feature `cluster`) a connection to a Redis
/// Cluster that routes each command to the master of its key's hash slot; or (feature
/// `sentinel`) a connection to the primary the sentinels name, that asks them again after
/// a failover.
///
/// Both are cheap handles to one multiplexed connection (or one per cluster node):
/// cloning one shares it.
///
/// The difference that matters to the store: a pipeline runs on one node. On one Redis a
/// pipeline may touch any keys; on a cluster the client sends the whole pipeline to the
/// node of its first key, and a command of another slot in it fails with `CROSSSLOT`.
/// So the store splits what it pipelines by slot on a cluster (see [`Self::is_cluster`]).
#[derive(Clone)]
pub(crate) enum RedisConnection {
    /// One Redis, over redis-rs's reconnecting [`ConnectionManager`].
    Single(ConnectionManager),
    /// A Redis Cluster, over redis-rs's `cluster_async` connection.
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
    /// The primary named by Redis Sentinels (one Redis, as far as pipelines go).
    #[cfg(feature = "sentinel")]
    Sentinel(super::sentinel::SentinelConnection),
}

impl RedisConnection {
    /// Whether commands of different hash slots must go in separate round trips.
    pub(crate) fn is_cluster(&self) -> bool {
        match self {
            Self::Single(_) => false,
            #[cfg(feature = "cluster")]
            Self::Cluster(_) => true,
            #[cfg(feature = "sentinel")]
            Self::Sentinel(_) => false,
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.req_packed_command(cmd),
            #[cfg(feature = "sentinel")]
            Self::Sentinel(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "sentinel")]
            Self::Sentinel(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.get_db(),
            #[cfg(feature = "sentinel")]
            Self::Sentinel(connection) => connection.get_db(),
        }
    }
}
