//! axum extractors: [`Caller`], `Option<Caller>`, [`Customer`], [`Admin`].
//!
//! They read what [`BearerAuthLayer`](crate::BearerAuthLayer) put into the request; without
//! the layer there is never a caller, so they refuse (fail closed). Their refusals use the
//! default realm and body; where those are customised, let the layer refuse instead (a
//! required layer, [`with_kind`](crate::BearerAuthLayer::with_kind) for the kind).
//!
//! ```
//! use axum::{Json, Router, routing::get};
//! use tower_bearer::{Admin, BearerAuthLayer, Caller, Customer, TokenRegistry};
//!
//! async fn me(Customer(caller): Customer) -> Json<Caller> {
//!     Json(caller)
//! }
//! async fn dashboard(Admin(admin): Admin) -> String {
//!     format!("hello {}", admin.subject)
//! }
//! async fn home(caller: Option<Caller>) -> &'static str {
//!     if caller.is_some() { "welcome back" } else { "hello guest" }
//! }
//!
//! let app: Router = Router::new()
//!     .route("/V1/customers/me", get(me))
//!     .route("/V1/admin/dashboard", get(dashboard))
//!     .route("/", get(home))
//!     .layer(BearerAuthLayer::optional(TokenRegistry::memory()));
//! ```

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::caller::{Caller, TokenKind};
use crate::error::AuthError;

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(AuthError::MissingCredentials)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned())
    }
}

/// A caller with a customer token: 401 without credentials, 403 `insufficient_scope` for an
/// admin token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer(pub Caller);

/// A caller with an admin token: 401 without credentials, 403 `insufficient_scope` for a
/// customer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin(pub Caller);

fn caller_of_kind(parts: &Parts, required: TokenKind) -> Result<Caller, AuthError> {
    let caller = parts
        .extensions
        .get::<Caller>()
        .ok_or(AuthError::MissingCredentials)?;
    if caller.kind == required {
        Ok(caller.clone())
    } else {
        Err(AuthError::InsufficientScope { required })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Customer {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller_of_kind(parts, TokenKind::Customer).map(Customer)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller_of_kind(parts, TokenKind::Admin).map(Admin)
    }
}
