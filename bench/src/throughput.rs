//! The throughput of the modes: one measured load of a mode ([`measure`]), and the rounds of
//! them gathered into the figures of `results.json` ([`Rounds`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::bench_server::BenchServer;
use crate::config::Config;
use crate::procfs::{children_cpu_seconds, clock_ticks_per_sec, peak_rss_kib, process_cpu_ticks};
use crate::redis_server::RedisServer;
use crate::stats::{median, median_of, round_to};
use crate::wrk::WrkReport;
use crate::{Mode, ModeResult, Result};

/// Pairs of modes compared round by round: (a, b) gives the median of a's req/s / b's.
pub const PAIRS: [(&str, &str); 6] = [
    ("bearer-redis", "redis-get"),
    ("bearer-redis", "sessions"),
    ("bearer-memory", "static"),
    ("bearer-redis-cached", "jwt"),
    ("bearer-redis-cached", "bearer-memory"),
    ("bearer-memory-scoped", "bearer-memory"),
];

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
}

/// Starts `mode` on a fresh server, checks its credential, warms it up, measures it, stops it.
///
/// # Errors
/// When the server or wrk fails, or the server's peak RSS cannot be read.
pub fn measure(config: &Config, redis: &RedisServer, scratch: &Path, mode: Mode) -> Result<Sample> {
    let server = BenchServer::start(config, scratch, mode, &redis.url(), None)?;
    server.check_credentials(mode != Mode::None)?;
    let load = |seconds| server.protected_load(config.connections, seconds);
    if config.warmup > 0 {
        load(config.warmup).run()?;
    }
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
    let peak_rss_kib = peak_rss_kib(server.pid()).ok_or("cannot read the server's VmHWM")?;
    server.stop()?;
    Ok(Sample {
        report,
        peak_rss_kib,
        server_cpu,
        redis_cpu,
        wrk_cpu,
        seconds,
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
                })
            })
            .collect()
    }
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
        }
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
    fn without_none_the_ratio_is_not_a_number() {
        let mut rounds = Rounds::default();
        rounds.add(vec![(Mode::Jwt, sample(70.0, 9))]);
        assert!(rounds.results(&[Mode::Jwt])[0].ratio_vs_none.is_nan());
    }
}
