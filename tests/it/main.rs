//! The integration tests: one binary, one module per concern.

mod cache;
mod client_details;
#[cfg(feature = "cluster")]
mod cluster;
mod conformance;
mod events;
#[cfg(feature = "graphql")]
mod graphql;
#[cfg(feature = "graphql")]
mod graphql_scopes;
#[cfg(feature = "graphql")]
mod graphql_sessions;
#[cfg(feature = "graphql")]
mod graphql_ws;
mod grpc;
mod integrations;
mod introspection;
mod layer;
mod magento_clients;
mod memory_store;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "openapi")]
mod openapi;
mod redis_idle;
mod redis_store;
#[cfg(feature = "introspection-client")]
mod remote_introspection;
mod replication;
mod routes;
mod scopes;
#[cfg(feature = "sentinel")]
mod sentinel;
mod session_conformance;
mod sessions;
mod support;
mod token_format;
mod two_factor;
