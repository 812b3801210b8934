//! Sessions, written once, run against every store (the embedded `MemoryStore`, `RedisStore`
//! on a real `redis-server`, and with the feature `cluster` on a real Redis Cluster): the
//! listing of a subject's tokens, revoking by id and all but one, the recording of uses,
//! the per-subject limits (sequential and racing issues) and idle timeouts.
//!
//! The factories are the conformance suite's (`crate::conformance`), with [`SessionRules`]
//! set on the registry they build.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, TimeDelta, Utc};
use tower_bearer::registry::{IssueRequest, IssuedToken, SessionRules};
use tower_bearer::store::{OnLimit, StoreError, SubjectLimit};
use tower_bearer::token::{Lifetimes, Token, TokenHash};
use tower_bearer::{Caller, TokenKind, TokenRegistry};

use crate::conformance::{self, Fixture};
use crate::support::{Make, store_suite};

/// What a case asks of its store's factory: lifetimes and session rules.
type Settings = (Lifetimes, SessionRules);

/// `fixture` with `rules` applied to its registry.
fn with_rules(mut fixture: Fixture, rules: SessionRules) -> Fixture {
    fixture.registry = fixture.registry.clone().with_session_rules(rules);
    fixture
}

async fn memory((lifetimes, rules): Settings) -> Fixture {
    with_rules(conformance::memory(lifetimes).await, rules)
}

async fn redis((lifetimes, rules): Settings) -> Fixture {
    with_rules(conformance::redis(lifetimes).await, rules)
}

#[cfg(feature = "cluster")]
async fn cluster((lifetimes, rules): Settings) -> Fixture {
    with_rules(conformance::cluster(lifetimes).await, rules)
}

