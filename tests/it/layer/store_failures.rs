//! Row "token store unreachable or too slow": 503 with `Retry-After`, never a 401, and the
//! inner service never runs.

use std::sync::atomic::Ordering;

use http::StatusCode;
use tower_bearer::{TokenKind, TokenRegistry};

use super::{
    BOTH_MODES, Challenge, DownStore, assert_refused, bearer, never_issued_token, send_both,
};

#[tokio::test]
async fn a_store_failure_answers_503_with_retry_after_and_never_calls_the_service() {
    let store = DownStore::default();
    let registry = TokenRegistry::new(store.clone());
    let value = [bearer(&never_issued_token())];
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &value, "store down").await;
        assert_refused(
            &outcomes,
            StatusCode::SERVICE_UNAVAILABLE,
            Challenge::Absent,
        );
        for outcome in &outcomes {
            assert_eq!(
                outcome.retry_after.as_deref(),
                Some("1"),
                "{}: default Retry-After",
                outcome.context
            );
        }
        // Also with a kind restriction: the kind cannot be known, so still 503.
        let layer = mode.layer(&registry).with_kind(TokenKind::Admin);
        let outcomes = send_both(mode, layer, &value, "store down, admin layer").await;
        assert_refused(
            &outcomes,
            StatusCode::SERVICE_UNAVAILABLE,
            Challenge::Absent,
        );
    }
    assert_eq!(
        store.asked.load(Ordering::SeqCst),
        8,
        "every request asked the store once"
    );
}
