//! What the crate tells about itself while it runs: [`metrics`] (through the `metrics`
//! facade, for the exporter the application installs).

pub mod metrics;
