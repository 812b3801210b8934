//! Running wrk, pinned to the client CPU, and reading what `wrk --latency` prints.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Result;
use crate::config::CLIENT_CPU;

/// The figures of one wrk run.
#[derive(Clone, Debug, PartialEq)]
pub struct WrkReport {
    /// `Requests/sec`.
    pub requests_per_sec: f64,
    /// Requests completed.
    pub requests: u64,
    /// 50th percentile latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// `Non-2xx or 3xx responses` (0 when wrk prints no such line).
    pub non_success: u64,
    /// Connect, read, write and timeout errors together.
    pub socket_errors: u64,
}

/// One wrk run (`-t1 --latency --timeout 5s`), pinned to [`CLIENT_CPU`].
#[derive(Clone, Debug)]
pub struct Load<'a> {
    /// The URL it requests (a script may change the path and method).
    pub url: String,
    /// One header line sent with every request; empty for none.
    pub header: &'a str,
    /// Connections held open.
    pub connections: u32,
    /// How long it runs.
    pub seconds: u64,
    /// A Lua script (`-s`) shaping the requests.
    pub script: Option<&'a Path>,
}

impl Load<'_> {
    /// Starts wrk and returns without waiting, so another load can run beside it.
    ///
    /// # Errors
    /// When `taskset` cannot be run.
    pub fn spawn(&self) -> Result<RunningLoad> {
        let mut command = Command::new("taskset");
        command
            .args(["-c", &CLIENT_CPU.to_string()])
            .args(["wrk", "-t1", "--latency"]);
        command
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.seconds))
            .arg("--timeout")
            .arg("5s");
        if !self.header.is_empty() {
            command.arg("-H").arg(self.header);
        }
        if let Some(script) = self.script {
            command.arg("-s").arg(script);
        }
        command.arg(&self.url);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(RunningLoad(child))
    }

    /// Runs wrk to the end.
    ///
    /// # Errors
    /// As [`Load::spawn`] and [`RunningLoad::finish`].
    pub fn run(&self) -> Result<WrkReport> {
        self.spawn()?.finish()
    }
}

/// A wrk run under way.
#[derive(Debug)]
pub struct RunningLoad(Child);

impl RunningLoad {
    /// Waits for wrk and reads its figures.
    ///
    /// # Errors
    /// When wrk fails, prints no figures, or saw any non-2xx answer or socket error: a
    /// measurement of failing requests would be meaningless.
    pub fn finish(self) -> Result<WrkReport> {
        let output = self.0.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "wrk failed ({}): {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let report = parse(&stdout)?;
        if report.non_success > 0 || report.socket_errors > 0 {
            return Err(format!(
                "wrk saw {} non-2xx responses and {} socket errors: the credential or the server is wrong\n{stdout}",
                report.non_success, report.socket_errors
            )
            .into());
        }
        Ok(report)
    }
}

/// Parses wrk's output (run with `--latency`).
///
/// # Errors
/// When `Requests/sec` or the 50% / 99% latency lines are missing or unreadable.
pub fn parse(output: &str) -> Result<WrkReport, String> {
    let mut requests_per_sec = None;
    let mut requests = None;
    let mut p50_ms = None;
    let mut p99_ms = None;
    let mut non_success = 0;
    let mut socket_errors = 0;
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = rest.trim().parse::<f64>().ok();
        } else if let Some(rest) = line.strip_prefix("50%") {
            p50_ms = duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99_ms = duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_success = rest.trim().parse().unwrap_or(u64::MAX);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        }
    }
    let missing = |what: &str| format!("wrk printed no {what}:\n{output}");
    Ok(WrkReport {
        requests_per_sec: requests_per_sec.ok_or_else(|| missing("Requests/sec"))?,
        requests: requests.ok_or_else(|| missing("request count"))?,
        p50_ms: p50_ms.ok_or_else(|| missing("50% latency (run it with --latency)"))?,
        p99_ms: p99_ms.ok_or_else(|| missing("99% latency (run it with --latency)"))?,
        non_success,
        socket_errors,
    })
}

/// wrk's durations: a number and one of `us`, `ms`, `s`, `m`, `h`.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let scale = match unit.trim() {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Running 3s test @ http://127.0.0.1:40000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   412.35us  101.20us   3.21ms   91.02%
    Req/Sec    77.10k     2.31k   80.12k    83.33%
  Latency Distribution
     50%  398.00us
     75%  440.00us
     90%  501.00us
     99%    1.02ms
  230123 requests in 3.00s, 28.53MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  76707.66
Transfer/sec:      9.51MB
";

    #[test]
    fn reads_throughput_percentiles_and_errors() {
        let report = parse(SAMPLE).unwrap();
        assert_eq!(report.requests_per_sec, 76707.66);
        assert_eq!(report.requests, 230123);
        assert!((report.p50_ms - 0.398).abs() < 1e-9);
        assert!((report.p99_ms - 1.02).abs() < 1e-9);
        assert_eq!(report.non_success, 3);
        assert_eq!(report.socket_errors, 3);
    }

    #[test]
    fn output_without_latency_distribution_is_an_error() {
        let without: String = SAMPLE
            .lines()
            .filter(|line| !line.contains('%') || line.contains("Stdev"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(parse(&without).is_err());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(duration_ms("250.00us"), Some(0.25));
        assert_eq!(duration_ms("1.50ms"), Some(1.5));
        assert_eq!(duration_ms("2.00s"), Some(2000.0));
        assert_eq!(duration_ms("1.00m"), Some(60000.0));
        assert_eq!(duration_ms("12"), None);
    }
}
