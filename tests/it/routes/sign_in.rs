//! Signing in: the token a sign-in issues and where the routes answer, then every request
//! refused without issuing anything (a field missing or not a string, a body that is not
//! JSON or too large) and every outage answered 503, never 401.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::json;
use tower_bearer::magento::rest::MAX_BODY_BYTES;
use tower_bearer::sign_in::LockoutPolicy;
use tower_bearer::store::{RedisStore, RedisStoreOptions};
use tower_bearer::{TokenKind, TokenRegistry};

use super::{
    ADMIN, ADMIN_ME, ADMIN_PASSWORD, ADMIN_TOKEN, Backend, CUSTOMER, CUSTOMER_ME, CUSTOMER_TOKEN,
    Outage, PASSWORD, PREFIXES, REVOKE, REVOKE_ALL, Server, not_a_string, redis_keys,
};
use crate::support::{Make, RedisServer};

// --- issuing ---------------------------------------------------------------------------

pub(super) async fn customer_token_is_a_bare_uncached_string_that_opens_customer_routes_only(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let token = server.customer_token(CUSTOMER).await;

    let me = server.get(CUSTOMER_ME, Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.json()["kind"], "customer");
    assert_eq!(me.json()["subject"], CUSTOMER);

    let admin_route = server.get(ADMIN_ME, Some(&token)).await;
    admin_route.message(StatusCode::FORBIDDEN);
    assert!(
        admin_route
            .header(WWW_AUTHENTICATE)
            .is_some_and(|value| value.contains("insufficient_scope"))
    );
    assert_eq!(server.stored_tokens().await, 1);
}

pub(super) async fn admin_token_is_a_bare_uncached_string_that_opens_admin_routes_only(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let token = server.admin_token().await;

    let me = server.get(ADMIN_ME, Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.json()["kind"], "admin");
    assert_eq!(me.json()["subject"], ADMIN);

    server
        .get(CUSTOMER_ME, Some(&token))
        .await
        .message(StatusCode::FORBIDDEN);
}

/// Every route but the admin force sign-out (see the next test) under every prefix.
pub(super) async fn every_route_answers_at_v1_rest_v1_and_rest_store_code_v1(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    for prefix in PREFIXES {
        let route = |path: &str| format!("{prefix}{path}");
        let customer = server
            .token(&route(CUSTOMER_TOKEN), CUSTOMER, PASSWORD)
            .await;
        let admin = server
            .token(&route(ADMIN_TOKEN), ADMIN, ADMIN_PASSWORD)
            .await;
        // A token issued under one prefix works under every prefix: one registry.
        for other in PREFIXES {
            assert!(
                server
                    .opens(&format!("{other}{CUSTOMER_ME}"), &customer)
                    .await
            );
            assert!(server.opens(&format!("{other}{ADMIN_ME}"), &admin).await);
        }

        let revoked = server.post(&route(REVOKE), None, "", Some(&customer)).await;
        assert_eq!(revoked.json(), json!(true), "{prefix}");
        assert!(!server.opens(CUSTOMER_ME, &customer).await);

        let customer = server.customer_token(CUSTOMER).await;
        let all = server
            .post(&route(REVOKE_ALL), None, "", Some(&customer))
            .await;
        assert_eq!(all.json(), json!(true), "{prefix}");
        assert!(!server.opens(CUSTOMER_ME, &customer).await);
    }
}

pub(super) async fn json_content_type_is_matched_by_essence_ignoring_case_and_parameters(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let credentials = json!({ "username": CUSTOMER, "password": PASSWORD }).to_string();
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=UTF-8",
    ] {
        server
            .post(
                CUSTOMER_TOKEN,
                Some(content_type),
                credentials.clone(),
                None,
            )
            .await
            .token();
    }
}

// --- refused requests ------------------------------------------------------------------

