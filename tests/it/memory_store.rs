//! What is particular to the embedded store: bounded memory under churn.

use std::time::Duration;

use tower_bearer::store::MemoryStore;
use tower_bearer::token::Lifetimes;
use tower_bearer::{TokenKind, TokenRegistry};

#[tokio::test]
async fn memory_stays_bounded_under_churn_of_expiring_tokens() {
    let store = MemoryStore::new();
    let lifetimes = Lifetimes::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    let registry = TokenRegistry::new(store.clone()).with_lifetimes(lifetimes);
    const WAVE: usize = 20_000;

    let mut peak = 0;
    for wave in 0..4 {
        for i in 0..WAVE {
            registry
                .issue(TokenKind::Customer, format!("user{wave}-{i}"))
                .await
                .unwrap();
            peak = peak.max(store.stored_tokens());
        }
        // Let this wave expire before the next one is written.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // 80,000 tokens were written; at most one wave is live at a time. Expired records are
    // purged as new ones arrive, so the store never holds much more than two waves.
    assert!(
        peak <= 2 * WAVE + 16 * 256,
        "the store grew to {peak} records for {WAVE} live ones"
    );
    assert!(peak >= WAVE, "every live token is kept ({peak})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_is_consistent_under_concurrent_issue_resolve_and_revoke() {
    let registry = TokenRegistry::memory();
    let tasks: Vec<_> = (0..8)
        .map(|worker| {
            let registry = registry.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    let subject = format!("user{}", i % 7);
                    let issued = registry.issue(TokenKind::Customer, &subject).await.unwrap();
                    let caller = registry.resolve(issued.token.expose()).await.unwrap();
                    assert_eq!(caller.as_ref(), Some(&issued.caller), "worker {worker}");
                    if i % 3 == 0 {
                        assert!(registry.revoke(issued.token.expose()).await.unwrap());
                        assert_eq!(registry.resolve(issued.token.expose()).await.unwrap(), None);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut revoked = 0;
    for i in 0..7 {
        revoked += registry
            .revoke_all(TokenKind::Customer, &format!("user{i}"))
            .await
            .unwrap();
    }
    // 8 workers × 500 issues, a third of them revoked one by one.
    assert_eq!(revoked, 8 * (500 - 167));
}
