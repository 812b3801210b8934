//! The chaos soak: Redis (a primary with its replica), two instances of the example server
//! with the local cache on, and the load of [`load`], while faults land at random moments:
//! Redis killed and restarted, Redis frozen and thawed, its pub/sub connections dropped, an
//! app instance restarted. Every answer is judged; the run fails when a revoked token is
//! accepted past the cache's bound, a never-issued one is accepted, a valid one answers 401,
//! a request waits past the store's bound, anything panics, or service takes 2 s or more to
//! come back after Redis does.

pub mod load;
pub mod model;
pub mod processes;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use self::load::Load;
use self::processes::{App, Redis};

/// The local cache's TTL on both instances.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
/// The example server's store bound (`RedisStoreOptions`' default timeout).
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest recovery allowed, from Redis back to the first 200.
pub const MAX_RECOVERY: Duration = Duration::from_secs(2);

/// The kinds of fault, in the order they are cycled through.
pub const FAULTS: [&str; 4] = ["redis_kill", "redis_freeze", "pubsub_drop", "app_restart"];

/// A soak's settings.
pub struct Soak {
    pub duration: Duration,
    /// Faults of each kind, at least.
    pub faults_per_kind: usize,
    /// The example server's binary (`cargo build --release --example server`).
    pub server: PathBuf,
    /// Where logs, Redis data and `report.json` go.
    pub out: PathBuf,
}

/// `report.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub duration_s: u64,
    pub requests: u64,
    pub faults: BTreeMap<String, u64>,
    pub answers: BTreeMap<String, BTreeMap<String, u64>>,
    pub revoked_accepted: u64,
    pub never_issued_accepted: u64,
    pub valid_answered_401: u64,
    pub unbounded_waits: u64,
    pub panics: u64,
    pub max_recovery_ms: u64,
    pub recoveries_ms: Vec<u64>,
    pub bounds_ms: BTreeMap<String, u64>,
    pub breaches: Vec<String>,
    pub passed: bool,
}

impl Soak {
    /// Runs the soak and returns its report.
    ///
    /// # Errors
    /// When a process cannot be started.
    pub async fn run(&self) -> std::io::Result<Report> {
        std::fs::create_dir_all(&self.out)?;
        let redis = Redis::primary(&self.out)?;
        let _replica = Redis::replica_of(&redis, &self.out)?;
        let first = App::start("app-a", &self.server, &redis.url(), CACHE_TTL, &self.out)?;
        let second = App::start("app-b", &self.server, &redis.url(), CACHE_TTL, &self.out)?;
        let load = Arc::new(Load::new(
            [first.base.clone(), second.base.clone()],
            CACHE_TTL + Duration::from_millis(500),
            STORE_TIMEOUT + Duration::from_millis(1_000),
        ));

        let mut tasks = vec![
            tokio::spawn(load::sign_in(load.clone(), Duration::from_millis(150))),
            tokio::spawn(load::revoke(load.clone(), Duration::from_millis(250))),
        ];
        for worker in 0..4 {
            tasks.push(tokio::spawn(load::use_tokens(load.clone(), worker)));
        }

        let started = Instant::now();
        let faults = self.inject_faults(redis, second, &load, started).await?;
        load.stop.store(true, Ordering::Relaxed);
        load.recovery.close_open(Instant::now());
        for task in tasks {
            if task.await.is_err() {
                load.counters.panics.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(first);
        Ok(self.report(&load, faults, started.elapsed()))
    }

    /// Lands the faults at random moments over the run, each kind in turn; returns how
    /// many of each landed.
    async fn inject_faults(
        &self,
        mut redis: Redis,
        mut app: App,
        load: &Load,
        started: Instant,
    ) -> std::io::Result<BTreeMap<String, u64>> {
        let count = FAULTS.len() * self.faults_per_kind;
        let slot = self.duration / u32::try_from(count + 1).unwrap_or(1);
        let mut landed: BTreeMap<String, u64> = BTreeMap::new();
        let mut dice = started.elapsed().subsec_nanos() | 1;
        for index in 0..count {
            // Somewhere in the middle half of its slot.
            dice ^= dice << 13;
            dice ^= dice >> 17;
            dice ^= dice << 5;
            let jitter = slot / 2 * (dice % 100) / 100;
            let at = slot * u32::try_from(index).unwrap_or(0) + slot / 4 + jitter;
            tokio::time::sleep((at).saturating_sub(started.elapsed())).await;
            let kind = FAULTS[index % FAULTS.len()];
            match kind {
                "redis_kill" => {
                    redis.process.kill();
                    tokio::time::sleep(Duration::from_millis(1_000)).await;
                    redis.process.restart()?;
                    redis.wait_ready(Duration::from_secs(10))?;
                    load.recovery.back_at(Instant::now());
                }
                "redis_freeze" => {
                    redis.process.signal("STOP");
                    tokio::time::sleep(Duration::from_millis(1_500)).await;
                    redis.process.signal("CONT");
                    load.recovery.back_at(Instant::now());
                }
                "pubsub_drop" => {
                    redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"])?;
                }
                _ => app.restart()?,
            }
            *landed.entry(kind.to_owned()).or_default() += 1;
        }
        tokio::time::sleep(self.duration.saturating_sub(started.elapsed())).await;
        Ok(landed)
    }

    fn report(&self, load: &Load, faults: BTreeMap<String, u64>, took: Duration) -> Report {
        let counters = &load.counters;
        let panics = counters.panics.load(Ordering::Relaxed) + self.panics_in_logs();
        let recoveries: Vec<u64> = load
            .recovery
            .times()
            .iter()
            .map(|time| u64::try_from(time.as_millis()).unwrap_or(u64::MAX))
            .collect();
        let max_recovery_ms = recoveries.iter().copied().max().unwrap_or(0);
        let mut report = Report {
            duration_s: took.as_secs(),
            requests: counters.requests.load(Ordering::Relaxed),
            answers: counters.answers(),
            revoked_accepted: counters.revoked_accepted.load(Ordering::Relaxed),
            never_issued_accepted: counters.never_issued_accepted.load(Ordering::Relaxed),
            valid_answered_401: counters.valid_answered_401.load(Ordering::Relaxed),
            unbounded_waits: counters.unbounded_waits.load(Ordering::Relaxed),
            panics,
            max_recovery_ms,
            recoveries_ms: recoveries,
            bounds_ms: BTreeMap::from([
                ("revoked".to_owned(), millis(load.revoked_bound)),
                ("wait".to_owned(), millis(load.wait_bound)),
                ("recovery".to_owned(), millis(MAX_RECOVERY)),
            ]),
            breaches: counters
                .examples
                .lock()
                .map(|examples| examples.clone())
                .unwrap_or_default(),
            passed: false,
            faults,
        };
        report.passed = report.revoked_accepted == 0
            && report.never_issued_accepted == 0
            && report.valid_answered_401 == 0
            && report.unbounded_waits == 0
            && report.panics == 0
            && report.max_recovery_ms < millis(MAX_RECOVERY)
            && FAULTS.iter().all(|kind| {
                report.faults.get(*kind).copied().unwrap_or(0) >= self.faults_per_kind as u64
            });
        report
    }

    /// Panics the app instances logged (`panicked at`).
    fn panics_in_logs(&self) -> u64 {
        ["app-a.log", "app-b.log"]
            .iter()
            .filter_map(|log| std::fs::read_to_string(self.out.join(log)).ok())
            .map(|text| text.matches("panicked at").count() as u64)
            .sum()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