store_suite! {
    stores: [memory, redis, #[cfg(feature = "cluster")] cluster],
    cases: [
        list_shows_only_the_subjects_live_tokens_newest_first,
        revoke_by_id_revokes_only_within_the_subject,
        revoke_all_but_keeps_exactly_the_given_token,
        last_used_at_is_recorded_at_most_once_per_interval,
        a_revoke_oldest_limit_keeps_the_newest_tokens,
        a_refuse_limit_refuses_past_it_and_keeps_nothing_of_the_refused_token,
        parallel_issues_under_a_revoke_oldest_limit_leave_at_most_the_limit_live,
        parallel_issues_under_a_refuse_limit_admit_exactly_the_limit,
        an_idle_expired_token_does_not_count_against_a_refuse_limit,
        an_idle_expired_token_does_not_count_against_a_revoke_oldest_limit,
        a_token_in_use_outlives_its_idle_timeout_but_never_its_lifetime,
    ],
}

const CUSTOMER: TokenKind = TokenKind::Customer;
const ADMIN: TokenKind = TokenKind::Admin;

fn limit_of(max: usize, on_limit: OnLimit) -> SessionRules {
    SessionRules::default().with_limit(CUSTOMER, SubjectLimit::new(max, on_limit))
}

async fn resolves(registry: &TokenRegistry, token: &Token) -> bool {
    registry.resolve(token.expose()).await.unwrap().is_some()
}

fn hashes(callers: &[Caller]) -> Vec<TokenHash> {
    callers.iter().map(|caller| caller.token_hash).collect()
}

/// Issues `count` customer tokens to `subject` one after the other, a few milliseconds
/// apart, so each is issued (and expires) at an instant of its own: "newest" and "oldest"
/// are then unambiguous.
async fn issue_apart(registry: &TokenRegistry, subject: &str, count: usize) -> Vec<IssuedToken> {
    let mut issued = Vec::with_capacity(count);
    for _ in 0..count {
        tokio::time::sleep(Duration::from_millis(5)).await;
        issued.push(registry.issue(CUSTOMER, subject).await.unwrap());
    }
    issued
}

/// `count` issues of customer tokens to `subject`, all at once on the runtime's threads.
async fn issue_in_parallel(
    registry: &TokenRegistry,
    subject: &str,
    count: usize,
) -> Vec<Result<IssuedToken, StoreError>> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let registry = registry.clone();
            let subject = subject.to_owned();
            tokio::spawn(async move { registry.issue(CUSTOMER, subject).await })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[track_caller]
fn assert_limit_reached<T: std::fmt::Debug>(result: Result<T, StoreError>, limit: usize) {
    match result {
        Err(StoreError::LimitReached { limit: reported }) => assert_eq!(reported, limit),
        other => panic!("expected LimitReached {{ limit: {limit} }}, got {other:?}"),
    }
}

async fn list_shows_only_the_subjects_live_tokens_newest_first(make: impl Make<Settings, Fixture>) {
    let fixture = make((Lifetimes::default(), SessionRules::default())).await;
    let registry = &fixture.registry;
    let short = IssueRequest::new(CUSTOMER, "ada")
        .with_lifetime(Duration::from_secs(1))
        .unwrap();
    let short = registry.issue_request(short).await.unwrap();
    let revoked = registry.issue(CUSTOMER, "ada").await.unwrap();
    let live: Vec<Caller> = issue_apart(registry, "ada", 3)
        .await
        .into_iter()
        .map(|issued| issued.caller)
        .collect();
    let bob = registry.issue(CUSTOMER, "bob").await.unwrap();
    let ada_admin = registry.issue(ADMIN, "ada").await.unwrap();
    assert!(registry.revoke(revoked.token.expose()).await.unwrap());

    let newest_first: Vec<Caller> = live.iter().rev().cloned().collect();
    let mut expected = newest_first.clone();
    expected.push(short.caller.clone());
    assert_eq!(
        registry.list(CUSTOMER, "ada").await.unwrap(),
        expected,
        "ada's customer tokens as issued, newest first, without the revoked one"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!resolves(registry, &short.token).await);
    assert_eq!(
        registry.list(CUSTOMER, "ada").await.unwrap(),
        newest_first,
        "the expired token is no longer listed"
    );
    assert_eq!(
        registry.list(ADMIN, "ada").await.unwrap(),
        [ada_admin.caller],
        "an admin of the same name is another subject"
    );
    assert_eq!(registry.list(CUSTOMER, "bob").await.unwrap(), [bob.caller]);
    assert!(registry.list(CUSTOMER, "nobody").await.unwrap().is_empty());
}

async fn revoke_by_id_revokes_only_within_the_subject(make: impl Make<Settings, Fixture>) {
    let fixture = make((Lifetimes::default(), SessionRules::default())).await;
    let registry = &fixture.registry;
    let first = registry.issue(CUSTOMER, "ada").await.unwrap();
    let second = registry.issue(CUSTOMER, "ada").await.unwrap();
    let bob = registry.issue(CUSTOMER, "bob").await.unwrap();
    let ada_admin = registry.issue(ADMIN, "ada").await.unwrap();
    let id = |issued: &IssuedToken| issued.caller.token_id().as_str().to_owned();

    for (kind, subject, token_id, what) in [
        (CUSTOMER, "ada", id(&bob), "bob's token, asked as ada"),
        (CUSTOMER, "bob", id(&first), "ada's token, asked as bob"),
        (
            CUSTOMER,
            "ada",
            id(&ada_admin),
            "ada's admin token, asked as a customer",
        ),
        (
            ADMIN,
            "ada",
            id(&first),
            "ada's customer token, asked as an admin",
        ),
        (
            CUSTOMER,
            "ada",
            "000000000000".to_owned(),
            "an id of nothing",
        ),
    ] {
        assert!(
            !registry
                .revoke_by_id(kind, subject, &token_id)
                .await
                .unwrap(),
            "{what}: nothing revoked"
        );
    }
    for issued in [&first, &second, &bob, &ada_admin] {
        assert!(
            resolves(registry, &issued.token).await,
            "no token was revoked by an id outside its subject"
        );
    }

    assert!(
        registry
            .revoke_by_id(CUSTOMER, "ada", &id(&first))
            .await
            .unwrap()
    );
    assert!(!resolves(registry, &first.token).await);
    for issued in [&second, &bob, &ada_admin] {
        assert!(resolves(registry, &issued.token).await);
    }
    assert!(
        !registry
            .revoke_by_id(CUSTOMER, "ada", &id(&first))
            .await
            .unwrap(),
        "a revoked token is revoked once"
    );
    assert_eq!(
        registry.list(CUSTOMER, "ada").await.unwrap(),
        [second.caller]
    );
}

async fn revoke_all_but_keeps_exactly_the_given_token(make: impl Make<Settings, Fixture>) {
    let fixture = make((Lifetimes::default(), SessionRules::default())).await;
    let registry = &fixture.registry;
    let ada = issue_apart(registry, "ada", 4).await;
    let bob = registry.issue(CUSTOMER, "bob").await.unwrap();
    let ada_admin = registry.issue(ADMIN, "ada").await.unwrap();
    assert!(registry.revoke(ada[0].token.expose()).await.unwrap());
    let keep = &ada[2];

    let revoked = registry
        .revoke_all_but(CUSTOMER, "ada", keep.token.hash())
        .await
        .unwrap();
    assert_eq!(
        revoked, 2,
        "the two other live tokens; the one revoked before is not counted"
    );
    for (at, issued) in ada.iter().enumerate() {
        assert_eq!(
            resolves(registry, &issued.token).await,
            at == 2,
            "token {at}: only the kept one is live"
        );
    }
    assert!(resolves(registry, &bob.token).await, "another subject's");
    assert!(resolves(registry, &ada_admin.token).await, "another kind's");
    assert_eq!(
        registry.list(CUSTOMER, "ada").await.unwrap(),
        std::slice::from_ref(&keep.caller)
    );
    assert_eq!(
        registry
            .revoke_all_but(CUSTOMER, "ada", keep.token.hash())
            .await
            .unwrap(),
        0,
        "nothing left to revoke"
    );
    assert!(resolves(registry, &keep.token).await);
}

async fn last_used_at_is_recorded_at_most_once_per_interval(make: impl Make<Settings, Fixture>) {
    let rules = SessionRules::default()
        .with_last_used_interval(Duration::from_secs(1))
        .unwrap();
    let fixture = make((Lifetimes::default(), rules)).await;
    let registry = &fixture.registry;
    let unused = registry.issue(CUSTOMER, "ada").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let used = registry.issue(CUSTOMER, "ada").await.unwrap();
    let issued_at = used.caller.issued_at;
    assert_eq!(
        used.caller.last_used_at,
        Some(issued_at),
        "the sign-in is the first use"
    );

    let caller = registry
        .resolve(used.token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        caller.last_used_at,
        Some(issued_at),
        "a use within the interval of the last is not recorded"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = Utc::now().trunc_subsecs(3);
    let caller = registry
        .resolve(used.token.expose())
        .await
        .unwrap()
        .unwrap();
    let after = Utc::now();
    let recorded = caller
        .last_used_at
        .expect("a use was recorded an interval later");
    assert!(
        recorded >= issued_at + TimeDelta::seconds(1) && before <= recorded && recorded <= after,
        "the use was recorded when it happened: {recorded} (issued {issued_at}, resolved \
         between {before} and {after})"
    );
    let listed = registry.list(CUSTOMER, "ada").await.unwrap();
    assert_eq!(hashes(&listed), [used.token.hash(), unused.token.hash()]);
    assert_eq!(
        listed[0].last_used_at,
        Some(recorded),
        "the listing shows it"
    );
    assert_eq!(
        listed[1].last_used_at,
        Some(unused.caller.issued_at),
        "an unused token shows its sign-in"
    );

    for _ in 0..5 {
        let caller = registry
            .resolve(used.token.expose())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            caller.last_used_at,
            Some(recorded),
            "no other use is recorded within the interval"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = registry.list(CUSTOMER, "ada").await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(recorded));
}

async fn a_revoke_oldest_limit_keeps_the_newest_tokens(make: impl Make<Settings, Fixture>) {
    let fixture = make((Lifetimes::default(), limit_of(3, OnLimit::RevokeOldest))).await;
    let registry = &fixture.registry;
    let ada = issue_apart(registry, "ada", 5).await;
    for (at, issued) in ada.iter().enumerate() {
        assert_eq!(
            resolves(registry, &issued.token).await,
            at >= 2,
            "token {at} of 5: the 3 newest are live, the 2 oldest revoked"
        );
    }
    let newest_first: Vec<Caller> = ada[2..].iter().rev().map(|i| i.caller.clone()).collect();
    assert_eq!(registry.list(CUSTOMER, "ada").await.unwrap(), newest_first);

    // The limit is per subject and per kind.
    let bob = registry.issue(CUSTOMER, "bob").await.unwrap();
    let mut admins = Vec::new();
    for _ in 0..4 {
        admins.push(registry.issue(ADMIN, "ada").await.unwrap());
    }
    assert!(resolves(registry, &bob.token).await);
    for issued in &admins {
        assert!(
            resolves(registry, &issued.token).await,
            "admin tokens have no limit"
        );
    }
    assert_eq!(registry.list(CUSTOMER, "ada").await.unwrap(), newest_first);

    // The token just issued is never the one revoked, even when it expires first.
    tokio::time::sleep(Duration::from_millis(5)).await; // issued at an instant of its own
    let short = IssueRequest::new(CUSTOMER, "ada")
        .with_lifetime(Duration::from_secs(2))
        .unwrap();
    let short = registry.issue_request(short).await.unwrap();
    assert!(resolves(registry, &short.token).await, "the new token");
    assert!(
        !resolves(registry, &ada[2].token).await,
        "the oldest of the others made room"
    );
    assert_eq!(
        hashes(&registry.list(CUSTOMER, "ada").await.unwrap()),
        [short.token.hash(), ada[4].token.hash(), ada[3].token.hash()]
    );
}

async fn a_refuse_limit_refuses_past_it_and_keeps_nothing_of_the_refused_token(
    make: impl Make<Settings, Fixture>,
) {
    let fixture = make((Lifetimes::default(), limit_of(3, OnLimit::Refuse))).await;
    let registry = &fixture.registry;
    let ada = issue_apart(registry, "ada", 3).await;
    assert_limit_reached(registry.issue(CUSTOMER, "ada").await, 3);

    let newest_first: Vec<Caller> = ada.iter().rev().map(|i| i.caller.clone()).collect();
    assert_eq!(
        registry.list(CUSTOMER, "ada").await.unwrap(),
        newest_first,
        "the existing sessions win, untouched"
    );
    for issued in &ada {
        assert!(resolves(registry, &issued.token).await);
    }
    assert!(
        registry.issue(CUSTOMER, "bob").await.is_ok(),
        "another subject"
    );
    assert!(registry.issue(ADMIN, "ada").await.is_ok(), "another kind");

    // Room for exactly one more once one is revoked.
    assert!(registry.revoke(ada[0].token.expose()).await.unwrap());
    let next = issue_apart(registry, "ada", 1).await.remove(0);
    assert!(resolves(registry, &next.token).await);
    assert_limit_reached(registry.issue(CUSTOMER, "ada").await, 3);
    assert_eq!(
        hashes(&registry.list(CUSTOMER, "ada").await.unwrap()),
        [next.token.hash(), ada[2].token.hash(), ada[1].token.hash()]
    );
    assert_eq!(
        registry.revoke_all(CUSTOMER, "ada").await.unwrap(),
        3,
        "no record of a refused token was left behind to revoke"
    );
}

async fn parallel_issues_under_a_revoke_oldest_limit_leave_at_most_the_limit_live(
    make: impl Make<Settings, Fixture>,
) {
    let fixture = make((Lifetimes::default(), limit_of(3, OnLimit::RevokeOldest))).await;
    let registry = &fixture.registry;
    let racers: Vec<IssuedToken> = issue_in_parallel(registry, "ada", 20)
        .await
        .into_iter()
        .map(|result| result.expect("a revoke-oldest limit never refuses an issue"))
        .collect();

    let mut live = HashSet::new();
    for issued in &racers {
        if resolves(registry, &issued.token).await {
            live.insert(issued.token.hash());
        }
    }
    assert!(
        (1..=3).contains(&live.len()),
        "{} of 20 racing tokens live, limit 3",
        live.len()
    );
    let listed: HashSet<TokenHash> = hashes(&registry.list(CUSTOMER, "ada").await.unwrap())
        .into_iter()
        .collect();
    assert_eq!(listed, live, "the listing shows exactly the live tokens");

    // The race left the count exact: three more issues are the subject's three live tokens.
    let after = issue_apart(registry, "ada", 3).await;
    let newest_first: Vec<TokenHash> = after.iter().rev().map(|i| i.token.hash()).collect();
    assert_eq!(
        hashes(&registry.list(CUSTOMER, "ada").await.unwrap()),
        newest_first
    );
    for issued in &after {
        assert!(resolves(registry, &issued.token).await);
    }
    for issued in &racers {
        assert!(!resolves(registry, &issued.token).await);
    }
}

async fn parallel_issues_under_a_refuse_limit_admit_exactly_the_limit(
    make: impl Make<Settings, Fixture>,
) {
    let fixture = make((Lifetimes::default(), limit_of(3, OnLimit::Refuse))).await;
    let registry = &fixture.registry;
    let mut admitted = Vec::new();
    for result in issue_in_parallel(registry, "ada", 20).await {
        match result {
            Ok(issued) => admitted.push(issued),
            refused => assert_limit_reached(refused, 3),
        }
    }
    assert_eq!(
        admitted.len(),
        3,
        "from no token, exactly the limit of 20 racing issues is admitted"
    );
    for issued in &admitted {
        assert!(
            resolves(registry, &issued.token).await,
            "an admitted token is live"
        );
    }
    let listed: HashSet<TokenHash> = hashes(&registry.list(CUSTOMER, "ada").await.unwrap())
        .into_iter()
        .collect();
    let admitted_hashes: HashSet<TokenHash> = admitted.iter().map(|i| i.token.hash()).collect();
    assert_eq!(listed, admitted_hashes);
    assert_limit_reached(registry.issue(CUSTOMER, "ada").await, 3);
    assert_eq!(registry.revoke_all(CUSTOMER, "ada").await.unwrap(), 3);
}

async fn an_idle_expired_token_does_not_count_against_a_refuse_limit(
    make: impl Make<Settings, Fixture>,
) {
    let rules = limit_of(2, OnLimit::Refuse)
        .with_idle_timeout(CUSTOMER, Duration::from_secs(1))
        .unwrap();
    let fixture = make((Lifetimes::default(), rules)).await;
    let registry = &fixture.registry;
    let idle = registry.issue(CUSTOMER, "ada").await.unwrap();
    let in_use = registry.issue(CUSTOMER, "ada").await.unwrap();
    assert_limit_reached(registry.issue(CUSTOMER, "ada").await, 2);

    // One token in use (a use is recorded every quarter of the idle timeout), the other
    // left alone past its idle timeout.
    let until = Instant::now() + Duration::from_millis(1300);
    while Instant::now() < until {
        assert!(resolves(registry, &in_use.token).await, "in use");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!resolves(registry, &idle.token).await, "idled out");

    let next = registry
        .issue(CUSTOMER, "ada")
        .await
        .expect("the idle-expired token no longer counts");
    assert_eq!(
        hashes(&registry.list(CUSTOMER, "ada").await.unwrap()),
        [next.token.hash(), in_use.token.hash()]
    );
    assert_limit_reached(registry.issue(CUSTOMER, "ada").await, 2);
}

async fn an_idle_expired_token_does_not_count_against_a_revoke_oldest_limit(
    make: impl Make<Settings, Fixture>,
) {
    let rules = limit_of(2, OnLimit::RevokeOldest)
        .with_idle_timeout(CUSTOMER, Duration::from_secs(1))
        .unwrap();
    let fixture = make((Lifetimes::default(), rules)).await;
    let registry = &fixture.registry;
    let mut issued = issue_apart(registry, "ada", 2).await.into_iter();
    let (in_use, idle) = (issued.next().unwrap(), issued.next().unwrap());

    // The older token in use, the newer one left alone past its idle timeout.
    let until = Instant::now() + Duration::from_millis(1300);
    while Instant::now() < until {
        assert!(resolves(registry, &in_use.token).await, "in use");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!resolves(registry, &idle.token).await, "idled out");

    // The idle-expired token made room: the token in use, though the oldest, stays.
    let next = registry.issue(CUSTOMER, "ada").await.unwrap();
    assert!(
        resolves(registry, &in_use.token).await,
        "a live token was revoked to make room an idle-expired one already left"
    );
    assert!(resolves(registry, &next.token).await);
    assert_eq!(
        hashes(&registry.list(CUSTOMER, "ada").await.unwrap()),
        [next.token.hash(), in_use.token.hash()]
    );
}

async fn a_token_in_use_outlives_its_idle_timeout_but_never_its_lifetime(
    make: impl Make<Settings, Fixture>,
) {
    let idle = Duration::from_secs(2);
    let lifetimes = Lifetimes::new(Duration::from_secs(3), Duration::from_secs(60)).unwrap();
    // Uses recorded at most once a second, and so every 0.5 s: a quarter of the idle timeout.
    let rules = SessionRules::default()
        .with_last_used_interval(Duration::from_secs(1))
        .unwrap()
        .with_idle_timeout(CUSTOMER, idle)
        .unwrap()
        .with_idle_timeout(ADMIN, idle)
        .unwrap();
    let fixture = make((lifetimes, rules)).await;
    let registry = &fixture.registry;
    let customer = registry.issue(CUSTOMER, "ada").await.unwrap();
    let admin = registry.issue(ADMIN, "root").await.unwrap();
    let unused = registry.issue(ADMIN, "root").await.unwrap();
    let expires_at = customer.caller.expires_at.unwrap();

    // Both used every 300 ms for 3.5 s: the admin token (60 s lifetime) past its idle
    // timeout, the customer token (3 s lifetime) past its absolute expiry.
    let started = Instant::now();
    let mut customer_refused = false;
    while started.elapsed() < Duration::from_millis(3500) {
        assert!(
            resolves(registry, &admin.token).await,
            "a token in use stays valid past its idle timeout ({:?} after issue)",
            started.elapsed()
        );
        let before = Utc::now();
        let accepted = resolves(registry, &customer.token).await;
        let after = Utc::now();
        if accepted {
            assert!(
                before < expires_at,
                "accepted at {before}, past its absolute expiry {expires_at}"
            );
        } else {
            assert!(
                after >= expires_at,
                "a token in use refused at {after}, before its absolute expiry {expires_at}"
            );
            customer_refused = true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(customer_refused, "refused once its lifetime ran out");
    assert!(
        !resolves(registry, &unused.token).await,
        "a token unused for its idle timeout is refused"
    );
    let listed = registry.list(ADMIN, "root").await.unwrap();
    assert_eq!(
        hashes(&listed),
        [admin.token.hash()],
        "the idle-expired token is not listed"
    );
    let last_used = listed[0].last_used_at.unwrap();
    assert!(
        Utc::now() - last_used < TimeDelta::milliseconds(1200),
        "uses were recorded all along, the last at {last_used}"
    );

    // Left unused: refused once its idle timeout has passed since the last recorded use.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!resolves(registry, &admin.token).await, "idled out");
    assert!(registry.list(ADMIN, "root").await.unwrap().is_empty());
}
