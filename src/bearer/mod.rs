//! The middleware: [`BearerAuthLayer`](crate::BearerAuthLayer) and its service
//! [`BearerAuth`](crate::BearerAuth), what they answer when they refuse, and the axum
//! extractors that read the [`Caller`] they inject.
//!
//! One file per role, as tower-http lays out a middleware: `layer.rs` (configuration),
//! `service.rs` (the per-request decision), `future.rs` (waiting on the store), `body.rs`,
//! `response.rs` (RFC 6750 refusals), `header.rs` (parsing `Authorization`), `error.rs`
//! ([`AuthError`]) and `extract.rs`. What they share lives here.

use std::sync::Arc;

use crate::registry::TokenRegistry;
use crate::store::StoreError;
use crate::telemetry::metrics::{self, LayerOutcome};
use crate::token::{Caller, Scopes, TokenKind};

mod body;
pub(crate) mod error;
#[cfg(feature = "axum")]
pub(crate) mod extract;
mod future;
mod header;
pub(crate) mod layer;
mod response;
pub(crate) mod service;

#[cfg(all(feature = "axum", feature = "sign-in"))]
pub(crate) use self::error::UNAVAILABLE_MESSAGE;
#[cfg(feature = "axum")]
#[doc(inline)]
pub use self::extract::{Refusal, RequiredScopes, Scoped};
pub(crate) use self::response::Responder;
#[cfg(all(feature = "axum", feature = "sign-in"))]
pub(crate) use self::response::retry_after_value;
#[doc(inline)]
pub use self::{
    body::ResponseBody,
    future::ResponseFuture,
    header::{MAX_TOKEN_LEN, MalformedAuthorization, bearer_token},
    response::{DEFAULT_REALM, DEFAULT_RETRY_AFTER, ErrorBody},
};

use self::error::AuthError;

/// Whether requests without bearer credentials pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Required,
    Optional,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) registry: TokenRegistry,
    pub(crate) mode: Mode,
    pub(crate) kind: Option<TokenKind>,
    /// Every scope a token must grant (none: no scope check).
    pub(crate) scopes: Scopes,
    pub(crate) responder: Responder,
}

impl Config {
    /// Hands an admitted request its caller, and this configuration, so the extractors
    /// refuse as this layer would (realm, body).
    pub(crate) fn hand_over<B>(self: &Arc<Self>, request: &mut http::Request<B>, caller: Caller) {
        request.extensions_mut().insert(caller);
        request.extensions_mut().insert(Arc::clone(self));
    }

    /// Decides a request from what the store said: the caller to inject, or the refusal.
    pub(crate) fn admit(
        &self,
        answer: Result<Option<Caller>, StoreError>,
    ) -> Result<Caller, AuthError> {
        let admitted = match answer {
            Ok(Some(caller)) => match self.kind {
                Some(required) if caller.kind != required => {
                    Err(AuthError::InsufficientScope { required })
                }
                _ if !caller.scopes.grants_all(&self.scopes) => Err(AuthError::MissingScope {
                    required: self.scopes.clone(),
                }),
                _ => Ok(caller),
            },
            Ok(None) => Err(AuthError::InvalidToken),
            // Fail closed: a store that cannot answer is neither a pass nor a 401.
            Err(_) => Err(AuthError::StoreUnavailable),
        };
        metrics::layer(
            admitted
                .as_ref()
                .map_or_else(AuthError::outcome, |_| LayerOutcome::Allowed),
        );
        admitted
    }
}
