//! Shaping the refusals (a custom body, realm and `Retry-After`), and what no refusal,
//! default or custom, ever carries: the token it was sent.

use std::time::Duration;

use http::{HeaderValue, StatusCode};
use serde_json::json;
use tower_bearer::bearer::{ErrorBody, MalformedAuthorization};
use tower_bearer::{AuthError, TokenKind, TokenRegistry};

use super::{
    ADMIN_SCOPE_CHALLENGE, BARE_CHALLENGE, BOTH_MODES, Challenge, DownStore,
    INVALID_REQUEST_PREFIX, INVALID_TOKEN_CHALLENGE, Mode, assert_refusal_shape, assert_refused,
    bearer, header, invalid_request, issue, never_issued_token, send_both,
};
use crate::support::short_lifetimes;

fn graphql_error_body(error: &AuthError) -> ErrorBody {
    ErrorBody::json(&json!({
        "errors": [{
            "message": error.to_string(),
            "extensions": { "category": "graphql-authentication" },
        }]
    }))
}

#[tokio::test]
async fn a_custom_error_body_keeps_the_status_and_challenge() {
    let registry = TokenRegistry::memory();
    let down = TokenRegistry::new(DownStore::default());
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let unknown = never_issued_token();

    let cases = [
        (
            "no header",
            &registry,
            None,
            Vec::new(),
            AuthError::MissingCredentials,
            Challenge::Exactly(BARE_CHALLENGE),
        ),
        (
            "malformed",
            &registry,
            None,
            vec![HeaderValue::from_static("Bearer")],
            AuthError::InvalidRequest(MalformedAuthorization::MissingToken),
            Challenge::StartsWith(INVALID_REQUEST_PREFIX),
        ),
        (
            "unknown token",
            &registry,
            None,
            vec![bearer(&unknown)],
            AuthError::InvalidToken,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        ),
        (
            "wrong kind",
            &registry,
            Some(TokenKind::Admin),
            vec![bearer(&customer_token)],
            AuthError::InsufficientScope {
                required: TokenKind::Admin,
            },
            Challenge::Exactly(ADMIN_SCOPE_CHALLENGE),
        ),
        (
            "store down",
            &down,
            None,
            vec![bearer(&unknown)],
            AuthError::StoreUnavailable,
            Challenge::Absent,
        ),
    ];
    for (name, registry, kind, values, error, challenge) in cases {
        let mut layer = Mode::Required
            .layer(registry)
            .with_error_body(graphql_error_body);
        if let Some(kind) = kind {
            layer = layer.with_kind(kind);
        }
        let outcomes = send_both(Mode::Required, layer, &values, name).await;
        let expected = json!({
            "errors": [{
                "message": error.to_string(),
                "extensions": { "category": "graphql-authentication" },
            }]
        });
        for outcome in &outcomes {
            assert_refusal_shape(outcome, error.status(), challenge);
            assert_eq!(outcome.json, expected, "{}: custom body", outcome.context);
            assert_eq!(
                outcome.content_type.as_deref(),
                Some("application/json"),
                "{}: content type",
                outcome.context
            );
        }
    }
}

