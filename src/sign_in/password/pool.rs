//! The threads that check passwords: few, at a lower OS priority, shared by the process.
//!
//! An Argon2id check costs ~10 ms of CPU and 19 MiB of memory. On tokio's blocking pool a
//! burst of logins would get a thread each (up to 512, gigabytes of memory), and every one
//! would compete with request handling on equal terms. Here at most one check per core runs
//! at a time, on threads at nice 10: under load, requests keep ~90% of each core and logins
//! share the rest; when the machine is idle, logins run at full speed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::telemetry::metrics;

/// Why the pool did not run a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full: too many jobs are waiting.
    Busy,
    /// The thread running the job stopped before answering.
    Interrupted,
}

/// Checks waiting beyond this many per thread are refused at once ([`Refused::Busy`])
/// rather than queued for seconds.
const QUEUED_PER_THREAD: usize = 64;
/// The OS priority of the hashing threads, on the 0..=99 scale of `thread-priority`
/// (22 is nice 10 on Linux).
const PRIORITY: u8 = 22;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of low-priority threads running jobs from a bounded queue.
pub(crate) struct HashingPool {
    jobs: SyncSender<Job>,
    /// Jobs sent and not yet taken by a thread, to tell whether there is room before
    /// committing to a check (the channel itself cannot say).
    waiting: Arc<AtomicUsize>,
    /// Jobs taken by a thread and not yet done, for the metrics.
    running: Arc<AtomicUsize>,
    capacity: usize,
}

impl HashingPool {
    /// Starts `threads` threads with room for `queued` waiting jobs; `None` if no thread
    /// could be started.
    fn start(threads: usize, queued: usize) -> Option<Self> {
        let (jobs, receiver) = sync_channel::<Job>(queued);
        let receiver = Arc::new(Mutex::new(receiver));
        let waiting = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let started = (0..threads)
            .filter(|index| {
                let receiver = Arc::clone(&receiver);
                let waiting = Arc::clone(&waiting);
                let running = Arc::clone(&running);
                std::thread::Builder::new()
                    .name(format!("tower-bearer-argon2-{index}"))
                    .spawn(move || work(&receiver, &waiting, &running))
                    .is_ok()
            })
            .count();
        (started > 0).then_some(Self {
            jobs,
            waiting,
            running,
            capacity: queued,
        })
    }

    /// Whether a check sent now would be queued rather than refused as busy.
    fn has_room(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) < self.capacity
    }

    /// Runs `check` on the pool's threads and waits for it without blocking the runtime.
    async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(check());
        });
        // Counted before sending, so a thread that takes the job at once never sees 0 - 1.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let sent = self.jobs.try_send(job);
        if sent.is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Refused::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(Refused::Interrupted),
        }
        self.report();
        let answer = answer.await.map_err(|_| Refused::Interrupted);
        self.report();
        answer
    }

    /// Sets the gauges of waiting and running checks. The threads set them as they take and
    /// finish jobs; the caller too, so that a recorder local to its thread sees them.
    fn report(&self) {
        report(&self.waiting, &self.running);
    }
}

fn report(waiting: &AtomicUsize, running: &AtomicUsize) {
    metrics::password_checks(
        waiting.load(Ordering::Relaxed),
        running.load(Ordering::Relaxed),
    );
}

fn work(jobs: &Mutex<Receiver<Job>>, waiting: &AtomicUsize, running: &AtomicUsize) {
    let priority = thread_priority::ThreadPriorityValue::try_from(PRIORITY)
        .map(thread_priority::ThreadPriority::Crossplatform);
    if let Ok(priority) = priority
        && let Err(error) = thread_priority::set_current_thread_priority(priority)
    {
        tracing::debug!(?error, "password hashing thread keeps the default priority");
    }
    loop {
        // The lock is held only while waiting for the next job, not while running it.
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => {
                running.fetch_add(1, Ordering::Relaxed);
                waiting.fetch_sub(1, Ordering::Relaxed);
                report(waiting, running);
                job();
                running.fetch_sub(1, Ordering::Relaxed);
                report(waiting, running);
            }
            Err(_) => return, // the pool is gone
        }
    }
}

/// The process's hashing threads (one per core), started on first use; `None` if no thread
/// could be started (then checks run on tokio's blocking pool).
fn pool() -> Option<&'static HashingPool> {
    static POOL: OnceLock<Option<HashingPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let pool = HashingPool::start(threads, threads * QUEUED_PER_THREAD);
        if pool.is_none() {
            tracing::warn!("no password hashing thread could start: using tokio's blocking pool");
        }
        pool
    })
    .as_ref()
}

/// Whether a password check started now would be queued rather than refused with
/// [`Refused::Busy`]. Sign-in asks before it counts an attempt, so that a flood that
/// fills the queue neither counts toward anybody's lockout nor creates counters.
pub(crate) fn has_room() -> bool {
    pool().is_none_or(HashingPool::has_room)
}

/// Runs `check` on the process's hashing threads; on tokio's blocking pool if no thread
/// could be started.
pub(crate) async fn run<T: Send + 'static>(
    check: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refused> {
    match pool() {
        Some(pool) => pool.run(check).await,
        None => tokio::task::spawn_blocking(check)
            .await
            .map_err(|_| Refused::Interrupted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_with_busy() {
        let pool = Arc::new(HashingPool::start(1, 1).unwrap());
        let (release, blocked) = channel::<()>();
        let blocked = Arc::new(Mutex::new(blocked));
        let hold = |blocked: Arc<Mutex<Receiver<()>>>| {
            move || {
                let _ = blocked.lock().unwrap().recv();
            }
        };
        // One job running (waiting to be released), one queued: the queue is full.
        let spawn = |job| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.run(job).await })
        };
        let running = spawn(hold(blocked.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let queued = spawn(hold(blocked.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;

        assert!(!pool.has_room(), "a full queue has no room");
        assert!(matches!(pool.run(|| ()).await, Err(Refused::Busy)));

        release.send(()).unwrap();
        release.send(()).unwrap();
        assert!(running.await.unwrap().is_ok());
        assert!(queued.await.unwrap().is_ok());
        assert!(pool.run(|| ()).await.is_ok(), "room again once drained");
        assert!(pool.has_room());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_nice_10() {
        let pool = HashingPool::start(1, 1).unwrap();
        let nice = pool
            .run(|| {
                // Field 19 of /proc/thread-self/stat is the nice value.
                let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
                let after_name = &stat[stat.rfind(')').unwrap() + 2..];
                after_name.split(' ').nth(16).unwrap().to_owned()
            })
            .await
            .unwrap();
        assert_eq!(nice, "10");
    }
}
