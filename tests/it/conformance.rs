//! One conformance suite, written once, run against every store: the embedded
//! `MemoryStore`, `RedisStore` on a real `redis-server`, and (feature `cluster`)
//! `RedisStore` on a real local Redis Cluster of three masters.

use std::collections::HashSet;
use std::time::Duration;

use tower_bearer::token::{Lifetimes, Token};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::support::{Make, TestRedis, short_lifetimes, store_suite};

/// A registry and whatever must outlive it (the Redis server).
pub struct Fixture {
    pub registry: TokenRegistry,
    /// Keeps the test's Redis running while the fixture lives.
    _redis: Option<TestRedis>,
}

pub async fn memory(lifetimes: Lifetimes) -> Fixture {
    Fixture {
        registry: TokenRegistry::memory().with_lifetimes(lifetimes),
        _redis: None,
    }
}

pub async fn redis(lifetimes: Lifetimes) -> Fixture {
    let redis = TestRedis::start();
    Fixture {
        registry: redis.registry().await.with_lifetimes(lifetimes),
        _redis: Some(redis),
    }
}

/// On the Redis Cluster the test binary shares (each test keeps to a key prefix of its own).
#[cfg(feature = "cluster")]
pub async fn cluster(lifetimes: Lifetimes) -> Fixture {
    let cluster = crate::support::TestCluster::shared();
    Fixture {
        registry: cluster.registry().await.with_lifetimes(lifetimes),
        _redis: None,
    }
}

store_suite! {
    stores: [memory, redis, #[cfg(feature = "cluster")] cluster],
    cases: [
        issued_token_resolves_to_its_caller,
        lifetimes_are_magentos_by_default,
        unknown_token_resolves_to_none,
        text_of_another_shape_resolves_to_none,
        token_expires_after_its_lifetime,
        revoke_kills_only_that_token,
        revoke_all_kills_every_token_of_the_subject_and_no_other,
        revoke_all_counts_only_live_tokens,
        revoke_all_racing_issues_never_leaves_an_earlier_token_alive,
        concurrent_issues_all_resolve,
        token_issued_on_behalf_records_the_acting_admin,
        failure_counter_counts_clears_and_expires,
        a_forgiven_failure_is_taken_back_and_the_last_one_deletes_the_counter,
        revoke_all_reaches_every_token_of_a_subject_beyond_one_chunk,
        claim_once_is_won_once_per_key_until_its_ttl_passes,
    ],
}

// Ten thousand issues: on the stores with a one-round-trip issue only (the cluster's issue
// takes two, and its index code is the same as one Redis's).
store_suite! {
    stores: [memory_ceiling = memory, redis_ceiling = redis],
    cases: [issuing_past_the_ceiling_revokes_the_subjects_oldest_tokens],
}

async fn issued_token_resolves_to_its_caller(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let issued = registry
        .issue(TokenKind::Customer, "ada@example.com")
        .await
        .unwrap();
    let caller = registry.resolve(issued.token.expose()).await.unwrap();
    assert_eq!(caller.as_ref(), Some(&issued.caller));
    let caller = caller.unwrap();
    assert_eq!(caller.kind, TokenKind::Customer);
    assert_eq!(caller.subject, "ada@example.com");
    assert_eq!(caller.acting_admin, None);
    assert_eq!(caller.token_hash, issued.token.hash());
}

async fn lifetimes_are_magentos_by_default(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    for (kind, hours) in [(TokenKind::Customer, 1), (TokenKind::Admin, 4)] {
        let issued = registry.issue(kind, "someone").await.unwrap();
        let caller = registry
            .resolve(issued.token.expose())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            caller.expires_at.expect("an expiry") - caller.issued_at,
            chrono::Duration::hours(hours)
        );
        let age = chrono::Utc::now() - caller.issued_at;
        assert!(age >= chrono::Duration::zero() && age < chrono::Duration::seconds(5));
    }
}

