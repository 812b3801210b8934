//! Cost growth with the live tokens in the store: the protected load of `bearer-memory` and
//! `bearer-redis` on a server that issued N more live tokens (`bench-server --tokens N`)
//! before serving, for several N; each `bearer-redis` figure on a fresh redis-server.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::bench_server::ServerOptions;
use crate::config::{Config, SERVER_CPU};
use crate::redis_server::RedisServer;
use crate::stats::{median, median_of, round_to};
use crate::throughput::{Sample, measure_with};
use crate::{Mode, Result};

/// The modes of the growth step.
pub const MODES: [Mode; 2] = [Mode::BearerMemory, Mode::BearerRedis];

/// The live-token counts of the full run.
pub const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];

/// The live-token counts of the quick run.
pub const QUICK_SIZES: [u64; 2] = [1_000, 100_000];

/// Tokens per subject of the pre-filled tokens.
pub const TOKENS_PER_SUBJECT: u64 = 1;

/// One measured load of one mode with `tokens` live tokens.
#[derive(Clone, Debug)]
pub struct GrowthSample {
    /// The mode.
    pub mode: Mode,
    /// The live tokens issued before serving (besides the credential's).
    pub tokens: u64,
    /// The load's figures.
    pub sample: Sample,
    /// For `bearer-redis`: redis-server's `used_memory` before the server started, in bytes.
    pub used_memory_before: Option<u64>,
    /// For `bearer-redis`: its `used_memory` after the fill and the load, in bytes.
    pub used_memory_after: Option<u64>,
    /// For `bearer-redis`: its keys (`DBSIZE`) after the load.
    pub redis_keys: Option<u64>,
}

/// One mode at one token count, medians over the rounds: an element of `growth.results` in
/// `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GrowthResult {
    /// The mode's name.
    pub mode: String,
    /// Live tokens issued before serving (besides the credential's).
    pub tokens: u64,
    /// Median requests/s.
    pub rps: f64,
    /// Median of wrk's 50th percentile latency, in milliseconds.
    pub p50_ms: f64,
    /// Median of wrk's 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Median of the per-round ratio of this req/s to the same mode's at the smallest count.
    pub ratio_vs_smallest: f64,
    /// The largest peak RSS (VmHWM) of the server over the rounds, in KiB.
    pub peak_rss_kib: u64,
    /// Median seconds from the server's start to ready (mostly issuing the tokens).
    pub fill_seconds: f64,
    /// `bearer-redis`: median `used_memory` of redis-server after the fill, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_used_memory_bytes: Option<u64>,
    /// `bearer-redis`: median growth of `used_memory` per pre-filled token, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_bytes_per_token: Option<f64>,
    /// `bearer-redis`: keys in Redis after the fill (`DBSIZE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_keys: Option<u64>,
}

/// The `growth` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Growth {
    /// Rounds behind each figure.
    pub rounds: usize,
    /// Pre-filled tokens per subject.
    pub tokens_per_subject: u64,
    /// Each mode at each token count.
    pub results: Vec<GrowthResult>,
}

/// Runs `config.growth_rounds` rounds over `config.growth_sizes` × [`MODES`] (sizes in
/// alternating order from round to round), each load on a fresh server that fills its store
/// first; `bearer-redis` on a fresh redis-server pinned to CPU 0 each time (`redis` serves
/// `bearer-memory`'s unused `--redis-url`). Prints each load (`started`: the run's start).
///
/// # Errors
/// When a server, a redis-server or a wrk run fails.
pub fn measure(
    config: &Config,
    redis: &RedisServer,
    scratch: &Path,
    started: Instant,
) -> Result<Vec<GrowthSample>> {
    let mut samples = Vec::new();
    for round in 0..config.growth_rounds {
        let mut sizes = config.growth_sizes.clone();
        if round % 2 == 1 {
            sizes.reverse();
        }
        for tokens in sizes {
            for mode in MODES {
                let options = ServerOptions {
                    tokens,
                    tokens_per_subject: TOKENS_PER_SUBJECT,
                    ..ServerOptions::default()
                };
                let sample = if mode.needs_redis() {
                    let fresh = RedisServer::start(Some(SERVER_CPU))?;
                    let before = fresh.used_memory()?;
                    let sample = measure_with(config, &fresh, scratch, mode, &options)?;
                    GrowthSample {
                        mode,
                        tokens,
                        sample,
                        used_memory_before: Some(before),
                        used_memory_after: Some(fresh.used_memory()?),
                        redis_keys: Some(fresh.dbsize()?),
                    }
                } else {
                    let sample = measure_with(config, redis, scratch, mode, &options)?;
                    GrowthSample {
                        mode,
                        tokens,
                        sample,
                        used_memory_before: None,
                        used_memory_after: None,
                        redis_keys: None,
                    }
                };
                println!(
                    "[{:>4.0} s] growth round {}/{} {:<14} {:>8} tokens (ready in {:.1} s) {:>9.0} req/s  p99 {:>6.3} ms  peak RSS {} KiB{}",
                    started.elapsed().as_secs_f64(),
                    round + 1,
                    config.growth_rounds,
                    mode.name(),
                    tokens,
                    sample.sample.ready_seconds,
                    sample.sample.report.requests_per_sec,
                    sample.sample.report.p99_ms,
                    sample.sample.peak_rss_kib,
                    sample
                        .used_memory_after
                        .map(|bytes| format!("  redis used_memory {bytes} B"))
                        .unwrap_or_default(),
                );
                samples.push(sample);
            }
        }
    }
    Ok(samples)
}

