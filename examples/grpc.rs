//! A gRPC service (tonic) behind `BearerAuthLayer`, beside the REST token routes, on one
//! port.
//!
//! ```sh
//! cargo run --example grpc                                   # on 127.0.0.1:50051
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example grpc # tokens in Redis
//! ```
//!
//! `whoami.WhoAmI/WhoAmI` (`examples/proto/whoami.proto`) answers the subject of the
//! customer token in the call's `authorization` metadata; the service and its layer are in
//! `examples/grpc/whoami.rs`. Refusals are gRPC statuses with a message: UNAUTHENTICATED
//! (no, a malformed or an invalid token), PERMISSION_DENIED (an admin token), UNAVAILABLE
//! (the store is down). Customers obtain their tokens from the REST route, served on the
//! same port: `axum::serve` speaks HTTP/1.1 and HTTP/2 (gRPC's cleartext HTTP/2) alike.
//!
//! The Rust code of the `.proto` is generated once and checked in
//! (`examples/proto/whoami.rs`): no build script, no protoc. Settings are those of the REST
//! example (`examples/common/mod.rs`), except `BIND`, which defaults to `127.0.0.1:50051`.

mod common;
#[path = "grpc/whoami.rs"]
mod whoami;

const HELP: &str = r#"gRPC: whoami.WhoAmI/WhoAmI (examples/proto/whoami.proto), for customer tokens.
Get a customer token over REST, then call with grpcurl (reflection is off: give it the .proto):
  TOKEN=$(curl -s -X POST {base}/V1/integration/customer/token \
    -H 'Content-Type: application/json' \
    -d '{"username":"customer@example.com","password":"password"}' | tr -d '"')
  grpcurl -plaintext -import-path examples/proto -proto whoami.proto \
    -H "authorization: Bearer $TOKEN" {address} whoami.WhoAmI/WhoAmI
Without a token, or with an admin token: Code Unauthenticated, or PermissionDenied.
"#;

#[tokio::main]
async fn main() {
    let result = async {
        let demo = common::setup_on("127.0.0.1:50051").await?;
        let app = common::rest_app(&demo).merge(whoami::router(demo.registry.clone()));
        let help = format!(
            "{}\n{}",
            HELP.replace("{address}", &demo.bind),
            common::rest_help(&demo)
        );
        common::serve(&demo, app, &help).await
    };
    if let Err(error) = result.await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
