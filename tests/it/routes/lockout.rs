//! Bad credentials and the lockout: one identical 401 for every refusal, failures counted
//! per kind and lower-cased username until the window passes, and the limits on what a
//! sign-in may cost (parallel attempts, made-up or over-long usernames, the directory's
//! own spelling of a name).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tower_bearer::sign_in::{
    CustomerAccount, Directory, DirectoryFuture, INVALID_CREDENTIALS_MESSAGE, LockoutPolicy,
    SignInError,
};
use tower_bearer::store::MemoryStore;
use tower_bearer::{SignIn, TokenKind, TokenRegistry};

use super::{
    ACCOUNTS, ADMIN, ADMIN_PASSWORD, ADMIN_TOKEN, Backend, CUSTOMER, CUSTOMER_ME, CUSTOMER_TOKEN,
    CountingDirectory, OTHER, PASSWORD, SIGN_IN_REFUSED, Server, redis_keys,
};
use crate::support::{Make, lockout_key};

// --- bad credentials and lockout -------------------------------------------------------

pub(super) async fn wrong_password_unknown_user_and_locked_account_get_one_identical_401(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    assert_eq!(INVALID_CREDENTIALS_MESSAGE, SIGN_IN_REFUSED);
    let expected_body = json!({ "message": SIGN_IN_REFUSED }).to_string();

    let wrong = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await;
    assert_eq!(wrong.message(StatusCode::UNAUTHORIZED), SIGN_IN_REFUSED);
    assert_eq!(wrong.body, expected_body.as_bytes());

    let refusals = [
        server
            .sign_in(CUSTOMER_TOKEN, "nobody@example.com", PASSWORD)
            .await,
        server.sign_in(ADMIN_TOKEN, ADMIN, "wrong").await,
        server.sign_in(ADMIN_TOKEN, "nobody", ADMIN_PASSWORD).await,
        // The kinds are separate: a customer is no admin, an admin no customer.
        server.sign_in(ADMIN_TOKEN, CUSTOMER, PASSWORD).await,
        server.sign_in(CUSTOMER_TOKEN, ADMIN, ADMIN_PASSWORD).await,
    ];
    for refusal in &refusals {
        refusal.assert_same_as(&wrong);
    }

    for _ in 0..5 {
        server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await;
    }
    let locked = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
    locked.assert_same_as(&wrong);
    assert_eq!(server.stored_tokens().await, 0);
}

pub(super) async fn six_failures_lock_the_account_until_the_window_passes(
    make: impl Make<LockoutPolicy, Server>,
) {
    let window = Duration::from_secs(2);
    let server = make(LockoutPolicy::new(6, window).expect("a valid policy")).await;
    for _ in 0..6 {
        let reply = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await;
        assert_eq!(reply.message(StatusCode::UNAUTHORIZED), SIGN_IN_REFUSED);
    }
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 6);

    let locked = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
    assert_eq!(locked.message(StatusCode::UNAUTHORIZED), SIGN_IN_REFUSED);
    assert_eq!(
        server.verifications(),
        6,
        "a locked account's password is not checked"
    );
    assert_eq!(server.stored_tokens().await, 0);

    tokio::time::sleep(window + Duration::from_millis(200)).await;
    let token = server.customer_token(CUSTOMER).await;
    assert!(server.opens(CUSTOMER_ME, &token).await);
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 0);
}

pub(super) async fn a_success_clears_the_failure_count(make: impl Make<LockoutPolicy, Server>) {
    let server = make(LockoutPolicy::new(6, Duration::from_secs(2)).expect("a valid policy")).await;
    for _ in 0..2 {
        for _ in 0..5 {
            let reply = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await;
            reply.message(StatusCode::UNAUTHORIZED);
        }
        assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 5);
        server.customer_token(CUSTOMER).await;
        assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 0);
    }
}

pub(super) async fn lockout_is_per_kind_and_lower_cased_username(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::new(6, Duration::from_secs(2)).expect("a valid policy")).await;
    for _ in 0..6 {
        server
            .sign_in(CUSTOMER_TOKEN, "Customer@Example.com", "wrong")
            .await
            .message(StatusCode::UNAUTHORIZED);
    }
    for spelling in [CUSTOMER, "CUSTOMER@EXAMPLE.COM", "Customer@Example.com"] {
        let reply = server.sign_in(CUSTOMER_TOKEN, spelling, PASSWORD).await;
        assert_eq!(
            reply.message(StatusCode::UNAUTHORIZED),
            SIGN_IN_REFUSED,
            "{spelling}"
        );
    }
    // Another customer and the admin are not locked.
    server.customer_token(OTHER).await;
    server.admin_token().await;

    if let Backend::Redis(redis) = &server.backend {
        let key = format!(
            "{}lock:{}",
            redis.prefix,
            lockout_key(TokenKind::Customer, "customer@example.com")
        );
        let mut inspector = redis.inspector().await;
        let count: Option<u64> = ::redis::cmd("GET")
            .arg(&key)
            .query_async(&mut inspector)
            .await
            .expect("GET");
        assert!(count.is_some_and(|count| count > 6), "{key}: {count:?}");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut inspector)
            .await
            .expect("PTTL");
        assert!(0 < ttl && ttl <= 2000, "{key} PTTL {ttl}");
        assert_eq!(redis_keys(redis, "lock:*").await, [key]);
    }
}

