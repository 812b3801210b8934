//! The gRPC service of `examples/grpc.rs`, behind [`BearerAuthLayer`], as an axum [`Router`]
//! that shares a port with the REST routes. The tests (`tests/it/grpc.rs`) serve this same
//! wiring.
//!
//! `whoami.WhoAmI/WhoAmI` answers the caller's subject and token kind. The layer reads the
//! token from the call's `authorization` metadata (an HTTP/2 header) and refuses as gRPC
//! does: UNAUTHENTICATED without a valid token, PERMISSION_DENIED for an admin or
//! integration token (this service is for customers), UNAVAILABLE when the store is down.

use axum::Router;
use tonic::{Request, Response, Status};
use tower::ServiceBuilder;
use tower_bearer::{BearerAuthLayer, Caller, TokenKind, TokenRegistry};

/// The code generated from `examples/proto/whoami.proto`, checked in (no protoc, no build
/// script).
#[path = "../proto/whoami.rs"]
#[rustfmt::skip]
pub mod proto;

use self::proto::who_am_i_server::{SERVICE_NAME, WhoAmI, WhoAmIServer};
use self::proto::{WhoAmIReply, WhoAmIRequest};

/// The service: the caller the layer put into the request's extensions, which tonic
/// hands over in [`Request::extensions`].
#[derive(Clone, Copy, Debug, Default)]
pub struct WhoAmIService;

#[tonic::async_trait]
impl WhoAmI for WhoAmIService {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIReply>, Status> {
        // Behind a required layer there always is a caller; fail closed all the same.
        let caller = request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("no bearer token"))?;
        Ok(Response::new(WhoAmIReply {
            subject: caller.subject.clone(),
            kind: caller.kind.to_string(),
        }))
    }
}

/// The layer of the example: a customer token is required.
pub fn layer(registry: TokenRegistry) -> BearerAuthLayer {
    BearerAuthLayer::required(registry).with_kind(TokenKind::Customer)
}

/// Every method of `whoami.WhoAmI` (`/whoami.WhoAmI/<method>`) behind the example's
/// [`layer`].
pub fn router(registry: TokenRegistry) -> Router {
    router_with(layer(registry))
}

/// Every method of `whoami.WhoAmI` behind `layer`.
pub fn router_with(layer: BearerAuthLayer) -> Router {
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(WhoAmIServer::new(WhoAmIService));
    Router::new().route_service(&format!("/{SERVICE_NAME}/{{*method}}"), service)
}
