//! GraphQL subscriptions over WebSocket (`graphql-transport-ws`) at `/graphql`, with a real
//! client over a real socket: the token of `connection_init`, and the socket closed when
//! that token is revoked (here or on another instance), expires, or cannot be checked.

use std::time::{Duration, Instant};

use async_graphql::futures_util::Stream;
use async_graphql::{Context, EmptyMutation, Object, Schema, SimpleObject, Subscription};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower_bearer::magento::graphql::{self, close, with_default_limits};
use tower_bearer::registry::SessionRules;
use tower_bearer::store::{CacheOptions, OnLimit, RedisStoreOptions, SubjectLimit};
use tower_bearer::token::{Lifetimes, Token};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::support::{RedisProxy, RedisServer, serve, wait_until};

/// The longest any step may take before the test is failed as hung: a bound against hangs,
/// not a claim about speed.
const HANG: Duration = Duration::from_secs(15);

/// A recheck interval no test outlives: a socket closed within a test was closed by an
/// announcement, not by a recheck.
const NEVER_RECHECKED: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct Query;

#[Object]
impl Query {
    async fn ping(&self) -> bool {
        true
    }
}

#[derive(Default)]
struct Subscription;

#[derive(SimpleObject)]
struct Tick {
    n: u64,
    subject: Option<String>,
}

#[Subscription]
impl Subscription {
    /// As in `examples/graphql.rs`: a counter with the socket's subject.
    async fn tick(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "every_ms")] every_ms: u32,
    ) -> impl Stream<Item = Tick> + use<> {
        let subject = graphql::caller(ctx).map(|caller| caller.subject.clone());
        let every = Duration::from_millis(u64::from(every_ms.max(10)));
        futures_util::stream::unfold((0u64, subject), move |(n, subject)| async move {
            tokio::time::sleep(every).await;
            let tick = Tick {
                n: n + 1,
                subject: subject.clone(),
            };
            Some((tick, (n + 1, subject)))
        })
    }
}

/// `/graphql` over `registry`, served on a loopback port; returns its `ws://` URL.
async fn serve_graphql(registry: TokenRegistry) -> String {
    let schema = with_default_limits(Schema::build(Query, EmptyMutation, Subscription)).finish();
    let base = serve(graphql::router(schema, registry)).await;
    format!("{}/graphql", base.replacen("http://", "ws://", 1))
}

/// What the client saw next.
#[derive(Debug)]
enum Seen {
    Json(Value),
    Closed(u16, String),
}

struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects offering `graphql-transport-ws`.
    async fn connect(url: &str) -> Self {
        Self::connect_with(url, &[("sec-websocket-protocol", "graphql-transport-ws")]).await
    }

    async fn connect_with(url: &str, headers: &[(&'static str, &'static str)]) -> Self {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, http::HeaderValue::from_static(value));
        }
        let (socket, _) = tokio::time::timeout(HANG, tokio_tungstenite::connect_async(request))
            .await
            .expect("connected in time")
            .expect("the upgrade succeeds");
        Self { socket }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next message or the close, skipping pings; fails the test if nothing comes.
    async fn next(&mut self) -> Seen {
        loop {
            let message = tokio::time::timeout(HANG, self.socket.next())
                .await
                .expect("the server answered in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Seen::Json(serde_json::from_str(&text).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |frame| {
                        (u16::from(frame.code), frame.reason.to_string())
                    });
                    return Seen::Closed(code, reason);
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    }

    /// Sends `connection_init` with `payload` (none for `Value::Null`).
    async fn init(&mut self, payload: Value) {
        let message = if payload.is_null() {
            json!({"type": "connection_init"})
        } else {
            json!({"type": "connection_init", "payload": payload})
        };
        self.send(message).await;
    }

    /// `connection_init`, and its acknowledgement.
    async fn init_acked(&mut self, payload: Value) {
        self.init(payload).await;
        match self.next().await {
            Seen::Json(message) => assert_eq!(message["type"], "connection_ack", "{message}"),
            seen => panic!("not acknowledged: {seen:?}"),
        }
    }

    /// Subscribes to `tick` as operation `id`.
    async fn subscribe_ticks(&mut self, id: &str) {
        self.send(json!({
            "id": id,
            "type": "subscribe",
            "payload": {"query": "subscription { tick(every_ms: 20) { n subject } }"},
        }))
        .await;
    }

    /// The next `next` message's payload; fails the test on anything else.
    async fn next_payload(&mut self) -> Value {
        match self.next().await {
            Seen::Json(message) if message["type"] == "next" => message["payload"].clone(),
            seen => panic!("expected a next message, saw {seen:?}"),
        }
    }

    /// Reads on (ticks included) until the socket is closed; returns the close.
    async fn until_closed(&mut self) -> (u16, String) {
        let deadline = Instant::now() + HANG;
        loop {
            assert!(Instant::now() < deadline, "the socket is still open");
            if let Seen::Closed(code, reason) = self.next().await {
                return (code, reason);
            }
        }
    }
}