pub(super) async fn fifty_parallel_wrong_passwords_check_at_most_six_passwords(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = Arc::new(make(LockoutPolicy::default()).await);
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let server = Arc::clone(&server);
        attempts.spawn(async move { server.sign_in(CUSTOMER_TOKEN, CUSTOMER, "wrong").await });
    }
    let first = attempts
        .join_next()
        .await
        .expect("an attempt")
        .expect("joined");
    assert_eq!(first.message(StatusCode::UNAUTHORIZED), SIGN_IN_REFUSED);
    while let Some(reply) = attempts.join_next().await {
        reply.expect("joined").assert_same_as(&first);
    }

    let verified = server.verifications();
    eprintln!(
        "[{}] 50 parallel wrong passwords: {verified} password verifications",
        server.store_name()
    );
    assert!((1..=6).contains(&verified), "{verified} passwords verified");
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 50);
    let locked = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
    locked.assert_same_as(&first);
    assert_eq!(server.verifications(), verified);
}

pub(super) async fn made_up_usernames_get_fixed_length_counters_that_pick_no_cluster_slot(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let names = [
        "{victim}a@example.com",
        "{victim}b@example.com",
        "x",
        &"y".repeat(255),
    ];
    for name in names {
        server
            .sign_in(CUSTOMER_TOKEN, name, "wrong")
            .await
            .message(StatusCode::UNAUTHORIZED);
        assert_eq!(
            server.failures(TokenKind::Customer, name).await,
            1,
            "{name}"
        );
    }
    if let Backend::Redis(redis) = &server.backend {
        let keys = redis_keys(redis, "lock:*").await;
        assert_eq!(keys.len(), names.len(), "{keys:?}");
        let prefix = format!("{}lock:customer:", redis.prefix);
        for key in keys {
            let hash = key.strip_prefix(&prefix).expect("a customer counter");
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{key}: the username enters the key only as its SHA-256"
            );
        }
    }
}

// --- limits on what a sign-in may cost (one store only) --------------------------------

#[tokio::test]
async fn an_over_long_username_is_refused_without_counting_or_checking_a_password() {
    let verifications = Arc::new(AtomicUsize::new(0));
    let directory = CountingDirectory {
        accounts: ACCOUNTS.clone(),
        verifications: verifications.clone(),
        outage: Arc::default(),
    };
    let store = MemoryStore::new();
    let service = SignIn::new(TokenRegistry::new(store.clone()), directory);
    let name = format!(
        "{}@example.com",
        "a".repeat(tower_bearer::sign_in::MAX_USERNAME_LEN)
    );

    let refused = service.sign_in(TokenKind::Customer, &name, PASSWORD).await;
    assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
    assert_eq!(
        verifications.load(Ordering::SeqCst),
        0,
        "no password checked"
    );
    let counted =
        tower_bearer::store::SignInStore::failures(&store, lockout_key(TokenKind::Customer, &name));
    assert_eq!(
        counted.await.unwrap(),
        0,
        "no counter stored for a made-up name"
    );
}

/// A directory that, like many databases, ignores surrounding spaces in usernames.
struct TrimmingDirectory;

impl Directory for TrimmingDirectory {
    fn verify<'a>(
        &'a self,
        kind: TokenKind,
        username: &'a str,
        password: &'a str,
    ) -> DirectoryFuture<'a, Option<String>> {
        ACCOUNTS.verify(kind, username.trim(), password)
    }

    fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>> {
        ACCOUNTS.customer(email.trim())
    }

    fn lockout_name(&self, _kind: TokenKind, username: &str) -> String {
        username.trim().to_lowercase()
    }
}

#[tokio::test]
async fn a_success_clears_the_counter_the_directory_counts_failures_under() {
    let lockout = LockoutPolicy::new(6, Duration::from_secs(60)).expect("a valid policy");
    let service = SignIn::new(TokenRegistry::memory(), TrimmingDirectory).with_lockout(lockout);
    for _ in 0..3 {
        // Five failures under one spelling, a success under another: the success must
        // clear the counter both share (the directory's lockout name), or the next round's
        // failures would lock the account.
        for _ in 0..5 {
            let refused = service
                .sign_in(TokenKind::Customer, &format!(" {CUSTOMER} "), "wrong")
                .await;
            assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
        }
        let padded = format!("{CUSTOMER}   ");
        let signed_in = service
            .sign_in(TokenKind::Customer, &padded, PASSWORD)
            .await;
        assert!(signed_in.is_ok(), "{signed_in:?}");
    }
}

#[tokio::test]
async fn every_spelling_the_directory_accepts_shares_one_lockout_counter() {
    let service = SignIn::new(TokenRegistry::memory(), TrimmingDirectory);
    let paddings = [
        ("", " "),
        (" ", ""),
        (" ", " "),
        ("  ", ""),
        ("", "  "),
        ("  ", "  "),
    ];
    for (before, after) in paddings {
        let name = format!("{before}{CUSTOMER}{after}");
        let refused = service.sign_in(TokenKind::Customer, &name, "wrong").await;
        assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
    }
    let locked = service
        .sign_in(TokenKind::Customer, CUSTOMER, PASSWORD)
        .await;
    assert!(
        matches!(locked, Err(SignInError::InvalidCredentials)),
        "six failures under six spellings lock the one account"
    );
}
