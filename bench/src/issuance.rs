//! The token-issuance measurement: sign-in throughput through
//! `POST /V1/integration/customer/token`, and what a login load costs the protected route
//! beside it (`issuance.json`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench_server::BenchServer;
use crate::config::Config;
use crate::procfs::peak_rss_kib;
use crate::redis_server::RedisServer;
use crate::stats::{median_of, round_to};
use crate::wrk::{Load, WrkReport};
use crate::{Mode, Result};

/// Customers seeded for the token routes, and rotated over by the login script (so lockout
/// never triggers).
pub const LOGIN_CUSTOMERS: usize = 8;
/// The pause of the paced login load before each request, in milliseconds.
pub const PACE_MS: u32 = 100;

/// The issuance figures of one round.
#[derive(Clone, Debug)]
pub struct IssuanceSample {
    /// Logins back to back on one connection.
    pub login_single: WrkReport,
    /// Logins back to back on `login_connections` connections.
    pub login_concurrent: WrkReport,
    /// The protected load with no login load.
    pub quiet: WrkReport,
    /// The protected load beside one connection posting logins back to back.
    pub saturated: WrkReport,
    /// That login load.
    pub saturated_logins: WrkReport,
    /// The protected load beside one connection posting a login every [`PACE_MS`] ms or so.
    pub paced: WrkReport,
    /// That login load.
    pub paced_logins: WrkReport,
    /// The issuance server's peak RSS (VmHWM), in KiB; 0 when unreadable.
    pub peak_rss_kib: u64,
}

/// `bench/issuance.json`: medians over the issuance rounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IssuanceResult {
    /// Tokens/s through `POST /V1/integration/customer/token`, one connection back to back.
    pub tokens_per_sec: f64,
    /// Its 50th percentile latency, in milliseconds.
    pub login_p50_ms: f64,
    /// Its 99th percentile latency, in milliseconds.
    pub login_p99_ms: f64,
    /// The same with `login_connections` connections.
    pub login_connections: u32,
    /// Tokens/s with `login_connections` connections.
    pub concurrent_tokens_per_sec: f64,
    /// Their 50th percentile latency, in milliseconds.
    pub concurrent_login_p50_ms: f64,
    /// Their 99th percentile latency, in milliseconds.
    pub concurrent_login_p99_ms: f64,
    /// Protected (`bearer-memory`) requests/s with no login load.
    pub quiet_rps: f64,
    /// Their 99th percentile latency, in milliseconds.
    pub quiet_p99_ms: f64,
    /// Protected requests/s while one connection posts logins back to back.
    pub saturated_rps: f64,
    /// Their 99th percentile latency, in milliseconds.
    pub saturated_p99_ms: f64,
    /// Logins/s of that login load.
    pub saturated_logins_per_sec: f64,
    /// Median of the per-round `saturated_rps / quiet_rps`.
    pub ratio_saturated_vs_quiet: f64,
    /// Protected requests/s while one connection posts a login every PACE_MS ms or so.
    pub paced_rps: f64,
    /// Their 99th percentile latency, in milliseconds.
    pub paced_p99_ms: f64,
    /// Logins/s of that login load.
    pub paced_logins_per_sec: f64,
    /// Median of the per-round `paced_rps / quiet_rps`.
    pub ratio_paced_vs_quiet: f64,
    /// The issuance server's peak RSS (VmHWM), largest over the rounds.
    pub peak_rss_kib: u64,
}

/// Runs `config.issuance_rounds` rounds, each on a fresh `bearer-memory` server with the
/// token routes, and prints each round's figures (`started`: the run's start, for the time
/// stamp).
///
/// # Errors
/// When a server, a credential check or a wrk run fails.
pub fn measure(
    config: &Config,
    redis: &RedisServer,
    scratch: &Path,
    started: Instant,
) -> Result<Vec<IssuanceSample>> {
    let back_to_back = write_login_script(scratch, "login.lua", 0)?;
    let paced = write_login_script(scratch, "login-paced.lua", PACE_MS)?;
    let seconds = config.issuance_duration;
    let mut rounds = Vec::new();
    for round in 0..config.issuance_rounds {
        let server = BenchServer::start(
            config,
            scratch,
            Mode::BearerMemory,
            &redis.url(),
            Some(LOGIN_CUSTOMERS),
        )?;
        server.check_credentials(true)?;
        let protected = |seconds| server.protected_load(config.connections, seconds);
        let logins = |script, connections, seconds| Load {
            url: server.url("/"),
            header: "",
            connections,
            seconds,
            script: Some(script),
        };
        // The protected load while a login load runs: the login load starts first and
        // ends last, so it covers the whole measurement.
        let under = |script| -> Result<(WrkReport, WrkReport)> {
            let background = logins(script, 1, seconds + 2).spawn()?;
            std::thread::sleep(Duration::from_secs(1));
            let loaded = protected(seconds).run();
            let login = background.finish()?;
            Ok((loaded?, login))
        };
        if config.warmup > 0 {
            protected(config.warmup).run()?;
            logins(&back_to_back, 1, config.warmup).run()?;
        }
        let quiet = protected(seconds).run()?;
        let (saturated, saturated_logins) = under(&back_to_back)?;
        let (paced, paced_logins) = under(&paced)?;
        let login_single = logins(&back_to_back, 1, seconds).run()?;
        let login_concurrent = logins(&back_to_back, config.login_connections, seconds).run()?;
        let peak_rss_kib = peak_rss_kib(server.pid()).unwrap_or(0);
        server.stop()?;
        println!(
            "[{:>4.0} s] issuance round {}/{}: {:.1} tokens/s (1 connection), {:.1} ({}); protected {:.0} req/s quiet, {:.0} ({:.2}×) beside {:.1} logins/s, {:.0} ({:.2}×) beside {:.1} logins/s; peak RSS {} KiB",
            started.elapsed().as_secs_f64(),
            round + 1,
            config.issuance_rounds,
            login_single.requests_per_sec,
            login_concurrent.requests_per_sec,
            config.login_connections,
            quiet.requests_per_sec,
            saturated.requests_per_sec,
            saturated.requests_per_sec / quiet.requests_per_sec,
            saturated_logins.requests_per_sec,
            paced.requests_per_sec,
            paced.requests_per_sec / quiet.requests_per_sec,
            paced_logins.requests_per_sec,
            peak_rss_kib,
        );
        rounds.push(IssuanceSample {
            login_single,
            login_concurrent,
            quiet,
            saturated,
            saturated_logins,
            paced,
            paced_logins,
            peak_rss_kib,
        });
    }
    Ok(rounds)
}

