//! The throughput of the modes: one measured load of a mode ([`measure`]), and the rounds of
//! them gathered into the figures of `results.json` ([`Rounds`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::bench_server::{BenchServer, ServerOptions};
use crate::config::Config;
use crate::procfs::{children_cpu_seconds, clock_ticks_per_sec, peak_rss_kib, process_cpu_ticks};
use crate::redis_server::RedisServer;
use crate::stats::{median, median_of, round_to};
use crate::wrk::WrkReport;
use crate::{Mode, ModeResult, Result};

/// Pairs of modes compared round by round: (a, b) gives the median of a's req/s / b's.
pub const PAIRS: [(&str, &str); 8] = [
    ("bearer-redis", "redis-get"),
    ("bearer-redis", "sessions"),
    ("bearer-memory", "static"),
    ("bearer-redis-cached", "static"),
    ("bearer-redis-cached", "jwt"),
    ("bearer-redis-cached", "bearer-memory"),
    ("bearer-memory-scoped", "bearer-memory"),
    ("bearer-redis-idle", "bearer-redis"),
];

/// The commands the Redis figures of tower-bearer's modes always name, even when a load ran
/// none of them: a resolve is a plain `GET`, or, once per recording interval per token, one
/// `EVALSHA` of the script that reads the record and records the use.
pub const RESOLVE_COMMANDS: [&str; 2] = ["get", "evalsha"];

/// What one measured load of one mode gave.
#[derive(Clone, Debug)]
pub struct Sample {
    /// wrk's figures.
    pub report: WrkReport,
    /// The server's peak RSS (VmHWM), in KiB.
    pub peak_rss_kib: u64,
    /// Share of one core the server used while measured.
    pub server_cpu: f64,
    /// Share of one core redis-server used while measured.
    pub redis_cpu: f64,
    /// Share of one core wrk used.
    pub wrk_cpu: f64,
    /// How long the measured load ran.
    pub seconds: f64,
    /// How long the server took to be ready, in seconds (with pre-filled tokens: mostly
    /// issuing them).
    pub ready_seconds: f64,
    /// The commands redis-server ran during the measured load, by name (those with any
    /// calls); `None` for the modes without Redis.
    pub redis_calls: Option<BTreeMap<String, u64>>,
}

impl Sample {
    /// All the commands redis-server ran during the measured load per request wrk completed;
    /// `NaN` without Redis.
    pub fn redis_commands_per_request(&self) -> f64 {
        self.redis_calls.as_ref().map_or(f64::NAN, |calls| {
            calls.values().sum::<u64>() as f64 / self.report.requests as f64
        })
    }

    /// The calls of `command` during the measured load per request; `NaN` without Redis.
    pub fn redis_command_per_request(&self, command: &str) -> f64 {
        self.redis_calls.as_ref().map_or(f64::NAN, |calls| {
            calls.get(command).copied().unwrap_or(0) as f64 / self.report.requests as f64
        })
    }
}

/// What redis-server ran between two readings of its command counts: the commands whose
/// count grew, by how much.
pub fn calls_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(name, &calls)| {
            let grown = calls.saturating_sub(before.get(name).copied().unwrap_or(0));
            (grown > 0).then(|| (name.clone(), grown))
        })
        .collect()
}

/// Starts `mode` on a fresh server, checks its credential, warms it up, measures it, stops it.
///
/// # Errors
/// When the server or wrk fails, or the server's peak RSS cannot be read.
pub fn measure(config: &Config, redis: &RedisServer, scratch: &Path, mode: Mode) -> Result<Sample> {
    measure_with(config, redis, scratch, mode, &ServerOptions::default())
}

/// [`measure`] with the server started as `options` say (pre-filled tokens, worker threads,
/// unpinned).
///
/// # Errors
/// As [`measure`].
pub fn measure_with(
    config: &Config,
    redis: &RedisServer,
    scratch: &Path,
    mode: Mode,
    options: &ServerOptions,
) -> Result<Sample> {
    let server = BenchServer::start_with(config, scratch, mode, &redis.url(), options)?;
    let ready_seconds = server.ready_after().as_secs_f64();
    server.check_credentials(mode != Mode::None)?;
    let load = |seconds| server.protected_load(config.connections, seconds);
    if config.warmup > 0 {
        load(config.warmup).run()?;
    }
    // Redis's command counts are read just outside the CPU readings, so the INFO commands
    // cost nothing to the CPU shares (and they are left out of the counts).
    let calls_before = if mode.needs_redis() {
        Some(redis.command_calls()?)
    } else {
        None
    };
    let server_ticks = process_cpu_ticks(server.pid());
    let redis_ticks = process_cpu_ticks(redis.pid());
    let wrk_before = children_cpu_seconds();
    let measured = Instant::now();
    let report = load(config.duration).run()?;
    let seconds = measured.elapsed().as_secs_f64();
    let wrk_cpu = (children_cpu_seconds() - wrk_before) / seconds;
    let share = |before: Option<u64>, pid| match (before, process_cpu_ticks(pid)) {
        (Some(before), Some(after)) => (after - before) as f64 / clock_ticks_per_sec() / seconds,
        _ => f64::NAN,
    };
    let server_cpu = share(server_ticks, server.pid());
    let redis_cpu = share(redis_ticks, redis.pid());
    let redis_calls = match calls_before {
        Some(before) => Some(calls_between(&before, &redis.command_calls()?)),
        None => None,
    };
    let peak_rss_kib = peak_rss_kib(server.pid()).ok_or("cannot read the server's VmHWM")?;
    server.stop()?;
    Ok(Sample {
        report,
        peak_rss_kib,
        server_cpu,
        redis_cpu,
        wrk_cpu,
        seconds,
        ready_seconds,
        redis_calls,
    })
}

