//! What the load generator knows of every token it holds, and the verdict on each answer.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The most tokens kept at once; the oldest are forgotten (never judged again).
const KEPT: usize = 4_000;

/// What a token is, as far as the generator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Issued (the sign-in answered 200) and not revoked.
    Valid,
    /// A revoke of it is in flight: its answers are not judged.
    Revoking,
    /// The revoke answered 200 at this instant.
    Revoked(Instant),
    /// A revoke of it failed or timed out: it may or may not be revoked.
    Uncertain,
}

/// The tokens issued in this run, with their states.
#[derive(Default)]
pub struct Tokens {
    tokens: Mutex<Vec<(String, State)>>,
}

impl Tokens {
    pub fn add(&self, token: String) {
        let mut tokens = lock(&self.tokens);
        if tokens.len() >= KEPT {
            tokens.remove(0);
        }
        tokens.push((token, State::Valid));
    }

    /// A token in `wanted` (any revoked one for `Revoked`), picked with `seed`.
    pub fn pick(&self, wanted: State, seed: u64) -> Option<(String, State)> {
        let tokens = lock(&self.tokens);
        let matching: Vec<&(String, State)> = tokens
            .iter()
            .filter(|(_, state)| match (wanted, state) {
                (State::Revoked(_), State::Revoked(_)) => true,
                (wanted, state) => wanted == *state,
            })
            .collect();
        if matching.is_empty() {
            return None;
        }
        let index = usize::try_from(seed % matching.len() as u64).unwrap_or(0);
        matching
            .get(index)
            .map(|(token, state)| (token.clone(), *state))
    }

    pub fn state(&self, token: &str) -> Option<State> {
        lock(&self.tokens)
            .iter()
            .find(|(held, _)| held == token)
            .map(|(_, state)| *state)
    }

    pub fn set(&self, token: &str, state: State) {
        if let Some(entry) = lock(&self.tokens)
            .iter_mut()
            .find(|(held, _)| held == token)
        {
            entry.1 = state;
        }
    }
}

/// What the generator counts: answers by class and status, and the invariant breaches.
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub revoked_accepted: AtomicU64,
    pub never_issued_accepted: AtomicU64,
    pub valid_answered_401: AtomicU64,
    pub unbounded_waits: AtomicU64,
    pub panics: AtomicU64,
    answers: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// The worst breaches, to print (at most a few).
    pub examples: Mutex<Vec<String>>,
}

impl Counters {
    pub fn answer(&self, class: &str, status: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *lock(&self.answers)
            .entry(class.to_owned())
            .or_default()
            .entry(status.to_owned())
            .or_default() += 1;
    }

    pub fn breach(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut examples = lock(&self.examples);
        if examples.len() < 20 {
            examples.push(what);
        }
    }

    pub fn answers(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        lock(&self.answers).clone()
    }
}

/// When Redis came back from each fault, and how long until the first 200 after it.
#[derive(Default)]
pub struct Recovery {
    awaiting: Mutex<Option<Instant>>,
    times: Mutex<Vec<Duration>>,
}

impl Recovery {
    /// Redis is back as of `at`: the next 200 ends the recovery.
    pub fn back_at(&self, at: Instant) {
        self.close_open(at);
        *lock(&self.awaiting) = Some(at);
    }

    /// A 200 was answered at `at` to a request sent at `sent`.
    pub fn served(&self, sent: Instant, at: Instant) {
        let mut awaiting = lock(&self.awaiting);
        if let Some(back) = *awaiting
            && sent >= back
        {
            lock(&self.times).push(at.saturating_duration_since(back));
            *awaiting = None;
        }
    }

    /// A recovery still open at `now` (another fault, or the end) counts until `now`.
    pub fn close_open(&self, now: Instant) {
        if let Some(back) = lock(&self.awaiting).take() {
            lock(&self.times).push(now.saturating_duration_since(back));
        }
    }

    pub fn times(&self) -> Vec<Duration> {
        lock(&self.times).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
