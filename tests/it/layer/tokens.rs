//! Rows "valid token" and "unknown, expired or revoked token": a valid token passes, in
//! any spelling of the scheme, with its caller; any other is refused with `invalid_token`.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use tower_bearer::{TokenKind, TokenRegistry};

use super::{
    BOTH_MODES, Challenge, DownStore, INVALID_TOKEN_CHALLENGE, Mode, assert_passed, assert_refused,
    bearer, header, issue, never_issued_token, send_both,
};
use crate::support::short_lifetimes;

// Row: valid token.

#[tokio::test]
async fn a_valid_token_passes_and_the_handler_sees_its_caller() {
    let registry = TokenRegistry::memory();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    for (kind, subject, lifetime) in [
        (TokenKind::Customer, "ada@example.com", 3600),
        (TokenKind::Admin, "root", 4 * 3600),
    ] {
        let (token, caller) = issue(&registry, kind, subject).await;
        assert_eq!(caller.kind, kind);
        assert_eq!(caller.subject, subject);
        assert_eq!(
            (caller.expires_at.expect("an expiry") - caller.issued_at).num_seconds(),
            lifetime
        );
        let issued_at = u64::try_from(caller.issued_at.timestamp()).expect("after 1970");
        assert!(
            issued_at.abs_diff(before) <= 5,
            "issued_at {issued_at} is now ({before})"
        );
        for mode in BOTH_MODES {
            let outcomes = send_both(mode, mode.layer(&registry), &[bearer(&token)], subject).await;
            assert_passed(&outcomes, Some(&caller));
        }
    }
}

#[tokio::test]
async fn the_scheme_is_case_insensitive_and_may_be_followed_by_several_spaces() {
    let registry = TokenRegistry::memory();
    let (token, caller) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    for form in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("bEaReR {token}"),
        format!("Bearer    {token}"),
        format!("  Bearer {token}  "),
        format!("\tBearer {token}\t"),
    ] {
        let value = [header(form.as_bytes())];
        let case = format!("{:?}", form.replace(&token, "<token>"));
        for mode in BOTH_MODES {
            let outcomes = send_both(mode, mode.layer(&registry), &value, &case).await;
            assert_passed(&outcomes, Some(&caller));
        }
    }
}

// Row: unknown, expired or revoked token.

#[tokio::test]
async fn an_unknown_token_is_rejected_with_invalid_token() {
    let registry = TokenRegistry::memory();
    let _someone_else = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let unknown = [bearer(&never_issued_token())];
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &unknown, "unknown token").await;
        assert_refused(
            &outcomes,
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        );
    }
}

#[tokio::test]
async fn a_well_formed_token_of_a_shape_never_issued_is_rejected_without_asking_the_store() {
    // Even with the store down: such a token cannot be live, so 401 (not 503) is right.
    let store = DownStore::default();
    let registry = TokenRegistry::new(store.clone());
    for token in ["abc", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "a-b.c_d~e+f/g=="] {
        let value = [bearer(token)];
        for mode in BOTH_MODES {
            let case = format!("token {token:?}");
            let outcomes = send_both(mode, mode.layer(&registry), &value, &case).await;
            assert_refused(
                &outcomes,
                StatusCode::UNAUTHORIZED,
                Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
            );
        }
    }
    assert_eq!(store.asked.load(Ordering::SeqCst), 0, "the store was asked");
}

#[tokio::test]
async fn an_expired_token_is_rejected_with_invalid_token() {
    let registry = TokenRegistry::memory().with_lifetimes(short_lifetimes());
    let (customer_token, customer) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (admin_token, admin) = issue(&registry, TokenKind::Admin, "root").await;
    let customer_value = [bearer(&customer_token)];
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &customer_value, "fresh").await;
        assert_passed(&outcomes, Some(&customer));
    }

    tokio::time::sleep(Duration::from_millis(1100)).await;

    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &customer_value, "expired").await;
        assert_refused(
            &outcomes,
            StatusCode::UNAUTHORIZED,
            Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
        );
    }
    // The admin lifetime (2 s) is its own: that token is still good.
    let admin_value = [bearer(&admin_token)];
    let outcomes = send_both(
        Mode::Required,
        Mode::Required.layer(&registry),
        &admin_value,
        "admin",
    )
    .await;
    assert_passed(&outcomes, Some(&admin));
}

#[tokio::test]
async fn a_revoked_token_is_rejected_with_invalid_token() {
    let registry = TokenRegistry::memory();
    let (revoked, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (kept, ada) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (bob_first, _) = issue(&registry, TokenKind::Customer, "bob@example.com").await;
    let (bob_second, _) = issue(&registry, TokenKind::Customer, "bob@example.com").await;

    assert!(registry.revoke(&revoked).await.expect("revoke"));
    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "bob@example.com")
            .await
            .expect("revoke all"),
        2
    );

    for (name, token) in [
        ("revoked one by one", &revoked),
        ("revoked with revoke_all (first)", &bob_first),
        ("revoked with revoke_all (second)", &bob_second),
    ] {
        for mode in BOTH_MODES {
            let outcomes = send_both(mode, mode.layer(&registry), &[bearer(token)], name).await;
            assert_refused(
                &outcomes,
                StatusCode::UNAUTHORIZED,
                Challenge::Exactly(INVALID_TOKEN_CHALLENGE),
            );
        }
    }
    // Revoking one token leaves the subject's other tokens alive.
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &[bearer(&kept)], "kept").await;
        assert_passed(&outcomes, Some(&ada));
    }
}
