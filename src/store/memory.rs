//! [`MemoryStore`]: the embedded token store.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::{MAX_TOKENS_PER_SUBJECT, SignInStore, StoreFuture, TokenStore};
use crate::token::{Caller, TokenHash, TokenKind};

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

#[derive(Default)]
struct Shared {
    tokens: [RwLock<Expiring<TokenHash, Caller>>; SHARDS],
    subjects: Mutex<Expiring<(TokenKind, String), SubjectIndex>>,
    failures: Mutex<Expiring<String, u64>>,
    claims: Mutex<Expiring<String, ()>>,
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

    fn shard(&self, hash: &TokenHash) -> &RwLock<Expiring<TokenHash, Caller>> {
        // The hash is uniformly random, so its first byte spreads records evenly.
        &self.shared.tokens[usize::from(hash.as_bytes()[0]) % SHARDS]
    }

    fn insert_now(&self, caller: Caller, ttl: Option<Duration>) {
        let now = Instant::now();
        let deadline = ttl
            .and_then(|ttl| now.checked_add(ttl))
            .unwrap_or_else(|| never(now));
        let hash = caller.token_hash;
        let index_key = (caller.kind, caller.subject.clone());
        write(self.shard(&hash)).insert(hash, caller, deadline, now);

        // Token first, index second (see TokenStore::insert). The index is updated in place:
        // its expired entries are dropped as it is touched, so it holds only live tokens.
        let evicted = {
            let mut subjects = lock(&self.shared.subjects);
            match subjects.get_mut_with_deadline(&index_key, now) {
                Some((index, index_deadline)) => {
                    *index_deadline = (*index_deadline).max(deadline);
                    index.add(hash, deadline, now)
                }
                None => {
                    let mut index = SubjectIndex::default();
                    let evicted = index.add(hash, deadline, now);
                    subjects.insert(index_key, index, deadline, now);
                    evicted
                }
            }
        };
        // Past the ceiling the oldest tokens are revoked, so the index stays exact.
        for old in evicted {
            write(self.shard(&old)).remove_live(&old, now);
        }
    }

    fn get_now(&self, hash: &TokenHash) -> Option<Caller> {
        let shard = self
            .shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(hash, Instant::now()).cloned()
    }

    fn remove_now(&self, hash: &TokenHash) -> Option<Caller> {
        let now = Instant::now();
        let (caller, deadline) = write(self.shard(hash)).take_live(hash, now)?;
        let mut subjects = lock(&self.shared.subjects);
        if let Some(index) = subjects.get_mut(&(caller.kind, caller.subject.clone()), now) {
            index.remove(*hash, deadline);
        }
        Some(caller)
    }

    fn remove_subject_now(&self, kind: TokenKind, subject: String) -> u64 {
        let now = Instant::now();
        let taken = lock(&self.shared.subjects).take_live(&(kind, subject), now);
        let Some((index, _)) = taken else {
            return 0;
        };
        let removed = index
            .hashes()
            .filter(|hash| write(self.shard(hash)).remove_live(hash, now).is_some())
            .count();
        u64::try_from(removed).unwrap_or(u64::MAX)
    }

    fn list_now(&self, kind: TokenKind, subject: String) -> Vec<Caller> {
        let now = Instant::now();
        let hashes: Vec<TokenHash> = {
            let mut subjects = lock(&self.shared.subjects);
            let Some(index) = subjects.get_mut(&(kind, subject), now) else {
                return Vec::new();
            };
            index.prune(now);
            index.hashes().copied().collect()
        };
        hashes
            .iter()
            .filter_map(|hash| self.get_now(hash))
            .collect()
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
    fn insert(&self, caller: Caller, ttl: Option<Duration>) -> StoreFuture<()> {
        self.insert_now(caller, ttl);
        ready(())
    }

    fn get(&self, hash: TokenHash) -> StoreFuture<Option<Caller>> {
        ready(self.get_now(&hash))
    }

    fn remove(&self, hash: TokenHash) -> StoreFuture<Option<Caller>> {
        ready(self.remove_now(&hash))
    }

    fn remove_subject(&self, kind: TokenKind, subject: String) -> StoreFuture<u64> {
        ready(self.remove_subject_now(kind, subject))
    }

    fn list(&self, kind: TokenKind, subject: String) -> StoreFuture<Vec<Caller>> {
        ready(self.list_now(kind, subject))
    }
}

impl SignInStore for MemoryStore {
    fn record_failure(&self, key: String, window: Duration) -> StoreFuture<u64> {
        ready(self.record_failure_now(key, window))
    }

    fn forgive_failure(&self, key: String) -> StoreFuture<()> {
        let now = Instant::now();
        let mut failures = lock(&self.shared.failures);
        if let Some(count) = failures.get_mut(&key, now) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                failures.map.remove(&key);
            }
        }
        ready(())
    }

    fn failures(&self, key: String) -> StoreFuture<u64> {
        let count = lock(&self.shared.failures)
            .get(&key, Instant::now())
            .copied();
        ready(count.unwrap_or(0))
    }

    fn clear_failures(&self, key: String) -> StoreFuture<()> {
        lock(&self.shared.failures).map.remove(&key);
        ready(())
    }

    fn claim_once(&self, key: String, ttl: Duration) -> StoreFuture<bool> {
        ready(self.claim_once_now(key, ttl))
    }
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

/// One subject's live tokens, ordered by deadline: expired entries are dropped from the
/// front as the index is written (O(log n) per issue, however many tokens the subject
/// holds), and it never holds more than [`MAX_TOKENS_PER_SUBJECT`].
#[derive(Default)]
struct SubjectIndex {
    by_deadline: BTreeSet<(Instant, TokenHash)>,
}

impl SubjectIndex {
    /// Lists `hash` until `deadline`, after dropping what expired by `now`. Returns the
    /// oldest entries pushed out past the ceiling, for the caller to revoke.
    fn add(&mut self, hash: TokenHash, deadline: Instant, now: Instant) -> Vec<TokenHash> {
        self.prune(now);
        self.by_deadline.insert((deadline, hash));
        // Past the ceiling, the entries that expire first go, never the one just issued.
        let excess = self
            .by_deadline
            .len()
            .saturating_sub(MAX_TOKENS_PER_SUBJECT);
        let evicted: Vec<(Instant, TokenHash)> = self
            .by_deadline
            .iter()
            .filter(|(_, listed)| *listed != hash)
            .take(excess)
            .copied()
            .collect();
        for entry in &evicted {
            self.by_deadline.remove(entry);
        }
        evicted.into_iter().map(|(_, old)| old).collect()
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

    fn remove(&mut self, hash: TokenHash, deadline: Instant) {
        self.by_deadline.remove(&(deadline, hash));
    }

    fn hashes(&self) -> impl Iterator<Item = &TokenHash> {
        self.by_deadline.iter().map(|(_, hash)| hash)
    }
}

/// A map whose entries expire at a deadline, swept as it is written.
struct Expiring<K, V> {
    map: HashMap<K, (V, Instant)>,
    writes_since_sweep: usize,
    kept_at_last_sweep: usize,
}

impl<K, V> Default for Expiring<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            writes_since_sweep: 0,
            kept_at_last_sweep: 0,
        }
    }
}

impl<K: Eq + Hash, V> Expiring<K, V> {
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
