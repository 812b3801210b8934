//! What is particular to Redis: the key layout, secrets at rest, and outages.

use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::RETRY_AFTER;
use redis::AsyncCommands;
use tower_bearer::store::{RedisStore, RedisStoreOptions};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::support::{
    Answer, RedisProxy, RedisServer, TestRedis, assert_unavailable, get_me, get_me_until,
    set_default_user_acl, sha256_hex,
};

#[tokio::test]
async fn token_key_is_the_sha256_of_the_token_and_its_ttl_is_the_lifetime() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut inspect = redis.inspector().await;

    for (kind, lifetime_ms) in [
        (TokenKind::Customer, 3_600_000),
        (TokenKind::Admin, 14_400_000),
    ] {
        let issued = registry.issue(kind, "ada@example.com").await.unwrap();
        let key = redis.token_key(&issued.token.hash());
        assert_eq!(
            key.len(),
            redis.prefix.len() + 2 + 32,
            "prefix, `t:` and the 32 raw bytes of the SHA-256"
        );
        assert_eq!(
            &key[redis.prefix.len() + 2..],
            tower_bearer::token::TokenHash::of(issued.token.expose()).as_bytes()
        );
        let ttl: i64 = inspect.pttl(&key).await.unwrap();
        assert!(
            (lifetime_ms - 2_000..=lifetime_ms).contains(&ttl),
            "{kind} token TTL {ttl} ms, expected about {lifetime_ms} ms"
        );
        let record: String = inspect.get(&key).await.unwrap();
        assert!(
            record.contains("ada@example.com"),
            "the record names the subject: {record}"
        );

        let index = format!(
            "{}index:{}:{}",
            redis.prefix,
            kind,
            sha256_hex("ada@example.com")
        );
        let members: Vec<(Vec<u8>, i64)> = inspect.zrange_withscores(&index, 0, -1).await.unwrap();
        assert_eq!(
            members,
            vec![(
                issued.token.hash().as_bytes().to_vec(),
                issued.caller.expires_at.unwrap().timestamp_millis()
            )],
            "the index lists the raw hash, scored by the token's expiry"
        );
        let index_ttl: i64 = inspect.pttl(&index).await.unwrap();
        assert!(
            (lifetime_ms - 2_000..=lifetime_ms).contains(&index_ttl),
            "the subject index lives as long as its token ({index_ttl} ms)"
        );
    }
}

#[tokio::test]
async fn subject_index_expiry_only_ever_grows() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut inspect = redis.inspector().await;
    let index = format!("{}index:customer:{}", redis.prefix, sha256_hex("ada"));

    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    // Another instance configured with a shorter lifetime issues next: the index must keep
    // the longer expiry, or the first token would escape revoke_all.
    let short = TokenRegistry::new(redis.store().await).with_lifetimes(
        tower_bearer::token::Lifetimes::default()
            .with_customer(Duration::from_secs(60))
            .unwrap(),
    );
    short.issue(TokenKind::Customer, "ada").await.unwrap();
    let ttl: i64 = inspect.pttl(&index).await.unwrap();
    assert!(ttl > 3_500_000, "index TTL shrank to {ttl} ms");
}

/// A token that lives until revoked (an integration's) has a record without TTL, and its
/// subject's index must outlive it (or revoke-all would miss it): a century, with the token
/// scored above every real expiry, in order of issue.
#[tokio::test]
async fn a_token_without_expiry_is_indexed_for_a_century_above_every_expiry() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut inspect = redis.inspector().await;
    let request = tower_bearer::registry::IssueRequest::new(TokenKind::Integration, "shop");
    let issued = registry.issue_request(request).await.unwrap();
    assert_eq!(issued.caller.expires_at, None);

    let record_ttl: i64 = inspect
        .pttl(redis.token_key(&issued.token.hash()))
        .await
        .unwrap();
    assert_eq!(record_ttl, -1, "the record has no expiry");
    let index = format!("{}index:integration:{}", redis.prefix, sha256_hex("shop"));
    let index_ttl: i64 = inspect.pttl(&index).await.unwrap();
    let century_ms: i64 = 100 * 365 * 24 * 3600 * 1000;
    assert!(
        (century_ms - 60_000..=century_ms).contains(&index_ttl),
        "the index lives {index_ttl} ms, not a century"
    );
    let members: Vec<(Vec<u8>, i64)> = inspect.zrange_withscores(&index, 0, -1).await.unwrap();
    assert_eq!(
        members,
        vec![(
            issued.token.hash().as_bytes().to_vec(),
            (1_i64 << 52) + issued.caller.issued_at.timestamp_millis()
        )],
        "scored 2^52 plus its issue instant (Unix ms)"
    );
}

