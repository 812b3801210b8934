//! The local cache of a [`RedisStore`](super::RedisStore): resolved tokens kept in process
//! for a few seconds, evicted at once on revocation through Redis pub/sub.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::expiring_hashes::ExpiringHashes;
use crate::store::{RevocationFeed, Revocations};
use crate::telemetry::metrics::{self, CacheLookup};
use crate::token::{Caller, TokenHash};

/// Settings of the local cache of resolved tokens (see
/// [`RedisStoreOptions::with_cache`](super::RedisStoreOptions::with_cache)).
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::store::CacheOptions;
///
/// let cache = CacheOptions::default()
///     .with_ttl(Duration::from_secs(2))
///     .with_max_entries(10_000);
/// assert_eq!(cache.ttl(), Duration::from_secs(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    ttl: Duration,
    max_entries: u64,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(5),
            max_entries: 100_000,
        }
    }
}

impl CacheOptions {
    /// The longest a resolved token is served from memory (default 5 s): the bound on
    /// staleness even if revocation messages are lost. A token is refused once it expires
    /// whatever this is: the registry checks the expiry of every answer, cached or not.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The most entries kept (default 100 000, a few hundred bytes each). A full cache keeps
    /// what it holds and leaves new tokens uncached (resolved in Redis) until entries reach
    /// their TTL: nothing is evicted early, so a burst of new tokens cannot push the hot ones
    /// out.
    pub fn with_max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The time-to-live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The capacity.
    pub fn max_entries(&self) -> u64 {
        self.max_entries
    }
}

/// What a cache is doing, for metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries held (approximate).
    pub entries: u64,
    /// Whether the revocation feed is subscribed, so the cache is in use. While not, every
    /// resolve goes to Redis.
    pub live: bool,
    /// How many times the revocation feed has been (re)subscribed.
    pub subscriptions: u64,
}

/// The steps of [`LocalCache::insert`] that an invalidation may come between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InsertStep {
    /// The epoch was found unchanged since the read; nothing is cached yet.
    Checked,
    /// The entry is cached; the epoch is not yet looked at again.
    Inserted,
}

pub(crate) struct LocalCache {
    entries: ExpiringHashes<Caller>,
    ttl: Duration,
    /// Whether the revocation feed is subscribed; the cache is bypassed while it is not.
    live: AtomicBool,
    /// Bumped by every invalidation, so a resolve that raced one does not cache its answer.
    epoch: AtomicU64,
    subscriptions: AtomicU64,
    /// Every invalidation is announced on it, for the holders of long-lived connections;
    /// it is live exactly while the cache is.
    revocations: RevocationFeed,
}

impl LocalCache {
    pub(crate) fn new(options: CacheOptions) -> Self {
        Self {
            // Entries live for the TTL, not until the token's own expiry: the guard on
            // expiry is the registry's check of every answer (`registry::finish_resolve`),
            // which refuses an expired caller whether it came from here, from Redis or from
            // any other store. An expired token's entry only lingers until its TTL is up.
            entries: ExpiringHashes::new(options.max_entries),
            ttl: options.ttl,
            live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            revocations: {
                let feed = RevocationFeed::new();
                feed.set_live(false);
                feed
            },
        }
    }

    /// A listener of the revocations this cache hears of (this instance's, and those of
    /// every instance through the channel).
    pub(crate) fn revocations(&self) -> Revocations {
        self.revocations.subscribe()
    }

    /// The cached record of `hash`. Counts a bypass (the feed is down: `None`) or a miss (not
    /// held); the store counts a hit once it serves what this returns.
    pub(crate) fn get(&self, hash: &TokenHash) -> Option<Caller> {
        if !self.live.load(Ordering::Acquire) {
            metrics::cache_lookup(CacheLookup::Bypass);
            return None;
        }
        let held = self.entries.get_with(hash, Instant::now(), Caller::clone);
        if held.is_none() {
            metrics::cache_lookup(CacheLookup::Miss);
        }
        held
    }

    /// The epoch to pass to [`LocalCache::insert`] once the store has answered.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches an answer read while the cache was at `epoch`, unless an invalidation came
    /// in between (then the answer may be stale).
    pub(crate) fn insert(&self, caller: Caller, epoch: u64) {
        self.insert_stepwise(caller, epoch, |_| {});
    }

