//! Row "valid token of the wrong kind": a kind-restricted layer refuses the other kind with
//! 403 and `insufficient_scope`, and lets its own kind through.

use http::StatusCode;
use tower_bearer::{TokenKind, TokenRegistry};

use super::{
    ADMIN_SCOPE_CHALLENGE, BOTH_MODES, CUSTOMER_SCOPE_CHALLENGE, Challenge, assert_passed,
    assert_refused, bearer, issue, send_both,
};

#[tokio::test]
async fn a_customer_token_on_an_admin_layer_is_rejected_with_insufficient_scope() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    for mode in BOTH_MODES {
        let layer = mode.layer(&registry).with_kind(TokenKind::Admin);
        let outcomes = send_both(mode, layer, &[bearer(&token)], "customer on admin").await;
        assert_refused(
            &outcomes,
            StatusCode::FORBIDDEN,
            Challenge::Exactly(ADMIN_SCOPE_CHALLENGE),
        );
    }
}

#[tokio::test]
async fn an_admin_token_on_a_customer_layer_is_rejected_with_insufficient_scope() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Admin, "root").await;
    for mode in BOTH_MODES {
        let layer = mode.layer(&registry).with_kind(TokenKind::Customer);
        let outcomes = send_both(mode, layer, &[bearer(&token)], "admin on customer").await;
        assert_refused(
            &outcomes,
            StatusCode::FORBIDDEN,
            Challenge::Exactly(CUSTOMER_SCOPE_CHALLENGE),
        );
    }
}

#[tokio::test]
async fn a_token_of_the_required_kind_passes_a_kind_restricted_layer() {
    let registry = TokenRegistry::memory();
    let (admin_token, admin) = issue(&registry, TokenKind::Admin, "root").await;
    let (customer_token, customer) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    for mode in BOTH_MODES {
        let layer = mode.layer(&registry).with_kind(TokenKind::Admin);
        let outcomes = send_both(mode, layer, &[bearer(&admin_token)], "admin on admin").await;
        assert_passed(&outcomes, Some(&admin));
        let layer = mode.layer(&registry).with_kind(TokenKind::Customer);
        let outcomes = send_both(
            mode,
            layer,
            &[bearer(&customer_token)],
            "customer on customer",
        )
        .await;
        assert_passed(&outcomes, Some(&customer));
    }
}
