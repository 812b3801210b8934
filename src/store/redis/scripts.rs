//! The store's Lua scripts. Each touches only the keys it declares, so it runs on a cluster
//! too, on the node of its keys.
//!
//! A script is run by its SHA-1 (`EVALSHA`); a node that does not know it yet (first use,
//! a restart, a failover) answers `NOSCRIPT`, and the same call is sent once more with the
//! source (`EVAL`), which also teaches that node the script. Never `SCRIPT LOAD`: on a
//! cluster it goes to every master, so one hung master would stall every first resolve.

use std::sync::LazyLock;

use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, ServerErrorKind};

use super::connection::RedisConnection;

/// A Lua script and its SHA-1.
pub(super) struct LuaScript {
    source: &'static str,
    hash: String,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            hash: redis::Script::new(source).get_hash().to_owned(),
        }
    }

    /// Runs the script on `connection`: `fill` appends the number of keys, the keys and the
    /// arguments, as after `EVAL <script>`.
    pub(super) async fn run<T: FromRedisValue>(
        &self,
        connection: &mut RedisConnection,
        fill: impl Fn(&mut Cmd),
    ) -> RedisResult<T> {
        let mut by_hash = redis::cmd("EVALSHA");
        by_hash.arg(&self.hash);
        fill(&mut by_hash);
        match by_hash.query_async(connection).await {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let mut by_source = redis::cmd("EVAL");
                by_source.arg(self.source);
                fill(&mut by_source);
                by_source.query_async(connection).await
            }
            answer => answer,
        }
    }
}

/// A resolve that records a use when one is due: `scripts/resolve.lua`.
pub(super) static RESOLVE: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("scripts/resolve.lua")));

/// An issue's listing under the subject's limit: `scripts/admit.lua`.
pub(super) static ADMIT: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("scripts/admit.lua")));
