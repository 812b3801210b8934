//! An admin signs a customer out everywhere (`POST /V1/customers/{email}/tokens/revoke`).

use reqwest::StatusCode;
use serde_json::json;
use tower_bearer::sign_in::LockoutPolicy;

use super::{CUSTOMER, CUSTOMER_ME, OTHER, PREFIXES, Server, force_sign_out, memory};
use crate::support::Make;

pub(super) async fn admin_force_sign_out_kills_every_token_of_the_customer(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    let first = server.customer_token(CUSTOMER).await;
    let second = server.customer_token(CUSTOMER).await;
    let other = server.customer_token(OTHER).await;

    let reply = server
        .post(&force_sign_out(CUSTOMER), None, "", Some(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "2");
    assert!(!server.opens(CUSTOMER_ME, &first).await);
    assert!(!server.opens(CUSTOMER_ME, &second).await);
    assert!(server.opens(CUSTOMER_ME, &other).await);

    // Nothing left to revoke.
    let again = server
        .post(&force_sign_out(CUSTOMER), None, "", Some(&admin))
        .await;
    assert_eq!(again.json(), json!(0));
}

pub(super) async fn admin_force_sign_out_matches_the_email_case_insensitively(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    let customer = server.customer_token(CUSTOMER).await;

    let reply = server
        .post(
            &force_sign_out("CUSTOMER@example.com"),
            None,
            "",
            Some(&admin),
        )
        .await;
    assert_eq!(reply.json(), json!(1));
    assert!(!server.opens(CUSTOMER_ME, &customer).await);
}

/// Fails under `/rest/{store_code}`: the handler's `Path<String>` finds two parameters
/// (`store_code`, `email`) and axum answers 500 in plain text.
pub(super) async fn admin_force_sign_out_answers_at_v1_rest_v1_and_rest_store_code_v1(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    for prefix in PREFIXES {
        let customer = server.customer_token(CUSTOMER).await;
        let route = format!("{prefix}{}", force_sign_out(CUSTOMER));
        let reply = server.post(&route, None, "", Some(&admin)).await;
        assert_eq!(reply.status, StatusCode::OK, "{route}: {reply:?}");
        assert_eq!(reply.json(), json!(1), "{route}");
        assert!(!server.opens(CUSTOMER_ME, &customer).await);
    }
}

pub(super) async fn admin_force_sign_out_of_an_unknown_email_is_a_404(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    let reply = server
        .post(
            &force_sign_out("nobody@example.com"),
            None,
            "",
            Some(&admin),
        )
        .await;
    reply.message(StatusCode::NOT_FOUND);
}

pub(super) async fn admin_force_sign_out_refuses_customer_tokens(
    make: impl Make<LockoutPolicy, Server>,
) {
    let server = make(LockoutPolicy::default()).await;
    let customer = server.customer_token(CUSTOMER).await;
    let other = server.customer_token(OTHER).await;
    for (target, caller) in [(CUSTOMER, &customer), (OTHER, &customer)] {
        server
            .post(&force_sign_out(target), None, "", Some(caller))
            .await
            .message(StatusCode::FORBIDDEN);
    }
    server
        .post(&force_sign_out(CUSTOMER), None, "", None)
        .await
        .message(StatusCode::UNAUTHORIZED);
    assert!(server.opens(CUSTOMER_ME, &customer).await);
    assert!(server.opens(CUSTOMER_ME, &other).await);
}

// One store only.
#[tokio::test]
async fn a_malformed_email_in_the_force_sign_out_path_is_a_json_400() {
    let server = memory(LockoutPolicy::default()).await;
    let admin = server.admin_token().await;
    // %FF decodes to a byte that is not UTF-8.
    let reply = server
        .post(&force_sign_out("%FF"), None, "", Some(&admin))
        .await;
    reply.message(StatusCode::BAD_REQUEST);
}