#[tokio::test]
async fn the_subject_index_lists_only_live_tokens() {
    let redis = TestRedis::start();
    // Instances whose clocks agree: expired entries go at once.
    let options = redis.options().with_clock_skew(Duration::ZERO);
    let store = RedisStore::connect_with(&redis.url, options).await.unwrap();
    let registry = TokenRegistry::new(store).with_lifetimes(crate::support::short_lifetimes());
    let mut inspect = redis.inspector().await;
    let index = format!("{}index:customer:{}", redis.prefix, sha256_hex("ada"));
    // A long-lived token keeps the index itself alive while the short ones expire.
    let anchor = tower_bearer::registry::IssueRequest::new(TokenKind::Customer, "ada")
        .with_lifetime(Duration::from_secs(60))
        .unwrap();
    registry.issue_request(anchor).await.unwrap();
    for _ in 0..5 {
        registry.issue(TokenKind::Customer, "ada").await.unwrap();
    }
    assert_eq!(inspect.zcard::<_, u64>(&index).await.unwrap(), 6);

    // Every issue drops the entries of tokens that have expired since.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert_eq!(inspect.zcard::<_, u64>(&index).await.unwrap(), 2);

    // A revoked token leaves the index at once.
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    registry.revoke(issued.token.expose()).await.unwrap();
    assert_eq!(inspect.zcard::<_, u64>(&index).await.unwrap(), 2);
}

#[tokio::test]
async fn expired_entries_stay_listed_for_the_clock_skew_so_no_instance_unlists_live_tokens() {
    let redis = TestRedis::start();
    let registry = redis
        .registry()
        .await
        .with_lifetimes(crate::support::short_lifetimes());
    let mut inspect = redis.inspector().await;
    let index = format!("{}index:customer:{}", redis.prefix, sha256_hex("ada"));
    let anchor = tower_bearer::registry::IssueRequest::new(TokenKind::Customer, "ada")
        .with_lifetime(Duration::from_secs(60))
        .unwrap();
    registry.issue_request(anchor).await.unwrap();
    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert_eq!(
        inspect.zcard::<_, u64>(&index).await.unwrap(),
        3,
        "within the default 60 s skew, the expired entry stays"
    );
}

/// An index may hold, besides its live tokens, entries of tokens that expired within the
/// clock skew (they sort first), more than `MAX_TOKENS_PER_SUBJECT` of them: revoke-all reads
/// past them to the live ones.
#[tokio::test]
async fn revoke_all_reaches_live_tokens_behind_a_full_limit_of_recently_expired_entries() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut inspect = redis.inspector().await;
    let live = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let index = format!("{}index:customer:{}", redis.prefix, sha256_hex("ada"));
    let expired_at = live.caller.issued_at.timestamp_millis() - 30_000;
    let expired: Vec<(i64, Vec<u8>)> = (0..tower_bearer::store::MAX_TOKENS_PER_SUBJECT + 10)
        .map(|i| {
            let hash = tower_bearer::token::TokenHash::of(&format!("expired {i}"));
            (expired_at, hash.as_bytes().to_vec())
        })
        .collect();
    let _: () = inspect.zadd_multiple(&index, &expired).await.unwrap();

    let revoked = registry
        .revoke_all(TokenKind::Customer, "ada")
        .await
        .unwrap();
    assert_eq!(revoked, 1, "the one live token");
    assert_eq!(registry.resolve(live.token.expose()).await.unwrap(), None);
}