/// The medians over the rounds, rounded for `issuance.json`.
pub fn summarise(samples: &[IssuanceSample], login_connections: u32) -> IssuanceResult {
    let of = |f: fn(&IssuanceSample) -> f64| median_of(samples, f);
    IssuanceResult {
        tokens_per_sec: round_to(of(|s| s.login_single.requests_per_sec), 2),
        login_p50_ms: round_to(of(|s| s.login_single.p50_ms), 3),
        login_p99_ms: round_to(of(|s| s.login_single.p99_ms), 3),
        login_connections,
        concurrent_tokens_per_sec: round_to(of(|s| s.login_concurrent.requests_per_sec), 2),
        concurrent_login_p50_ms: round_to(of(|s| s.login_concurrent.p50_ms), 3),
        concurrent_login_p99_ms: round_to(of(|s| s.login_concurrent.p99_ms), 3),
        quiet_rps: round_to(of(|s| s.quiet.requests_per_sec), 1),
        quiet_p99_ms: round_to(of(|s| s.quiet.p99_ms), 3),
        saturated_rps: round_to(of(|s| s.saturated.requests_per_sec), 1),
        saturated_p99_ms: round_to(of(|s| s.saturated.p99_ms), 3),
        saturated_logins_per_sec: round_to(of(|s| s.saturated_logins.requests_per_sec), 2),
        ratio_saturated_vs_quiet: round_to(
            of(|s| s.saturated.requests_per_sec / s.quiet.requests_per_sec),
            3,
        ),
        paced_rps: round_to(of(|s| s.paced.requests_per_sec), 1),
        paced_p99_ms: round_to(of(|s| s.paced.p99_ms), 3),
        paced_logins_per_sec: round_to(of(|s| s.paced_logins.requests_per_sec), 2),
        ratio_paced_vs_quiet: round_to(
            of(|s| s.paced.requests_per_sec / s.quiet.requests_per_sec),
            3,
        ),
        peak_rss_kib: samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
    }
}

/// Writes the login script `name` into `scratch`; see [`login_script`].
fn write_login_script(scratch: &Path, name: &str, pause_ms: u32) -> Result<PathBuf> {
    let path = scratch.join(name);
    std::fs::write(&path, login_script(pause_ms))?;
    Ok(path)
}

/// The wrk Lua script posting `POST /V1/integration/customer/token` rotating over the
/// seeded customers, each connection waiting `pause_ms` before each request.
fn login_script(pause_ms: u32) -> String {
    let delay = if pause_ms > 0 {
        format!("delay = function() return {pause_ms} end\n")
    } else {
        String::new()
    };
    format!(
        r#"-- POST /V1/integration/customer/token, rotating over the seeded customers.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = '{{"username":"customer' .. (n % {LOGIN_CUSTOMERS}) .. '@example.com","password":"password"}}'
  return wrk.format(nil, "/V1/integration/customer/token", nil, body)
end
{delay}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(requests_per_sec: f64, p99_ms: f64) -> WrkReport {
        WrkReport {
            requests_per_sec,
            requests: 100,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            non_success: 0,
            socket_errors: 0,
        }
    }

    fn sample(quiet: f64, saturated: f64, paced: f64, peak_rss_kib: u64) -> IssuanceSample {
        IssuanceSample {
            login_single: report(9.876, 110.0),
            login_concurrent: report(10.5, 400.0),
            quiet: report(quiet, 1.0),
            saturated: report(saturated, 2.0),
            saturated_logins: report(9.0, 120.0),
            paced: report(paced, 1.5),
            paced_logins: report(4.5, 115.0),
            peak_rss_kib,
        }
    }

    #[test]
    fn summary_takes_medians_of_per_round_ratios() {
        let samples = [
            sample(1000.0, 700.0, 950.0, 30_000),
            sample(2000.0, 1800.0, 1900.0, 31_000),
            sample(1500.0, 1200.0, 1500.0, 29_000),
        ];
        let result = summarise(&samples, 4);
        assert_eq!(result.quiet_rps, 1500.0);
        assert_eq!(result.ratio_saturated_vs_quiet, 0.8);
        assert_eq!(result.ratio_paced_vs_quiet, 0.95);
        assert_eq!(result.tokens_per_sec, 9.88);
        assert_eq!(result.login_connections, 4);
        assert_eq!(result.peak_rss_kib, 31_000);
    }

    #[test]
    fn only_the_paced_script_waits() {
        assert!(!login_script(0).contains("delay"));
        let paced = login_script(PACE_MS);
        assert!(paced.ends_with("delay = function() return 100 end\n"));
        assert!(paced.contains("(n % 8)"));
        assert!(paced.contains(r#"'{"username":"customer'"#));
    }
}