/// Posts credentials to both token routes with `field` replaced by each non-string.
async fn assert_field_is_required(server: &Server, field: &str) {
    for (route, username, password) in [
        (CUSTOMER_TOKEN, CUSTOMER, PASSWORD),
        (ADMIN_TOKEN, ADMIN, ADMIN_PASSWORD),
    ] {
        for value in not_a_string() {
            let mut body = json!({ "username": username, "password": password });
            let fields = body.as_object_mut().expect("an object");
            match value {
                Some(value) => fields.insert(field.to_owned(), value),
                None => fields.remove(field),
            };
            let reply = server.post_json(route, &body, None).await;
            assert_eq!(
                reply.message(StatusCode::BAD_REQUEST),
                format!("\"{field}\" is required. Enter and try again."),
                "{route} {body}"
            );
            assert_eq!(
                reply.body,
                format!(r#"{{"message":"\"{field}\" is required. Enter and try again."}}"#)
                    .as_bytes()
            );
        }
    }
    server.assert_nothing_issued().await;
}

pub(super) async fn missing_empty_null_or_non_string_username_is_a_400_and_issues_nothing(
    make: impl Make<LockoutPolicy, Server>,
) {
    assert_field_is_required(&make(LockoutPolicy::default()).await, "username").await;
}

pub(super) async fn missing_empty_null_or_non_string_password_is_a_400_and_issues_nothing(
    make: impl Make<LockoutPolicy, Server>,
) {
    assert_field_is_required(&make(LockoutPolicy::default()).await, "password").await;
}

pub(super) async fn malformed_empty_or_non_object_json_is_a_400_and_issues_nothing(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let bodies: [&[u8]; 12] = [
        br#"{"username":"customer@example.com","password":"password""#,
        br#"{username:"customer@example.com",password:"password"}"#,
        br#"{"username":"customer@example.com","password":"password"} trailing"#,
        b"not json",
        b"\xff\xfe{}",
        b"",
        br#""customer@example.com""#,
        br#"["customer@example.com","password"]"#,
        b"42",
        b"null",
        b"true",
        br#"[{"username":"customer@example.com","password":"password"}]"#,
    ];
    for route in [CUSTOMER_TOKEN, ADMIN_TOKEN] {
        for body in bodies {
            let reply = server
                .post(route, Some("application/json"), body.to_vec(), None)
                .await;
            reply.message(StatusCode::BAD_REQUEST);
        }
    }
    server.assert_nothing_issued().await;
}

pub(super) async fn a_body_that_is_not_json_by_content_type_is_a_415_and_issues_nothing(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let json = json!({ "username": CUSTOMER, "password": PASSWORD }).to_string();
    let form = "username=customer%40example.com&password=password".to_owned();
    for route in [CUSTOMER_TOKEN, ADMIN_TOKEN] {
        for (content_type, body) in [
            (Some("text/plain"), json.clone()),
            (Some("application/x-www-form-urlencoded"), form.clone()),
            (Some("application/xml"), json.clone()),
            (Some("application/jsonp"), json.clone()),
            (None, json.clone()),
        ] {
            let reply = server.post(route, content_type, body, None).await;
            reply.message(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }
    server.assert_nothing_issued().await;
}

pub(super) async fn a_body_over_16_kib_is_a_413_and_issues_nothing(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let credentials = json!({ "username": CUSTOMER, "password": PASSWORD }).to_string();
    let padded = |len: usize| credentials.clone() + &" ".repeat(len - credentials.len());
    for route in [CUSTOMER_TOKEN, ADMIN_TOKEN] {
        for len in [MAX_BODY_BYTES + 1, 100 * 1024] {
            let reply = server
                .post(route, Some("application/json"), padded(len), None)
                .await;
            reply.message(StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
    server.assert_nothing_issued().await;

    // Exactly the limit is still read.
    let body = padded(MAX_BODY_BYTES);
    assert_eq!(body.len(), 16 * 1024);
    server
        .post(CUSTOMER_TOKEN, Some("application/json"), body, None)
        .await
        .token();
}

// --- outages: 503, never 401 -----------------------------------------------------------

pub(super) async fn a_directory_outage_answers_503_and_counts_toward_no_lockout(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    server.directory_fails(Outage::Down);
    // More retries than the lockout allows, all with the right password.
    for _ in 0..10 {
        let reply = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.header(RETRY_AFTER).is_some(), "{reply:?}");
    }
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 0);

    server.directory_fails(Outage::None);
    let token = server.customer_token(CUSTOMER).await;
    assert!(server.opens(CUSTOMER_ME, &token).await);
}

pub(super) async fn a_full_password_check_queue_answers_503_and_locks_nobody_out(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    server.directory_fails(Outage::Busy);
    // A flood of made-up names, and the victim retrying with the right password.
    for i in 0..50 {
        let reply = server
            .sign_in(CUSTOMER_TOKEN, &format!("flood{i}@example.com"), "x")
            .await;
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
    }
    for _ in 0..10 {
        let reply = server.sign_in(CUSTOMER_TOKEN, CUSTOMER, PASSWORD).await;
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.header(RETRY_AFTER).is_some(), "{reply:?}");
    }
    assert_eq!(server.failures(TokenKind::Customer, CUSTOMER).await, 0);
    assert_eq!(
        server
            .failures(TokenKind::Customer, "flood0@example.com")
            .await,
        0
    );
    if let Backend::Redis(redis) = &server.backend {
        assert_eq!(
            redis_keys(redis, "lock:*").await,
            Vec::<String>::new(),
            "refused attempts leave no counter behind"
        );
    }

    server.directory_fails(Outage::None);
    let token = server.customer_token(CUSTOMER).await;
    assert!(server.opens(CUSTOMER_ME, &token).await);
}

// One store only: the test stops its Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_while_redis_is_down_is_a_503_with_retry_after_never_a_401() {
    let mut redis_server = RedisServer::start();
    let options = RedisStoreOptions::default().with_timeout(Duration::from_millis(300));
    let store = RedisStore::connect_with(&redis_server.url(), options)
        .await
        .expect("connect to the test redis-server");
    let server = Server::start(
        TokenRegistry::new(store),
        Backend::Unobserved,
        LockoutPolicy::default(),
    )
    .await;
    let token = server.customer_token(CUSTOMER).await;

    redis_server.stop();
    for (username, password) in [
        (CUSTOMER, PASSWORD),
        (CUSTOMER, PASSWORD),
        (CUSTOMER, "wrong"),
    ] {
        let started = Instant::now();
        let reply = server.sign_in(CUSTOMER_TOKEN, username, password).await;
        eprintln!(
            "sign-in with redis down answered {} in {:?}",
            reply.status,
            started.elapsed()
        );
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.header(RETRY_AFTER).is_some(), "{reply:?}");
        assert!(reply.header(CACHE_CONTROL).is_none(), "{reply:?}");
    }
    // The layer in front of the protected and the revoke routes fails closed too.
    for reply in [
        server.get(CUSTOMER_ME, Some(&token)).await,
        server.post(REVOKE, None, "", Some(&token)).await,
    ] {
        reply.message(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.header(RETRY_AFTER).is_some(), "{reply:?}");
    }
}
