//! [`BearerAuth`]: the per-request decision of the middleware.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::error::AuthError;
use super::{Config, Mode, ResponseBody, ResponseFuture, bearer_token};
use crate::registry::{Resolving, finish_resolve};
use crate::telemetry::metrics::{self, LayerOutcome};

/// The service made by [`BearerAuthLayer`](crate::BearerAuthLayer).
#[derive(Clone, Debug)]
pub struct BearerAuth<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> BearerAuth<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for BearerAuth<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The instance polled ready is the one to call; keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = &self.config;
        // The request's content type is read only here, when refusing (gRPC or HTTP).
        let refuse = |error: AuthError, request: &Request<B>| {
            metrics::layer(error.outcome());
            ResponseFuture::refused(config.responder.respond_to(&error, request.headers()))
        };

        match bearer_token(request.headers()) {
            Err(malformed) => refuse(AuthError::InvalidRequest(malformed), &request),
            Ok(None) => match config.mode {
                Mode::Required => refuse(AuthError::MissingCredentials, &request),
                Mode::Optional => {
                    metrics::layer(LayerOutcome::Guest);
                    // A guest: the extractors refuse it as this layer would.
                    request.extensions_mut().insert(Arc::clone(config));
                    ResponseFuture::calling(inner.call(request))
                }
            },
            Ok(Some(token)) => match config.registry.lookup(token) {
                Resolving::Invalid => refuse(AuthError::InvalidToken, &request),
                // Answered at once (memory, or a cache hit): decided here, no future held.
                Resolving::Done(hash, answer) => match config.admit(finish_resolve(hash, answer)) {
                    Ok(caller) => {
                        config.hand_over(&mut request, caller);
                        ResponseFuture::calling(inner.call(request))
                    }
                    // Counted by `admit`, so not through `refuse`.
                    Err(error) => ResponseFuture::refused(
                        config.responder.respond_to(&error, request.headers()),
                    ),
                },
                Resolving::Pending(hash, lookup) => {
                    ResponseFuture::resolving(hash, lookup, inner, request, config.clone())
                }
            },
        }
    }
}
