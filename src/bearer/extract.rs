//! axum extractors: [`Caller`], `Option<Caller>`, [`Customer`], [`Admin`] and [`Scoped`], and
//! their [`Refusal`].
//!
//! They read what [`BearerAuthLayer`](crate::BearerAuthLayer) put into the request; without
//! the layer there is never a caller, so they refuse (fail closed). They refuse as the layer
//! in front of them would: with its realm, its `Retry-After` and its error body (a
//! [`Refusal`]); with the defaults when no layer ran.
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
use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::IntoResponse;
use bytes::Bytes;
use http::Response;
use http::request::Parts;

use super::error::AuthError;
use super::{Config, Responder};
use crate::token::{Caller, Scopes, TokenKind};

/// An extractor's refusal: the response the layer in front of it would have given for the
/// same [`AuthError`] (its realm, `Retry-After` and body, or its gRPC refusal for a gRPC
/// request), or the default one without a layer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use axum::{Router, body::Body, routing::get};
/// use http::{Request, StatusCode, header::WWW_AUTHENTICATE};
/// use tower::ServiceExt;
/// use tower_bearer::{AuthError, BearerAuthLayer, Customer, TokenRegistry};
///
/// async fn me(Customer(caller): Customer) -> String {
///     caller.subject
/// }
/// let app = Router::new()
///     .route("/me", get(me))
///     .layer(BearerAuthLayer::optional(TokenRegistry::memory()).with_realm("shop"));
///
/// let response = app.oneshot(Request::get("/me").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer realm=\"shop\"");
/// assert_eq!(response.extensions().get::<AuthError>(), Some(&AuthError::MissingCredentials));
/// # }
/// ```
#[derive(Debug)]
pub struct Refusal {
    error: AuthError,
    /// The configuration of the layer in front, which shapes the response.
    layer: Option<Arc<Config>>,
    /// Whether it is refused as gRPC: a gRPC request, and gRPC refusals on.
    grpc: bool,
}

impl Refusal {
    fn new(parts: &Parts, error: AuthError) -> Self {
        let layer = parts.extensions.get::<Arc<Config>>().cloned();
        let grpc = match &layer {
            Some(layer) => layer.responder.refuses_as_grpc(&parts.headers),
            None => Responder::default().refuses_as_grpc(&parts.headers),
        };
        Self { error, layer, grpc }
    }

    /// Why the request was refused.
    pub fn error(&self) -> &AuthError {
        &self.error
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> axum::response::Response {
        let response: Response<Bytes> = match &self.layer {
            Some(layer) => layer.responder.respond_as(&self.error, self.grpc),
            None => Responder::default().respond_as(&self.error, self.grpc),
        };
        response.map(axum::body::Body::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Refusal::new(parts, AuthError::MissingCredentials))
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

fn caller_of_kind(parts: &Parts, required: TokenKind) -> Result<Caller, Refusal> {
    let refuse = |error| Refusal::new(parts, error);
    let caller = parts
        .extensions
        .get::<Caller>()
        .ok_or_else(|| refuse(AuthError::MissingCredentials))?;
    if caller.kind == required {
        Ok(caller.clone())
    } else {
        Err(refuse(AuthError::InsufficientScope { required }))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Customer {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller_of_kind(parts, TokenKind::Customer).map(Customer)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller_of_kind(parts, TokenKind::Admin).map(Admin)
    }
}

/// The scopes a [`Scoped`] extractor requires: one marker type per set.
///
/// Each must be an RFC 6749 scope-token (printable ASCII but space, `"` and `\`); one that
/// is not can never be granted.
pub trait RequiredScopes: Send + Sync + 'static {
    /// Every scope required.
    const SCOPES: &'static [&'static str];
}

/// A caller whose token grants every scope of `R` (or the wildcard
/// [`ALL_SCOPES`](crate::token::ALL_SCOPES)): 401 without credentials, 403
/// `insufficient_scope` naming the scopes otherwise, as
/// [`BearerAuthLayer::with_scopes`](crate::BearerAuthLayer::with_scopes) answers.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_bearer::bearer::{RequiredScopes, Scoped};
/// use tower_bearer::{BearerAuthLayer, TokenRegistry};
///
/// struct Products;
/// impl RequiredScopes for Products {
///     const SCOPES: &'static [&'static str] = &["Magento_Catalog::products"];
/// }
///
/// async fn products(Scoped(caller, _): Scoped<Products>) -> String {
///     format!("products for {}", caller.subject)
/// }
///
/// let app: Router = Router::new()
///     .route("/V1/products", get(products))
///     .layer(BearerAuthLayer::required(TokenRegistry::memory()));
/// ```
#[derive(Debug)]
pub struct Scoped<R>(pub Caller, pub PhantomData<fn() -> R>);

impl<R> Scoped<R> {
    /// The caller.
    pub fn into_caller(self) -> Caller {
        self.0
    }
}

impl<S: Send + Sync, R: RequiredScopes> FromRequestParts<S> for Scoped<R> {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let refuse = |error| Refusal::new(parts, error);
        let caller = parts
            .extensions
            .get::<Caller>()
            .ok_or_else(|| refuse(AuthError::MissingCredentials))?;
        if R::SCOPES.iter().all(|scope| caller.scopes.grants(scope)) {
            return Ok(Scoped(caller.clone(), PhantomData));
        }
        // Only a refusal builds the set, for the challenge.
        let required = Scopes::new(R::SCOPES).unwrap_or_default();
        Err(refuse(AuthError::MissingScope { required }))
    }
}