    /// [`LocalCache::insert`], calling `at` after each step that an invalidation may come
    /// between: the seam of the race tests below (a no-op, inlined away, otherwise).
    fn insert_stepwise(&self, caller: Caller, epoch: u64, mut at: impl FnMut(InsertStep)) {
        // The epoch moved since the read: the answer may be stale, so it is not cached,
        // not even for the moment until the look below.
        if !self.live.load(Ordering::Acquire) || self.epoch() != epoch {
            return;
        }
        at(InsertStep::Checked);
        let hash = caller.token_hash;
        let now = Instant::now();
        if let Some(deadline) = now.checked_add(self.ttl) {
            self.entries.insert(hash, caller, deadline, now);
        }
        at(InsertStep::Inserted);
        // An invalidation between the check above and the insert bumped the epoch before
        // removing its hashes: look again, and drop the entry if one may have been missed.
        if self.epoch() != epoch {
            self.entries.remove(&hash);
        }
    }

    pub(crate) fn invalidate(&self, hashes: impl IntoIterator<Item = TokenHash>) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for hash in hashes {
            self.entries.remove(&hash);
            self.revocations.announce([hash]);
        }
    }

    /// The feed is lost: messages may be missed from now on, so nothing cached can be
    /// trusted and nothing new is cached until it is back.
    fn suspend(&self) {
        if self.live.swap(false, Ordering::AcqRel) {
            tracing::warn!("revocation feed lost: token cache bypassed until resubscribed");
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
        self.revocations.set_live(false);
    }

    /// The feed is (re)subscribed: start from an empty cache, since messages may have been
    /// missed while it was down.
    fn resume(&self) {
        self.entries.clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.subscriptions.fetch_add(1, Ordering::AcqRel);
        self.live.store(true, Ordering::Release);
        self.revocations.set_live(true);
        tracing::info!("revocation feed subscribed: token cache in use");
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            entries: u64::try_from(self.entries.len(Instant::now())).unwrap_or(u64::MAX),
            live: self.live.load(Ordering::Acquire),
            subscriptions: self.subscriptions.load(Ordering::Acquire),
        }
    }
}

/// The payload of a revocation message: the revoked hashes in hex, space-separated.
pub(crate) fn revocation_message(hashes: &[TokenHash]) -> String {
    hashes
        .iter()
        .map(TokenHash::to_hex)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the revocation feed may subscribe.
pub(crate) struct FeedNodes {
    /// One client per node that may carry the subscription: the one Redis, the known
    /// nodes of a cluster (a classic `PUBLISH` reaches subscribers on every node of a
    /// cluster, so any one node will do), or the primary and replicas the sentinels named
    /// at start (a `PUBLISH` on a primary reaches the subscribers of its replicas). After a
    /// failure the next one is tried.
    pub(crate) fixed: Vec<redis::Client>,
    /// The node to subscribe on first, as it changes (the primary the sentinels name):
    /// when it changes, the subscription moves there, so a demoted primary that no longer
    /// hears the new one's messages is left at once.
    pub(crate) preferred: Option<tokio::sync::watch::Receiver<Option<redis::Client>>>,
}

impl FeedNodes {
    /// Tried in turn: these nodes.
    pub(crate) fn fixed(nodes: Vec<redis::Client>) -> Self {
        Self {
            fixed: nodes,
            preferred: None,
        }
    }

    /// The node of the `attempt`-th try: the preferred one first, then the fixed ones.
    fn pick(&mut self, attempt: usize) -> Option<redis::Client> {
        let preferred = self
            .preferred
            .as_mut()
            .and_then(|preferred| preferred.borrow_and_update().clone());
        let count = self.fixed.len() + usize::from(preferred.is_some());
        let index = attempt % count.max(1);
        match preferred {
            Some(preferred) if index == 0 => Some(preferred),
            Some(_) => self.fixed.get(index - 1).cloned(),
            None => self.fixed.get(index).cloned(),
        }
    }
}

/// Keeps `cache` subscribed to `channel` for as long as the cache lives: evicts what each
/// message names, suspends the cache whenever the subscription is lost (or stops answering
/// pings, or the preferred node changes), and resubscribes with a short back-off.
pub(crate) async fn follow_revocations(
    mut nodes: FeedNodes,
    channel: String,
    cache: Weak<LocalCache>,
    ping_every: Duration,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0usize;
    loop {
        let Some(node) = nodes.pick(attempt) else {
            return; // no node to subscribe on: the cache stays suspended (bypassed)
        };
        let subscribed = subscribe(&node, &channel, ping_every).await;
        let Some(live) = cache.upgrade() else {
            return; // the store is gone
        };
        let mut moved = false;
        match subscribed {
            Ok((sink, stream)) => {
                live.resume();
                drop(live);
                backoff = FIRST_BACKOFF;
                moved = consume(sink, stream, &cache, ping_every, nodes.preferred.as_mut()).await;
            }
            Err(error) => {
                tracing::debug!(%error, "revocation feed: subscribe failed");
                drop(live);
            }
        }
        match cache.upgrade() {
            Some(live) => live.suspend(),
            None => return,
        }
        if moved {
            // Straight to the new node.
            attempt = 0;
            continue;
        }
        attempt = attempt.wrapping_add(1);
        tokio::time::sleep(backoff).await;
        backoff = next_backoff(backoff);
    }
}

/// The pause before the first resubscription after a failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between resubscriptions: how late, at worst, the cache is back in use
/// after Redis is.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The pause after `backoff` failed: doubled up to [`MAX_BACKOFF`], so a Redis that is down
/// gets fewer and fewer subscription attempts from every instance.
fn next_backoff(backoff: Duration) -> Duration {
    backoff.saturating_mul(2).min(MAX_BACKOFF)
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
) -> redis::RedisResult<(redis::aio::PubSubSink, redis::aio::PubSubStream)> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub.split())
    };
    tokio::time::timeout(timeout, connect)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))
}

