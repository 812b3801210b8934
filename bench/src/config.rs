//! What one run of `bench-driver` measures and how: its command line, parsed, and the fixed
//! CPU pinning.

use std::path::PathBuf;

use crate::Mode;

/// The CPU of the server under test and its `redis-server`: the server's core pays for Redis
/// too, as on a one-core instance.
pub const SERVER_CPU: usize = 0;
/// The CPU of wrk, so the load generator never competes with the server for a core.
pub const CLIENT_CPU: usize = 1;

/// The settings of one run (`bench-driver --help` describes each).
#[derive(Clone, Debug)]
pub struct Config {
    /// `--quick`: the short run, named in the report.
    pub quick: bool,
    /// Rounds over all modes.
    pub rounds: usize,
    /// Seconds of each measured load.
    pub duration: u64,
    /// Seconds of load before each measurement (0: none).
    pub warmup: u64,
    /// wrk connections of the protected load.
    pub connections: u32,
    /// tokio worker threads of the server.
    pub server_threads: usize,
    /// The modes to run, in the order of the report.
    pub modes: Vec<Mode>,
    /// Whether to run the token-issuance load.
    pub issuance: bool,
    /// Rounds of the issuance load.
    pub issuance_rounds: usize,
    /// Seconds of each issuance load.
    pub issuance_duration: u64,
    /// wrk connections for the concurrent issuance figure.
    pub login_connections: u32,
    /// Whether to measure throughput against the number of live tokens in the store.
    pub growth: bool,
    /// The live-token counts of the growth step.
    pub growth_sizes: Vec<u64>,
    /// Rounds of the growth step (each fills the store again).
    pub growth_rounds: usize,
    /// Whether to measure throughput with several tokio worker threads, unpinned.
    pub threads: bool,
    /// The worker-thread counts of that step.
    pub thread_counts: Vec<usize>,
    /// Rounds of that step.
    pub threads_rounds: usize,
    /// Whether to measure how fast a revocation reaches another instance's cache.
    pub propagation: bool,
    /// Tokens revoked, one after the other, in that step.
    pub propagation_tokens: usize,
    /// Whether to measure Redis's memory per live token.
    pub memory: bool,
    /// Tokens issued for each figure of that step.
    pub memory_tokens: u64,
    /// Whether to measure raw Argon2id verifications per second beside the issuance load.
    pub argon2: bool,
    /// Seconds of the Argon2id loop.
    pub argon2_seconds: f64,
    /// Where `results.json`, `issuance.json` and `chart.svg` go.
    pub out: PathBuf,
    /// The markdown file whose results markers get the report (`None`: `results.md` in `out`).
    pub markdown: Option<PathBuf>,
    /// criterion's output directory, to add its figures to the report.
    pub criterion: Option<PathBuf>,
    /// `Cargo.lock`, for the crate versions the report names.
    pub lockfile: PathBuf,
    /// The `bench-server` binary.
    pub server: PathBuf,
}
