//! What is particular to Redis Cluster: a subject's tokens spread over several masters, a
//! master going down, and the local cache's revocation feed across nodes. The whole
//! conformance suite also runs on a cluster (see `conformance.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use tower_bearer::registry::IssuedToken;
use tower_bearer::sign_in::{
    Directory, LockoutPolicy, MemoryDirectory, RemoteAssistance, SignInError,
};
use tower_bearer::store::{CacheOptions, RedisStore};
use tower_bearer::token::Token;
use tower_bearer::{SignIn, TokenKind, TokenRegistry};

use crate::support::{
    RedisCluster, TestCluster, assert_unavailable, get_me, get_me_until, lockout_key,
    set_default_user_acl, sha256_hex, time_until_refused, wait_until,
};

/// Issues tokens of `kind` to `subject` until every master holds at least `per_master` of
/// them; returns each token with the port of the master that holds its record.
async fn issue_on_every_master(
    registry: &TokenRegistry,
    cluster: &RedisCluster,
    test: &TestCluster,
    subject: &str,
    per_master: usize,
) -> Vec<(IssuedToken, u16)> {
    let mut issued = Vec::new();
    let mut per_node: HashMap<u16, usize> = HashMap::new();
    for _ in 0..500 {
        let token = registry.issue(TokenKind::Customer, subject).await.unwrap();
        let node = cluster.node_of(test.token_key(&token.token));
        *per_node.entry(node).or_default() += 1;
        issued.push((token, node));
        if cluster
            .ports()
            .iter()
            .all(|port| per_node.get(port).copied().unwrap_or(0) >= per_master)
        {
            return issued;
        }
    }
    panic!("500 tokens and still a master without {per_master} of them: {per_node:?}");
}