#[tokio::test]
async fn a_subject_index_written_by_0_1_is_revoked_in_chunks_and_deleted() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut inspect = redis.inspector().await;
    // 0.1 kept a plain set of hex hashes under `subject:<kind>:<subject>`, never pruned:
    // live tokens among many long expired ones.
    let mut live = Vec::new();
    for _ in 0..3 {
        let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
        live.push(issued.token);
    }
    let index = format!("{}index:customer:{}", redis.prefix, sha256_hex("ada"));
    let _: () = inspect.del(&index).await.unwrap();
    let legacy = format!("{}subject:customer:ada", redis.prefix);
    let mut members: Vec<String> = (0..1_500)
        .map(|i| sha256_hex(&format!("expired {i}")))
        .collect();
    members.extend(live.iter().map(|token| sha256_hex(token.expose())));
    let _: () = inspect.sadd(&legacy, &members).await.unwrap();
    let _: () = inspect.expire(&legacy, 3600).await.unwrap();

    let revoked = registry
        .revoke_all(TokenKind::Customer, "ada")
        .await
        .unwrap();
    assert_eq!(revoked, 3, "the live tokens the old index listed");
    for token in &live {
        assert_eq!(registry.resolve(token.expose()).await.unwrap(), None);
    }
    let exists: bool = inspect.exists(&legacy).await.unwrap();
    assert!(!exists, "the old index is gone once read");
}

#[tokio::test]
async fn no_key_or_value_in_redis_contains_a_raw_token() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut tokens = Vec::new();
    for i in 0..10 {
        let kind = if i % 2 == 0 {
            TokenKind::Customer
        } else {
            TokenKind::Admin
        };
        tokens.push(
            registry
                .issue(kind, format!("user{}", i % 3))
                .await
                .unwrap()
                .token,
        );
    }
    registry.revoke(tokens[0].expose()).await.unwrap();

    let mut inspect = redis.inspector().await;
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("{}*", redis.prefix))
        .query_async(&mut inspect)
        .await
        .unwrap();
    assert!(
        keys.len() >= 9 + 4,
        "token and index keys are there: {keys:?}"
    );
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut inspect)
            .await
            .unwrap();
        let content = match kind.as_str() {
            "string" => inspect.get::<_, String>(&key).await.unwrap(),
            "zset" => inspect
                .zrange::<_, Vec<Vec<u8>>>(&key, 0, -1)
                .await
                .unwrap()
                .iter()
                .map(|member| String::from_utf8_lossy(member).into_owned())
                .collect::<Vec<_>>()
                .join(","),
            other => panic!("unexpected key type {other} at {key:?}"),
        };
        let key = String::from_utf8_lossy(&key);
        for token in &tokens {
            assert!(!key.contains(token.expose()), "raw token in key {key}");
            assert!(
                !content.contains(token.expose()),
                "raw token in value of {key}"
            );
        }
    }
}

#[tokio::test]
async fn an_unreadable_record_is_a_store_error_not_a_caller() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let key = redis.token_key(&issued.token.hash());
    let mut inspect = redis.inspector().await;
    let _: () = inspect.set(&key, "not json").await.unwrap();

    assert!(registry.resolve(issued.token.expose()).await.is_err());
    let answer = get_me(&registry, issued.token.expose()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}

const BOUND: Duration = Duration::from_millis(300);

async fn own_server_registry() -> (RedisServer, TokenRegistry) {
    let server = RedisServer::start();
    let store = RedisStore::connect_with(
        &server.url(),
        RedisStoreOptions::default().with_timeout(BOUND),
    )
    .await
    .unwrap();
    (server, TokenRegistry::new(store))
}

/// How much after its bound a call may end: the time to build the answer and be scheduled
/// on a busy machine, far less than a second wait of any length.
const LATE: Duration = Duration::from_millis(250);

