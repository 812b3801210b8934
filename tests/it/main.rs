//! The integration tests: one binary, one module per concern.

mod conformance;
mod layer;
mod memory_store;
mod redis_store;
mod support;