fn bearer(token: &Token) -> Value {
    json!({"Authorization": format!("Bearer {}", token.expose())})
}

#[tokio::test]
async fn a_guest_socket_ticks_with_no_subject() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(Value::Null).await;
    client.subscribe_ticks("1").await;
    let payload = client.next_payload().await;
    assert_eq!(
        payload,
        json!({"data": {"tick": {"n": 1, "subject": null}}})
    );
}

#[tokio::test]
async fn a_socket_with_a_valid_token_ticks_with_its_subject() {
    let registry = TokenRegistry::memory();
    let issued = registry
        .issue(TokenKind::Customer, "ada@example.com")
        .await
        .unwrap();
    let url = serve_graphql(registry).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&issued.token)).await;
    client.subscribe_ticks("1").await;
    let payload = client.next_payload().await;
    assert_eq!(
        payload,
        json!({"data": {"tick": {"n": 1, "subject": "ada@example.com"}}})
    );
}

#[tokio::test]
async fn the_lowercase_authorization_key_is_read_too() {
    let registry = TokenRegistry::memory();
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(registry).await;
    let mut client = Client::connect(&url).await;
    client
        .init_acked(json!({"authorization": format!("Bearer {}", issued.token.expose())}))
        .await;
    client.subscribe_ticks("1").await;
    let payload = client.next_payload().await;
    assert_eq!(payload["data"]["tick"]["subject"], "ada");
}

#[tokio::test]
async fn an_empty_authorization_is_a_guest() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(json!({"authorization": ""})).await;
    client.subscribe_ticks("1").await;
    let payload = client.next_payload().await;
    assert_eq!(payload["data"]["tick"]["subject"], Value::Null);
}

#[tokio::test]
async fn an_invalid_token_closes_the_socket_with_4403() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    let mut client = Client::connect(&url).await;
    client
        .init(json!({"Authorization": "Bearer 0123456789abcdefghijklmnopqrstuv"}))
        .await;
    match client.next().await {
        Seen::Closed(code, reason) => {
            assert_eq!((code, reason.as_str()), (close::FORBIDDEN, "Forbidden"));
        }
        seen => panic!("not closed: {seen:?}"),
    }
}

#[tokio::test]
async fn a_malformed_authorization_closes_the_socket_with_4400() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    for payload in [
        json!({"Authorization": "Bearer"}),
        json!({"Authorization": "Bearer a b"}),
        json!({"Authorization": 42}),
        json!({"Authorization": "Bearer abc", "authorization": "Bearer abc"}),
        json!("Bearer abc"),
    ] {
        let mut client = Client::connect(&url).await;
        client.init(payload.clone()).await;
        match client.next().await {
            Seen::Closed(code, _) => assert_eq!(code, close::BAD_REQUEST, "{payload}"),
            seen => panic!("{payload}: not closed: {seen:?}"),
        }
    }
}

