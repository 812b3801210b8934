//! [`MemoryStore`]: the embedded token store.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};

#[cfg(doc)]
use super::MAX_TOKENS_PER_SUBJECT;
use super::{
    Lookup, OnLimit, RevocationFeed, Revocations, SignInStore, StoreError, StoreFuture,
    SubjectLimit, TokenStore,
};
use crate::telemetry::metrics::{self, Operation, Stopwatch, StoreName};
use crate::token::{Caller, TokenHash, TokenHashState, TokenKind};

/// Token records are spread over this many locks so concurrent requests rarely wait.
const SHARDS: usize = 16;
/// A map is swept once it has seen at least this many writes, and at least as many writes
/// as it kept at its last sweep: sweeping stays O(1) per write amortized, and the map never
/// holds more than about twice its live entries (plus this many).
const MIN_WRITES_BETWEEN_SWEEPS: usize = 256;

/// The embedded token store: in this process's memory, shared by every clone.
///
/// It is the default of [`TokenRegistry::memory`](crate::TokenRegistry::memory), for a
/// single instance of an app (tokens vanish on restart and are not shared between
/// instances: use `RedisStore` for that). Expiry is enforced on every read, and expired
/// entries are purged as new ones are written, so memory stays bounded under churn
/// without a background task.
///
/// ```
/// use tower_bearer::{TokenRegistry, store::MemoryStore};
///
/// let store = MemoryStore::new();
/// let registry = TokenRegistry::new(store.clone());
/// assert_eq!(store.stored_tokens(), 0);
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

/// One shard of the token records.
type Tokens = Expiring<TokenHash, Held, TokenHashState>;

/// A token record, and when its last use was recorded on the monotonic clock: whether a use
/// is due is then one subtraction, with no wall-clock read on the request path.
struct Held {
    caller: Caller,
    /// `None`: no use recorded yet, so the next resolve records one.
    last_use: Option<Instant>,
}

impl Held {
    fn new(caller: Caller, now: Instant, utc: DateTime<Utc>) -> Self {
        let last_use = caller.last_used_at.and_then(|at| {
            let elapsed = utc
                .signed_duration_since(at)
                .to_std()
                .unwrap_or(Duration::ZERO);
            now.checked_sub(elapsed)
        });
        Self { caller, last_use }
    }

    /// [`Caller::use_is_due`], on the monotonic clock.
    fn use_is_due(&self, now: Instant, every: Duration) -> bool {
        let since_last_use = self
            .last_use
            .map(|last| now.saturating_duration_since(last));
        self.caller.use_is_due_after(since_last_use, every)
    }
}

