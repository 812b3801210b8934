//! The benchmark driver: runs every mode of `bench-server` under wrk, interleaved over
//! several rounds, then the token-issuance load and the raw Argon2id floor beside it, the
//! live-tokens growth, the worker-thread counts, Redis's memory per token and the
//! revocation's way to another instance's cache, and writes the report.
//!
//! Normally started by `bench/run.sh`, which installs wrk, builds and runs the criterion
//! bench first. Pinning: the server and its `redis-server` on CPU 0, wrk on CPU 1.
//!
//! This file is the command line and the order of the steps; the measurements
//! (`bench::throughput`, `bench::issuance`, `bench::argon2_floor`, `bench::growth`,
//! `bench::threads`, `bench::redis_memory`, `bench::propagation`) and the report
//! (`bench::report`) are modules of the `bench` library.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use bench::config::{CLIENT_CPU, Config, SERVER_CPU};
use bench::redis_server::RedisServer;
use bench::report::Report;
use bench::throughput::{self, Rounds};
use bench::{
    Mode, Result, argon2_floor, growth, issuance, procfs, propagation, redis_memory, threads,
};

const USAGE: &str = "\
usage: bench-driver [--quick] [options]

  --quick               2 rounds of 3 s loads, 1 issuance round, and every step below short
                        (under 5 minutes)
  --rounds N            rounds over all modes (default 5; quick 2)
  --duration S          seconds of each measured load (default 6; quick 3)
  --warmup S            seconds of load before each measurement (default 2; quick 1)
  --connections N       wrk connections (default 32)
  --server-threads N    tokio worker threads of the server (default 1)
  --modes a,b,...       modes to run (default all; `none` is needed for the ratios)
  --no-modes            skip the modes: only the other steps
  --no-issuance         skip the token-issuance load
  --issuance-rounds N   rounds of the issuance load (default 3; quick 1)
  --issuance-duration S seconds of each issuance load (default 5; quick 3)
  --login-connections N wrk connections for the concurrent issuance figure (default 4)
  --no-argon2           skip the raw Argon2id verifications/s beside the issuance figure
  --argon2-seconds S    seconds of the Argon2id loop (default 5; quick 2)
  --no-growth           skip the live-tokens step (bearer-memory, bearer-redis with N tokens)
  --growth-sizes a,b,.. its live-token counts (default 1000,100000,1000000; quick 1000,100000)
  --growth-rounds N     its rounds, each filling the stores again (default 3; quick 1)
  --no-threads          skip the worker-threads step (unpinned server)
  --thread-counts a,b,. its tokio worker-thread counts (default 1,2,4; quick 1,2)
  --threads-rounds N    its rounds (default 3; quick 1)
  --no-propagation      skip the revocation-to-another-instance's-cache step
  --propagation-tokens N tokens revoked in it (default 1000; quick 200)
  --no-memory           skip the Redis-memory-per-token step
  --memory-tokens N     tokens issued for each of its figures (default 100000)
  --out DIR             where results.json, issuance.json and chart.svg go
                        (default bench/; quick: target/bench-quick/)
  --markdown FILE       put the report between the results markers of FILE
                        (default: results.md in the --out directory)
  --criterion DIR       criterion's output directory, to add its figures to the report
  --lockfile FILE       Cargo.lock, for the crate versions (default Cargo.lock)
  --server PATH         the bench-server binary (default: beside this one)";

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
        growth: true,
        growth_sizes: if quick {
            growth::QUICK_SIZES.to_vec()
        } else {
            growth::SIZES.to_vec()
        },
        growth_rounds: if quick { 1 } else { 3 },
        threads: true,
        thread_counts: if quick {
            threads::QUICK_COUNTS.to_vec()
        } else {
            threads::COUNTS.to_vec()
        },
        threads_rounds: if quick { 1 } else { 3 },
        propagation: true,
        propagation_tokens: if quick { 200 } else { 1000 },
        memory: true,
        memory_tokens: 100_000,
        argon2: true,
        argon2_seconds: if quick { 2.0 } else { 5.0 },
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
        fn list<T: std::str::FromStr>(flag: &str, text: String) -> Result<Vec<T>, String> {
            text.split(',')
                .map(|item| number(flag, item.trim().to_owned()))
                .collect()
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
            "--no-argon2" => config.argon2 = false,
            "--argon2-seconds" => config.argon2_seconds = number(&flag, value()?)?,
            "--no-growth" => config.growth = false,
            "--growth-sizes" => config.growth_sizes = list(&flag, value()?)?,
            "--growth-rounds" => config.growth_rounds = number(&flag, value()?)?,
            "--no-threads" => config.threads = false,
            "--thread-counts" => config.thread_counts = list(&flag, value()?)?,
            "--threads-rounds" => config.threads_rounds = number(&flag, value()?)?,
            "--no-propagation" => config.propagation = false,
            "--propagation-tokens" => config.propagation_tokens = number(&flag, value()?)?,
            "--no-memory" => config.memory = false,
            "--memory-tokens" => config.memory_tokens = number(&flag, value()?)?,
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
        || config.thread_counts.contains(&0)
        || config.memory_tokens == 0
        || !config.argon2_seconds.is_finite()
        || config.argon2_seconds <= 0.0
    {
        return Err(
            "--rounds, --duration, --issuance-duration, --connections, --thread-counts, --memory-tokens and --argon2-seconds must be positive"
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

/// Checks the tools, runs the rounds of every mode and then the issuance load, and writes
/// the report.
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
    let load_before = procfs::load_average();
    println!(
        "bench-driver: {} rounds × {} modes, {} s loads after {} s warm-up, {} connections; load average {load_before}",
        config.rounds,
        config.modes.len(),
        config.duration,
        config.warmup,
        config.connections
    );

    let redis = RedisServer::start(Some(SERVER_CPU))?;
    println!(
        "redis-server {} (pid {}), pinned to CPU {SERVER_CPU}",
        redis.url(),
        redis.pid()
    );

    let mut rounds = Rounds::default();
    let round_count = if config.modes.is_empty() {
        0
    } else {
        config.rounds
    };
    for round in 0..round_count {
        // Each round starts at another mode, so no mode always runs first or last.
        let mut order = config.modes.clone();
        let shift = round % order.len().max(1);
        order.rotate_left(shift);
        let mut this_round = Vec::new();
        for mode in order {
            let sample = throughput::measure(config, &redis, &scratch, mode)?;
            println!(
                "[{:>4.0} s] round {}/{} {:<20} {:>9.0} req/s  p50 {:>6.3} ms  p99 {:>6.3} ms  server {:>3.0}% redis {:>3.0}% wrk {:>3.0}%",
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
            this_round.push((mode, sample));
        }
        rounds.add(this_round);
    }
    let results = rounds.results(&config.modes);

    let issuance_samples = if config.issuance {
        Some(issuance::measure(config, &redis, &scratch, started)?)
    } else {
        None
    };
    let issuance_result = issuance_samples
        .as_deref()
        .map(|samples| issuance::summarise(samples, config.login_connections));
    // Right after the sign-in figure, in the same conditions: the raw Argon2id floor.
    let argon2_result = if config.argon2 {
        let floor = argon2_floor::measure(config.argon2_seconds)?;
        let floor = match &issuance_result {
            Some(issuance) => floor.with_sign_in(issuance.tokens_per_sec),
            None => floor,
        };
        println!(
            "[{:>4.0} s] argon2id: {:.2} verifications/s on CPU {}{}",
            started.elapsed().as_secs_f64(),
            floor.verifications_per_sec,
            floor.cpu.map_or("?".to_owned(), |cpu| cpu.to_string()),
            floor
                .ratio_sign_in_vs_raw
                .map(|ratio| format!("; sign-in / raw {ratio:.3}"))
                .unwrap_or_default(),
        );
        Some(floor)
    } else {
        None
    };

    let growth_result = if config.growth && !config.growth_sizes.is_empty() {
        let samples = growth::measure(config, &redis, &scratch, started)?;
        Some(growth::summarise(&samples, config.growth_rounds))
    } else {
        None
    };
    let threads_result = if config.threads && !config.thread_counts.is_empty() {
        let by_threads = threads::measure(config, &redis, &scratch, started)?;
        Some(threads::summarise(
            &by_threads,
            config.threads_rounds,
            CLIENT_CPU,
        ))
    } else {
        None
    };
    drop(redis);
    let memory_result = if config.memory {
        Some(redis_memory::measure(config.memory_tokens, started)?)
    } else {
        None
    };
    let propagation_result = if config.propagation && config.propagation_tokens > 0 {
        Some(propagation::measure(config.propagation_tokens, started)?)
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&scratch);

    let load_after = procfs::load_average();
    let elapsed = started.elapsed();
    let report = Report {
        config,
        results: &results,
        rounds: &rounds,
        issuance: issuance_result.as_ref(),
        issuance_samples: issuance_samples.as_deref(),
        argon2: argon2_result.as_ref(),
        growth: growth_result.as_ref(),
        threads: threads_result.as_ref(),
        redis_memory: memory_result.as_ref(),
        propagation: propagation_result.as_ref(),
        load_before: &load_before,
        load_after: &load_after,
        elapsed,
    }
    .write()?;
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