#[tokio::test]
async fn a_header_on_the_upgrade_is_not_judged_by_the_http_layer() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    let mut client = Client::connect_with(
        &url,
        &[
            ("sec-websocket-protocol", "graphql-transport-ws"),
            ("authorization", "Bearer not-a-live-token"),
        ],
    )
    .await;
    client.init_acked(Value::Null).await;
    client.subscribe_ticks("1").await;
    let payload = client.next_payload().await;
    assert_eq!(payload["data"]["tick"]["subject"], Value::Null, "a guest");
}

#[tokio::test]
async fn a_client_without_the_subprotocol_is_closed_with_4406() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    let mut client = Client::connect_with(&url, &[]).await;
    match client.next().await {
        Seen::Closed(code, _) => assert_eq!(code, close::SUBPROTOCOL_NOT_ACCEPTABLE),
        seen => panic!("not closed: {seen:?}"),
    }
}

#[tokio::test]
async fn a_mutation_over_the_socket_is_refused_with_an_error() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(Value::Null).await;
    client
        .send(json!({
            "id": "1",
            "type": "subscribe",
            "payload": {"query": "mutation { revokeCustomerToken { result } }"},
        }))
        .await;
    let payload = client.next_payload().await;
    assert_eq!(
        payload["errors"][0]["message"],
        graphql::MUTATION_OVER_SOCKET_MESSAGE
    );
    assert_eq!(
        payload["errors"][0]["extensions"]["category"],
        "graphql-input"
    );
}

#[tokio::test]
async fn a_store_outage_at_connection_init_closes_the_socket_with_4500_and_no_tick() {
    let mut server = RedisServer::start();
    let registry = TokenRegistry::redis_with(&server.url(), RedisStoreOptions::default())
        .await
        .unwrap();
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(registry).await;
    server.stop();

    let mut client = Client::connect(&url).await;
    client.init(bearer(&issued.token)).await;
    // Subscribing at once: whatever the server makes of it, no tick may come.
    client.subscribe_ticks("1").await;
    match client.next().await {
        Seen::Closed(code, _) => assert_eq!(code, close::INTERNAL_ERROR),
        seen => panic!("expected the close, saw {seen:?}"),
    }
}

#[tokio::test]
async fn a_store_outage_while_open_closes_the_socket_with_4500() {
    let mut server = RedisServer::start();
    // No local cache, so no revocation feed: the socket's token is rechecked.
    let registry = TokenRegistry::redis_with(&server.url(), RedisStoreOptions::default())
        .await
        .unwrap()
        .with_recheck_every(Duration::from_millis(100));
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(registry).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&issued.token)).await;
    client.subscribe_ticks("1").await;
    client.next_payload().await;

    server.stop();
    assert_eq!(client.until_closed().await.0, close::INTERNAL_ERROR);
}

/// An instance of an app on the real Redis at `url`, with its local cache (and so the
/// revocation feed) on, and no recheck within a test.
async fn instance(url: &str) -> TokenRegistry {
    let options = RedisStoreOptions::default().with_cache(CacheOptions::default());
    let store = tower_bearer::store::RedisStore::connect_with(url, options)
        .await
        .unwrap();
    wait_until(HANG, "the revocation feed is subscribed", || {
        store.cache_stats().is_some_and(|stats| stats.live)
    })
    .await;
    TokenRegistry::new(store).with_recheck_every(NEVER_RECHECKED)
}

#[tokio::test]
async fn a_token_revoked_on_another_instance_closes_the_open_socket_with_4403() {
    let server = RedisServer::start();
    let a = instance(&server.url()).await;
    let b = instance(&server.url()).await;
    let issued = a.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(b).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&issued.token)).await;
    client.subscribe_ticks("1").await;
    assert_eq!(
        client.next_payload().await["data"]["tick"]["subject"],
        "ada"
    );

    assert!(a.revoke(issued.token.expose()).await.unwrap());
    assert_eq!(
        client.until_closed().await,
        (close::FORBIDDEN, "Forbidden".to_owned())
    );
}