fn slot_of(cluster: &RedisCluster, key: impl AsRef<[u8]>) -> u16 {
    let key = key.as_ref();
    let port = cluster.ports()[0];
    let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut connection)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_kills_a_subjects_tokens_on_every_master() {
    let cluster = RedisCluster::shared();
    let test = TestCluster::on(cluster);
    let store = test.store().await;
    assert!(store.is_cluster());
    let registry = TokenRegistry::new(store);

    let ada = issue_on_every_master(&registry, cluster, &test, "ada", 2).await;
    let slots: BTreeSet<u16> = ada
        .iter()
        .map(|(issued, _)| slot_of(cluster, test.token_key(&issued.token)))
        .collect();
    let nodes: BTreeSet<u16> = ada.iter().map(|(_, node)| *node).collect();
    assert_eq!(nodes.len(), 3, "ada's tokens live on all three masters");
    assert!(slots.len() >= 6, "and in many slots: {slots:?}");
    let bob = registry.issue(TokenKind::Customer, "bob").await.unwrap();

    let revoked = registry
        .revoke_all(TokenKind::Customer, "ada")
        .await
        .unwrap();
    assert_eq!(revoked, ada.len() as u64);
    for (issued, node) in &ada {
        assert_eq!(
            registry.resolve(issued.token.expose()).await.unwrap(),
            None,
            "a token on the master at port {node} survived revoke_all"
        );
    }
    assert!(
        registry
            .resolve(bob.token.expose())
            .await
            .unwrap()
            .is_some(),
        "another subject's token is untouched"
    );
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_racing_100_issues_on_another_instance_leaves_no_earlier_token_alive() {
    let cluster = RedisCluster::shared();
    let test = TestCluster::on(cluster);
    let issuer = test.registry().await;
    let revoker = test.registry().await;

    let earlier = issue_on_every_master(&issuer, cluster, &test, "ada", 5).await;
    let racing: Vec<_> = (0..100)
        .map(|_| {
            let issuer = issuer.clone();
            tokio::spawn(async move { issuer.issue(TokenKind::Customer, "ada").await })
        })
        .collect();
    let revoked = revoker
        .revoke_all(TokenKind::Customer, "ada")
        .await
        .unwrap();
    let mut racers = Vec::new();
    for task in racing {
        racers.push(task.await.unwrap().unwrap());
    }

    assert!(revoked >= earlier.len() as u64, "revoked only {revoked}");
    for (issued, node) in &earlier {
        assert_eq!(
            revoker.resolve(issued.token.expose()).await.unwrap(),
            None,
            "a token issued before revoke_all survived it (master at port {node})"
        );
    }
    // Racers land on either side of the revoke, but none escapes the subject's index.
    let mut alive = 0u64;
    for issued in &racers {
        alive += u64::from(
            revoker
                .resolve(issued.token.expose())
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert_eq!(
        revoked + alive,
        earlier.len() as u64 + 100,
        "every token is revoked exactly once"
    );
    assert_eq!(
        revoker
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        alive
    );
    for issued in &racers {
        assert_eq!(revoker.resolve(issued.token.expose()).await.unwrap(), None);
    }
}

/// As on one Redis (`redis_store.rs`), on a cluster, where the deletions go to every
/// master: those on one master fail (an ACL rule there refuses `DEL`, as a timeout or a
/// failover would), the revoke-all fails, and a retry still finds the tokens it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_all_that_fails_halfway_leaves_the_tokens_for_a_retry() {
    // A cluster of its own: the ACL rule would fail the deletions of other tests.
    let cluster = RedisCluster::start();
    let test = TestCluster::on(&cluster);
    let registry = test.registry().await;
    let ada = issue_on_every_master(&registry, &cluster, &test, "ada", 2).await;
    let victim = ada[0].1;
    let victim_url = format!("redis://127.0.0.1:{victim}/");

    set_default_user_acl(&victim_url, "-del").await;
    assert!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .is_err()
    );
    set_default_user_acl(&victim_url, "+del").await;
    for (issued, node) in ada.iter().filter(|(_, node)| *node == victim) {
        assert!(
            registry
                .resolve(issued.token.expose())
                .await
                .unwrap()
                .is_some(),
            "a token on the master at {node} that refused the deletion"
        );
    }

    // The retry still finds them: the failure did not unlist them. (Of the other masters'
    // tokens, the failed attempt may or may not have deleted some: its deletions are
    // concurrent, and given up at the first error.)
    let on_victim = ada.iter().filter(|(_, node)| *node == victim).count() as u64;
    let revoked = registry
        .revoke_all(TokenKind::Customer, "ada")
        .await
        .unwrap();
    assert!(
        (on_victim..=ada.len() as u64).contains(&revoked),
        "the retry revoked {revoked} tokens, {on_victim} of them on the master at {victim}"
    );
    for (issued, node) in &ada {
        assert_eq!(
            registry.resolve(issued.token.expose()).await.unwrap(),
            None,
            "a token on the master at {node} survived the retry"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_counters_are_exact_and_shared_across_instances() {
    let cluster = RedisCluster::shared();
    let test = TestCluster::on(cluster);
    let registries = [test.registry().await, test.registry().await];

    // 200 failures counted concurrently by two instances: not one lost.
    let window = Duration::from_secs(60);
    let counting: Vec<_> = (0..200)
        .map(|i| {
            let registry = registries[i % 2].clone();
            tokio::spawn(async move {
                registry
                    .sign_in_store()
                    .expect("sign-in state")
                    .record_failure("customer:counted".to_owned(), window)
                    .await
            })
        })
        .collect();
    let mut counts = BTreeSet::new();
    for task in counting {
        counts.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(
        counts,
        (1..=200).collect(),
        "each failure got its own count"
    );
    for registry in &registries {
        assert_eq!(
            registry
                .sign_in_store()
                .expect("sign-in state")
                .failures("customer:counted".to_owned())
                .await
                .unwrap(),
            200
        );
    }

    // Two customers whose counters live on different masters.
    let lock_key = |username: &str| {
        format!(
            "{}lock:{}",
            test.prefix,
            lockout_key(TokenKind::Customer, username)
        )
    };
    let ada = "ada@example.com";
    let ada_node = cluster.node_of(lock_key(ada));
    let bob = (0..100)
        .map(|i| format!("bob{i}@example.com"))
        .find(|bob| cluster.node_of(lock_key(bob)) != ada_node)
        .unwrap();
    let directory = MemoryDirectory::new();
    directory
        .add_customer(ada, "s3cret", RemoteAssistance::Denied)
        .unwrap();
    directory
        .add_customer(&bob, "s3cret", RemoteAssistance::Denied)
        .unwrap();
    let directory: Arc<dyn Directory> = Arc::new(directory);
    let lockout = LockoutPolicy::new(6, Duration::from_secs(60)).unwrap();
    let services: Vec<SignIn> = registries
        .iter()
        .map(|registry| {
            SignIn::from_shared(registry.clone(), directory.clone()).with_lockout(lockout)
        })
        .collect();

    let attempts: Vec<_> = (0..10)
        .map(|i| {
            let service = services[i % 2].clone();
            // Both spellings count on one counter.
            let username = if i % 3 == 0 { "ADA@example.com" } else { ada };
            tokio::spawn(async move {
                service
                    .sign_in(TokenKind::Customer, username, "wrong")
                    .await
            })
        })
        .collect();
    for task in attempts {
        assert!(matches!(
            task.await.unwrap(),
            Err(SignInError::InvalidCredentials)
        ));
    }
    let store = registries[0].sign_in_store().expect("sign-in state");
    let failures = |username: &str| store.failures(lockout_key(TokenKind::Customer, username));
    assert_eq!(failures(ada).await.unwrap(), 10);
    for service in &services {
        assert!(
            matches!(
                service.sign_in(TokenKind::Customer, ada, "s3cret").await,
                Err(SignInError::InvalidCredentials)
            ),
            "locked on every instance, even with the right password"
        );
    }
    assert_eq!(failures(ada).await.unwrap(), 12);

    // The other customer, counted on another master, is not locked; a success clears.
    services[0]
        .sign_in(TokenKind::Customer, &bob, "wrong")
        .await
        .unwrap_err();
    assert_eq!(failures(&bob).await.unwrap(), 1);
    services[1]
        .sign_in(TokenKind::Customer, &bob, "s3cret")
        .await
        .unwrap();
    assert_eq!(failures(&bob).await.unwrap(), 0);
}

const BOUND: Duration = Duration::from_millis(300);

/// Not a speed target: a generous ceiling on an outage's answer that only a hang would cross.
const HANG: Duration = Duration::from_secs(2);

/// An unknown token whose record would live on the master at `port`.
fn unknown_token_on(cluster: &RedisCluster, test: &TestCluster, port: u16) -> Token {
    loop {
        let token = Token::generate().unwrap();
        if cluster.node_of(test.token_key(&token)) == port {
            return token;
        }
    }
}

/// Kills one master and checks what every token answers, right after the crash and again
/// once the other masters have marked it failed; then restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_answers_503_for_its_tokens_while_the_others_keep_serving() {
    let mut cluster = RedisCluster::start();
    let test = TestCluster::on(&cluster);
    let registry = TokenRegistry::new(test.store_with(test.options().with_timeout(BOUND)).await);
    let tokens = issue_on_every_master(&registry, &cluster, &test, "ada", 2).await;
    let victim = tokens[0].1;
    let unknown_on_victim = unknown_token_on(&cluster, &test, victim);
    let survivor = cluster
        .ports()
        .into_iter()
        .find(|&port| port != victim)
        .unwrap();
    // Its old key (read too, when the new one holds nothing) away from the victim as well.
    let unknown_elsewhere = loop {
        let token = unknown_token_on(&cluster, &test, survivor);
        if cluster.node_of(test.legacy_token_key(&token)) != victim {
            break token;
        }
    };

    cluster.kill(victim);
    for phase in ["right after the crash", "once the master is marked failed"] {
        if phase.starts_with("once") {
            cluster.wait_until_marked_failed(victim);
        }
        for (issued, node) in &tokens {
            let answer = get_me(&registry, issued.token.expose()).await;
            if *node == victim {
                let what = format!("{phase}, a token on the dead master");
                assert_unavailable(&answer, BOUND + HANG, &what);
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::OK,
                    "{phase}: a token on the live master at {node}"
                );
            }
        }
        let answer = get_me(&registry, unknown_on_victim.expose()).await;
        let what = format!("{phase}, an unknown token on the dead master");
        assert_unavailable(&answer, BOUND + HANG, &what);
        assert_eq!(
            get_me(&registry, unknown_elsewhere.expose()).await.status,
            StatusCode::UNAUTHORIZED,
            "{phase}: an unknown token on a live master"
        );
    }

    // Back from the crash without its data (no persistence): its tokens are simply unknown
    // now, and the same registry, never rebuilt, serves its slots again.
    cluster.restart(victim);
    let deadline = Instant::now() + Duration::from_secs(10);
    for (issued, node) in tokens.iter().filter(|(_, node)| *node == victim) {
        let what = format!("10 s after the master at {node} came back");
        let token = issued.token.expose();
        get_me_until(&registry, token, StatusCode::UNAUTHORIZED, deadline, &what).await;
    }
    let fresh = issue_on_every_master(&registry, &cluster, &test, "ada", 1).await;
    for (issued, _) in &fresh {
        assert_eq!(
            get_me(&registry, issued.token.expose()).await.status,
            StatusCode::OK
        );
    }
}

/// One instance of an app with a local cache, on the cluster behind `urls`.
async fn cached_instance(test: &TestCluster, urls: &[String]) -> (RedisStore, TokenRegistry) {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let options = test
        .options()
        .with_timeout(BOUND)
        .with_cache(CacheOptions::default().with_ttl(Duration::from_secs(30)));
    let store = RedisStore::connect_cluster(&urls, options).await.unwrap();
    wait_until(
        Duration::from_secs(5),
        "the revocation feed is subscribed",
        || store.cache_stats().unwrap().live,
    )
    .await;
    (store.clone(), TokenRegistry::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_on_one_instance_is_refused_by_the_other_within_100_ms() {
    let cluster = RedisCluster::shared();
    let test = TestCluster::on(cluster);
    let (_, a) = cached_instance(&test, &test.urls).await;
    let (b_store, b) = cached_instance(&test, &test.urls).await;

    let ada = issue_on_every_master(&a, cluster, &test, "ada", 1).await;
    let bob = a.issue(TokenKind::Customer, "bob").await.unwrap();
    for issued in ada.iter().map(|(issued, _)| issued).chain([&bob]) {
        assert!(b.resolve(issued.token.expose()).await.unwrap().is_some());
    }
    assert_eq!(b_store.cache_stats().unwrap().entries, ada.len() as u64 + 1);

    // One token.
    let (first, _) = &ada[0];
    assert!(a.revoke(first.token.expose()).await.unwrap());
    let took = time_until_refused(&b, &first.token, Duration::from_millis(100)).await;
    eprintln!("a revoke reached the other instance in {took:?}");

    // All the others of the subject, on every master.
    assert_eq!(
        a.revoke_all(TokenKind::Customer, "ada").await.unwrap(),
        ada.len() as u64 - 1
    );
    for (issued, _) in &ada[1..] {
        time_until_refused(&b, &issued.token, Duration::from_millis(100)).await;
    }
    assert!(
        b.resolve(bob.token.expose()).await.unwrap().is_some(),
        "only the revoked tokens are evicted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revocation_feed_moves_to_another_node_when_its_node_dies() {
    let mut cluster = RedisCluster::start();
    let test = TestCluster::on(&cluster);
    // Revocations are published on the master of the channel's slot: subscribe elsewhere,
    // on the node listed first, and kill that one.
    let publisher = cluster.node_of(format!("{}revoked", test.prefix));
    let mut ports = cluster.ports();
    ports.sort_by_key(|&port| port == publisher);
    let feed_node = ports[0];
    let urls: Vec<String> = ports
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}"))
        .collect();
    let (_, a) = cached_instance(&test, &urls).await;
    let (b_store, b) = cached_instance(&test, &urls).await;

    // A subject whose index, and a token whose record (under both keys), live away from the
    // doomed node.
    let subject = (0..100)
        .map(|i| format!("user{i}"))
        .find(|subject| {
            let index = format!("{}index:customer:{}", test.prefix, sha256_hex(subject));
            cluster.node_of(&index) != feed_node
        })
        .unwrap();
    let issued = loop {
        let issued = a
            .issue(TokenKind::Customer, subject.as_str())
            .await
            .unwrap();
        // Its old key too: a revoked token's refusal reads it (see `with_legacy_keys`).
        if cluster.node_of(test.token_key(&issued.token)) != feed_node
            && cluster.node_of(test.legacy_token_key(&issued.token)) != feed_node
        {
            break issued;
        }
    };
    assert!(b.resolve(issued.token.expose()).await.unwrap().is_some());
    let subscriptions = b_store.cache_stats().unwrap().subscriptions;

    cluster.kill(feed_node);
    wait_until(
        Duration::from_secs(10),
        "the feed is subscribed again, on another node",
        || {
            let stats = b_store.cache_stats().unwrap();
            stats.live && stats.subscriptions > subscriptions
        },
    )
    .await;
    // The cache was emptied when the feed was lost: fill it again, then revoke.
    assert!(b.resolve(issued.token.expose()).await.unwrap().is_some());
    assert_eq!(b_store.cache_stats().unwrap().entries, 1);
    assert!(a.revoke(issued.token.expose()).await.unwrap());
    time_until_refused(&b, &issued.token, Duration::from_millis(100)).await;
}

/// A hung master (SIGSTOP: connections open, nothing answers) costs its tokens the bound,
/// not more, and the other masters' tokens nothing; it serves again once it thaws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_master_answers_503_at_the_bound_while_the_others_keep_serving() {
    let cluster = RedisCluster::start();
    let test = TestCluster::on(&cluster);
    let registry = TokenRegistry::new(test.store_with(test.options().with_timeout(BOUND)).await);
    let tokens = issue_on_every_master(&registry, &cluster, &test, "ada", 2).await;
    let victim = tokens[0].1;

    cluster.pause(victim);
    for (issued, node) in &tokens {
        let answer = get_me(&registry, issued.token.expose()).await;
        if *node == victim {
            assert_unavailable(&answer, BOUND + HANG, "a token on the hung master");
            let elapsed = answer.elapsed;
            assert!(elapsed >= BOUND, "it waited for the bound ({elapsed:?})");
        } else {
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "a token on the live master at {node}"
            );
        }
    }
    cluster.resume(victim);

    let deadline = Instant::now() + Duration::from_secs(10);
    for (issued, _) in &tokens {
        let what = "10 s after the master thawed";
        get_me_until(
            &registry,
            issued.token.expose(),
            StatusCode::OK,
            deadline,
            what,
        )
        .await;
    }
}

/// Tokens issued before keys were raw bytes (records under `token:<hex>`, in other slots than
/// their new keys) still resolve with their use recorded, are listed, and are revoked one by
/// one and all at once, on a cluster too.
#[tokio::test]
async fn records_under_the_old_hex_keys_resolve_list_and_revoke_on_a_cluster() {
    let test = TestCluster::shared();
    let registry = test.registry().await;
    let mut inspect = redis::cluster::ClusterClient::new(test.urls.clone())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let mut issued = Vec::new();
    for _ in 0..3 {
        let token = registry.issue(TokenKind::Customer, "ada").await.unwrap();
        // Where earlier versions wrote it.
        let record: Vec<u8> = redis::cmd("GETDEL")
            .arg(test.token_key(&token.token))
            .query_async(&mut inspect)
            .await
            .unwrap();
        let () = redis::cmd("SET")
            .arg(test.legacy_token_key(&token.token))
            .arg(record)
            .arg("PX")
            .arg(60_000)
            .query_async(&mut inspect)
            .await
            .unwrap();
        issued.push(token);
    }
    for token in &issued {
        let caller = registry.resolve(token.token.expose()).await.unwrap();
        assert!(caller.is_some_and(|caller| caller.last_used_at.is_some()));
    }
    assert_eq!(
        registry
            .list(TokenKind::Customer, "ada")
            .await
            .unwrap()
            .len(),
        3
    );

    assert!(registry.revoke(issued[0].token.expose()).await.unwrap());
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        2
    );
    for token in &issued {
        assert_eq!(registry.resolve(token.token.expose()).await.unwrap(), None);
        let exists: bool = redis::cmd("EXISTS")
            .arg(test.legacy_token_key(&token.token))
            .query_async(&mut inspect)
            .await
            .unwrap();
        assert!(!exists, "the old key of a revoked token is left");
    }
}
