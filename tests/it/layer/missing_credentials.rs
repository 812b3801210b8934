//! Rows "no `Authorization`, an empty one, or another scheme": refused with the bare
//! challenge when the layer is required, let through as a guest when it is optional.

use http::{HeaderValue, StatusCode};
use tower_bearer::{TokenKind, TokenRegistry};

use super::{
    BARE_CHALLENGE, Challenge, Mode, assert_passed, assert_refused, header, issue, send_both,
};

#[tokio::test]
async fn a_request_without_authorization_is_challenged_when_required() {
    let registry = TokenRegistry::memory();
    let outcomes = send_both(
        Mode::Required,
        Mode::Required.layer(&registry),
        &[],
        "no header",
    )
    .await;
    assert_refused(
        &outcomes,
        StatusCode::UNAUTHORIZED,
        Challenge::Exactly(BARE_CHALLENGE),
    );
}

#[tokio::test]
async fn a_request_without_authorization_passes_as_a_guest_when_optional() {
    let registry = TokenRegistry::memory();
    let outcomes = send_both(
        Mode::Optional,
        Mode::Optional.layer(&registry),
        &[],
        "no header",
    )
    .await;
    assert_passed(&outcomes, None);
}

/// Refused with the bare challenge when required, let through as a guest when optional.
async fn assert_counts_as_no_credentials(registry: &TokenRegistry, value: HeaderValue, name: &str) {
    let value = [value];
    let required = send_both(Mode::Required, Mode::Required.layer(registry), &value, name).await;
    assert_refused(
        &required,
        StatusCode::UNAUTHORIZED,
        Challenge::Exactly(BARE_CHALLENGE),
    );
    let optional = send_both(Mode::Optional, Mode::Optional.layer(registry), &value, name).await;
    assert_passed(&optional, None);
}

// Row: empty Authorization value (Magento PWA Studio sends `authorization: ''` for guests).

#[tokio::test]
async fn an_empty_authorization_value_counts_as_no_credentials() {
    let registry = TokenRegistry::memory();
    assert_counts_as_no_credentials(&registry, HeaderValue::from_static(""), "empty").await;
}

// Row: another scheme.

#[tokio::test]
async fn another_scheme_counts_as_no_bearer_credentials() {
    let registry = TokenRegistry::memory();
    let value = HeaderValue::from_static("Basic dXNlcjpwYXNz");
    assert_counts_as_no_credentials(&registry, value, "Basic").await;
}

#[tokio::test]
async fn values_that_are_not_bearer_credentials_count_as_no_credentials() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("spaces only", b"   ".to_vec()),
        ("a tab only", b"\t".to_vec()),
        ("Basic", b"Basic dXNlcjpwYXNz".to_vec()),
        ("Digest", br#"Digest username="a", realm="api""#.to_vec()),
        ("Negotiate", b"Negotiate YIIB".to_vec()),
        (
            "a scheme that only starts with Bearer",
            b"Bearerx abc".to_vec(),
        ),
        (
            "Bearerx with a real token",
            format!("Bearerx {token}").into_bytes(),
        ),
        ("a bare token with no scheme", token.clone().into_bytes()),
        (
            "Token scheme with a real token",
            format!("Token {token}").into_bytes(),
        ),
    ];
    for (name, bytes) in &cases {
        let case = format!("not bearer credentials: {name}");
        assert_counts_as_no_credentials(&registry, header(bytes), &case).await;
    }
}