#[tokio::test]
async fn a_revoke_all_on_another_instance_closes_every_socket_of_the_subject() {
    let server = RedisServer::start();
    let a = instance(&server.url()).await;
    let b = instance(&server.url()).await;
    let first = a.issue(TokenKind::Customer, "ada").await.unwrap();
    let second = a.issue(TokenKind::Customer, "ada").await.unwrap();
    let other = a.issue(TokenKind::Customer, "bob").await.unwrap();
    let url = serve_graphql(b).await;
    let mut clients = Vec::new();
    for token in [&first.token, &second.token, &other.token] {
        let mut client = Client::connect(&url).await;
        client.init_acked(bearer(token)).await;
        client.subscribe_ticks("1").await;
        client.next_payload().await;
        clients.push(client);
    }

    assert_eq!(a.revoke_all(TokenKind::Customer, "ada").await.unwrap(), 2);
    for client in &mut clients[..2] {
        assert_eq!(client.until_closed().await.0, close::FORBIDDEN);
    }
    // Bob's socket still ticks.
    let bob = &mut clients[2];
    assert_eq!(bob.next_payload().await["data"]["tick"]["subject"], "bob");
}

#[tokio::test]
async fn a_token_revoked_on_the_memory_store_closes_the_open_socket_with_4403() {
    let registry = TokenRegistry::memory().with_recheck_every(NEVER_RECHECKED);
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let kept = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(registry.clone()).await;
    let mut revoked_socket = Client::connect(&url).await;
    revoked_socket.init_acked(bearer(&issued.token)).await;
    revoked_socket.subscribe_ticks("1").await;
    revoked_socket.next_payload().await;
    let mut kept_socket = Client::connect(&url).await;
    kept_socket.init_acked(bearer(&kept.token)).await;
    kept_socket.subscribe_ticks("1").await;

    assert!(registry.revoke(issued.token.expose()).await.unwrap());
    assert_eq!(
        revoked_socket.until_closed().await,
        (close::FORBIDDEN, "Forbidden".to_owned())
    );
    assert_eq!(
        kept_socket.next_payload().await["data"]["tick"]["subject"],
        "ada"
    );
}

#[tokio::test]
async fn a_revoke_all_on_the_memory_store_closes_the_subjects_sockets() {
    let registry = TokenRegistry::memory().with_recheck_every(NEVER_RECHECKED);
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(registry.clone()).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&issued.token)).await;

    assert_eq!(
        registry
            .revoke_all(TokenKind::Customer, "ada")
            .await
            .unwrap(),
        1
    );
    assert_eq!(client.until_closed().await.0, close::FORBIDDEN);
}

#[tokio::test]
async fn without_a_revocation_feed_a_revoked_token_is_closed_at_a_recheck() {
    let server = RedisServer::start();
    let registry = TokenRegistry::redis_with(&server.url(), RedisStoreOptions::default())
        .await
        .unwrap()
        .with_recheck_every(Duration::from_millis(100));
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(registry.clone()).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&issued.token)).await;
    client.subscribe_ticks("1").await;
    client.next_payload().await;

    assert!(registry.revoke(issued.token.expose()).await.unwrap());
    assert_eq!(client.until_closed().await.0, close::FORBIDDEN);
}

#[tokio::test]
async fn an_expiring_token_closes_the_open_socket_at_its_expiry() {
    let lifetimes = Lifetimes::default()
        .with_customer(Duration::from_secs(1))
        .unwrap();
    let registry = TokenRegistry::memory()
        .with_lifetimes(lifetimes)
        .with_recheck_every(NEVER_RECHECKED);
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let expires_at = issued.caller.expires_at.unwrap();
    let url = serve_graphql(registry).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&issued.token)).await;
    client.subscribe_ticks("1").await;
    client.next_payload().await;

    let (code, reason) = client.until_closed().await;
    assert_eq!((code, reason.as_str()), (close::FORBIDDEN, "Forbidden"));
    assert!(
        chrono::Utc::now() >= expires_at,
        "closed before the token expired"
    );
}

#[tokio::test]
async fn a_socket_without_connection_init_is_closed_after_the_init_timeout() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    let mut client = Client::connect(&url).await;
    match client.next().await {
        Seen::Closed(code, _) => assert_eq!(code, close::INIT_TIMEOUT),
        seen => panic!("not closed: {seen:?}"),
    }
}

