//! A Magento-compatible REST token server with protected demo routes.
//!
//! ```sh
//! cargo run --example server                                  # in-memory registry
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example server # tokens in Redis
//! ```
//!
//! Settings are read from the environment: see `examples/common/mod.rs`. `GET /metrics`
//! serves the crate's metrics in Prometheus' text format (`examples/common/prometheus.rs`).
//! Built with `--features openapi`, `GET /openapi.json` serves the token routes' OpenAPI
//! document (`cargo run --example server --features openapi`).

mod common;

#[tokio::main]
async fn main() {
    let result = async {
        let demo = common::setup().await?;
        common::serve(&demo, common::rest_app(&demo), &common::rest_help(&demo)).await
    };
    if let Err(error) = result.await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
