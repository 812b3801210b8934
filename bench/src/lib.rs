//! Benchmark harness of tower-bearer: the pieces shared by `bench-server`, `bench-driver`
//! and the criterion bench (`benches/hot_paths.rs`).

pub mod argon2_floor;
pub mod bench_server;
pub mod chart;
pub mod config;
pub mod fill;
pub mod growth;
pub mod issuance;
pub mod procfs;
pub mod propagation;
pub mod redis_memory;
pub mod redis_server;
pub mod report;
pub mod soak;
pub mod stats;
pub mod threads;
pub mod throughput;
pub mod wrk;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The result of a harness step; its error is a message for whoever runs the benchmarks.
pub type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// What stands in front of the `GET /` handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No authorization: the baseline.
    None,
    /// A constant-time comparison of the header with one fixed token.
    Static,
    /// Stateless HS256 JWT validation (`jsonwebtoken`).
    Jwt,
    /// `tower-sessions` with `tower-sessions-redis-store`: a cookie session read from Redis.
    Sessions,
    /// tower-bearer, in-memory registry.
    BearerMemory,
    /// tower-bearer, in-memory registry, on a route that requires one scope (the token
    /// holds it): what the scope check adds to `BearerMemory`.
    BearerMemoryScoped,
    /// tower-bearer, Redis registry.
    BearerRedis,
    /// tower-bearer, Redis registry with a 30-minute idle timeout on the bench's token kinds
    /// (`SessionRules::with_idle_timeout`): what idle timeouts add to `BearerRedis`.
    BearerRedisIdle,
    /// tower-bearer, Redis registry with its local cache of resolved tokens
    /// (`CacheOptions::default()`: 5 s, evicted across instances through pub/sub).
    BearerRedisCache,
    /// SHA-256 of the token and one `GET` through a redis-rs `ConnectionManager`.
    RedisGet,
}

impl Mode {
    /// Every mode, in the order of the report.
    pub const ALL: [Mode; 10] = [
        Mode::None,
        Mode::Static,
        Mode::Jwt,
        Mode::Sessions,
        Mode::BearerMemory,
        Mode::BearerMemoryScoped,
        Mode::BearerRedis,
        Mode::BearerRedisIdle,
        Mode::BearerRedisCache,
        Mode::RedisGet,
    ];

    /// The mode's name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Static => "static",
            Mode::Jwt => "jwt",
            Mode::Sessions => "sessions",
            Mode::BearerMemory => "bearer-memory",
            Mode::BearerMemoryScoped => "bearer-memory-scoped",
            Mode::BearerRedis => "bearer-redis",
            Mode::BearerRedisIdle => "bearer-redis-idle",
            Mode::BearerRedisCache => "bearer-redis-cached",
            Mode::RedisGet => "redis-get",
        }
    }

    /// Whether the mode's server needs Redis.
    pub fn needs_redis(self) -> bool {
        matches!(
            self,
            Mode::Sessions
                | Mode::BearerRedis
                | Mode::BearerRedisIdle
                | Mode::BearerRedisCache
                | Mode::RedisGet
        )
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Mode::ALL.iter().map(|mode| mode.name()).collect();
                format!("unknown mode {text:?} (one of {})", names.join(", "))
            })
    }
}

/// One mode's figures over all rounds: an element of `bench/results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModeResult {
    /// The mode's name.
    pub mode: String,
    /// Median requests/s over the rounds.
    pub rps: f64,
    /// Median over the rounds of wrk's 50th percentile latency, in milliseconds.
    pub p50_ms: f64,
    /// Median over the rounds of wrk's 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Median over the rounds of this mode's requests/s divided by `none`'s of the same round.
    pub ratio_vs_none: f64,
    /// The largest peak resident set size (VmHWM) of the server over the rounds, in KiB.
    pub peak_rss_kib: u64,
    /// Median over the rounds of the commands redis-server ran during the measured load
    /// (`INFO commandstats`, the harness's `INFO` left out) per request wrk completed; only
    /// for the modes with Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_commands_per_request: Option<f64>,
    /// The same, command by command (Redis's lower-case names: `get`, `evalsha`, ...); every
    /// command seen in any round, and always `get` and `evalsha` for tower-bearer's modes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub redis_commands: BTreeMap<String, f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_parses_back_from_its_name() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
        }
        assert!("bearer".parse::<Mode>().is_err());
    }
}