/// The samples of every round, and the ratios taken within each round (so drift over the
/// run hits both sides of a ratio alike).
#[derive(Clone, Debug, Default)]
pub struct Rounds {
    /// Each mode's samples, by mode name, in round order.
    pub samples: BTreeMap<&'static str, Vec<Sample>>,
    /// Each mode's req/s divided by `none`'s of the same round, per round.
    pub ratios_vs_none: BTreeMap<&'static str, Vec<f64>>,
    /// For each of [`PAIRS`] measured, a's req/s divided by b's of the same round, per round.
    pub pair_ratios: BTreeMap<(&'static str, &'static str), Vec<f64>>,
}

impl Rounds {
    /// Adds one round: the sample of each mode run in it.
    pub fn add(&mut self, round: Vec<(Mode, Sample)>) {
        let mut rps = BTreeMap::new();
        for (mode, sample) in round {
            rps.insert(mode.name(), sample.report.requests_per_sec);
            self.samples.entry(mode.name()).or_default().push(sample);
        }
        if let Some(none) = rps.get("none").copied() {
            for (mode, rps) in &rps {
                self.ratios_vs_none
                    .entry(mode)
                    .or_default()
                    .push(rps / none);
            }
        }
        for pair in PAIRS {
            if let (Some(a), Some(b)) = (rps.get(pair.0), rps.get(pair.1)) {
                self.pair_ratios.entry(pair).or_default().push(a / b);
            }
        }
    }

    /// The figures of each of `modes` measured: medians over the rounds, rounded.
    pub fn results(&self, modes: &[Mode]) -> Vec<ModeResult> {
        modes
            .iter()
            .filter_map(|mode| {
                let runs = self.samples.get(mode.name())?;
                let of = |f: fn(&Sample) -> f64| median_of(runs, f);
                Some(ModeResult {
                    mode: mode.name().to_owned(),
                    rps: round_to(of(|s| s.report.requests_per_sec), 1),
                    p50_ms: round_to(of(|s| s.report.p50_ms), 3),
                    p99_ms: round_to(of(|s| s.report.p99_ms), 3),
                    ratio_vs_none: round_to(
                        self.ratios_vs_none
                            .get(mode.name())
                            .map_or(f64::NAN, |r| median(r)),
                        3,
                    ),
                    peak_rss_kib: runs.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
                    redis_commands_per_request: Some(of(Sample::redis_commands_per_request))
                        .filter(|value| !value.is_nan())
                        .map(|value| round_to(value, 6)),
                    redis_commands: redis_commands(mode.name(), runs),
                })
            })
            .collect()
    }
}

