//! [`ExpiringHashes`]: what an instance keeps in process about tokens, keyed by their hash,
//! each entry with a deadline, and bounded in entries.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::token::{TokenHash, TokenHashState};

/// Shards, so concurrent resolves on several worker threads rarely meet on one lock.
const SHARDS: usize = 16;

/// How long a full shard refuses new entries before it sweeps its expired ones again: a
/// shard full of live entries is not swept on every insert.
const SWEEP_PAUSE: Duration = Duration::from_millis(100);

/// A map from token hashes to values that live until a deadline, holding at most about
/// `max_entries` (each of the 16 shards a sixteenth, rounded up). Reads take a shared lock
/// and run no hash function over the key (it is already a digest, see [`TokenHashState`]).
///
/// When a shard is full, an insert first drops its expired entries (at most once per
/// 100 ms), and is refused if none expired: what is kept is never evicted for what comes,
/// so the bound holds and a flood of new entries only goes uncached.
pub(super) struct ExpiringHashes<V> {
    shards: [RwLock<Shard<V>>; SHARDS],
    max_per_shard: usize,
}

struct Shard<V> {
    map: HashMap<TokenHash, (V, Instant), TokenHashState>,
    /// While full: no sweep before this.
    next_sweep: Option<Instant>,
}

impl<V> ExpiringHashes<V> {
    pub(super) fn new(max_entries: u64) -> Self {
        let max_entries = usize::try_from(max_entries).unwrap_or(usize::MAX);
        Self {
            shards: std::array::from_fn(|_| {
                RwLock::new(Shard {
                    map: HashMap::default(),
                    next_sweep: None,
                })
            }),
            max_per_shard: max_entries.div_ceil(SHARDS),
        }
    }

    fn shard(&self, hash: &TokenHash) -> &RwLock<Shard<V>> {
        // The hash is uniformly random, so its last byte spreads entries evenly.
        &self.shards[usize::from(hash.as_bytes()[31]) % SHARDS]
    }

    /// What `read` returns of the live entry under `hash`.
    pub(super) fn get_with<R>(
        &self,
        hash: &TokenHash,
        now: Instant,
        read: impl FnOnce(&V) -> R,
    ) -> Option<R> {
        let shard = read_lock(self.shard(hash));
        shard
            .map
            .get(hash)
            .filter(|(_, deadline)| *deadline > now)
            .map(|(value, _)| read(value))
    }

    /// Keeps `value` under `hash` until `deadline`. Returns whether it is kept (not when its
    /// shard is full of live entries).
    pub(super) fn insert(
        &self,
        hash: TokenHash,
        value: V,
        deadline: Instant,
        now: Instant,
    ) -> bool {
        let mut shard = write_lock(self.shard(&hash));
        if shard.map.len() >= self.max_per_shard && !shard.map.contains_key(&hash) {
            if shard.next_sweep.is_some_and(|next| now < next) {
                return false;
            }
            // At most one sweep (a pass over the shard under its lock) per pause, whether it
            // frees room or not.
            shard.map.retain(|_, (_, deadline)| *deadline > now);
            shard.next_sweep = now.checked_add(SWEEP_PAUSE);
            if shard.map.len() >= self.max_per_shard {
                return false;
            }
        }
        shard.map.insert(hash, (value, deadline));
        true
    }

    pub(super) fn remove(&self, hash: &TokenHash) {
        write_lock(self.shard(hash)).map.remove(hash);
    }

    pub(super) fn clear(&self) {
        for shard in &self.shards {
            let mut shard = write_lock(shard);
            shard.map.clear();
            shard.next_sweep = None;
        }
    }

    /// The live entries.
    pub(super) fn len(&self, now: Instant) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = read_lock(shard);
                shard
                    .map
                    .values()
                    .filter(|(_, deadline)| *deadline > now)
                    .count()
            })
            .sum()
    }
}