/// Freezes a Redis (SIGSTOP) and sends requests through the layer: each gets 503 with
/// `Retry-After`, not before `bound` (nothing answers a frozen Redis) and not much after it.
///
/// First on the open connection, where redis-rs's own response timeout (set to the same
/// bound) may end the call as well. Then after that connection is cut (a network blip, a
/// failover), while the store reconnects to the Redis that still hangs: the reconnection
/// takes several times the bound (each attempt is bounded, and retried), and only the
/// store's bound on the call ends the request's wait.
async fn assert_a_frozen_redis_answers_503_at(bound: Duration, options: RedisStoreOptions) {
    let server = RedisServer::start();
    let proxy = RedisProxy::start(&server.url()).await;
    let store = RedisStore::connect_with(&proxy.url, options).await.unwrap();
    let registry = TokenRegistry::new(store);
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let unknown = tower_bearer::token::Token::generate().unwrap();
    assert_eq!(
        get_me(&registry, issued.token.expose()).await.status,
        StatusCode::OK
    );
    let tokens = [
        (issued.token.expose(), "live"),
        (unknown.expose(), "unknown"),
    ];
    // (what, the answer, whether it must have waited for the bound)
    let mut answers = Vec::new();
    let mut send = async |what: String, token: &str, waits: bool| {
        answers.push((what, get_me(&registry, token).await, waits));
    };

    server.pause();
    for (token, which) in tokens {
        send(
            format!("on the open connection, {which} token"),
            token,
            true,
        )
        .await;
    }
    proxy.cut_connections();
    // The first call after the cut may fail at once (the connection is known to be
    // dropped), and starts the reconnection.
    let before = proxy.connections_accepted();
    send("right after the cut".to_owned(), tokens[0].0, false).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.connections_accepted() == before {
        assert!(Instant::now() < deadline, "the store does not reconnect");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for (token, which) in tokens {
        send(format!("while reconnecting, {which} token"), token, true).await;
    }
    server.resume();

    for (what, answer, waits) in answers {
        let Answer {
            status,
            headers,
            elapsed,
        } = answer;
        eprintln!("a frozen Redis, a bound of {bound:?}, {what}: {status} after {elapsed:?}");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
        assert!(headers.contains_key(RETRY_AFTER), "{what}: Retry-After");
        assert!(
            elapsed <= bound + LATE && (elapsed >= bound || !waits),
            "{what}: 503 after {elapsed:?}, expected at the bound of {bound:?}"
        );
    }
}

#[tokio::test]
async fn a_frozen_redis_answers_503_at_a_custom_bound() {
    let bound = Duration::from_millis(200);
    let options = RedisStoreOptions::default().with_timeout(bound);
    assert_a_frozen_redis_answers_503_at(bound, options).await;
}

#[tokio::test]
async fn a_frozen_redis_answers_503_at_the_default_bound_of_500_ms() {
    let options = RedisStoreOptions::default();
    assert_a_frozen_redis_answers_503_at(Duration::from_millis(500), options).await;
}

#[tokio::test]
async fn stopped_redis_answers_503_within_the_bound_never_401() {
    let (mut server, registry) = own_server_registry().await;
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let unknown = tower_bearer::token::Token::generate().unwrap();
    server.stop();

    for (token, which) in [
        (issued.token.expose(), "live"),
        (unknown.expose(), "unknown"),
    ] {
        let answer = get_me(&registry, token).await;
        let what = format!("a stopped Redis, {which} token");
        assert_unavailable(&answer, BOUND + LATE, &what);
    }
    assert!(registry.issue(TokenKind::Customer, "ada").await.is_err());
}

#[tokio::test]
async fn hung_redis_answers_503_within_the_bound() {
    let (server, registry) = own_server_registry().await;
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    server.pause();

    let answer = get_me(&registry, issued.token.expose()).await;
    server.resume();
    assert_unavailable(&answer, BOUND + LATE, "a hung Redis");
    assert!(
        answer.elapsed >= BOUND,
        "it waited for the bound, not less ({:?})",
        answer.elapsed
    );

    // Once Redis answers again, so does the app.
    get_me_until(
        &registry,
        issued.token.expose(),
        StatusCode::OK,
        Instant::now() + Duration::from_secs(10),
        "10 s after Redis resumed",
    )
    .await;
}

#[tokio::test]
async fn app_recovers_by_itself_when_redis_restarts() {
    let (mut server, registry) = own_server_registry().await;
    let before = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    server.stop();
    assert_eq!(
        get_me(&registry, before.token.expose()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    server.restart();
    // The restarted Redis kept nothing (no persistence), so a fresh token is needed; the
    // same registry, never rebuilt, must issue and resolve it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        match registry.issue(TokenKind::Customer, "ada").await {
            Ok(issued) => break issued,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "no recovery 10 s after restart: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(
        get_me(&registry, after.token.expose()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_me(&registry, before.token.expose()).await.status,
        StatusCode::UNAUTHORIZED,
        "the lost token is now simply unknown"
    );
}

#[tokio::test]
async fn a_revoke_all_that_fails_halfway_leaves_the_tokens_for_a_retry() {
    let (server, registry) = own_server_registry().await;
    let first = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let second = registry.issue(TokenKind::Customer, "ada").await.unwrap();

    // The token deletions fail (as a timeout or a failover would), after the index was read.
    set_default_user_acl(&server.url(), "-del").await;
    assert!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .is_err()
    );
    set_default_user_acl(&server.url(), "+del").await;

    // The retry still finds both tokens: the failure did not unlist them.
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        2
    );
    for issued in [&first, &second] {
        assert_eq!(registry.resolve(issued.token.expose()).await.unwrap(), None);
    }
}

/// Tokens issued before keys were raw bytes (their records under `token:<hex>`) still
/// resolve (their use recorded), are listed, and are revoked one by one and all at once.
#[tokio::test]
async fn records_under_the_old_hex_keys_resolve_list_and_revoke() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut inspect = redis.inspector().await;
    let mut issued = Vec::new();
    for _ in 0..3 {
        let token = registry.issue(TokenKind::Customer, "ada").await.unwrap();
        // Where earlier versions wrote it.
        let _: () = redis::cmd("RENAME")
            .arg(redis.token_key(&token.token.hash()))
            .arg(redis.legacy_token_key(&token.token.hash()))
            .query_async(&mut inspect)
            .await
            .unwrap();
        issued.push(token);
    }
    let fresh = registry.issue(TokenKind::Customer, "ada").await.unwrap();

    for token in &issued {
        let caller = registry.resolve(token.token.expose()).await.unwrap();
        assert!(caller.is_some_and(|caller| caller.last_used_at.is_some()));
        // Again at once, with no use due: a plain read, of the old key after the new one.
        let again = registry.resolve(token.token.expose()).await.unwrap();
        assert!(
            again.is_some(),
            "the old key was not read without a use due"
        );
    }
    assert_eq!(
        registry
            .list(TokenKind::Customer, "ada")
            .await
            .unwrap()
            .len(),
        4
    );

    assert!(registry.revoke(issued[0].token.expose()).await.unwrap());
    assert_eq!(
        registry.resolve(issued[0].token.expose()).await.unwrap(),
        None
    );
    let exists: bool = inspect
        .exists(redis.legacy_token_key(&issued[0].token.hash()))
        .await
        .unwrap();
    assert!(!exists, "the old key was deleted");

    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        3
    );
    for token in issued.iter().chain([&fresh]) {
        assert_eq!(registry.resolve(token.token.expose()).await.unwrap(), None);
    }
    let left: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("{}*", redis.prefix))
        .query_async(&mut inspect)
        .await
        .unwrap();
    assert!(left.is_empty(), "keys left: {left:?}");
}

