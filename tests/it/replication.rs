//! Revocations and failover, on a real primary and replica (`redis-server --replicaof`):
//! what a promoted replica knows of a revocation, with and without
//! `RedisStoreOptions::with_replica_acks`. The loss without it is shown here, not assumed.

use std::time::Duration;

use tower_bearer::store::{RedisStoreOptions, StoreError};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::support::{RedisServer, wait_until};

const WAIT: Duration = Duration::from_millis(300);

/// A primary, its replica, a token issued on the primary and replicated, and a registry
/// over the primary with `options`.
struct Pair {
    primary: RedisServer,
    replica: RedisServer,
    registry: TokenRegistry,
    token: String,
}

impl Pair {
    async fn start(options: RedisStoreOptions) -> Self {
        let primary = RedisServer::start();
        let replica = RedisServer::start_replica_of(&primary);
        let registry = TokenRegistry::redis_with(&primary.url(), options)
            .await
            .expect("connect to the primary");
        let issued = registry
            .issue(TokenKind::Customer, "ada")
            .await
            .expect("issued");
        let token = issued.token.expose().to_owned();
        let pair = Self {
            primary,
            replica,
            registry,
            token,
        };
        // The token reached the replica: only the revocation is in question below.
        let on_replica = pair.on_replica().await;
        let token = pair.token.clone();
        let mut replicated = false;
        for _ in 0..200 {
            if on_replica
                .resolve(&token)
                .await
                .expect("replica answers")
                .is_some()
            {
                replicated = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(replicated, "the token reached the replica");
        pair
    }

    async fn on_replica(&self) -> TokenRegistry {
        TokenRegistry::redis(&self.replica.url())
            .await
            .expect("connect to the replica")
    }

    /// Cuts the replication link and keeps it cut: the replica frozen, its link dropped by
    /// the primary, so nothing written from now on reaches it.
    fn cut_the_replica_off(&self) {
        self.replica.pause();
        self.primary.cli(&["CLIENT", "KILL", "TYPE", "replica"]);
    }

    /// The primary dies; the replica is thawed and promoted, as a failover does.
    async fn fail_over(&mut self) -> TokenRegistry {
        self.primary.stop();
        self.replica.resume();
        let promoted = self.replica.cli(&["REPLICAOF", "NO", "ONE"]);
        assert!(promoted.contains("OK"), "promoted: {promoted}");
        let replica = &self.replica;
        wait_until(
            Duration::from_secs(5),
            "the replica to be a primary",
            || replica.info("replication").contains("role:master"),
        )
        .await;
        self.on_replica().await
    }
}

#[tokio::test]
async fn a_revocation_acknowledged_by_a_replica_survives_its_promotion() {
    let mut pair = Pair::start(RedisStoreOptions::default().with_replica_acks(1, WAIT)).await;

    assert!(
        pair.registry
            .revoke(&pair.token)
            .await
            .expect("acknowledged")
    );

    let promoted = pair.fail_over().await;
    assert_eq!(promoted.resolve(&pair.token).await.expect("answers"), None);
}

#[tokio::test]
async fn without_acknowledgement_a_revocation_can_be_lost_in_a_failover() {
    let mut pair = Pair::start(RedisStoreOptions::default()).await;
    pair.cut_the_replica_off();

    // The primary alone acknowledges it...
    assert!(pair.registry.revoke(&pair.token).await.expect("revoked"));
    assert_eq!(
        pair.registry.resolve(&pair.token).await.expect("answers"),
        None
    );

    // ... and the promoted replica never had it: the revoked token lives again.
    let promoted = pair.fail_over().await;
    let caller = promoted.resolve(&pair.token).await.expect("answers");
    assert_eq!(caller.map(|caller| caller.subject).as_deref(), Some("ada"));
}

#[tokio::test]
async fn a_revocation_no_replica_acknowledged_fails_and_the_primary_refuses_the_token() {
    let mut pair = Pair::start(RedisStoreOptions::default().with_replica_acks(1, WAIT)).await;
    pair.cut_the_replica_off();

    // Not acknowledged: an error (503), so the client knows to retry...
    let refused = pair.registry.revoke(&pair.token).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::NotReplicated {
                acknowledged: 0,
                required: 1
            })
        ),
        "{refused:?}"
    );
    // ... while the primary already refuses the token, and a retry there still waits for
    // the replica.
    assert_eq!(
        pair.registry.resolve(&pair.token).await.expect("answers"),
        None
    );
    assert!(matches!(
        pair.registry.revoke(&pair.token).await,
        Err(StoreError::NotReplicated { .. })
    ));

    // After the failover the client's retry reaches the new primary, and holds.
    let promoted = pair.fail_over().await;
    assert!(promoted.revoke(&pair.token).await.expect("revoked"));
    assert_eq!(promoted.resolve(&pair.token).await.expect("answers"), None);
}

#[tokio::test]
async fn a_revoke_all_waits_for_the_replica_too() {
    let mut pair = Pair::start(RedisStoreOptions::default().with_replica_acks(1, WAIT)).await;
    pair.cut_the_replica_off();

    let refused = pair.registry.revoke_all(TokenKind::Customer, "ada").await;
    assert!(
        matches!(refused, Err(StoreError::NotReplicated { .. })),
        "{refused:?}"
    );
    assert_eq!(
        pair.registry.resolve(&pair.token).await.expect("answers"),
        None
    );

    // Once the replica is back, the retry is acknowledged, and survives the failover.
    pair.replica.resume();
    let mut retried = Err(StoreError::Timeout(WAIT));
    for _ in 0..50 {
        retried = pair.registry.revoke_all(TokenKind::Customer, "ada").await;
        if retried.is_ok() {
            break;
        }
    }
    assert_eq!(retried.expect("acknowledged once the replica is back"), 0);
    let promoted = pair.fail_over().await;
    assert_eq!(promoted.resolve(&pair.token).await.expect("answers"), None);
}

#[tokio::test]
async fn a_revocation_waiting_for_replicas_holds_back_no_other_call() {
    let pair =
        Pair::start(RedisStoreOptions::default().with_replica_acks(1, Duration::from_secs(2)))
            .await;
    let other = pair
        .registry
        .issue(TokenKind::Customer, "bob")
        .await
        .expect("issued");
    pair.cut_the_replica_off();

    let registry = pair.registry.clone();
    let token = pair.token.clone();
    let revoke = tokio::spawn(async move { registry.revoke(&token).await });
    tokio::time::sleep(Duration::from_millis(100)).await; // its WAIT is in flight

    // A `WAIT` holds back every later command of its connection: resolves and issues must
    // not be on it.
    let resolved = pair.registry.resolve(other.token.expose()).await;
    assert_eq!(
        resolved
            .expect("answered")
            .map(|caller| caller.subject)
            .as_deref(),
        Some("bob")
    );
    pair.registry
        .issue(TokenKind::Customer, "carol")
        .await
        .expect("issued meanwhile");
    assert!(
        !revoke.is_finished(),
        "the revoke still waits for the replica"
    );
    let revoked = revoke.await.expect("the task ends");
    assert!(
        matches!(revoked, Err(StoreError::NotReplicated { .. })),
        "{revoked:?}"
    );
}