/// The medians over the rounds, by mode then token count, rounded for `results.json`.
pub fn summarise(samples: &[GrowthSample], rounds: usize) -> Growth {
    let mut results = Vec::new();
    for mode in MODES {
        let of_mode: Vec<&GrowthSample> = samples.iter().filter(|s| s.mode == mode).collect();
        let mut sizes: Vec<u64> = of_mode.iter().map(|s| s.tokens).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let Some(&smallest) = sizes.first() else {
            continue;
        };
        // The samples of one count in round order (the k-th of a count is of round k).
        let at = |tokens: u64| -> Vec<&GrowthSample> {
            of_mode
                .iter()
                .copied()
                .filter(|s| s.tokens == tokens)
                .collect()
        };
        let base = at(smallest);
        for &tokens in &sizes {
            let runs = at(tokens);
            let of = |f: fn(&GrowthSample) -> f64| median_of(&runs, |s| f(s));
            let ratios: Vec<f64> = runs
                .iter()
                .zip(&base)
                .map(|(s, b)| s.sample.report.requests_per_sec / b.sample.report.requests_per_sec)
                .collect();
            let used = of(|s| s.used_memory_after.map_or(f64::NAN, |b| b as f64));
            let per_token = of(|s| match (s.used_memory_before, s.used_memory_after) {
                (Some(before), Some(after)) if s.tokens > 0 => {
                    (after as f64 - before as f64) / s.tokens as f64
                }
                _ => f64::NAN,
            });
            let keys = of(|s| s.redis_keys.map_or(f64::NAN, |k| k as f64));
            let present = |value: f64| (!value.is_nan()).then_some(value);
            results.push(GrowthResult {
                mode: mode.name().to_owned(),
                tokens,
                rps: round_to(of(|s| s.sample.report.requests_per_sec), 1),
                p50_ms: round_to(of(|s| s.sample.report.p50_ms), 3),
                p99_ms: round_to(of(|s| s.sample.report.p99_ms), 3),
                ratio_vs_smallest: round_to(median(&ratios), 3),
                peak_rss_kib: runs
                    .iter()
                    .map(|s| s.sample.peak_rss_kib)
                    .max()
                    .unwrap_or(0),
                fill_seconds: round_to(of(|s| s.sample.ready_seconds), 2),
                redis_used_memory_bytes: present(used).map(|v| v as u64),
                redis_bytes_per_token: present(per_token).map(|v| round_to(v, 1)),
                redis_keys: present(keys).map(|v| v as u64),
            });
        }
    }
    Growth {
        rounds,
        tokens_per_subject: TOKENS_PER_SUBJECT,
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrk::WrkReport;

    fn sample(mode: Mode, tokens: u64, rps: f64, used: Option<(u64, u64)>) -> GrowthSample {
        GrowthSample {
            mode,
            tokens,
            sample: Sample {
                report: WrkReport {
                    requests_per_sec: rps,
                    requests: 1000,
                    p50_ms: 0.5,
                    p99_ms: 2.0,
                    non_success: 0,
                    socket_errors: 0,
                },
                peak_rss_kib: tokens / 10,
                server_cpu: 1.0,
                redis_cpu: f64::NAN,
                wrk_cpu: 0.5,
                seconds: 6.0,
                ready_seconds: 1.0,
                redis_calls: None,
            },
            used_memory_before: used.map(|u| u.0),
            used_memory_after: used.map(|u| u.1),
            redis_keys: used.map(|_| tokens * 2),
        }
    }

    #[test]
    fn ratios_to_the_smallest_count_per_round() {
        let samples = [
            sample(Mode::BearerMemory, 1_000, 100.0, None),
            sample(Mode::BearerRedis, 1_000, 50.0, Some((1_000, 301_000))),
            sample(Mode::BearerMemory, 100_000, 90.0, None),
            sample(Mode::BearerRedis, 100_000, 40.0, Some((1_000, 30_001_000))),
            sample(Mode::BearerMemory, 100_000, 40.0, None),
            sample(Mode::BearerMemory, 1_000, 50.0, None),
        ];
        let growth = summarise(&samples, 2);
        let rows: Vec<(&str, u64, f64)> = growth
            .results
            .iter()
            .map(|r| (r.mode.as_str(), r.tokens, r.ratio_vs_smallest))
            .collect();
        assert_eq!(
            rows,
            [
                ("bearer-memory", 1_000, 1.0),
                ("bearer-memory", 100_000, 0.85),
                ("bearer-redis", 1_000, 1.0),
                ("bearer-redis", 100_000, 0.8),
            ]
        );
        assert_eq!(growth.results[1].peak_rss_kib, 10_000);
        assert_eq!(growth.results[0].redis_used_memory_bytes, None);
        assert_eq!(growth.results[3].redis_bytes_per_token, Some(300.0));
        assert_eq!(growth.results[3].redis_keys, Some(200_000));
    }
}