/// Applies messages until the subscription ends, a ping goes unanswered, or `preferred`
/// changes (then returns `true`).
async fn consume(
    mut sink: redis::aio::PubSubSink,
    mut stream: redis::aio::PubSubStream,
    cache: &Weak<LocalCache>,
    ping_every: Duration,
    preferred: Option<&mut tokio::sync::watch::Receiver<Option<redis::Client>>>,
) -> bool {
    let mut ticks = tokio::time::interval(ping_every);
    ticks.tick().await;
    let moved = async {
        let changed = match preferred {
            Some(preferred) => preferred.changed().await.is_ok(),
            None => false,
        };
        if !changed {
            // A closed channel (the store is going away) never moves the feed.
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(moved);
    loop {
        tokio::select! {
            () = &mut moved => {
                tracing::info!("revocation feed: the primary changed; subscribing there");
                return true;
            }
            message = stream.next() => {
                let Some(message) = message else { return false };
                let Some(cache) = cache.upgrade() else { return false };
                let payload: String = message.get_payload().unwrap_or_default();
                cache.invalidate(payload.split(' ').filter_map(TokenHash::from_hex));
            }
            _ = ticks.tick() => {
                if cache.strong_count() == 0 {
                    return false;
                }
                let ping = tokio::time::timeout(ping_every, sink.ping::<redis::Value>()).await;
                if !matches!(ping, Ok(Ok(_))) {
                    tracing::warn!("revocation feed: ping unanswered");
                    return false;
                }
            }
        }
    }
}

/// Keeps the cache's subscriber task tied to the store: dropping the last store handle
/// drops the cache, and the task notices at its next message or ping.
pub(crate) fn spawn_follower(
    nodes: FeedNodes,
    channel: String,
    cache: &Arc<LocalCache>,
    ping_every: Duration,
) {
    tokio::spawn(follow_revocations(
        nodes,
        channel,
        Arc::downgrade(cache),
        ping_every,
    ));
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use chrono::{TimeDelta, Utc};

    use super::*;
    use crate::token::TokenKind;

    fn caller(token: &str) -> Caller {
        let now = Utc::now();
        Caller::new(
            TokenKind::Customer,
            "ada",
            TokenHash::of(token),
            now,
            Some(now + TimeDelta::hours(1)),
        )
    }

    /// A cache whose revocation feed is (as if) subscribed.
    fn live_cache() -> LocalCache {
        let cache = LocalCache::new(CacheOptions::default());
        cache.resume();
        cache
    }

    #[test]
    fn an_answer_with_no_invalidation_in_between_is_cached() {
        let cache = live_cache();
        let ada = caller("ada's token");
        let epoch = cache.epoch();
        cache.insert(ada.clone(), epoch);
        assert_eq!(cache.get(&ada.token_hash), Some(ada));
    }

    /// A resolve reads the record, the token is revoked (and evicted), then the resolve
    /// caches what it read: the revoked token must not come back, not even for a moment.
    #[test]
    fn an_answer_read_before_an_invalidation_is_never_cached() {
        let cache = live_cache();
        let ada = caller("ada's token");
        let hash = ada.token_hash;

        let epoch = cache.epoch(); // the resolve reads the record
        cache.invalidate([hash]); // the revocation
        let shown = Cell::new(false);
        cache.insert_stepwise(ada, epoch, |_| {
            shown.set(shown.get() || cache.get(&hash).is_some())
        });

        assert!(
            !shown.get(),
            "the stale answer was visible in the cache meanwhile"
        );
        assert_eq!(cache.get(&hash), None, "the revoked token was cached again");
    }

    /// The revocation comes after the insert has checked the epoch, before it writes: the
    /// look after the write must catch it.
    #[test]
    fn an_invalidation_between_the_check_and_the_insert_drops_the_answer() {
        let cache = live_cache();
        let ada = caller("ada's token");
        let hash = ada.token_hash;

        let epoch = cache.epoch();
        let mut invalidated = false;
        cache.insert_stepwise(ada, epoch, |step| {
            if step == InsertStep::Checked {
                cache.invalidate([hash]);
                invalidated = true;
            }
        });

        assert!(invalidated, "the race was run");
        assert_eq!(cache.get(&hash), None, "the revoked token was cached again");
    }

    #[test]
    fn cache_options_default_to_5_seconds_and_100_000_entries_and_report_what_was_set() {
        let default = CacheOptions::default();
        assert_eq!(
            (default.ttl(), default.max_entries()),
            (Duration::from_secs(5), 100_000)
        );
        let set = default
            .with_ttl(Duration::from_millis(1500))
            .with_max_entries(7);
        assert_eq!(
            (set.ttl(), set.max_entries()),
            (Duration::from_millis(1500), 7)
        );
    }

    #[test]
    fn resubscriptions_back_off_by_doubling_up_to_two_seconds() {
        let pauses: Vec<u128> =
            std::iter::successors(Some(FIRST_BACKOFF), |pause| Some(next_backoff(*pause)))
                .take(8)
                .map(|pause| pause.as_millis())
                .collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(next_backoff(Duration::MAX), MAX_BACKOFF);
    }

    fn client(port: u16) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("a literal URL is valid")
    }

    fn addresses_picked(nodes: &mut FeedNodes, attempts: usize) -> Vec<Option<String>> {
        (0..attempts)
            .map(|attempt| {
                nodes
                    .pick(attempt)
                    .map(|node| node.get_connection_info().addr().to_string())
            })
            .collect()
    }

    /// The feed tries its nodes in turn, the preferred one (the primary the sentinels name)
    /// first whenever there is one, and gives up only when it has no node at all.
    #[test]
    fn the_feed_tries_the_preferred_node_first_then_the_fixed_ones_in_turn() {
        let at = |port: u16| Some(format!("127.0.0.1:{port}"));
        let mut fixed = FeedNodes::fixed(vec![client(7001), client(7002)]);
        assert_eq!(
            addresses_picked(&mut fixed, 5),
            [at(7001), at(7002), at(7001), at(7002), at(7001)]
        );

        let (primary, watched) = tokio::sync::watch::channel(Some(client(7000)));
        let mut followed = FeedNodes {
            fixed: vec![client(7001), client(7002)],
            preferred: Some(watched),
        };
        assert_eq!(
            addresses_picked(&mut followed, 4),
            [at(7000), at(7001), at(7002), at(7000)]
        );
        // No primary named (yet): the fixed nodes only.
        primary.send_replace(None);
        assert_eq!(
            addresses_picked(&mut followed, 3),
            [at(7001), at(7002), at(7001)]
        );

        assert_eq!(
            addresses_picked(&mut FeedNodes::fixed(Vec::new()), 2),
            [None, None]
        );
    }

    #[test]
    fn nothing_is_served_or_cached_while_the_feed_is_down() {
        let cache = live_cache();
        let ada = caller("ada's token");
        cache.insert(ada.clone(), cache.epoch());
        cache.suspend();
        assert_eq!(
            cache.get(&ada.token_hash),
            None,
            "served while the feed is down"
        );
        cache.insert(ada, cache.epoch());
        assert_eq!(cache.stats().entries, 0, "cached while the feed is down");
    }
}