async fn unknown_token_resolves_to_none(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let never_issued = Token::generate().unwrap();
    assert_eq!(registry.resolve(never_issued.expose()).await.unwrap(), None);
    assert!(!registry.revoke(never_issued.expose()).await.unwrap());
}

async fn text_of_another_shape_resolves_to_none(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let upper = issued.token.expose().to_uppercase();
    for text in ["", "abc", upper.as_str(), "eyJhbGciOiJIUzI1NiJ9.e30.sig"] {
        assert_eq!(registry.resolve(text).await.unwrap(), None, "{text:?}");
    }
}

async fn token_expires_after_its_lifetime(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(short_lifetimes()).await;
    let registry = fixture.registry.clone();
    let customer = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let admin = registry.issue(TokenKind::Admin, "root").await.unwrap();
    assert!(
        registry
            .resolve(customer.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        registry.resolve(customer.token.expose()).await.unwrap(),
        None
    );
    assert!(
        registry
            .resolve(admin.token.expose())
            .await
            .unwrap()
            .is_some(),
        "the admin lifetime (2 s) is separate from the customer one (1 s)"
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(registry.resolve(admin.token.expose()).await.unwrap(), None);
}

async fn revoke_kills_only_that_token(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let first = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let second = registry.issue(TokenKind::Customer, "ada").await.unwrap();

    assert!(registry.revoke(first.token.expose()).await.unwrap());
    assert_eq!(registry.resolve(first.token.expose()).await.unwrap(), None);
    assert!(
        registry
            .resolve(second.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !registry.revoke(first.token.expose()).await.unwrap(),
        "a second revoke finds nothing"
    );
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        1,
        "the revoked token left the subject's index"
    );
}

async fn revoke_all_kills_every_token_of_the_subject_and_no_other(
    make: impl Make<Lifetimes, Fixture>,
) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let mut ada = Vec::new();
    for _ in 0..3 {
        ada.push(registry.issue(TokenKind::Customer, "ada").await.unwrap());
    }
    let bob = registry.issue(TokenKind::Customer, "bob").await.unwrap();
    let ada_admin = registry.issue(TokenKind::Admin, "ada").await.unwrap();

    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        3
    );
    for issued in &ada {
        assert_eq!(registry.resolve(issued.token.expose()).await.unwrap(), None);
    }
    assert!(
        registry
            .resolve(bob.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        registry
            .resolve(ada_admin.token.expose())
            .await
            .unwrap()
            .is_some(),
        "an admin token of the same name is another subject"
    );
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "nobody")
            .await
            .unwrap(),
        0
    );
}

async fn revoke_all_counts_only_live_tokens(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(short_lifetimes()).await;
    let registry = fixture.registry.clone();
    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let live = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        1
    );
    assert_eq!(registry.resolve(live.token.expose()).await.unwrap(), None);
}

async fn revoke_all_racing_issues_never_leaves_an_earlier_token_alive(
    make: impl Make<Lifetimes, Fixture>,
) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let mut earlier = Vec::new();
    for _ in 0..20 {
        earlier.push(registry.issue(TokenKind::Customer, "ada").await.unwrap());
    }

    let racing: Vec<_> = (0..100)
        .map(|_| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.issue(TokenKind::Customer, "ada").await })
        })
        .collect();
    let revoked = registry
        .revoke_all(TokenKind::Customer, "ada")
        .await
        .unwrap();
    let mut racers = Vec::new();
    for task in racing {
        racers.push(task.await.unwrap().unwrap());
    }

    assert!(
        revoked >= 20,
        "at least the 20 earlier tokens were revoked, got {revoked}"
    );
    for issued in &earlier {
        assert_eq!(
            registry.resolve(issued.token.expose()).await.unwrap(),
            None,
            "a token issued before revoke_all survived it"
        );
    }
    // Racers may land on either side of the revoke, but none may escape the index: a second
    // revoke_all kills every one still alive.
    let alive = {
        let mut alive = 0;
        for issued in &racers {
            alive += usize::from(
                registry
                    .resolve(issued.token.expose())
                    .await
                    .unwrap()
                    .is_some(),
            );
        }
        alive
    };
    assert_eq!(
        revoked + alive as u64,
        120,
        "every token is revoked exactly once"
    );
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        alive as u64
    );
    for issued in &racers {
        assert_eq!(registry.resolve(issued.token.expose()).await.unwrap(), None);
    }
}