#[tokio::test]
async fn a_custom_realm_appears_in_every_challenge() {
    let registry = TokenRegistry::memory();
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let layer = || Mode::Required.layer(&registry).with_realm("shop");

    let outcomes = send_both(Mode::Required, layer(), &[], "no header").await;
    assert_refused(
        &outcomes,
        StatusCode::UNAUTHORIZED,
        Challenge::Exactly(r#"Bearer realm="shop""#),
    );
    let outcomes = send_both(
        Mode::Required,
        layer(),
        &[HeaderValue::from_static("Bearer")],
        "malformed",
    )
    .await;
    assert_refused(
        &outcomes,
        StatusCode::BAD_REQUEST,
        Challenge::StartsWith(r#"Bearer realm="shop", error="invalid_request""#),
    );
    let unknown = [bearer(&never_issued_token())];
    let outcomes = send_both(Mode::Required, layer(), &unknown, "unknown token").await;
    assert_refused(
        &outcomes,
        StatusCode::UNAUTHORIZED,
        Challenge::Exactly(
            r#"Bearer realm="shop", error="invalid_token", error_description="The access token is invalid, expired or revoked""#,
        ),
    );
    let admin_only = layer().with_kind(TokenKind::Admin);
    let outcomes = send_both(
        Mode::Required,
        admin_only,
        &[bearer(&customer_token)],
        "wrong kind",
    )
    .await;
    assert_refused(
        &outcomes,
        StatusCode::FORBIDDEN,
        Challenge::Exactly(r#"Bearer realm="shop", error="insufficient_scope", scope="admin""#),
    );
}

#[tokio::test]
async fn a_custom_retry_after_is_sent_with_503() {
    let registry = TokenRegistry::new(DownStore::default());
    let value = [bearer(&never_issued_token())];
    for mode in BOTH_MODES {
        let layer = mode
            .layer(&registry)
            .with_retry_after(Duration::from_secs(7));
        let outcomes = send_both(mode, layer, &value, "store down").await;
        assert_refused(
            &outcomes,
            StatusCode::SERVICE_UNAVAILABLE,
            Challenge::Absent,
        );
        for outcome in &outcomes {
            assert_eq!(
                outcome.retry_after.as_deref(),
                Some("7"),
                "{}",
                outcome.context
            );
        }
    }
}

// The token never comes back.

#[tokio::test]
async fn refusals_never_echo_the_token() {
    let registry = TokenRegistry::memory().with_lifetimes(short_lifetimes());
    let down = TokenRegistry::new(DownStore::default());
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (revoked_token, _) = issue(&registry, TokenKind::Customer, "bob@example.com").await;
    registry.revoke(&revoked_token).await.expect("revoke");
    let unknown = never_issued_token();
    let invalid_character = invalid_request(MalformedAuthorization::InvalidCharacter);
    let multiple_headers = invalid_request(MalformedAuthorization::MultipleHeaders);

    // (case, registry, layer kind, header values, status, challenge)
    let cases = [
        (
            "unknown",
            &registry,
            None,
            vec![bearer(&unknown)],
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        ),
        (
            "revoked",
            &registry,
            None,
            vec![bearer(&revoked_token)],
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        ),
        (
            "wrong kind",
            &registry,
            Some(TokenKind::Admin),
            vec![bearer(&customer_token)],
            StatusCode::FORBIDDEN,
            Challenge::Exactly(ADMIN_SCOPE_CHALLENGE),
        ),
        (
            "store down",
            &down,
            None,
            vec![bearer(&unknown)],
            StatusCode::SERVICE_UNAVAILABLE,
            Challenge::Absent,
        ),
        (
            "junk after token",
            &registry,
            None,
            vec![header(format!("Bearer {customer_token} x").as_bytes())],
            StatusCode::BAD_REQUEST,
            Challenge::Exactly(&invalid_character),
        ),
        (
            "two headers",
            &registry,
            None,
            vec![bearer(&customer_token), bearer(&unknown)],
            StatusCode::BAD_REQUEST,
            Challenge::Exactly(&multiple_headers),
        ),
        (
            "upper-case token",
            &registry,
            None,
            vec![bearer(&customer_token.to_uppercase())],
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        ),
    ];
    for (name, registry, kind, values, status, challenge) in cases {
        for mode in BOTH_MODES {
            for with_custom_body in [false, true] {
                let mut layer = mode.layer(registry);
                if let Some(kind) = kind {
                    layer = layer.with_kind(kind);
                }
                if with_custom_body {
                    layer = layer.with_error_body(graphql_error_body);
                }
                let outcomes = send_both(mode, layer, &values, name).await;
                for outcome in &outcomes {
                    // Also checks that neither body nor headers carry what was sent.
                    assert_refusal_shape(outcome, status, challenge);
                }
            }
        }
    }

    // And an expired one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for mode in BOTH_MODES {
        let outcomes = send_both(
            mode,
            mode.layer(&registry),
            &[bearer(&customer_token)],
            "expired",
        )
        .await;
        assert_refused(
            &outcomes,
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        );
    }
}
