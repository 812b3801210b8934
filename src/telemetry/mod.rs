//! What the crate tells the rest of the system while it runs: [`events`], the lifecycle of
//! tokens and sign-ins, delivered to a hook of yours and as `tracing` events; and
//! [`metrics`], through the `metrics` facade, for the exporter the application installs.

pub mod events;
pub mod metrics;