async fn concurrent_issues_all_resolve(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let kind = if i % 2 == 0 {
                    TokenKind::Customer
                } else {
                    TokenKind::Admin
                };
                registry.issue(kind, format!("user{}", i % 10)).await
            })
        })
        .collect();
    let mut tokens = HashSet::new();
    for task in tasks {
        let issued = task.await.unwrap().unwrap();
        let caller = registry
            .resolve(issued.token.expose())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(caller, issued.caller);
        tokens.insert(issued.token.expose().to_owned());
    }
    assert_eq!(tokens.len(), 200, "every token is distinct");
}

async fn token_issued_on_behalf_records_the_acting_admin(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let issued = registry
        .issue_on_behalf("ada@example.com", "root")
        .await
        .unwrap();
    let caller = registry
        .resolve(issued.token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.kind, TokenKind::Customer);
    assert_eq!(caller.subject, "ada@example.com");
    assert_eq!(caller.acting_admin.as_deref(), Some("root"));
    assert_eq!(
        caller.expires_at.expect("an expiry") - caller.issued_at,
        chrono::Duration::hours(1)
    );
}

async fn failure_counter_counts_clears_and_expires(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let store = registry.sign_in_store().expect("sign-in state");
    let window = Duration::from_secs(1);
    let key = "customer:ada@example.com".to_owned();
    assert_eq!(store.failures(key.clone()).await.unwrap(), 0);
    for expected in 1..=3 {
        assert_eq!(
            store.record_failure(key.clone(), window).await.unwrap(),
            expected
        );
    }
    assert_eq!(store.failures(key.clone()).await.unwrap(), 3);
    assert_eq!(
        store
            .failures("admin:ada@example.com".to_owned())
            .await
            .unwrap(),
        0
    );
    store.clear_failures(key.clone()).await.unwrap();
    assert_eq!(store.failures(key.clone()).await.unwrap(), 0);

    store.record_failure(key.clone(), window).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.record_failure(key.clone(), window).await.unwrap(),
        2,
        "a failure inside the window adds to the count"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.failures(key.clone()).await.unwrap(),
        2,
        "each failure restarts the window"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.failures(key).await.unwrap(),
        0,
        "the window has passed"
    );
}

async fn a_forgiven_failure_is_taken_back_and_the_last_one_deletes_the_counter(
    make: impl Make<Lifetimes, Fixture>,
) {
    let fixture = make(Lifetimes::default()).await;
    let store = fixture.registry.sign_in_store().expect("sign-in state");
    let window = Duration::from_secs(60);
    let key = "customer:forgiven".to_owned();
    store.record_failure(key.clone(), window).await.unwrap();
    store.record_failure(key.clone(), window).await.unwrap();
    store.forgive_failure(key.clone()).await.unwrap();
    assert_eq!(store.failures(key.clone()).await.unwrap(), 1);
    store.forgive_failure(key.clone()).await.unwrap();
    assert_eq!(store.failures(key.clone()).await.unwrap(), 0);
    // Forgiving what is not counted leaves nothing behind: the next failure counts 1.
    store.forgive_failure(key.clone()).await.unwrap();
    assert_eq!(store.record_failure(key, window).await.unwrap(), 1);
}

