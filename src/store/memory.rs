//! [`MemoryStore`]: the embedded token store.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::{StoreFuture, TokenStore};
use crate::caller::{Caller, TokenKind};
use crate::token::TokenHash;

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
    subjects: Mutex<Expiring<(TokenKind, String), HashMap<TokenHash, Instant>>>,
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

    fn insert_now(&self, caller: Caller, ttl: Duration) {
        let now = Instant::now();
        let deadline = now + ttl;
        let hash = caller.token_hash;
        let index_key = (caller.kind, caller.subject.clone());
        write(self.shard(&hash)).insert(hash, caller, deadline, now);

        let mut subjects = lock(&self.shared.subjects);
        let (hashes, index_deadline) = subjects
            .take_live(&index_key, now)
            .unwrap_or_else(|| (HashMap::new(), now));
        let mut hashes: HashMap<TokenHash, Instant> = hashes
            .into_iter()
            .filter(|(_, token_deadline)| *token_deadline > now)
            .collect();
        hashes.insert(hash, deadline);
        subjects.insert(index_key, hashes, index_deadline.max(deadline), now);
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
        let caller = write(self.shard(hash)).remove_live(hash, now)?;
        let mut subjects = lock(&self.shared.subjects);
        if let Some(hashes) = subjects.get_mut(&(caller.kind, caller.subject.clone()), now) {
            hashes.remove(hash);
        }
        Some(caller)
    }

    fn remove_subject_now(&self, kind: TokenKind, subject: String) -> u64 {
        let now = Instant::now();
        let taken = lock(&self.shared.subjects).take_live(&(kind, subject), now);
        let Some((hashes, _)) = taken else {
            return 0;
        };
        let removed = hashes
            .keys()
            .filter(|hash| write(self.shard(hash)).remove_live(hash, now).is_some())
            .count();
        u64::try_from(removed).unwrap_or(u64::MAX)
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
    fn insert(&self, caller: Caller, ttl: Duration) -> StoreFuture<()> {
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

    fn record_failure(&self, key: String, window: Duration) -> StoreFuture<u64> {
        ready(self.record_failure_now(key, window))
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
