//! [`BearerAuthLayer`] and its service [`BearerAuth`].

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::caller::{Caller, TokenKind};
use crate::error::{AuthError, StoreError};
use crate::future::ResponseFuture;
use crate::header::bearer_token;
use crate::registry::{Lookup, TokenRegistry};
use crate::response::{ErrorBody, Responder};

/// Whether requests without bearer credentials pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Required,
    Optional,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    registry: TokenRegistry,
    mode: Mode,
    kind: Option<TokenKind>,
    pub(crate) responder: Responder,
}

impl Config {
    /// Decides a request from what the store said: the caller to inject, or the refusal.
    pub(crate) fn admit(
        &self,
        answer: Result<Option<Caller>, StoreError>,
    ) -> Result<Caller, AuthError> {
        match answer {
            Ok(Some(caller)) => match self.kind {
                Some(required) if caller.kind != required => {
                    Err(AuthError::InsufficientScope { required })
                }
                _ => Ok(caller),
            },
            Ok(None) => Err(AuthError::InvalidToken),
            // Fail closed: a store that cannot answer is neither a pass nor a 401.
            Err(_) => Err(AuthError::StoreUnavailable),
        }
    }
}

/// Tower layer that authorizes requests by opaque Bearer token.
///
/// It parses `Authorization: Bearer <token>` (RFC 6750), resolves the token in a
/// [`TokenRegistry`] and puts the [`Caller`] into the request's extensions. It works on any
/// `Service<http::Request<B>>`; in axum, read the caller with the [`Caller`] extractor.
///
/// | request | required | optional |
/// |---|---|---|
/// | no `Authorization`, an empty one, or another scheme | 401, `Bearer realm="api"` | passes, no `Caller` |
/// | malformed `Bearer` credentials, several headers | 400 `invalid_request` | same |
/// | unknown, expired or revoked token | 401 `invalid_token` | same |
/// | valid token of another kind than [`with_kind`](Self::with_kind) | 403 `insufficient_scope` | same |
/// | store unreachable or timed out | 503 with `Retry-After` | same |
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use http::{Request, Response, StatusCode, header::AUTHORIZATION};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_bearer::{BearerAuthLayer, Caller, TokenKind, TokenRegistry};
///
/// let registry = TokenRegistry::memory();
/// let service = ServiceBuilder::new()
///     .layer(BearerAuthLayer::required(registry.clone()))
///     .service(service_fn(|request: Request<String>| async move {
///         let caller = request.extensions().get::<Caller>().unwrap();
///         Ok::<_, std::convert::Infallible>(Response::new(caller.subject.clone()))
///     }));
///
/// let issued = registry.issue(TokenKind::Customer, "ada@example.com").await.unwrap();
/// let request = Request::builder()
///     .header(AUTHORIZATION, format!("Bearer {}", issued.token.expose()))
///     .body(String::new())
///     .unwrap();
/// let response = service.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
///
/// let anonymous = Request::new(String::new());
/// let response = service.oneshot(anonymous).await.unwrap();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BearerAuthLayer {
    config: Arc<Config>,
}

impl BearerAuthLayer {
    /// Requests without bearer credentials are refused with 401 and a challenge.
    pub fn required(registry: TokenRegistry) -> Self {
        Self::new(registry, Mode::Required)
    }

    /// Requests without bearer credentials pass as guests (no [`Caller`] in the
    /// extensions); credentials that are present are still checked and refused when bad.
    ///
    /// ```
    /// use axum::{Router, routing::post};
    /// use tower_bearer::{BearerAuthLayer, Caller, TokenRegistry};
    ///
    /// async fn graphql(caller: Option<Caller>) -> String {
    ///     caller.map_or("guest".to_owned(), |caller| caller.subject)
    /// }
    /// let app: Router = Router::new()
    ///     .route("/graphql", post(graphql))
    ///     .layer(BearerAuthLayer::optional(TokenRegistry::memory()));
    /// ```
    pub fn optional(registry: TokenRegistry) -> Self {
        Self::new(registry, Mode::Optional)
    }

    fn new(registry: TokenRegistry, mode: Mode) -> Self {
        Self {
            config: Arc::new(Config {
                registry,
                mode,
                kind: None,
                responder: Responder::default(),
            }),
        }
    }

    /// Accepts only tokens of `kind`; a valid token of the other kind gets 403
    /// `insufficient_scope`.
    ///
    /// ```
    /// use tower_bearer::{BearerAuthLayer, TokenKind, TokenRegistry};
    ///
    /// let admin_only = BearerAuthLayer::required(TokenRegistry::memory())
    ///     .with_kind(TokenKind::Admin);
    /// ```
    pub fn with_kind(mut self, kind: TokenKind) -> Self {
        Arc::make_mut(&mut self.config).kind = Some(kind);
        self
    }

    /// The realm of the `WWW-Authenticate` challenge (default `api`).
    ///
    /// ```
    /// use tower_bearer::{BearerAuthLayer, TokenRegistry};
    ///
    /// let layer = BearerAuthLayer::required(TokenRegistry::memory()).with_realm("shop");
    /// ```
    pub fn with_realm(mut self, realm: &str) -> Self {
        Arc::make_mut(&mut self.config).responder.set_realm(realm);
        self
    }

    /// The `Retry-After` sent with a 503 when the store is unavailable (default 1 s;
    /// rounded up to whole seconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{BearerAuthLayer, TokenRegistry};
    ///
    /// let layer = BearerAuthLayer::required(TokenRegistry::memory())
    ///     .with_retry_after(Duration::from_secs(5));
    /// ```
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        Arc::make_mut(&mut self.config)
            .responder
            .set_retry_after(delay);
        self
    }

    /// Replaces the body of refusals (default `{"message": …}`). The status,
    /// `WWW-Authenticate` and `Retry-After` stay as RFC 6750 wants them.
    ///
    /// ```
    /// use tower_bearer::{AuthError, BearerAuthLayer, ErrorBody, TokenRegistry};
    ///
    /// let layer = BearerAuthLayer::optional(TokenRegistry::memory()).with_error_body(
    ///     |error: &AuthError| {
    ///         ErrorBody::json(&serde_json::json!({
    ///             "errors": [{ "message": error.to_string() }]
    ///         }))
    ///     },
    /// );
    /// ```
    pub fn with_error_body<F>(mut self, build: F) -> Self
    where
        F: Fn(&AuthError) -> ErrorBody + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config)
            .responder
            .set_body(Arc::new(build));
        self
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`BearerAuthLayer`].
#[derive(Clone, Debug)]
pub struct BearerAuth<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> BearerAuth<S> {
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
    type Response = Response<crate::body::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The instance polled ready is the one to call; keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = &self.config;
        let refuse = |error: AuthError| ResponseFuture::refused(config.responder.respond(&error));

        match bearer_token(request.headers()) {
            Err(malformed) => refuse(AuthError::InvalidRequest(malformed)),
            Ok(None) => match config.mode {
                Mode::Required => refuse(AuthError::MissingCredentials),
                Mode::Optional => ResponseFuture::calling(inner.call(request)),
            },
            Ok(Some(token)) => match config.registry.lookup(token) {
                Lookup::Invalid => refuse(AuthError::InvalidToken),
                Lookup::Pending(hash, lookup) => {
                    ResponseFuture::resolving(hash, lookup, inner, request, config.clone())
                }
            },
        }
    }
}
