//! The benchmark driver: runs every mode of `bench-server` under wrk, interleaved over
//! several rounds, then the token-issuance load, and writes the report.
//!
//! Normally started by `bench/run.sh`, which installs wrk, builds and runs the criterion
//! bench first. Pinning: the server and its `redis-server` on CPU 0, wrk on CPU 1.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench::redis_server::RedisServer;
use bench::stats::{median, range};
use bench::wrk::{self, WrkReport};
use bench::{Mode, ModeResult, chart};
use serde::Serialize;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: bench-driver [--quick] [options]

  --quick               2 rounds of 3 s loads, 1 issuance round (under 2 minutes)
  --rounds N            rounds over all modes (default 5; quick 2)
  --duration S          seconds of each measured load (default 6; quick 3)
  --warmup S            seconds of load before each measurement (default 2; quick 1)
  --connections N       wrk connections (default 32)
  --server-threads N    tokio worker threads of the server (default 1)
  --modes a,b,...       modes to run (default all; `none` is needed for the ratios)
  --no-modes            skip the modes: only the issuance load
  --no-issuance         skip the token-issuance load
  --issuance-rounds N   rounds of the issuance load (default 3; quick 1)
  --issuance-duration S seconds of each issuance load (default 5; quick 3)
  --login-connections N wrk connections for the concurrent issuance figure (default 4)
  --out DIR             where results.json, issuance.json and chart.svg go
                        (default bench/; quick: target/bench-quick/)
  --markdown FILE       put the report between the results markers of FILE
                        (default: results.md in the --out directory)
  --criterion DIR       criterion's output directory, to add its figures to the report
  --lockfile FILE       Cargo.lock, for the crate versions (default Cargo.lock)
  --server PATH         the bench-server binary (default: beside this one)";

const SERVER_CPU: &str = "0";
const CLIENT_CPU: &str = "1";
const MARK_BEGIN: &str = "<!-- results:begin -->";
const MARK_END: &str = "<!-- results:end -->";
/// Customers seeded for the token routes, and rotated over by the login script.
const LOGIN_CUSTOMERS: usize = 8;
/// Pairs of modes compared round by round: (a, b) gives the median of a's req/s / b's.
const PAIRS: [(&str, &str); 5] = [
    ("bearer-redis", "redis-get"),
    ("bearer-redis", "sessions"),
    ("bearer-memory", "static"),
    ("bearer-redis-cached", "jwt"),
    ("bearer-redis-cached", "bearer-memory"),
];
/// The pause of the paced login load before each request, in milliseconds.
const PACE_MS: u32 = 100;

struct Config {
    quick: bool,
    rounds: usize,
    duration: u64,
    warmup: u64,
    connections: u32,
    server_threads: usize,
    modes: Vec<Mode>,
    issuance: bool,
    issuance_rounds: usize,
    issuance_duration: u64,
    login_connections: u32,
    out: PathBuf,
    markdown: Option<PathBuf>,
    criterion: Option<PathBuf>,
    lockfile: PathBuf,
    server: PathBuf,
}