#[derive(Default)]
struct Shared {
    tokens: [RwLock<Tokens>; SHARDS],
    subjects: Mutex<Expiring<(TokenKind, String), SubjectIndex>>,
    failures: Mutex<Expiring<String, u64>>,
    claims: Mutex<Expiring<String, ()>>,
    /// Every token revoked here is announced on it (the store is its only writer, so it is
    /// always live).
    revocations: RevocationFeed,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many token records the store holds, counting expired ones not yet purged.
    /// Useful as a gauge of memory use.
    pub fn stored_tokens(&self) -> usize {
        self.shared
            .tokens
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn shard(&self, hash: &TokenHash) -> &RwLock<Tokens> {
        // The hash is uniformly random, so its first byte spreads records evenly.
        &self.shared.tokens[usize::from(hash.as_bytes()[0]) % SHARDS]
    }

    fn insert_now(
        &self,
        caller: Caller,
        ttl: Option<Duration>,
        limit: SubjectLimit,
    ) -> Result<Vec<TokenHash>, StoreError> {
        let now = Instant::now();
        // The index keeps the absolute deadline; the record, the earlier of that and the
        // idle one.
        let index_deadline = ttl
            .and_then(|ttl| now.checked_add(ttl))
            .unwrap_or_else(|| never(now));
        let utc = Utc::now();
        let deadline = match caller.idle_expires_at() {
            Some(idle_end) => index_deadline.min(instant_of(idle_end, now, utc)),
            None => index_deadline,
        };
        let hash = caller.token_hash;
        let index_key = (caller.kind, caller.subject.clone());
        write(self.shard(&hash)).insert(hash, Held::new(caller, now, utc), deadline, now);

        // Token first, index second (see TokenStore::insert). The index is updated in place,
        // counted and trimmed under one lock, so concurrent issues never pass the limit.
        let admitted = {
            let mut subjects = lock(&self.shared.subjects);
            let listed = subjects
                .get_mut_with_deadline(&index_key, now)
                .map(|(_, deadline)| *deadline = (*deadline).max(index_deadline))
                .is_some();
            if !listed {
                let index = SubjectIndex::default();
                subjects.insert(index_key.clone(), index, index_deadline, now);
            }
            // Live: just created or extended to outlive this token.
            let Some(index) = subjects.get_mut(&index_key, now) else {
                return Ok(Vec::new());
            };
            index.add(hash, index_deadline, now);
            if index.len() > limit.max() {
                // Entries of tokens that idled out or vanished do not count.
                index.retain(|listed| self.is_live(listed, now));
            }
            let excess = index.len().saturating_sub(limit.max());
            if excess == 0 {
                Ok(Vec::new())
            } else if limit.on_limit() == OnLimit::Refuse {
                index.remove(hash, index_deadline);
                Err(())
            } else {
                Ok(index.take_oldest(excess, hash))
            }
        };
        match admitted {
            Ok(mut evicted) => {
                evicted.retain(|old| write(self.shard(old)).remove_live(old, now).is_some());
                self.shared.revocations.announce(evicted.clone());
                Ok(evicted)
            }
            Err(()) => {
                write(self.shard(&hash)).remove_live(&hash, now);
                Err(StoreError::LimitReached { limit: limit.max() })
            }
        }
    }

    fn is_live(&self, hash: &TokenHash, now: Instant) -> bool {
        let shard = self
            .shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(hash, now).is_some()
    }

    /// The record under `hash`, recording a use now when one is due (see
    /// [`TokenStore::get`]): under a read lock, but for the rare recording.
    fn get_now(&self, hash: &TokenHash, record_use_every: Duration) -> Option<Caller> {
        let now = Instant::now();
        {
            let shard = self
                .shard(hash)
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let held = shard.get(hash, now)?;
            if !held.use_is_due(now, record_use_every) {
                return Some(held.caller.clone());
            }
        }
        let mut shard = write(self.shard(hash));
        let (held, deadline) = shard.get_mut_with_deadline(hash, now)?;
        if held.use_is_due(now, record_use_every) {
            let utc = Utc::now();
            // Milliseconds, as every store keeps them.
            held.caller.last_used_at = Some(utc.trunc_subsecs(3));
            held.last_use = Some(now);
            if let Some(idle_end) = held.caller.idle_expires_at() {
                *deadline = instant_of(idle_end, now, utc);
            }
        }
        Some(held.caller.clone())
    }

    fn read_now(&self, hash: &TokenHash) -> Option<Caller> {
        let shard = self
            .shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(hash, Instant::now())
            .map(|held| held.caller.clone())
    }

    fn remove_now(&self, hash: &TokenHash) -> Option<Caller> {
        let now = Instant::now();
        let (Held { caller, .. }, deadline) = write(self.shard(hash)).take_live(hash, now)?;
        let mut subjects = lock(&self.shared.subjects);
        if let Some(index) = subjects.get_mut(&(caller.kind, caller.subject.clone()), now) {
            index.remove(*hash, deadline);
        }
        drop(subjects);
        self.shared.revocations.announce([*hash]);
        Some(caller)
    }

    fn remove_subject_now(&self, kind: TokenKind, subject: String) -> u64 {
        let now = Instant::now();
        let taken = lock(&self.shared.subjects).take_live(&(kind, subject), now);
        let Some((index, _)) = taken else {
            return 0;
        };
        let removed: Vec<TokenHash> = index
            .hashes()
            .filter(|hash| write(self.shard(hash)).remove_live(hash, now).is_some())
            .copied()
            .collect();
        let count = u64::try_from(removed.len()).unwrap_or(u64::MAX);
        self.shared.revocations.announce(removed);
        count
    }

    fn list_now(&self, kind: TokenKind, subject: String) -> Vec<Caller> {
        let now = Instant::now();
        let key = (kind, subject);
        let hashes: Vec<TokenHash> = {
            let mut subjects = lock(&self.shared.subjects);
            let Some(index) = subjects.get_mut(&key, now) else {
                return Vec::new();
            };
            index.prune(now);
            index.hashes().copied().collect()
        };
        let callers: Vec<Caller> = hashes
            .iter()
            .filter_map(|hash| self.read_now(hash))
            .collect();
        if callers.len() < hashes.len() {
            // Entries of tokens that idled out (their index entry keeps the absolute expiry).
            if let Some(index) = lock(&self.shared.subjects).get_mut(&key, now) {
                index.retain(|hash| self.is_live(hash, now));
            }
        }
        callers
    }

    fn record_failure_now(&self, key: String, window: Duration) -> u64 {
        let now = Instant::now();
        let mut failures = lock(&self.shared.failures);
        let count = failures
            .get(&key, now)
            .copied()
            .unwrap_or(0)
            .saturating_add(1);
        failures.insert(key, count, now + window, now);
        count
    }

    fn claim_once_now(&self, key: String, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut claims = lock(&self.shared.claims);
        if claims.get(&key, now).is_some() {
            return false;
        }
        claims.insert(key, (), now + ttl, now);
        true
    }
}

impl TokenStore for MemoryStore {
    fn insert(
        &self,
        caller: Caller,
        ttl: Option<Duration>,
        limit: SubjectLimit,
    ) -> StoreFuture<Vec<TokenHash>> {
        let issued = timed(Operation::Insert, || self.insert_now(caller, ttl, limit));
        Box::pin(std::future::ready(issued))
    }

