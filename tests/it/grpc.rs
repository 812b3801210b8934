//! gRPC calls through `BearerAuthLayer`: the example's service (`examples/grpc/whoami.rs`,
//! a customer token required) on a real socket, called by its generated tonic client.
//! Refusals reach the client as gRPC statuses with the layer's message: UNAUTHENTICATED,
//! PERMISSION_DENIED, UNAVAILABLE. An HTTP request to the same route still gets the HTTP
//! refusal, and so does a gRPC call once `with_grpc_refusals(false)`.

use std::time::Duration;

use http::StatusCode;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::Value;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tower_bearer::store::{RedisStore, RedisStoreOptions};
use tower_bearer::token::Token;
use tower_bearer::{AuthError, TokenKind, TokenRegistry};

use crate::support::{RedisServer, serve};

#[path = "../../examples/grpc/whoami.rs"]
mod whoami;

use self::whoami::proto::WhoAmIRequest;
use self::whoami::proto::who_am_i_client::WhoAmIClient;

const CUSTOMER: &str = "ada@example.com";

/// Serves the example's gRPC router over `registry`; returns its base URL.
async fn serve_whoami(registry: &TokenRegistry) -> String {
    serve(whoami::router(registry.clone())).await
}

/// `WhoAmI` on the server at `base`, with `authorization` metadata when given.
async fn who_am_i(
    base: &str,
    authorization: Option<&str>,
) -> Result<whoami::proto::WhoAmIReply, Status> {
    let mut client = WhoAmIClient::connect(base.to_owned())
        .await
        .expect("connect to the test server");
    let mut request = tonic::Request::new(WhoAmIRequest {});
    if let Some(value) = authorization {
        let value: MetadataValue<_> = value.parse().expect("an ASCII metadata value");
        request.metadata_mut().insert("authorization", value);
    }
    client
        .who_am_i(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The call was refused with `code` and the text of `error` as its message (percent-decoded
/// by tonic), and the challenge of the HTTP refusal, when it has one, as metadata.
fn assert_refused(
    result: Result<whoami::proto::WhoAmIReply, Status>,
    code: Code,
    error: &AuthError,
) {
    let status = result.expect_err("the call is refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(!status.message().is_empty(), "{status:?}");
    assert_eq!(status.message(), error.to_string(), "{status:?}");
    assert_eq!(
        status.metadata().get("www-authenticate").is_some(),
        error.status() != StatusCode::SERVICE_UNAVAILABLE,
        "the challenge of the HTTP refusal: {status:?}"
    );
}

async fn issue(registry: &TokenRegistry, kind: TokenKind, subject: &str) -> String {
    let issued = registry.issue(kind, subject).await.expect("issue a token");
    issued.token.expose().to_owned()
}

#[tokio::test]
async fn a_customer_token_is_answered_with_its_subject() {
    let registry = TokenRegistry::memory();
    let token = issue(&registry, TokenKind::Customer, CUSTOMER).await;
    let base = serve_whoami(&registry).await;

    let reply = who_am_i(&base, Some(&format!("Bearer {token}")))
        .await
        .expect("the call is answered");
    assert_eq!(reply.subject, CUSTOMER);
    assert_eq!(reply.kind, "customer");
}

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated() {
    let registry = TokenRegistry::memory();
    let base = serve_whoami(&registry).await;

    let result = who_am_i(&base, None).await;
    let status = result.as_ref().expect_err("refused");
    assert_eq!(
        status
            .metadata()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap()),
        Some(r#"Bearer realm="api""#)
    );
    assert_refused(
        result,
        Code::Unauthenticated,
        &AuthError::MissingCredentials,
    );
}

#[tokio::test]
async fn a_malformed_authorization_is_unauthenticated_not_internal() {
    let registry = TokenRegistry::memory();
    let base = serve_whoami(&registry).await;

    let result = who_am_i(&base, Some("Bearer a b")).await;
    assert_refused(
        result,
        Code::Unauthenticated,
        &AuthError::InvalidRequest(tower_bearer::bearer::MalformedAuthorization::InvalidCharacter),
    );
}

#[tokio::test]
async fn an_invalid_token_is_unauthenticated() {
    let registry = TokenRegistry::memory();
    let base = serve_whoami(&registry).await;
    let never_issued = Token::generate().expect("the OS random source works");

    let result = who_am_i(&base, Some(&format!("Bearer {}", never_issued.expose()))).await;
    assert_refused(result, Code::Unauthenticated, &AuthError::InvalidToken);
}

#[tokio::test]
async fn an_admin_token_where_a_customer_is_required_is_permission_denied() {
    let registry = TokenRegistry::memory();
    let token = issue(&registry, TokenKind::Admin, "admin").await;
    let base = serve_whoami(&registry).await;

    let result = who_am_i(&base, Some(&format!("Bearer {token}"))).await;
    assert_refused(
        result,
        Code::PermissionDenied,
        &AuthError::InsufficientScope {
            required: TokenKind::Customer,
        },
    );
}

#[tokio::test]
async fn a_stopped_redis_is_unavailable_with_retry_after() {
    let mut redis = RedisServer::start();
    let store = RedisStore::connect_with(
        &redis.url(),
        RedisStoreOptions::default().with_timeout(Duration::from_millis(300)),
    )
    .await
    .expect("connect to the test redis-server");
    let registry = TokenRegistry::new(store);
    let token = issue(&registry, TokenKind::Customer, CUSTOMER).await;
    let base = serve_whoami(&registry).await;
    redis.stop();

    let result = who_am_i(&base, Some(&format!("Bearer {token}"))).await;
    let status = result.as_ref().expect_err("refused");
    assert_eq!(
        status
            .metadata()
            .get("retry-after")
            .map(|value| value.to_str().unwrap()),
        Some("1")
    );
    assert_refused(result, Code::Unavailable, &AuthError::StoreUnavailable);
}

#[tokio::test]
async fn an_http_request_to_the_grpc_route_gets_the_http_refusal() {
    let registry = TokenRegistry::memory();
    let base = serve_whoami(&registry).await;

    let response = reqwest::Client::new()
        .post(format!("{base}/whoami.WhoAmI/WhoAmI"))
        .header(CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!response.headers().contains_key("grpc-status"));
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        r#"Bearer realm="api""#
    );
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["message"], AuthError::MissingCredentials.to_string());
}

#[tokio::test]
async fn with_grpc_refusals_off_a_grpc_call_gets_the_http_refusal() {
    let registry = TokenRegistry::memory();
    let layer = whoami::layer(registry.clone()).with_grpc_refusals(false);
    let base = serve(whoami::router_with(layer)).await;

    // A gRPC content type, over HTTP/1.1 to read the answer as it is: the HTTP refusal.
    let response = reqwest::Client::new()
        .post(format!("{base}/whoami.WhoAmI/WhoAmI"))
        .header(CONTENT_TYPE, "application/grpc")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!response.headers().contains_key("grpc-status"));
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");

    // What a gRPC client makes of it: a code guessed from the HTTP status, without the
    // layer's message; a 400 becomes INTERNAL.
    let status = who_am_i(&base, Some("Bearer a b"))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_ne!(
        status.message(),
        AuthError::InvalidRequest(tower_bearer::bearer::MalformedAuthorization::InvalidCharacter)
            .to_string()
    );
}
