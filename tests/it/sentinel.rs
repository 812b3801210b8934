//! The store behind Redis Sentinel, on real processes: a primary, its replica and three
//! sentinels of the test's own (`support::SentinelSetup`). It works through the sentinels;
//! through a failover (`SENTINEL FAILOVER`, or the primary killed) calls answer an error
//! (503) meanwhile, never a wrong answer, and then go to the new primary without a
//! restart; with `with_replica_acks`, no acknowledged revocation is lost in a failover.
//!
//! The deadlines below only keep a broken run from hanging; nothing here times the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tower_bearer::store::{CacheOptions, RedisStore, RedisStoreOptions, StoreError};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::support::{MASTER, RedisServer, SentinelSetup, wait_until};

/// Far longer than a failover takes here (down after 1 s, the old primary reconfigured
/// some 10 s after a manual failover): only against hangs.
const DEADLINE: Duration = Duration::from_secs(60);

/// Issues a token and revokes another, and waits until the replica has both: what the
/// probe below expects of them is then true on either node.
async fn live_and_revoked(setup: &SentinelSetup, registry: &TokenRegistry) -> (String, String) {
    let live = registry
        .issue(TokenKind::Customer, "ada")
        .await
        .expect("issued");
    let revoked = registry
        .issue(TokenKind::Customer, "bob")
        .await
        .expect("issued");
    assert!(
        registry
            .revoke(revoked.token.expose())
            .await
            .expect("revoked")
    );
    let (live, revoked) = (
        live.token.expose().to_owned(),
        revoked.token.expose().to_owned(),
    );
    let on_replica = setup.registry_on(&setup.replica).await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let live_there = on_replica.resolve(&live).await.expect("replica answers");
        let revoked_there = on_replica.resolve(&revoked).await.expect("replica answers");
        if live_there.is_some() && revoked_there.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "the replica did not catch up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (live, revoked)
}

/// What the probe saw.
#[derive(Debug, Default)]
struct Answers {
    right: u64,
    /// Store errors (503s): fail-closed answers.
    errors: u64,
    wrong: Vec<String>,
    /// From the first error to the last.
    first_error: Option<Instant>,
    last_error: Option<Instant>,
}

/// Resolves a live and a revoked token over and over until stopped, sorting the answers.
struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Answers>,
}

