//! `GET /metrics`: tower-bearer's metrics (see `tower_bearer::telemetry::metrics`) in
//! Prometheus' text format, from `metrics-exporter-prometheus`'s recorder, rendered by an
//! axum handler (the exporter runs no listener of its own).

use std::error::Error;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_bearer::telemetry::metrics::STORE_CALL_DURATION;

/// Buckets of the store call durations, in seconds: from a memory store's microseconds to
/// a Redis call at its timeout.
const STORE_CALL_BUCKETS: &[f64] = &[
    0.000_01, 0.000_1, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The exporter's settings: histograms as buckets.
pub fn builder() -> Result<PrometheusBuilder, Box<dyn Error>> {
    let store_calls = Matcher::Full(STORE_CALL_DURATION.to_owned());
    Ok(PrometheusBuilder::new().set_buckets_for_metric(store_calls, STORE_CALL_BUCKETS)?)
}

/// Installs the exporter's recorder as the process's, describes the crate's metrics to it
/// and keeps its histograms drained; the handle renders what it holds.
pub fn install() -> Result<PrometheusHandle, Box<dyn Error>> {
    let handle = builder()?.install_recorder()?;
    tower_bearer::telemetry::metrics::describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// `GET /metrics`, rendering what `handle`'s recorder holds.
pub fn route(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}