    fn get(&self, hash: TokenHash, record_use_every: Duration) -> StoreFuture<Option<Caller>> {
        ready(self.get_now(&hash, record_use_every))
    }

    fn lookup(&self, hash: TokenHash, record_use_every: Duration) -> Lookup<Option<Caller>> {
        // Not timed: a resolve is a map lookup on every request, and two clock reads would
        // cost more than the lookup they measure.
        Lookup::Done(Ok(self.get_now(&hash, record_use_every)))
    }

    fn remove(&self, hash: TokenHash) -> StoreFuture<Option<Caller>> {
        ready(timed(Operation::Remove, || self.remove_now(&hash)))
    }

    fn remove_subject(&self, kind: TokenKind, subject: String) -> StoreFuture<u64> {
        ready(timed(Operation::RemoveSubject, || {
            self.remove_subject_now(kind, subject)
        }))
    }

    fn list(&self, kind: TokenKind, subject: String) -> StoreFuture<Vec<Caller>> {
        ready(timed(Operation::List, || self.list_now(kind, subject)))
    }

    /// Every revocation in this store, announced as it happens.
    fn revocations(&self) -> Option<Revocations> {
        Some(self.shared.revocations.subscribe())
    }
}

impl SignInStore for MemoryStore {
    fn record_failure(&self, key: String, window: Duration) -> StoreFuture<u64> {
        ready(timed(Operation::RecordFailure, || {
            self.record_failure_now(key, window)
        }))
    }