impl Probe {
    fn start(registry: TokenRegistry, live: String, revoked: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut answers = Answers::default();
                while !stop.load(Ordering::SeqCst) {
                    for (token, should_live) in [(&live, true), (&revoked, false)] {
                        match registry.resolve(token).await {
                            Ok(caller) if caller.is_some() == should_live => answers.right += 1,
                            Ok(caller) => answers.wrong.push(format!(
                                "the {} token resolved to {caller:?}",
                                if should_live { "live" } else { "revoked" }
                            )),
                            Err(_) => {
                                answers.errors += 1;
                                let now = Instant::now();
                                answers.first_error.get_or_insert(now);
                                answers.last_error = Some(now);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                answers
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> Answers {
        self.stop.store(true, Ordering::SeqCst);
        let answers = self.task.await.expect("the probe ran");
        let window = answers
            .first_error
            .zip(answers.last_error)
            .map(|(first, last)| last - first);
        eprintln!(
            "probe: {} right, {} errors (503) over {window:?}, {} wrong",
            answers.right,
            answers.errors,
            answers.wrong.len()
        );
        answers
    }
}

/// Waits until every sentinel names `server` as the primary.
async fn until_named(setup: &SentinelSetup, server: &RedisServer) {
    let deadline = Instant::now() + DEADLINE;
    while !setup.all_name(server) {
        assert!(
            Instant::now() < deadline,
            "the sentinels did not name the new primary"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `server` is a replica in sync (the old primary, reconfigured by the
/// sentinels after a manual failover).
async fn until_replica(server: &RedisServer) {
    wait_until(DEADLINE, "the old primary to become a replica", || {
        let replication = server.info("replication");
        replication.contains("role:slave") && replication.contains("master_link_status:up")
    })
    .await;
}

/// Issues through `registry` until a token lands on `new_primary` (the store follows the
/// failover); then revokes it there. Returns how long it took.
async fn issue_and_revoke_on(
    setup: &SentinelSetup,
    registry: &TokenRegistry,
    new_primary: &RedisServer,
) -> Duration {
    let started = Instant::now();
    let on_new = setup.registry_on(new_primary).await;
    let token = loop {
        if let Ok(issued) = registry.issue(TokenKind::Customer, "cy").await {
            let token = issued.token.expose().to_owned();
            if on_new.resolve(&token).await.expect("answers").is_some() {
                break token;
            }
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the store did not follow the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let followed = started.elapsed();
    assert!(
        registry
            .revoke(&token)
            .await
            .expect("revoked on the new primary"),
        "the revocation found the token"
    );
    assert_eq!(on_new.resolve(&token).await.expect("answers"), None);
    assert_eq!(registry.resolve(&token).await.expect("answers"), None);
    followed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_through_the_sentinels() {
    let setup = SentinelSetup::start();
    let urls = setup.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = RedisStore::connect_sentinel(
        &urls,
        MASTER,
        setup.options().with_cache(CacheOptions::default()),
    )
    .await
    .expect("connected through the sentinels");
    assert!(!store.is_cluster());
    let registry = TokenRegistry::new(store.clone());

    let issued = registry
        .issue(TokenKind::Customer, "ada")
        .await
        .expect("issued");
    let token = issued.token.expose();
    let caller = registry.resolve(token).await.expect("answers");
    assert_eq!(caller.map(|caller| caller.subject).as_deref(), Some("ada"));
    // Written on the primary the sentinels name.
    let on_primary = setup.registry_on(&setup.primary).await;
    assert!(on_primary.resolve(token).await.expect("answers").is_some());

    // The revocation feed is subscribed, and a revocation made elsewhere reaches the cache.
    wait_until(Duration::from_secs(10), "the revocation feed", || {
        store.cache_stats().is_some_and(|stats| stats.live)
    })
    .await;
    assert!(registry.resolve(token).await.expect("answers").is_some()); // cached now
    assert!(on_primary.revoke(token).await.expect("revoked"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.resolve(token).await.expect("answers").is_some() {
        assert!(
            Instant::now() < deadline,
            "the revocation did not reach the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let other = registry
        .issue(TokenKind::Customer, "bob")
        .await
        .expect("issued");
    assert!(
        registry
            .revoke(other.token.expose())
            .await
            .expect("revoked")
    );
    assert_eq!(
        registry
            .resolve(other.token.expose())
            .await
            .expect("answers"),
        None
    );
    assert!(
        !registry
            .revoke(other.token.expose())
            .await
            .expect("answers")
    );
}

#[tokio::test]
async fn without_a_reachable_sentinel_connecting_fails_with_a_store_error() {
    let options = RedisStoreOptions::default().with_timeout(Duration::from_millis(300));
    let none = RedisStore::connect_sentinel(&[], MASTER, options.clone()).await;
    assert!(matches!(none, Err(StoreError::Backend(_))), "{none:?}");

    // Nothing listens there (a port just freed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let unreachable = RedisStore::connect_sentinel(&[url.as_str()], MASTER, options).await;
    assert!(unreachable.is_err(), "connected to nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_answers_errors_meanwhile_never_wrong_answers_then_follows() {
    let setup = SentinelSetup::start();
    let registry = setup.registry(setup.options()).await;
    let (live, revoked) = live_and_revoked(&setup, &registry).await;
    let probe = Probe::start(registry.clone(), live.clone(), revoked.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    setup.failover();
    until_named(&setup, &setup.replica).await;
    let followed = issue_and_revoke_on(&setup, &registry, &setup.replica).await;
    eprintln!(
        "failover: sentinels switched after {:?}; store on the new primary {followed:?} later",
        started.elapsed() - followed
    );
    // The old primary is reconfigured as a replica of the new one (its clients dropped):
    // the store stays on the new primary, with the tokens of before.
    until_replica(&setup.primary).await;
    eprintln!(
        "failover: old primary a replica after {:?}",
        started.elapsed()
    );
    issue_and_revoke_on(&setup, &registry, &setup.replica).await;
    assert!(registry.resolve(&live).await.expect("answers").is_some());
    assert_eq!(registry.resolve(&revoked).await.expect("answers"), None);

    let answers = probe.stop().await;
    assert!(
        answers.wrong.is_empty(),
        "wrong answers: {:?}",
        answers.wrong
    );
    assert!(answers.right > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replica_acks_no_acknowledged_revocation_is_lost_in_a_sentinel_failover() {
    let setup = SentinelSetup::start();
    let options = setup
        .options()
        .with_replica_acks(1, Duration::from_millis(300));
    let registry = setup.registry(options).await;
    let mut tokens = Vec::new();
    for index in 0..600 {
        let issued = registry
            .issue(TokenKind::Customer, format!("user{index}"))
            .await
            .expect("issued");
        tokens.push(issued.token.expose().to_owned());
    }
    let on_replica = setup.registry_on(&setup.replica).await;
    let last = tokens.last().cloned().unwrap_or_default();
    let deadline = Instant::now() + DEADLINE;
    while on_replica.resolve(&last).await.expect("answers").is_none() {
        assert!(Instant::now() < deadline, "the replica did not catch up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Acknowledged before the failover...
    let mut tokens = tokens.into_iter();
    let first = tokens.next().unwrap_or_default();
    assert!(registry.revoke(&first).await.expect("acknowledged"));
    let mut acknowledged = vec![first];
    let mut refused = 0u32;

    // ... and all through it: one revocation after another until the old primary is a
    // replica again.
    setup.failover();
    let started = Instant::now();
    let primary = &setup.primary;
    let reconfigured = || {
        let replication = primary.info("replication");
        replication.contains("role:slave") && replication.contains("master_link_status:up")
    };
    let mut done_after = None;
    for token in tokens.by_ref() {
        match registry.revoke(&token).await {
            Ok(true) => acknowledged.push(token),
            Ok(false) => panic!("a live token was not found"),
            Err(_) => refused += 1,
        }
        if done_after.is_none() && reconfigured() && setup.all_name(&setup.replica) {
            done_after = Some(started.elapsed());
        }
        // A few more once settled, to see revocations acknowledged on the new primary.
        if done_after.is_some_and(|after| started.elapsed() > after + Duration::from_secs(1)) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the failover did not settle");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        done_after.is_some(),
        "ran out of tokens before the failover settled"
    );
    eprintln!(
        "replica acks: {} revocations acknowledged, {refused} refused (503) during a \
         failover that settled after {done_after:?}",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > 1,
        "no revocation was acknowledged after the failover"
    );

    // Every acknowledged revocation holds on the new primary.
    let on_new = setup.registry_on(&setup.replica).await;
    for token in &acknowledged {
        assert_eq!(
            on_new.resolve(token).await.expect("answers"),
            None,
            "an acknowledged revocation was lost"
        );
        assert_eq!(registry.resolve(token).await.expect("answers"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_primary_dies_the_store_follows_the_replica_the_sentinels_promote() {
    let mut setup = SentinelSetup::start();
    let registry = setup.registry(setup.options()).await;
    let (live, revoked) = live_and_revoked(&setup, &registry).await;
    let probe = Probe::start(registry.clone(), live.clone(), revoked.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    setup.primary.stop();
    until_named(&setup, &setup.replica).await;
    let followed = issue_and_revoke_on(&setup, &registry, &setup.replica).await;
    eprintln!(
        "primary killed: sentinels switched after {:?}; store on the new primary {followed:?} later",
        started.elapsed() - followed
    );
    assert!(registry.resolve(&live).await.expect("answers").is_some());
    assert_eq!(registry.resolve(&revoked).await.expect("answers"), None);

    let answers = probe.stop().await;
    assert!(
        answers.wrong.is_empty(),
        "wrong answers: {:?}",
        answers.wrong
    );
    assert!(answers.errors > 0, "no error while there was no primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revocation_feed_moves_to_the_new_primary_with_the_store() {
    let setup = SentinelSetup::start();
    let urls = setup.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    // A TTL far beyond the test: only the feed can evict the entry.
    let cache = CacheOptions::default().with_ttl(Duration::from_secs(600));
    let store = RedisStore::connect_sentinel(&urls, MASTER, setup.options().with_cache(cache))
        .await
        .expect("connected through the sentinels");
    let registry = TokenRegistry::new(store.clone());
    wait_until(Duration::from_secs(10), "the revocation feed", || {
        store.cache_stats().is_some_and(|stats| stats.live)
    })
    .await;
    let (token, _) = live_and_revoked(&setup, &registry).await;

    setup.failover();
    until_named(&setup, &setup.replica).await;
    issue_and_revoke_on(&setup, &registry, &setup.replica).await;
    // The feed left the old primary (still a primary, deaf to the new one) for the new one.
    let replica = &setup.replica;
    wait_until(
        Duration::from_secs(10),
        "a subscriber on the new primary",
        || {
            replica
                .cli(&["PUBSUB", "NUMSUB", &format!("{}revoked", setup.prefix)])
                .lines()
                .nth(1)
                .is_some_and(|count| count.trim() != "0")
                && store.cache_stats().is_some_and(|stats| stats.live)
        },
    )
    .await;
    assert!(
        setup.primary.info("replication").contains("role:master"),
        "the old primary was already reconfigured: the test proves nothing"
    );

    // Cached, then revoked by another instance on the new primary: the feed evicts it.
    assert!(registry.resolve(&token).await.expect("answers").is_some());
    let other = setup.registry_on(&setup.replica).await;
    assert!(other.revoke(&token).await.expect("revoked"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.resolve(&token).await.expect("answers").is_some() {
        assert!(
            Instant::now() < deadline,
            "the revocation did not reach the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_primary_hangs_the_store_gives_up_on_it_and_follows_the_promoted_replica() {
    let setup = SentinelSetup::start();
    let options = setup.options().with_timeout(Duration::from_millis(300));
    let registry = setup.registry(options).await;
    let (live, revoked) = live_and_revoked(&setup, &registry).await;
    let probe = Probe::start(registry.clone(), live.clone(), revoked.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Frozen, not dead: its connections stay open and nothing answers on them.
    setup.primary.pause();
    until_named(&setup, &setup.replica).await;
    issue_and_revoke_on(&setup, &registry, &setup.replica).await;
    assert!(registry.resolve(&live).await.expect("answers").is_some());
    assert_eq!(registry.resolve(&revoked).await.expect("answers"), None);
    setup.primary.resume();

    let answers = probe.stop().await;
    assert!(
        answers.wrong.is_empty(),
        "wrong answers: {:?}",
        answers.wrong
    );
    assert!(answers.errors > 0, "no error while the primary hung");
}
