//! What the crate tells the rest of the system: [`events`], the lifecycle of tokens and
//! sign-ins, delivered to a hook of yours and as `tracing` events.

pub mod events;