    fn forgive_failure(&self, key: String) -> StoreFuture<()> {
        timed(Operation::ForgiveFailure, || {
            let now = Instant::now();
            let mut failures = lock(&self.shared.failures);
            if let Some(count) = failures.get_mut(&key, now) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    failures.map.remove(&key);
                }
            }
        });
        ready(())
    }

    fn failures(&self, key: String) -> StoreFuture<u64> {
        let count = timed(Operation::Failures, || {
            lock(&self.shared.failures)
                .get(&key, Instant::now())
                .copied()
        });
        ready(count.unwrap_or(0))
    }

    fn clear_failures(&self, key: String) -> StoreFuture<()> {
        timed(Operation::ClearFailures, || {
            lock(&self.shared.failures).map.remove(&key);
        });
        ready(())
    }

    fn claim_once(&self, key: String, ttl: Duration) -> StoreFuture<bool> {
        ready(timed(Operation::ClaimOnce, || {
            self.claim_once_now(key, ttl)
        }))
    }
}

/// Runs one call of a verb, recording its duration in the
/// [metrics](crate::telemetry::metrics) (a memory store never fails).
fn timed<T>(operation: Operation, call: impl FnOnce() -> T) -> T {
    let stopwatch = Stopwatch::start();
    let answer = call();
    metrics::store_call(StoreName::Memory, operation, stopwatch, None);
    answer
}

/// The instant of `at`, a wall-clock time, given that `utc` is `now`.
fn instant_of(at: DateTime<Utc>, now: Instant, utc: DateTime<Utc>) -> Instant {
    let ahead = at
        .signed_duration_since(utc)
        .to_std()
        .unwrap_or(Duration::ZERO);
    now.checked_add(ahead).unwrap_or_else(|| never(now))
}

/// The deadline of a token that lives until removed: a century on, as far as an `Instant`
/// reaches.
fn never(now: Instant) -> Instant {
    [100 * 365, 365, 1]
        .into_iter()
        .find_map(|days| now.checked_add(Duration::from_secs(days * 86_400)))
        .unwrap_or(now)
}

fn ready<T: Send + 'static>(value: T) -> StoreFuture<T> {
    Box::pin(std::future::ready(Ok(value)))
}

// A panic while holding one of these locks cannot leave a map half-updated (every
// critical section is a single map operation), so a poisoned lock is safe to keep using.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// One subject's live tokens, ordered by absolute deadline: expired entries are dropped
/// from the front as the index is written (O(log n) per issue, however many tokens the
/// subject holds), and the limit trims it to at most [`MAX_TOKENS_PER_SUBJECT`].
#[derive(Default)]
struct SubjectIndex {
    by_deadline: BTreeSet<(Instant, TokenHash)>,
}

impl SubjectIndex {
    /// Lists `hash` until `deadline`, after dropping what expired by `now`.
    fn add(&mut self, hash: TokenHash, deadline: Instant, now: Instant) {
        self.prune(now);
        self.by_deadline.insert((deadline, hash));
    }

    fn len(&self) -> usize {
        self.by_deadline.len()
    }

    /// Keeps the entries `keep` says yes to.
    fn retain(&mut self, mut keep: impl FnMut(&TokenHash) -> bool) {
        self.by_deadline.retain(|(_, hash)| keep(hash));
    }

    /// Unlists and returns the `count` entries that expire first, never `spare` (the token
    /// just issued: a short-lived one may sort first).
    fn take_oldest(&mut self, count: usize, spare: TokenHash) -> Vec<TokenHash> {
        let oldest: Vec<(Instant, TokenHash)> = self
            .by_deadline
            .iter()
            .filter(|(_, listed)| *listed != spare)
            .take(count)
            .copied()
            .collect();
        for entry in &oldest {
            self.by_deadline.remove(entry);
        }
        oldest.into_iter().map(|(_, hash)| hash).collect()
    }

    /// Drops the entries of tokens expired by `now`.
    fn prune(&mut self, now: Instant) {
        while self
            .by_deadline
            .first()
            .is_some_and(|(first_deadline, _)| *first_deadline <= now)
        {
            self.by_deadline.pop_first();
        }
    }

    /// Unlists `hash`, listed until `deadline` if it has no idle timeout (then O(log n));
    /// else its record's deadline is not the index's, and the index is searched.
    fn remove(&mut self, hash: TokenHash, deadline: Instant) {
        if !self.by_deadline.remove(&(deadline, hash)) {
            self.by_deadline.retain(|(_, listed)| *listed != hash);
        }
    }

