#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The parts, from the lowest: token, telemetry, store, registry, bearer, sign_in, magento.
// Each imports only the parts below it (`scripts/check-layers.py` checks it).
pub mod bearer;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(all(feature = "axum", feature = "sign-in"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "axum", feature = "sign-in"))))]
pub mod magento;
pub mod registry;
#[cfg(feature = "sign-in")]
#[cfg_attr(docsrs, doc(cfg(feature = "sign-in")))]
pub mod sign_in;
pub mod store;
pub mod telemetry;
pub mod token;

// What an application names every day; everything else lives in its module.
pub use bearer::error::AuthError;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use bearer::extract::{Admin, Customer};
pub use bearer::layer::BearerAuthLayer;
pub use bearer::service::BearerAuth;
pub use registry::TokenRegistry;
#[cfg(feature = "sign-in")]
#[cfg_attr(docsrs, doc(cfg(feature = "sign-in")))]
pub use sign_in::SignIn;
pub use token::caller::Caller;
pub use token::kind::TokenKind;

/// Renamed [`SignIn`]: it exchanges credentials for tokens and is not a tower `Service`.
#[cfg(feature = "sign-in")]
#[deprecated(since = "0.2.0", note = "renamed `SignIn`")]
pub type TokenService = SignIn;

/// Moved to [`magento::rest::router`].
#[cfg(all(feature = "axum", feature = "sign-in"))]
#[deprecated(since = "0.2.0", note = "use `tower_bearer::magento::rest::router`")]
pub fn token_routes(sign_in: SignIn) -> axum::Router {
    magento::rest::router(sign_in)
}