#[tokio::test]
async fn while_the_revocation_feed_is_lost_a_revoked_token_is_closed_at_a_recheck() {
    let server = RedisServer::start();
    let proxy = RedisProxy::start(&server.url()).await;
    let a = instance(&server.url()).await;
    // B hears revocations through the proxy, and checks its sockets' tokens every 100 ms
    // while it cannot.
    let b = instance(&proxy.url)
        .await
        .with_recheck_every(Duration::from_millis(100));
    let issued = a.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(b.clone()).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&issued.token)).await;
    client.subscribe_ticks("1").await;
    client.next_payload().await;

    proxy.black_hole_subscribers();
    let store = b.store();
    let mut lost = false;
    // The feed is noticed lost within two of its pings (a second each).
    let deadline = Instant::now() + HANG;
    while !lost {
        assert!(Instant::now() < deadline, "the hung feed was not noticed");
        let listener = store.revocations().expect("the cache is on");
        lost = !listener.is_live();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.revoke(issued.token.expose()).await.unwrap());
    assert_eq!(client.until_closed().await.0, close::FORBIDDEN);
}

#[tokio::test]
async fn a_token_revoked_by_the_subjects_limit_closes_its_socket() {
    let rules = SessionRules::default().with_limit(
        TokenKind::Customer,
        SubjectLimit::new(1, OnLimit::RevokeOldest),
    );
    let registry = TokenRegistry::memory()
        .with_session_rules(rules)
        .with_recheck_every(NEVER_RECHECKED);
    let oldest = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(registry.clone()).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&oldest.token)).await;

    registry.issue(TokenKind::Customer, "ada").await.unwrap();
    assert_eq!(client.until_closed().await.0, close::FORBIDDEN);
}

#[tokio::test]
async fn a_token_that_idles_out_closes_its_socket() {
    let rules = SessionRules::default()
        .with_idle_timeout(TokenKind::Customer, Duration::from_secs(1))
        .unwrap();
    let registry = TokenRegistry::memory()
        .with_session_rules(rules)
        .with_recheck_every(NEVER_RECHECKED);
    let issued = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let url = serve_graphql(registry).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(bearer(&issued.token)).await;
    client.subscribe_ticks("1").await;
    client.next_payload().await;

    // The ticks are no use of the token: it idles out, and its socket is closed.
    assert_eq!(client.until_closed().await.0, close::FORBIDDEN);
}

#[tokio::test]
async fn a_socket_runs_a_bounded_number_of_operations_at_once() {
    let url = serve_graphql(TokenRegistry::memory()).await;
    let mut client = Client::connect(&url).await;
    client.init_acked(Value::Null).await;
    let slow = json!({"query": "subscription { tick(every_ms: 60000) { n } }"});
    for id in 0..graphql::MAX_OPERATIONS_PER_SOCKET {
        client
            .send(json!({"id": id.to_string(), "type": "subscribe", "payload": slow}))
            .await;
    }
    client
        .send(json!({"id": "one too many", "type": "subscribe", "payload": slow}))
        .await;
    match client.next().await {
        Seen::Json(message) => {
            assert_eq!(message["id"], "one too many");
            assert_eq!(
                message["payload"]["errors"][0]["message"],
                graphql::TOO_MANY_OPERATIONS_MESSAGE
            );
        }
        seen => panic!("expected the refusal, saw {seen:?}"),
    }
    // Completing one makes room for another.
    client.send(json!({"id": "0", "type": "complete"})).await;
    client
        .send(json!({"id": "fast", "type": "subscribe", "payload": {"query": "subscription { tick(every_ms: 10) { n } }"}}))
        .await;
    loop {
        match client.next().await {
            Seen::Json(message) if message["id"] == "fast" => {
                assert_eq!(message["type"], "next", "{message}");
                assert_eq!(message["payload"]["data"]["tick"]["n"], 1);
                break;
            }
            Seen::Json(_) => {} // the refused operation's `complete`
            seen => panic!("closed: {seen:?}"),
        }
    }
}