/// Issues `count` tokens to `subject`, `BATCH` at a time, in the order they are returned.
async fn issue_many(registry: &TokenRegistry, subject: &str, count: usize) -> Vec<Token> {
    const BATCH: usize = 100;
    let mut tokens = Vec::with_capacity(count);
    while tokens.len() < count {
        let batch = BATCH.min(count - tokens.len());
        let issues = (0..batch).map(|_| registry.issue(TokenKind::Customer, subject));
        for issued in futures_util::future::join_all(issues).await {
            tokens.push(issued.unwrap().token);
        }
    }
    tokens
}

async fn revoke_all_reaches_every_token_of_a_subject_beyond_one_chunk(
    make: impl Make<Lifetimes, Fixture>,
) {
    let fixture = make(Lifetimes::default()).await;
    let registry = &fixture.registry;
    // More than two of the Redis store's chunks of 500.
    let tokens = issue_many(registry, "ada", 1_203).await;
    let other = registry.issue(TokenKind::Customer, "bob").await.unwrap();

    let revoked = registry
        .revoke_all(TokenKind::Customer, "ada")
        .await
        .unwrap();
    assert_eq!(revoked, 1_203);
    for token in &tokens {
        assert_eq!(registry.resolve(token.expose()).await.unwrap(), None);
    }
    assert!(
        registry
            .resolve(other.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        0,
        "nothing left listed"
    );
}

async fn issuing_past_the_ceiling_revokes_the_subjects_oldest_tokens(
    make: impl Make<Lifetimes, Fixture>,
) {
    use tower_bearer::store::MAX_TOKENS_PER_SUBJECT;
    // The first token is issued a few milliseconds before the rest, so it expires first.
    let fixture = make(Lifetimes::default()).await;
    let registry = &fixture.registry;
    let first = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut tokens = issue_many(registry, "ada", MAX_TOKENS_PER_SUBJECT - 1).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        registry
            .resolve(first.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    let last = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert_eq!(
        registry.resolve(first.token.expose()).await.unwrap(),
        None,
        "the oldest token made room"
    );
    assert!(
        registry
            .resolve(last.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    tokens.push(last.token);

    // A token that expires before all the others is still never the one evicted.
    let short = tower_bearer::registry::IssueRequest::new(TokenKind::Customer, "ada")
        .with_lifetime(Duration::from_secs(2))
        .unwrap();
    let short = registry.issue_request(short).await.unwrap();
    assert!(
        registry
            .resolve(short.token.expose())
            .await
            .unwrap()
            .is_some(),
        "the token just issued survives the ceiling"
    );

    let revoked = registry
        .revoke_all(TokenKind::Customer, "ada")
        .await
        .unwrap();
    assert_eq!(
        revoked, MAX_TOKENS_PER_SUBJECT as u64,
        "the index stays exact"
    );
}

async fn claim_once_is_won_once_per_key_until_its_ttl_passes(make: impl Make<Lifetimes, Fixture>) {
    let fixture = make(Lifetimes::default()).await;
    let registry = fixture.registry.clone();
    let store = registry.sign_in_store().expect("sign-in state");
    let ttl = Duration::from_secs(1);
    let key = "totp:root:56666667".to_owned();
    assert!(store.claim_once(key.clone(), ttl).await.unwrap());
    assert!(
        !store.claim_once(key.clone(), ttl).await.unwrap(),
        "a second claim loses"
    );
    assert!(
        store
            .claim_once("totp:root:56666668".to_owned(), ttl)
            .await
            .unwrap(),
        "another key is claimed separately"
    );
    assert!(
        !store
            .claim_once(key.clone(), Duration::from_secs(60))
            .await
            .unwrap(),
        "a losing claim does not extend or replace the first"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        store.claim_once(key, ttl).await.unwrap(),
        "the claim has expired"
    );

    // Of concurrent claims of one key, exactly one wins.
    let racing: Vec<_> = (0..50)
        .map(|_| {
            let registry = registry.clone();
            tokio::spawn(async move {
                registry
                    .sign_in_store()
                    .expect("sign-in state")
                    .claim_once("totp:root:raced".to_owned(), Duration::from_secs(60))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for task in racing {
        winners += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
}