    fn hashes(&self) -> impl Iterator<Item = &TokenHash> {
        self.by_deadline.iter().map(|(_, hash)| hash)
    }
}

/// A map whose entries expire at a deadline, swept as it is written.
struct Expiring<K, V, S = RandomState> {
    map: HashMap<K, (V, Instant), S>,
    writes_since_sweep: usize,
    kept_at_last_sweep: usize,
}

impl<K, V, S: Default> Default for Expiring<K, V, S> {
    fn default() -> Self {
        Self {
            map: HashMap::default(),
            writes_since_sweep: 0,
            kept_at_last_sweep: 0,
        }
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> Expiring<K, V, S> {
    fn len(&self) -> usize {
        self.map.len()
    }

    fn get(&self, key: &K, now: Instant) -> Option<&V> {
        self.map
            .get(key)
            .filter(|(_, deadline)| *deadline > now)
            .map(|(value, _)| value)
    }

    fn get_mut(&mut self, key: &K, now: Instant) -> Option<&mut V> {
        self.map
            .get_mut(key)
            .filter(|(_, deadline)| *deadline > now)
            .map(|(value, _)| value)
    }

    /// The live value under `key` and its deadline, to update both in place.
    fn get_mut_with_deadline(&mut self, key: &K, now: Instant) -> Option<(&mut V, &mut Instant)> {
        self.map
            .get_mut(key)
            .filter(|(_, deadline)| *deadline > now)
            .map(|(value, deadline)| (value, deadline))
    }

    fn insert(&mut self, key: K, value: V, deadline: Instant, now: Instant) {
        self.map.insert(key, (value, deadline));
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= self.kept_at_last_sweep.max(MIN_WRITES_BETWEEN_SWEEPS) {
            self.map.retain(|_, (_, deadline)| *deadline > now);
            self.writes_since_sweep = 0;
            self.kept_at_last_sweep = self.map.len();
        }
    }

    fn remove_live(&mut self, key: &K, now: Instant) -> Option<V> {
        self.take_live(key, now).map(|(value, _)| value)
    }

    fn take_live(&mut self, key: &K, now: Instant) -> Option<(V, Instant)> {
        self.map.remove(key).filter(|(_, deadline)| *deadline > now)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn three_hashes() -> Vec<TokenHash> {
        (0..3)
            .map(|i| TokenHash::of(&format!("token {i}")))
            .collect()
    }

    /// Three tokens of the customer `ada`, built by `caller` from their hash, kept `ttl`.
    fn three_of_ada(
        store: &MemoryStore,
        caller: impl Fn(TokenHash) -> Caller,
        ttl: Option<Duration>,
    ) -> Vec<TokenHash> {
        let hashes = three_hashes();
        for hash in &hashes {
            let stored = store.insert_now(caller(*hash), ttl, SubjectLimit::default());
            assert!(stored.is_ok());
        }
        hashes
    }

    /// How many entries `ada`'s index holds.
    fn indexed_for_ada(store: &MemoryStore) -> usize {
        lock(&store.shared.subjects)
            .get(&(TokenKind::Customer, "ada".to_owned()), Instant::now())
            .map_or(0, SubjectIndex::len)
    }

    /// A revoked token with an idle timeout (whose record's deadline is not its index
    /// entry's) leaves nothing behind in its subject's index.
    #[test]
    fn revoking_a_token_with_an_idle_timeout_unlists_it() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let idling = |hash| {
            Caller::new(
                TokenKind::Customer,
                "ada",
                hash,
                now,
                Some(now + TimeDelta::hours(1)),
            )
            .with_idle_timeout(Duration::from_secs(60))
        };
        let hashes = three_of_ada(&store, idling, Some(Duration::from_secs(3600)));
        for (revoked, hash) in hashes.iter().enumerate() {
            assert!(store.remove_now(hash).is_some());
            assert_eq!(
                indexed_for_ada(&store),
                2 - revoked,
                "only the revoked token is unlisted"
            );
        }
    }

    /// The index of a subject drops the entries of expired tokens as it is written, however
    /// far it is below the limit.
    #[test]
    fn a_subjects_index_drops_expired_entries_as_tokens_are_added() {
        let start = Instant::now();
        let hashes = three_hashes();
        let mut index = SubjectIndex::default();
        index.add(hashes[0], start + Duration::from_secs(1), start);
        index.add(hashes[1], start + Duration::from_secs(2), start);
        assert_eq!(index.len(), 2);
        // At the first one's deadline: it goes, the second stays.
        index.add(
            hashes[2],
            start + Duration::from_secs(60),
            start + Duration::from_secs(1),
        );
        assert_eq!(index.hashes().copied().collect::<Vec<_>>(), hashes[1..]);
    }

    /// Every read of an entry, and its removal, sees it live until its deadline and gone
    /// from the deadline on.
    #[test]
    fn an_entry_is_gone_from_its_deadline_on() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        let before = deadline - Duration::from_millis(1);
        let filled = || {
            let mut map: Expiring<&str, u32> = Expiring::default();
            map.insert("key", 7, deadline, start);
            map
        };
        let mut map = filled();
        for (now, live) in [(start, true), (before, true), (deadline, false)] {
            assert_eq!(map.get(&"key", now).is_some(), live, "get at {now:?}");
            assert_eq!(map.get_mut(&"key", now).is_some(), live, "get_mut");
            assert_eq!(
                map.get_mut_with_deadline(&"key", now).is_some(),
                live,
                "get_mut_with_deadline"
            );
            assert_eq!(filled().take_live(&"key", now).is_some(), live, "take_live");
            assert_eq!(filled().remove_live(&"key", now), live.then_some(7));
        }
        assert_eq!(map.get(&"key", deadline + Duration::from_secs(1)), None);
    }

    /// Expired entries are swept once the map has seen `MIN_WRITES_BETWEEN_SWEEPS` writes
    /// (not before: sweeping is amortized over them), and those whose deadline is the
    /// sweep's instant go with them.
    #[test]
    fn expired_entries_are_swept_every_256_writes_and_not_before() {
        let start = Instant::now();
        let expiry = start + Duration::from_secs(1);
        let later = expiry + Duration::from_secs(1);
        let live_until = later + Duration::from_secs(60);
        let mut map: Expiring<usize, ()> = Expiring::default();
        for key in 0..MIN_WRITES_BETWEEN_SWEEPS - 2 {
            map.insert(key, (), expiry, start);
        }
        map.insert(usize::MAX, (), later, start);
        assert_eq!(map.len(), MIN_WRITES_BETWEEN_SWEEPS - 1, "swept too early");
        // The 256th write, when every entry but it has expired (one of them just now).
        map.insert(usize::MAX - 1, (), live_until, later);
        assert_eq!(map.len(), 1, "the expired entries were not swept");
        assert!(map.get(&(usize::MAX - 1), later).is_some());
    }

    /// A token that lives until revoked is held for a century.
    #[test]
    fn a_token_without_expiry_is_held_for_a_century() {
        let now = Instant::now();
        assert_eq!(
            never(now).duration_since(now),
            Duration::from_secs(100 * 365 * 86_400)
        );
    }

    /// A listing drops the index entries of tokens whose records are gone (idled out), so
    /// they neither count towards the limit nor hold memory.
    #[test]
    fn a_listing_unlists_tokens_whose_records_are_gone() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let lasting = |hash| Caller::new(TokenKind::Customer, "ada", hash, now, None);
        let hashes = three_of_ada(&store, lasting, None);
        // As an idle timeout ends a record before its index entry.
        write(store.shard(&hashes[0])).remove_live(&hashes[0], Instant::now());

        let listed = store.list_now(TokenKind::Customer, "ada".to_owned());
        assert_eq!(listed.len(), 2);
        assert_eq!(
            indexed_for_ada(&store),
            2,
            "the gone token is still listed in the index"
        );
    }
}
