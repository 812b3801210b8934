//! Revoking tokens: all of the caller's (`revoke-customer-token`), or one, the caller's own
//! or a named one (`token/revoke`), and who may revoke whose.

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::json;
use tower_bearer::sign_in::LockoutPolicy;

use super::{
    ADMIN, ADMIN_ME, CUSTOMER, CUSTOMER_ME, OTHER, REVOKE, REVOKE_ALL, Server, not_a_string,
};
use crate::support::Make;

pub(super) async fn revoke_customer_token_kills_every_token_of_the_caller_and_no_other(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(server.customer_token(CUSTOMER).await);
    }
    let other = server.customer_token(OTHER).await;
    let admin = server.admin_token().await;

    let reply = server.post(REVOKE_ALL, None, "", Some(&mine[0])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "true");
    for token in &mine {
        assert!(!server.opens(CUSTOMER_ME, token).await);
    }
    assert!(server.opens(CUSTOMER_ME, &other).await);
    assert!(server.opens(ADMIN_ME, &admin).await);
    assert_eq!(server.stored_tokens().await, 2);

    // The revoked token no longer authenticates the route itself.
    server
        .post(REVOKE_ALL, None, "", Some(&mine[1]))
        .await
        .message(StatusCode::UNAUTHORIZED);
}

pub(super) async fn revoke_customer_token_refuses_admin_tokens_and_anonymous_calls(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let customer = server.customer_token(CUSTOMER).await;
    let admin = server.admin_token().await;

    let as_admin = server.post(REVOKE_ALL, None, "", Some(&admin)).await;
    as_admin.message(StatusCode::FORBIDDEN);
    assert!(
        as_admin
            .header(WWW_AUTHENTICATE)
            .is_some_and(|value| value.contains("insufficient_scope"))
    );

    let anonymous = server.post(REVOKE_ALL, None, "", None).await;
    anonymous.message(StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .header(WWW_AUTHENTICATE)
            .is_some_and(|value| value.starts_with("Bearer"))
    );

    assert!(server.opens(CUSTOMER_ME, &customer).await);
    assert!(server.opens(ADMIN_ME, &admin).await);
}

pub(super) async fn revoke_without_a_body_kills_only_the_callers_own_token(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let first = server.customer_token(CUSTOMER).await;
    let second = server.customer_token(CUSTOMER).await;

    let reply = server.post(REVOKE, None, "", Some(&first)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "true");
    assert!(!server.opens(CUSTOMER_ME, &first).await);
    assert!(server.opens(CUSTOMER_ME, &second).await);
    assert_eq!(server.stored_tokens().await, 1);

    server
        .post(REVOKE, None, "", None)
        .await
        .message(StatusCode::UNAUTHORIZED);
}

pub(super) async fn revoke_of_a_named_token_kills_that_token(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let caller = server.customer_token(CUSTOMER).await;
    let target = server.customer_token(CUSTOMER).await;

    let reply = server
        .post_json(REVOKE, &json!({ "token": target }), Some(&caller))
        .await;
    assert_eq!(reply.json(), json!(true));
    assert!(!server.opens(CUSTOMER_ME, &target).await);
    assert!(server.opens(CUSTOMER_ME, &caller).await);
}

pub(super) async fn revoke_of_an_unknown_or_revoked_token_answers_true(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let caller = server.customer_token(CUSTOMER).await;
    let revoked = server.customer_token(CUSTOMER).await;
    let first = server
        .post_json(REVOKE, &json!({ "token": revoked }), Some(&caller))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_eq!(first.json(), json!(true));
    assert!(
        !server.opens(CUSTOMER_ME, &revoked).await,
        "the first revoke took"
    );

    for token in [
        revoked.as_str(),
        "0123456789abcdefghijklmnopqrstuv",
        "not a token at all",
    ] {
        let reply = server
            .post_json(REVOKE, &json!({ "token": token }), Some(&caller))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{token}: {reply:?}");
        assert_eq!(reply.json(), json!(true), "{token}");
    }
    assert!(server.opens(CUSTOMER_ME, &caller).await);
}

pub(super) async fn customer_cannot_revoke_another_customers_token(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let mine = server.customer_token(CUSTOMER).await;
    let theirs = server.customer_token(OTHER).await;
    let admin = server.admin_token().await;

    for target in [&theirs, &admin] {
        server
            .post_json(REVOKE, &json!({ "token": target }), Some(&mine))
            .await
            .message(StatusCode::FORBIDDEN);
    }
    assert!(server.opens(CUSTOMER_ME, &theirs).await);
    assert!(server.opens(ADMIN_ME, &admin).await);
    assert!(server.opens(CUSTOMER_ME, &mine).await);
}

pub(super) async fn a_customer_cannot_revoke_the_token_of_an_admin_of_the_same_name(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    // The customer `admin` and the admin `admin`: same subject text, different kinds.
    let customer = server.customer_token(ADMIN).await;
    let admin = server.admin_token().await;

    server
        .post_json(REVOKE, &json!({ "token": admin }), Some(&customer))
        .await
        .message(StatusCode::FORBIDDEN);
    assert!(server.opens(ADMIN_ME, &admin).await);
}

pub(super) async fn admin_may_revoke_any_customers_token(make: impl Make<LockoutPolicy, Server>) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    let customer = server.customer_token(CUSTOMER).await;
    let other = server.customer_token(OTHER).await;

    let reply = server
        .post_json(REVOKE, &json!({ "token": customer }), Some(&admin))
        .await;
    assert_eq!(reply.json(), json!(true));
    assert!(!server.opens(CUSTOMER_ME, &customer).await);
    assert!(server.opens(CUSTOMER_ME, &other).await);
    assert!(server.opens(ADMIN_ME, &admin).await);
}

pub(super) async fn revoke_of_a_non_string_token_is_a_400(make: impl Make<LockoutPolicy, Server>) {
    let server = make(LockoutPolicy::default()).await;
    let caller = server.customer_token(CUSTOMER).await;
    for token in not_a_string().into_iter().flatten() {
        let reply = server
            .post_json(REVOKE, &json!({ "token": token }), Some(&caller))
            .await;
        assert_eq!(
            reply.message(StatusCode::BAD_REQUEST),
            "\"token\" is required. Enter and try again.",
            "{token}"
        );
    }
    assert!(server.opens(CUSTOMER_ME, &caller).await);
}