fn parse_config() -> Result<Config, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let server = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("bench-server");
    let mut config = Config {
        quick,
        rounds: if quick { 2 } else { 5 },
        duration: if quick { 3 } else { 6 },
        warmup: if quick { 1 } else { 2 },
        connections: 32,
        server_threads: 1,
        modes: Mode::ALL.to_vec(),
        issuance: true,
        issuance_rounds: if quick { 1 } else { 3 },
        issuance_duration: if quick { 3 } else { 5 },
        login_connections: 4,
        out: PathBuf::from(if quick { "target/bench-quick" } else { "bench" }),
        markdown: None,
        criterion: None,
        lockfile: PathBuf::from("Cargo.lock"),
        server,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        fn number<T: std::str::FromStr>(flag: &str, text: String) -> Result<T, String> {
            text.parse()
                .map_err(|_| format!("{flag} {text}: expected a number"))
        }
        match flag.as_str() {
            "--quick" => {}
            "--rounds" => config.rounds = number(&flag, value()?)?,
            "--duration" => config.duration = number(&flag, value()?)?,
            "--warmup" => config.warmup = number(&flag, value()?)?,
            "--connections" => config.connections = number(&flag, value()?)?,
            "--server-threads" => config.server_threads = number(&flag, value()?)?,
            "--modes" => {
                config.modes = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--no-modes" => config.modes.clear(),
            "--no-issuance" => config.issuance = false,
            "--issuance-rounds" => config.issuance_rounds = number(&flag, value()?)?,
            "--issuance-duration" => config.issuance_duration = number(&flag, value()?)?,
            "--login-connections" => config.login_connections = number(&flag, value()?)?,
            "--out" => config.out = PathBuf::from(value()?),
            "--markdown" => config.markdown = Some(PathBuf::from(value()?)),
            "--criterion" => config.criterion = Some(PathBuf::from(value()?)),
            "--lockfile" => config.lockfile = PathBuf::from(value()?),
            "--server" => config.server = PathBuf::from(value()?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    if config.rounds == 0
        || config.duration == 0
        || config.connections == 0
        || config.issuance_duration == 0
    {
        return Err(
            "--rounds, --duration, --issuance-duration and --connections must be positive"
                .to_owned(),
        );
    }
    Ok(config)
}

fn main() {
    let config = match parse_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(&config) {
        eprintln!("bench-driver: {error}");
        std::process::exit(1);
    }
}

/// What one measured load of one mode gave.
#[derive(Clone, Debug)]
struct Sample {
    report: WrkReport,
    peak_rss_kib: u64,
    /// Share of one core the server used while measured.
    server_cpu: f64,
    /// Share of one core redis-server used while measured.
    redis_cpu: f64,
    /// Share of one core wrk used.
    wrk_cpu: f64,
    /// How long the measured load ran.
    seconds: f64,
}

/// The issuance figures of one round.
#[derive(Clone, Debug)]
struct IssuanceSample {
    login_single: WrkReport,
    login_concurrent: WrkReport,
    quiet: WrkReport,
    saturated: WrkReport,
    saturated_logins: WrkReport,
    paced: WrkReport,
    paced_logins: WrkReport,
    peak_rss_kib: u64,
}

/// `bench/issuance.json`: medians over the issuance rounds.
#[derive(Serialize)]
struct IssuanceResult {
    /// Tokens/s through `POST /V1/integration/customer/token`, one connection back to back.
    tokens_per_sec: f64,
    login_p50_ms: f64,
    login_p99_ms: f64,
    /// The same with `login_connections` connections.
    login_connections: u32,
    concurrent_tokens_per_sec: f64,
    concurrent_login_p50_ms: f64,
    concurrent_login_p99_ms: f64,
    /// Protected (`bearer-memory`) requests/s with no login load.
    quiet_rps: f64,
    quiet_p99_ms: f64,
    /// Protected requests/s while one connection posts logins back to back.
    saturated_rps: f64,
    saturated_p99_ms: f64,
    saturated_logins_per_sec: f64,
    /// Median of the per-round `saturated_rps / quiet_rps`.
    ratio_saturated_vs_quiet: f64,
    /// Protected requests/s while one connection posts a login every PACE_MS ms or so.
    paced_rps: f64,
    paced_p99_ms: f64,
    paced_logins_per_sec: f64,
    /// Median of the per-round `paced_rps / quiet_rps`.
    ratio_paced_vs_quiet: f64,
    /// The issuance server's peak RSS (VmHWM), largest over the rounds.
    peak_rss_kib: u64,
}

fn run(config: &Config) -> Result<()> {
    let started = Instant::now();
    if !config.server.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p bench`",
            config.server.display()
        )
        .into());
    }
    for tool in ["wrk", "taskset", "redis-server"] {
        if Command::new("which")
            .arg(tool)
            .stdout(Stdio::null())
            .status()
            .map_or(true, |status| !status.success())
        {
            return Err(format!("{tool} is not on PATH (bench/run.sh installs it)").into());
        }
    }
    std::fs::create_dir_all(&config.out)?;
    let scratch = std::env::temp_dir().join(format!("bench-driver-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let load_before = loadavg();
    println!(
        "bench-driver: {} rounds × {} modes, {} s loads after {} s warm-up, {} connections; load average {load_before}",
        config.rounds,
        config.modes.len(),
        config.duration,
        config.warmup,
        config.connections
    );

    let redis = RedisServer::start(Some(SERVER_CPU.parse()?))?;
    println!(
        "redis-server {} (pid {}), pinned to CPU {SERVER_CPU}",
        redis.url(),
        redis.pid()
    );

    let mut samples: BTreeMap<&'static str, Vec<Sample>> = BTreeMap::new();
    let mut ratios: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut pair_ratios: BTreeMap<(&'static str, &'static str), Vec<f64>> = BTreeMap::new();
    let rounds = if config.modes.is_empty() {
        0
    } else {
        config.rounds
    };
    for round in 0..rounds {
        // Each round starts at another mode, so no mode always runs first or last.
        let mut order = config.modes.clone();
        let shift = round % order.len().max(1);
        order.rotate_left(shift);
        let mut this_round = BTreeMap::new();
        for mode in order {
            let sample = measure_mode(config, &redis, &scratch, mode)?;
            println!(
                "[{:>4.0} s] round {}/{} {:<14} {:>9.0} req/s  p50 {:>6.3} ms  p99 {:>6.3} ms  server {:>3.0}% redis {:>3.0}% wrk {:>3.0}%",
                started.elapsed().as_secs_f64(),
                round + 1,
                config.rounds,
                mode.name(),
                sample.report.requests_per_sec,
                sample.report.p50_ms,
                sample.report.p99_ms,
                sample.server_cpu * 100.0,
                sample.redis_cpu * 100.0,
                sample.wrk_cpu * 100.0,
            );
            this_round.insert(mode.name(), sample.report.requests_per_sec);
            samples.entry(mode.name()).or_default().push(sample);
        }
        if let Some(none) = this_round.get("none").copied() {
            for (mode, rps) in &this_round {
                ratios.entry(mode).or_default().push(rps / none);
            }
        }
        for pair in PAIRS {
            if let (Some(a), Some(b)) = (this_round.get(pair.0), this_round.get(pair.1)) {
                pair_ratios.entry(pair).or_default().push(a / b);
            }
        }
    }

    let results: Vec<ModeResult> = config
        .modes
        .iter()
        .filter_map(|mode| {
            let runs = samples.get(mode.name())?;
            let of = |f: fn(&Sample) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            Some(ModeResult {
                mode: mode.name().to_owned(),
                rps: round_to(of(|s| s.report.requests_per_sec), 1),
                p50_ms: round_to(of(|s| s.report.p50_ms), 3),
                p99_ms: round_to(of(|s| s.report.p99_ms), 3),
                ratio_vs_none: round_to(ratios.get(mode.name()).map_or(f64::NAN, |r| median(r)), 3),
                peak_rss_kib: runs.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
            })
        })
        .collect();

    let issuance = if config.issuance {
        Some(measure_issuance(config, &redis, &scratch, started)?)
    } else {
        None
    };
    drop(redis);
    let _ = std::fs::remove_dir_all(&scratch);

    let load_after = loadavg();
    let elapsed = started.elapsed();
    if !results.is_empty() {
        std::fs::write(
            config.out.join("results.json"),
            serde_json::to_string_pretty(&results)? + "\n",
        )?;
        let subtitle = format!(
            "{} server worker thread{} + redis-server on CPU {SERVER_CPU}, wrk -c{} on CPU {CLIENT_CPU}, median of {} rounds",
            config.server_threads,
            if config.server_threads == 1 { "" } else { "s" },
            config.connections,
            config.rounds
        );
        chart::draw(&config.out.join("chart.svg"), &results, &subtitle)?;
    }
    let issuance_result = issuance
        .as_ref()
        .map(|samples| summarise_issuance(config, samples));
    if let Some(result) = &issuance_result {
        std::fs::write(
            config.out.join("issuance.json"),
            serde_json::to_string_pretty(result)? + "\n",
        )?;
    }

    let report = Report {
        config,
        results: &results,
        samples: &samples,
        pair_ratios: &pair_ratios,
        issuance: issuance_result.as_ref(),
        issuance_samples: issuance.as_deref(),
        load_before: &load_before,
        load_after: &load_after,
        elapsed,
    }
    .markdown()?;
    match &config.markdown {
        Some(path) => splice_markdown(path, &report)?,
        None => std::fs::write(config.out.join("results.md"), &report)?,
    }
    println!("\n{report}");
    println!(
        "wrote the results to {}{} in {:.0} s",
        config.out.display(),
        config
            .markdown
            .as_ref()
            .map(|path| format!(" and {}", path.display()))
            .unwrap_or_default(),
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn round_to(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

// ---------------------------------------------------------------------------------------
// Running servers and wrk.

/// A running `bench-server`.
struct Server {
    child: Child,
    addr: String,
    header: String,
    stderr: PathBuf,
}

impl Server {
    fn start(
        config: &Config,
        scratch: &Path,
        mode: Mode,
        redis: &str,
        login: bool,
    ) -> Result<Self> {
        let ready = scratch.join(format!("ready-{}", mode.name()));
        let stderr = scratch.join(format!("stderr-{}", mode.name()));
        let _ = std::fs::remove_file(&ready);
        let mut command = Command::new("taskset");
        command
            .args(["-c", SERVER_CPU])
            .arg(&config.server)
            .args(["--mode", mode.name(), "--redis-url", redis])
            .args(["--threads", &config.server_threads.to_string()])
            .arg("--ready-file")
            .arg(&ready);
        if login {
            command
                .arg("--with-login-routes")
                .args(["--login-customers", &LOGIN_CUSTOMERS.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                break text;
            }
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&stderr).unwrap_or_default();
                return Err(format!("bench-server --mode {mode} exited ({status}): {log}").into());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("bench-server --mode {mode} did not start in 30 s").into());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
                .map(str::to_owned)
        };
        let addr = field("addr ").ok_or("the ready file has no addr line")?;
        let header = field("header").unwrap_or_default();
        Ok(Self {
            child,
            addr,
            header,
            stderr,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) -> Result<()> {
        let _ = self.child.kill();
        self.child.wait()?;
        let _ = std::fs::remove_file(&self.stderr);
        Ok(())
    }
}

/// One wrk run, pinned to the client CPU.
struct Load<'a> {
    url: String,
    header: &'a str,
    connections: u32,
    seconds: u64,
    script: Option<&'a Path>,
}

impl Load<'_> {
    fn spawn(&self) -> Result<Child> {
        let mut command = Command::new("taskset");
        command.args(["-c", CLIENT_CPU, "wrk", "-t1", "--latency"]);
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
        Ok(command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?)
    }

    fn run(&self) -> Result<WrkReport> {
        finish_wrk(self.spawn()?)
    }
}

fn finish_wrk(child: Child) -> Result<WrkReport> {
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let report = wrk::parse(&stdout)?;
    if report.non_success > 0 || report.socket_errors > 0 {
        return Err(format!(
            "wrk saw {} non-2xx responses and {} socket errors: the credential or the server is wrong\n{stdout}",
            report.non_success, report.socket_errors
        )
        .into());
    }
    Ok(report)
}

/// Starts `mode`, checks its credential, warms it up, measures it, stops it.
fn measure_mode(
    config: &Config,
    redis: &RedisServer,
    scratch: &Path,
    mode: Mode,
) -> Result<Sample> {
    let server = Server::start(config, scratch, mode, &redis.url(), false)?;
    check_credentials(&server, mode != Mode::None)?;
    let load = |seconds| Load {
        url: server.url("/"),
        header: &server.header,
        connections: config.connections,
        seconds,
        script: None,
    };
    if config.warmup > 0 {
        load(config.warmup).run()?;
    }
    let server_ticks = process_ticks(server.pid());
    let redis_ticks = process_ticks(redis.pid());
    let wrk_before = children_cpu_seconds();
    let measured = Instant::now();
    let report = load(config.duration).run()?;
    let seconds = measured.elapsed().as_secs_f64();
    let wrk_cpu = (children_cpu_seconds() - wrk_before) / seconds;
    let share = |before: Option<u64>, pid| match (before, process_ticks(pid)) {
        (Some(before), Some(after)) => (after - before) as f64 / clock_ticks() / seconds,
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

/// A request with the credential must pass; without it, a protected mode must refuse.
fn check_credentials(server: &Server, protected: bool) -> Result<()> {
    let with = http_get_status(&server.addr, &server.header)?;
    if with != 200 {
        return Err(format!("GET / with the credential answered {with}, not 200").into());
    }
    let without = http_get_status(&server.addr, "")?;
    if protected && without != 401 {
        return Err(format!("GET / without credential answered {without}, not 401").into());
    }
    Ok(())
}

fn http_get_status(addr: &str, header: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let header = if header.is_empty() {
        String::new()
    } else {
        format!("{header}\r\n")
    };
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{header}\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}").into())
}

// ---------------------------------------------------------------------------------------
// Token issuance.

/// Writes the login script: `POST /V1/integration/customer/token` rotating over the seeded
/// customers, each connection waiting `pause_ms` before each request.
fn login_script(scratch: &Path, name: &str, pause_ms: u32) -> Result<PathBuf> {
    let path = scratch.join(name);
    let delay = if pause_ms > 0 {
        format!("delay = function() return {pause_ms} end\n")
    } else {
        String::new()
    };
    std::fs::write(
        &path,
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
        ),
    )?;
    Ok(path)
}

fn measure_issuance(
    config: &Config,
    redis: &RedisServer,
    scratch: &Path,
    started: Instant,
) -> Result<Vec<IssuanceSample>> {
    let back_to_back = login_script(scratch, "login.lua", 0)?;
    let paced = login_script(scratch, "login-paced.lua", PACE_MS)?;
    let seconds = config.issuance_duration;
    let mut rounds = Vec::new();
    for round in 0..config.issuance_rounds {
        let server = Server::start(config, scratch, Mode::BearerMemory, &redis.url(), true)?;
        check_credentials(&server, true)?;
        let protected = |seconds| Load {
            url: server.url("/"),
            header: &server.header,
            connections: config.connections,
            seconds,
            script: None,
        };
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
            let login = finish_wrk(background)?;
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

fn summarise_issuance(config: &Config, samples: &[IssuanceSample]) -> IssuanceResult {
    let of = |f: fn(&IssuanceSample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    IssuanceResult {
        tokens_per_sec: round_to(of(|s| s.login_single.requests_per_sec), 2),
        login_p50_ms: round_to(of(|s| s.login_single.p50_ms), 3),
        login_p99_ms: round_to(of(|s| s.login_single.p99_ms), 3),
        login_connections: config.login_connections,
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

// ---------------------------------------------------------------------------------------
// /proc readings.

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime of a process (all its threads), in clock ticks.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses: state is field 3, utime 14.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds of the children this process has waited for.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_CHILDREN is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
            return f64::NAN;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".to_owned())
}

// ---------------------------------------------------------------------------------------
// The report.

struct Report<'a> {
    config: &'a Config,
    results: &'a [ModeResult],
    samples: &'a BTreeMap<&'static str, Vec<Sample>>,
    pair_ratios: &'a BTreeMap<(&'static str, &'static str), Vec<f64>>,
    issuance: Option<&'a IssuanceResult>,
    issuance_samples: Option<&'a [IssuanceSample]>,
    load_before: &'a str,
    load_after: &'a str,
    elapsed: Duration,
}

impl Report<'_> {
    fn markdown(&self) -> Result<String> {
        let config = self.config;
        let mut md = String::new();
        writeln!(
            md,
            "_Generated by `bench/run.sh{}` on {} in {:.0} s (load average {} before, {} after)._\n",
            if config.quick { " --quick" } else { "" },
            command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            self.elapsed.as_secs_f64(),
            self.load_before,
            self.load_after,
        )?;
        self.machine(&mut md)?;
        self.modes(&mut md)?;
        self.targets(&mut md)?;
        self.issuance(&mut md)?;
        self.criterion(&mut md)?;
        Ok(md)
    }

    fn machine(&self, md: &mut String) -> Result<()> {
        let config = self.config;
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "?".to_owned());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| text.trim().to_owned())
            .unwrap_or_default();
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let kib: u64 = text
                    .lines()
                    .find_map(|line| line.strip_prefix("MemTotal:"))?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some(format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0))
            })
            .unwrap_or_default();
        let wrk_version = command_line("wrk", &["-v"]);
        let wrk_version = wrk_version.split(" Copyright").next().unwrap_or("?");
        let crates = crate_versions(&config.lockfile);
        writeln!(md, "| machine | |\n|---|---|")?;
        writeln!(
            md,
            "| CPU | {cpu}, {cores} cores, {memory}, Linux {kernel} |"
        )?;
        writeln!(md, "| rustc | {} |", command_line("rustc", &["-V"]))?;
        writeln!(
            md,
            "| redis-server | {} |",
            command_line("redis-server", &["--version"])
        )?;
        writeln!(md, "| wrk | {wrk_version} |")?;
        writeln!(md, "| crates | {crates} |")?;
        writeln!(
            md,
            "| set-up | server ({} tokio worker thread{}) and redis-server pinned to CPU {SERVER_CPU}, wrk (`-t1 -c{}`) pinned to CPU {CLIENT_CPU} with `taskset`; loopback |",
            config.server_threads,
            if config.server_threads == 1 { "" } else { "s" },
            config.connections,
        )?;
        writeln!(
            md,
            "| schedule | {} rounds; in each, every mode in turn (starting one mode later each round) on a fresh server: check the credential, {} s warm-up, {} s measured |\n",
            config.rounds, config.warmup, config.duration,
        )?;
        Ok(())
    }

    fn modes(&self, md: &mut String) -> Result<()> {
        if self.results.is_empty() {
            return Ok(());
        }
        writeln!(
            md,
            "| mode | req/s (median) | min–max | × none | p50 ms | p99 ms | peak RSS KiB | CPU 0 µs/req | server CPU | redis CPU | wrk CPU |"
        )?;
        writeln!(
            md,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for result in self.results {
            let runs = &self.samples[result.mode.as_str()];
            let needs_redis = Mode::ALL
                .iter()
                .any(|m| m.name() == result.mode && m.needs_redis());
            let (low, high) = range(
                &runs
                    .iter()
                    .map(|s| s.report.requests_per_sec)
                    .collect::<Vec<_>>(),
            );
            let share = |f: fn(&Sample) -> f64| {
                let value = median(&runs.iter().map(f).collect::<Vec<_>>());
                if value.is_nan() {
                    "–".to_owned()
                } else {
                    format!("{:.0}%", value * 100.0)
                }
            };
            // CPU time on the server's core (server, plus redis-server where used) per request.
            let micros = median(
                &runs
                    .iter()
                    .map(|s| {
                        let busy = s.server_cpu + if needs_redis { s.redis_cpu } else { 0.0 };
                        busy * s.seconds / s.report.requests as f64 * 1e6
                    })
                    .collect::<Vec<_>>(),
            );
            writeln!(
                md,
                "| `{}` | {:.0} | {:.0}–{:.0} | {:.3} | {:.3} | {:.3} | {} | {:.2} | {} | {} | {} |",
                result.mode,
                result.rps,
                low,
                high,
                result.ratio_vs_none,
                result.p50_ms,
                result.p99_ms,
                result.peak_rss_kib,
                micros,
                share(|s| s.server_cpu),
                if needs_redis {
                    share(|s| s.redis_cpu)
                } else {
                    "–".to_owned()
                },
                share(|s| s.wrk_cpu),
            )?;
        }
        writeln!(
            md,
            "\n× none is the median of the per-round ratios to `none`. CPU 0 µs/req is the CPU time the server (and redis-server, in the Redis modes) spent per request on CPU 0; the CPU columns are shares of one core while measured; all medians over the rounds.\n"
        )?;
        Ok(())
    }

    fn targets(&self, md: &mut String) -> Result<()> {
        let ratio_of = |mode: &str| {
            self.results
                .iter()
                .find(|r| r.mode == mode)
                .map(|r| r.ratio_vs_none)
        };
        let pair = |a, b| self.pair_ratios.get(&(a, b)).map(|r| median(r));
        let mut rows: Vec<(String, Option<f64>, f64)> = vec![
            (
                "`bearer-memory` ≥ 0.90 × `none`".to_owned(),
                ratio_of("bearer-memory"),
                0.90,
            ),
            (
                "`bearer-redis` ≥ 0.95 × `redis-get`".to_owned(),
                pair("bearer-redis", "redis-get"),
                0.95,
            ),
            (
                "`bearer-redis` ≥ 1.15 × `sessions`".to_owned(),
                pair("bearer-redis", "sessions"),
                1.15,
            ),
        ];
        if let Some(issuance) = self.issuance {
            rows.push((
                format!(
                    "protected req/s beside a login load ≥ 0.8 × quiet: one connection posting logins back to back ({:.0} logins/s)",
                    issuance.saturated_logins_per_sec
                ),
                Some(issuance.ratio_saturated_vs_quiet),
                0.8,
            ));
            rows.push((
                format!(
                    "the same, the login connection pausing {PACE_MS} ms between logins ({:.1} logins/s)",
                    issuance.paced_logins_per_sec
                ),
                Some(issuance.ratio_paced_vs_quiet),
                0.8,
            ));
        }
        writeln!(
            md,
            "| target | measured (median of per-round ratios) | met |\n|---|---:|---|"
        )?;
        for (target, measured, goal) in rows {
            match measured {
                Some(value) => writeln!(
                    md,
                    "| {target} | {value:.3} | {} |",
                    if value >= goal { "yes" } else { "**no**" }
                )?,
                None => writeln!(md, "| {target} | not measured | – |")?,
            }
        }
        let others: Vec<String> = PAIRS[2..]
            .iter()
            .filter_map(|&(a, b)| Some(format!("`{a}` / `{b}` {:.3}", pair(a, b)?)))
            .collect();
        if !others.is_empty() {
            writeln!(
                md,
                "\nOther per-round ratios (medians): {}.",
                others.join("; ")
            )?;
        }
        writeln!(md)?;
        Ok(())
    }

    fn issuance(&self, md: &mut String) -> Result<()> {
        let (Some(result), Some(samples)) = (self.issuance, self.issuance_samples) else {
            return Ok(());
        };
        let per_round = |f: fn(&IssuanceSample) -> f64| {
            samples
                .iter()
                .map(|s| format!("{:.2}", f(s)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            md,
            "Token issuance: a `bearer-memory` server with the token routes and {LOGIN_CUSTOMERS} seeded customers (`MemoryDirectory`; passwords checked by the library's hashing threads, one per core at nice 10, so one here with the server pinned to CPU {SERVER_CPU}; Argon2id m=19456 KiB, t=2, p=1), {} round{} of {} s loads, medians:\n",
            samples.len(),
            if samples.len() == 1 { "" } else { "s" },
            self.config.issuance_duration,
        )?;
        writeln!(md, "| load | figure |\n|---|---:|")?;
        writeln!(
            md,
            "| `POST /V1/integration/customer/token`, 1 connection | {:.1} tokens/s, p50 {:.1} ms, p99 {:.1} ms |",
            result.tokens_per_sec, result.login_p50_ms, result.login_p99_ms
        )?;
        writeln!(
            md,
            "| the same, {} connections | {:.1} tokens/s, p50 {:.1} ms, p99 {:.1} ms |",
            result.login_connections,
            result.concurrent_tokens_per_sec,
            result.concurrent_login_p50_ms,
            result.concurrent_login_p99_ms
        )?;
        writeln!(
            md,
            "| protected `GET /` ({} connections), quiet | {:.0} req/s, p99 {:.3} ms |",
            self.config.connections, result.quiet_rps, result.quiet_p99_ms
        )?;
        writeln!(
            md,
            "| protected `GET /` beside 1 connection posting logins back to back | {:.0} req/s ({:.3}× quiet; rounds: {}), p99 {:.3} ms; {:.1} logins/s meanwhile |",
            result.saturated_rps,
            result.ratio_saturated_vs_quiet,
            per_round(|s| s.saturated.requests_per_sec / s.quiet.requests_per_sec),
            result.saturated_p99_ms,
            result.saturated_logins_per_sec
        )?;
        writeln!(
            md,
            "| protected `GET /` beside 1 connection posting a login every {PACE_MS} ms + its latency | {:.0} req/s ({:.3}× quiet; rounds: {}), p99 {:.3} ms; {:.1} logins/s meanwhile |",
            result.paced_rps,
            result.ratio_paced_vs_quiet,
            per_round(|s| s.paced.requests_per_sec / s.quiet.requests_per_sec),
            result.paced_p99_ms,
            result.paced_logins_per_sec
        )?;
        writeln!(
            md,
            "| peak RSS of the issuance server | {} KiB |\n",
            result.peak_rss_kib
        )?;
        Ok(())
    }

    fn criterion(&self, md: &mut String) -> Result<()> {
        let Some(dir) = &self.config.criterion else {
            return Ok(());
        };
        let group = dir.join("hot_paths");
        let Ok(entries) = std::fs::read_dir(&group) else {
            writeln!(md, "(no criterion results in {})\n", group.display())?;
            return Ok(());
        };
        let mut rows = Vec::new();
        for entry in entries.flatten() {
            let estimates = entry.path().join("new").join("estimates.json");
            let Ok(text) = std::fs::read_to_string(&estimates) else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_str(&text)?;
            let point = |key: &str| value[key]["point_estimate"].as_f64().unwrap_or(f64::NAN);
            rows.push((
                entry.file_name().to_string_lossy().into_owned(),
                point("median"),
                point("mean"),
            ));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        writeln!(
            md,
            "criterion (`cargo bench -p bench --bench hot_paths`, unpinned):\n\n| hot path | median | mean |\n|---|---:|---:|"
        )?;
        for (name, median, mean) in rows {
            writeln!(md, "| `{name}` | {} | {} |", nanos(median), nanos(mean))?;
        }
        writeln!(md)?;
        Ok(())
    }
}

fn nanos(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} ms", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.2} µs", value / 1e3)
    } else {
        format!("{value:.1} ns")
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|output| {
            let text = if output.stdout.is_empty() {
                output.stderr
            } else {
                output.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "?".to_owned())
}

/// The locked versions of the crates the report names.
fn crate_versions(lockfile: &Path) -> String {
    const NAMES: [&str; 12] = [
        "tower-bearer",
        "axum",
        "hyper",
        "tokio",
        "redis",
        "jsonwebtoken",
        "subtle",
        "tower-sessions",
        "tower-sessions-redis-store",
        "fred",
        "sha2",
        "criterion",
    ];
    let Ok(text) = std::fs::read_to_string(lockfile) else {
        return "?".to_owned();
    };
    let mut found: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_owned());
        } else if let (Some(value), Some(current)) = (line.strip_prefix("version = "), &name) {
            if let Some(known) = NAMES.iter().find(|known| **known == current) {
                found
                    .entry(known)
                    .or_default()
                    .push(value.trim_matches('"').to_owned());
            }
            name = None;
        }
    }
    NAMES
        .iter()
        .filter_map(|name| Some(format!("{name} {}", found.get(name)?.join("/"))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replaces what lies between the results markers of `path` with `report`.
fn splice_markdown(path: &Path, report: &str) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    let (Some(begin), Some(end)) = (text.find(MARK_BEGIN), text.find(MARK_END)) else {
        return Err(format!(
            "{} has no {MARK_BEGIN} … {MARK_END} markers",
            path.display()
        )
        .into());
    };
    if end < begin {
        return Err(format!("{}: the results markers are out of order", path.display()).into());
    }
    let mut spliced = String::with_capacity(text.len() + report.len());
    spliced.push_str(&text[..begin + MARK_BEGIN.len()]);
    spliced.push('\n');
    spliced.push_str(report.trim_end());
    spliced.push('\n');
    spliced.push_str(&text[end..]);
    std::fs::write(path, spliced)?;
    Ok(())
}