/// Each command's calls per request, median over `runs` (a round without it counting 0):
/// every command seen in any round, and [`RESOLVE_COMMANDS`] for tower-bearer's Redis modes.
fn redis_commands(mode: &str, runs: &[Sample]) -> BTreeMap<String, f64> {
    let with_redis: Vec<&Sample> = runs.iter().filter(|s| s.redis_calls.is_some()).collect();
    if with_redis.is_empty() {
        return BTreeMap::new();
    }
    let mut names: Vec<&str> = with_redis
        .iter()
        .flat_map(|s| s.redis_calls.iter().flat_map(|calls| calls.keys()))
        .map(String::as_str)
        .collect();
    if mode.starts_with("bearer-redis") {
        names.extend(RESOLVE_COMMANDS);
    }
    names
        .into_iter()
        .map(|name| {
            let per_request = median_of(&with_redis, |s| s.redis_command_per_request(name));
            (name.to_owned(), round_to(per_request, 6))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requests_per_sec: f64, peak_rss_kib: u64) -> Sample {
        Sample {
            report: WrkReport {
                requests_per_sec,
                requests: 1000,
                p50_ms: 0.4,
                p99_ms: 1.0,
                non_success: 0,
                socket_errors: 0,
            },
            peak_rss_kib,
            server_cpu: 1.0,
            redis_cpu: f64::NAN,
            wrk_cpu: 0.5,
            seconds: 6.0,
            ready_seconds: 0.0,
            redis_calls: None,
        }
    }

    fn with_calls(mut sample: Sample, calls: &[(&str, u64)]) -> Sample {
        sample.redis_calls = Some(
            calls
                .iter()
                .map(|&(name, calls)| (name.to_owned(), calls))
                .collect(),
        );
        sample
    }

    #[test]
    fn ratios_are_taken_within_each_round() {
        let mut rounds = Rounds::default();
        rounds.add(vec![
            (Mode::None, sample(100.0, 10)),
            (Mode::Static, sample(90.0, 11)),
            (Mode::BearerMemory, sample(80.0, 12)),
        ]);
        rounds.add(vec![
            (Mode::BearerMemory, sample(40.0, 14)),
            (Mode::None, sample(50.0, 10)),
            (Mode::Static, sample(50.0, 11)),
        ]);
        assert_eq!(rounds.ratios_vs_none["bearer-memory"], [0.8, 0.8]);
        assert_eq!(
            rounds.pair_ratios[&("bearer-memory", "static")],
            [80.0 / 90.0, 0.8]
        );
        assert!(
            !rounds
                .pair_ratios
                .contains_key(&("bearer-redis", "redis-get"))
        );

        let results = rounds.results(&[Mode::None, Mode::BearerMemory, Mode::Jwt]);
        let modes: Vec<_> = results.iter().map(|r| r.mode.as_str()).collect();
        assert_eq!(modes, ["none", "bearer-memory"]);
        assert_eq!(results[1].rps, 60.0);
        assert_eq!(results[1].ratio_vs_none, 0.8);
        assert_eq!(results[1].peak_rss_kib, 14);
    }

    #[test]
    fn redis_commands_per_request_are_medians_over_the_rounds() {
        let mut rounds = Rounds::default();
        // 1000 requests a load (see `sample`).
        rounds.add(vec![
            (Mode::None, sample(100.0, 10)),
            (
                Mode::BearerRedisIdle,
                with_calls(sample(60.0, 12), &[("get", 1000), ("evalsha", 1)]),
            ),
            (
                Mode::Sessions,
                with_calls(sample(40.0, 12), &[("get", 1000), ("expire", 10)]),
            ),
        ]);
        rounds.add(vec![
            (Mode::None, sample(100.0, 10)),
            (
                Mode::BearerRedisIdle,
                with_calls(sample(60.0, 12), &[("get", 1002)]),
            ),
            (
                Mode::Sessions,
                with_calls(sample(40.0, 12), &[("get", 998)]),
            ),
        ]);
        rounds.add(vec![(
            Mode::BearerRedisCache,
            with_calls(sample(60.0, 12), &[]),
        )]);
        let results = rounds.results(&[
            Mode::None,
            Mode::BearerRedisIdle,
            Mode::Sessions,
            Mode::BearerRedisCache,
        ]);
        let figures = |at: usize| {
            let result = &results[at];
            let commands: Vec<(&str, f64)> = result
                .redis_commands
                .iter()
                .map(|(name, value)| (name.as_str(), *value))
                .collect();
            (result.redis_commands_per_request, commands)
        };
        assert_eq!(figures(0), (None, vec![]));
        assert_eq!(
            figures(1),
            (Some(1.0015), vec![("evalsha", 0.0005), ("get", 1.001)])
        );
        assert_eq!(
            figures(2),
            (Some(1.004), vec![("expire", 0.005), ("get", 0.999)])
        );
        assert_eq!(
            figures(3),
            (Some(0.0), vec![("evalsha", 0.0), ("get", 0.0)])
        );
        assert!(
            !rounds
                .pair_ratios
                .contains_key(&("bearer-redis-idle", "bearer-redis")),
            "no bearer-redis: no ratio"
        );
    }

    #[test]
    fn calls_between_two_readings() {
        let reading = |calls: &[(&str, u64)]| -> BTreeMap<String, u64> {
            calls
                .iter()
                .map(|&(name, calls)| (name.to_owned(), calls))
                .collect()
        };
        let before = reading(&[("get", 10), ("ping", 1)]);
        let after = reading(&[("get", 1010), ("ping", 1), ("evalsha", 1)]);
        assert_eq!(
            calls_between(&before, &after),
            reading(&[("evalsha", 1), ("get", 1000)])
        );
    }

    #[test]
    fn without_none_the_ratio_is_not_a_number() {
        let mut rounds = Rounds::default();
        rounds.add(vec![(Mode::Jwt, sample(70.0, 9))]);
        assert!(rounds.results(&[Mode::Jwt])[0].ratio_vs_none.is_nan());
    }
}
