//! Client details recorded at issue: the `User-Agent` (bounded) and the client's address,
//! from the connection, or from forwarding headers only when the peer is a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use reqwest::header::USER_AGENT;
use tower_bearer::magento::rest;
use tower_bearer::sign_in::{ForwardedHeader, MemoryDirectory, RemoteAssistance};
use tower_bearer::token::MAX_USER_AGENT_LEN;
use tower_bearer::{Caller, SignIn, TokenRegistry};

use crate::support::TestRedis;

/// The token routes over a real socket, with the connection's address available
/// (`into_make_service_with_connect_info`, as the example server serves them).
async fn serve(sign_in: SignIn) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = rest::router(sign_in).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn sign_in(registry: &TokenRegistry) -> SignIn {
    let directory = MemoryDirectory::new();
    directory
        .add_customer("ada@example.com", "s3cret", RemoteAssistance::Denied)
        .unwrap();
    SignIn::new(registry.clone(), directory)
}

/// Signs in with the given extra headers; returns what the token resolves to.
async fn sign_in_with(
    base: &str,
    registry: &TokenRegistry,
    headers: &[(&'static str, &str)],
) -> Caller {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/V1/integration/customer/token"))
        .json(&serde_json::json!({ "username": "ada@example.com", "password": "s3cret" }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let token: String = response.json().await.unwrap();
    registry
        .resolve(&token)
        .await
        .unwrap()
        .expect("a live token")
}

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

async fn the_user_agent_and_the_connections_address_are_recorded(registry: TokenRegistry) {
    let base = serve(sign_in(&registry)).await;
    let caller = sign_in_with(
        &base,
        &registry,
        &[(USER_AGENT.as_str(), "ShopApp/2.1 (iOS 18)")],
    )
    .await;
    assert_eq!(caller.client.user_agent(), Some("ShopApp/2.1 (iOS 18)"));
    assert_eq!(caller.client.ip, Some(LOOPBACK));
    let json = serde_json::to_value(&caller).unwrap();
    assert_eq!(json["user_agent"], "ShopApp/2.1 (iOS 18)");
    assert_eq!(json["ip"], "127.0.0.1");
}

#[tokio::test]
async fn the_user_agent_and_the_connections_address_are_recorded_in_memory() {
    the_user_agent_and_the_connections_address_are_recorded(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn the_user_agent_and_the_connections_address_are_recorded_in_redis() {
    let redis = TestRedis::start();
    the_user_agent_and_the_connections_address_are_recorded(redis.registry().await).await;
}

#[tokio::test]
async fn forwarding_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
    let registry = TokenRegistry::memory();
    let forged = [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=198.51.100.9"),
    ];
    let base = serve(sign_in(&registry)).await;
    let caller = sign_in_with(&base, &registry, &forged).await;
    assert_eq!(
        caller.client.ip,
        Some(LOOPBACK),
        "a forged header is ignored"
    );

    // Behind a trusted proxy, only the header it writes is read.
    let behind_proxy = serve(sign_in(&registry).with_trusted_proxies([LOOPBACK])).await;
    let caller = sign_in_with(&behind_proxy, &registry, &forged).await;
    assert_eq!(caller.client.ip, Some("203.0.113.7".parse().unwrap()));
    let rfc_7239 = sign_in(&registry)
        .with_trusted_proxies([LOOPBACK])
        .with_forwarded_header(ForwardedHeader::Forwarded);
    let behind_proxy = serve(rfc_7239).await;
    let caller = sign_in_with(&behind_proxy, &registry, &forged).await;
    assert_eq!(caller.client.ip, Some("198.51.100.9".parse().unwrap()));
}

#[tokio::test]
async fn an_over_long_user_agent_is_cut_to_its_bound() {
    let registry = TokenRegistry::memory();
    let base = serve(sign_in(&registry)).await;
    let long = "Agent/".repeat(200);
    let caller = sign_in_with(&base, &registry, &[(USER_AGENT.as_str(), &long)]).await;
    let kept = caller.client.user_agent().unwrap();
    assert_eq!(kept.len(), MAX_USER_AGENT_LEN);
    assert!(long.starts_with(kept));
}

#[cfg(feature = "graphql")]
#[tokio::test]
async fn the_graphql_sign_in_records_the_client_too() {
    use async_graphql::{EmptySubscription, Object, Schema};
    use tower_bearer::magento::graphql::{self, TokenMutation};

    struct Query;
    #[Object]
    impl Query {
        async fn ping(&self) -> bool {
            true
        }
    }

    let registry = TokenRegistry::memory();
    let schema = Schema::build(Query, TokenMutation, EmptySubscription)
        .data(sign_in(&registry))
        .finish();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = graphql::router(schema, registry.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mutation = r#"mutation { generateCustomerToken(email: "ada@example.com", password: "s3cret") { token } }"#;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .header(USER_AGENT, "PWA Studio/14")
        .header("x-forwarded-for", "203.0.113.7")
        .json(&serde_json::json!({ "query": mutation }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["data"]["generateCustomerToken"]["token"]
        .as_str()
        .unwrap();
    let caller = registry.resolve(token).await.unwrap().unwrap();
    assert_eq!(caller.client.user_agent(), Some("PWA Studio/14"));
    assert_eq!(
        caller.client.ip,
        Some(LOOPBACK),
        "no trusted proxy: the header is ignored"
    );
}
