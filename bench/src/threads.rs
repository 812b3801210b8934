//! Throughput with several tokio worker threads: `none`, `bearer-memory` and
//! `bearer-redis-cached` on a server run with `--threads N` and **not** pinned (wrk stays
//! pinned to the client CPU, the shared redis-server to the server CPU), as req/s and as a
//! ratio to `none` at the same thread count and round.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::bench_server::ServerOptions;
use crate::config::Config;
use crate::redis_server::RedisServer;
use crate::stats::{median_of, round_to};
use crate::throughput::{Rounds, measure_with};
use crate::{Mode, ModeResult, Result};

/// The modes of the thread step.
pub const MODES: [Mode; 3] = [Mode::None, Mode::BearerMemory, Mode::BearerRedisCache];

/// The worker-thread counts of the full run.
pub const COUNTS: [usize; 3] = [1, 2, 4];

/// The worker-thread counts of the quick run.
pub const QUICK_COUNTS: [usize; 2] = [1, 2];

/// One mode at one thread count: an element of `threads.results` in `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadsResult {
    /// tokio worker threads of the server.
    pub threads: usize,
    /// The mode's figures (`ratio_vs_none`: to `none` at the same thread count).
    #[serde(flatten)]
    pub result: ModeResult,
    /// Median share of one core the server used while measured.
    pub server_cpu: f64,
}

/// The `threads` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Threads {
    /// Rounds behind each figure.
    pub rounds: usize,
    /// Whether the server was pinned (never, in this step).
    pub server_pinned: bool,
    /// The CPU wrk was pinned to.
    pub wrk_cpu: usize,
    /// Each mode at each thread count.
    pub results: Vec<ThreadsResult>,
}

/// Runs `config.threads_rounds` rounds; in each, for every thread count, [`MODES`] in turn
/// (starting one mode later each round), each on a fresh unpinned server. Prints each load.
///
/// # Errors
/// When a server or a wrk run fails.
pub fn measure(
    config: &Config,
    redis: &RedisServer,
    scratch: &Path,
    started: Instant,
) -> Result<BTreeMap<usize, Rounds>> {
    let mut by_threads: BTreeMap<usize, Rounds> = BTreeMap::new();
    for round in 0..config.threads_rounds {
        for &threads in &config.thread_counts {
            let mut order = MODES.to_vec();
            order.rotate_left(round % MODES.len());
            let options = ServerOptions {
                threads: Some(threads),
                unpinned: true,
                ..ServerOptions::default()
            };
            let mut this_round = Vec::new();
            for mode in order {
                let sample = measure_with(config, redis, scratch, mode, &options)?;
                println!(
                    "[{:>4.0} s] threads round {}/{} {threads} thread{} {:<20} {:>9.0} req/s  p99 {:>6.3} ms  server {:>3.0}% wrk {:>3.0}%",
                    started.elapsed().as_secs_f64(),
                    round + 1,
                    config.threads_rounds,
                    if threads == 1 { " " } else { "s" },
                    mode.name(),
                    sample.report.requests_per_sec,
                    sample.report.p99_ms,
                    sample.server_cpu * 100.0,
                    sample.wrk_cpu * 100.0,
                );
                this_round.push((mode, sample));
            }
            by_threads.entry(threads).or_default().add(this_round);
        }
    }
    Ok(by_threads)
}

/// The medians over the rounds, by thread count then mode.
pub fn summarise(by_threads: &BTreeMap<usize, Rounds>, rounds: usize, wrk_cpu: usize) -> Threads {
    let results = by_threads
        .iter()
        .flat_map(|(&threads, of_threads)| {
            of_threads.results(&MODES).into_iter().map(move |result| {
                let server_cpu = of_threads
                    .samples
                    .get(result.mode.as_str())
                    .map_or(f64::NAN, |runs| median_of(runs, |s| s.server_cpu));
                ThreadsResult {
                    threads,
                    result,
                    server_cpu: round_to(server_cpu, 3),
                }
            })
        })
        .collect();
    Threads {
        rounds,
        server_pinned: false,
        wrk_cpu,
        results,
    }
}