/// With the old keys read too (the default), a resolve of an unknown token costs Redis one
/// call: the use-recording script looks under both keys itself.
#[tokio::test]
async fn an_unknown_token_costs_one_call_to_redis() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut inspect = redis.inspector().await;
    // A first resolve loads the script.
    let known = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert!(
        registry
            .resolve(known.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut inspect)
        .await
        .unwrap();
    let unknown = tower_bearer::token::Token::generate().unwrap();
    assert_eq!(registry.resolve(unknown.expose()).await.unwrap(), None);

    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut inspect)
        .await
        .unwrap();
    let calls = |command: &str| {
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse::<u64>().unwrap())
    };
    // Redis counts the script's own reads as GETs.
    assert_eq!(
        (calls("evalsha"), calls("eval"), calls("get")),
        (1, 0, 2),
        "one script call, which read the two keys itself: {stats}"
    );
}

/// With old keys off, a record under the old hex key is not read; a revocation still deletes
/// it, so it cannot come back when they are read again.
#[tokio::test]
async fn with_legacy_keys_off_the_old_hex_keys_are_not_read() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let mut inspect = redis.inspector().await;
    let _: () = redis::cmd("RENAME")
        .arg(redis.token_key(&issued.token.hash()))
        .arg(redis.legacy_token_key(&issued.token.hash()))
        .query_async(&mut inspect)
        .await
        .unwrap();
    assert!(
        registry
            .resolve(issued.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    let store = RedisStore::connect_with(&redis.url, redis.options().with_legacy_keys(false))
        .await
        .unwrap();
    let strict = TokenRegistry::new(store);
    assert_eq!(strict.resolve(issued.token.expose()).await.unwrap(), None);
    assert!(strict.revoke(issued.token.expose()).await.unwrap());
    assert_eq!(registry.resolve(issued.token.expose()).await.unwrap(), None);
    let exists: bool = inspect
        .exists(redis.legacy_token_key(&issued.token.hash()))
        .await
        .unwrap();
    assert!(!exists, "the old key was deleted");
}