// A panic while holding one of these locks cannot leave a map half-updated (every critical
// section is one map operation), so a poisoned lock is safe to keep using.
fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: usize) -> TokenHash {
        TokenHash::of(&format!("token {n}"))
    }

    #[test]
    fn an_entry_lives_until_its_deadline() {
        let table = ExpiringHashes::new(100);
        let now = Instant::now();
        assert!(table.insert(hash(1), "ada", now + Duration::from_secs(5), now));
        assert_eq!(table.get_with(&hash(1), now, |v| *v), Some("ada"));
        assert_eq!(
            table.get_with(&hash(1), now + Duration::from_secs(5), |v| *v),
            None
        );
        assert_eq!(table.get_with(&hash(2), now, |v| *v), None);
        table.remove(&hash(1));
        assert_eq!(table.get_with(&hash(1), now, |v| *v), None);
    }

    #[test]
    fn a_full_table_keeps_what_it_holds_and_refuses_more_until_entries_expire() {
        let table = ExpiringHashes::new(160);
        let now = Instant::now();
        let soon = now + Duration::from_secs(1);
        let kept = (0..10_000)
            .filter(|n| table.insert(hash(*n), *n, soon, now))
            .count();
        assert_eq!(kept, table.len(now));
        assert!(kept <= 160, "{kept} entries kept past the bound");
        assert!(kept >= 100, "only {kept} of 160 places used");
        // Nothing kept was evicted by the flood.
        let first_kept = (0..10_000).find(|n| table.get_with(&hash(*n), now, |_| ()).is_some());
        assert_eq!(first_kept, Some(0));

        // Once they expire (and the pause after the last sweep is over), new entries are
        // kept again.
        let later = soon + SWEEP_PAUSE;
        assert!(table.insert(hash(20_000), 20_000, later + Duration::from_secs(1), later));
        assert_eq!(table.len(later), 1);
    }

    /// New hashes enough to reach every one of the 16 shards.
    fn newcomers() -> std::ops::Range<usize> {
        100_000..100_400
    }

    /// A table of 16 places, every shard full of entries that live until `deadline`, each
    /// shard swept once at `now` (by a newcomer it refused).
    fn full_and_swept(now: Instant, deadline: Instant) -> ExpiringHashes<usize> {
        let table = ExpiringHashes::new(16);
        let mut n = 0;
        while table.len(now) < 16 {
            table.insert(hash(n), n, deadline, now);
            n += 1;
        }
        assert!(
            newcomers().all(|m| !table.insert(hash(m), m, deadline, now)),
            "a full table took a new entry"
        );
        table
    }

    /// A full shard sweeps at most once per pause: entries that expire within the pause
    /// after a sweep stay until the pause is over, so a flood of inserts into a full table
    /// costs one pass over a shard per 100 ms, not one per insert.
    #[test]
    fn a_full_table_sweeps_at_most_once_per_pause() {
        let now = Instant::now();
        let soon = now + SWEEP_PAUSE / 2;
        let table = full_and_swept(now, soon);

        // The entries have expired, but the pause after the sweep is not over.
        assert_eq!(table.len(soon), 0);
        assert!(
            newcomers().all(|m| !table.insert(hash(m), m, soon + SWEEP_PAUSE * 10, soon)),
            "a full shard swept again within the pause"
        );
        // Once it is, the expired entries are swept and new ones kept.
        let after = now + SWEEP_PAUSE;
        assert!(table.insert(hash(100_000), 1, after + SWEEP_PAUSE, after));
    }

    /// At its deadline an entry is gone for every purpose: reads, the count, and the sweep
    /// that makes room in a full table.
    #[test]
    fn an_entry_is_gone_at_its_deadline_for_reads_counts_and_sweeps() {
        let now = Instant::now();
        let deadline = now + SWEEP_PAUSE;
        let table = full_and_swept(now, deadline);

        assert_eq!(table.get_with(&hash(0), deadline, |_| ()), None);
        assert_eq!(table.len(deadline), 0);
        assert!(
            table.insert(hash(100_000), 1, deadline + SWEEP_PAUSE, deadline),
            "the sweep at the entries' deadline kept them"
        );
    }

    #[test]
    fn clear_drops_everything() {
        let table = ExpiringHashes::new(100);
        let now = Instant::now();
        for n in 0..50 {
            table.insert(hash(n), n, now + Duration::from_secs(5), now);
        }
        table.clear();
        assert_eq!(table.len(now), 0);
    }
}
