//! [`BearerAuthLayer`]: how the middleware is configured.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::error::AuthError;
use super::service::BearerAuth;
use super::{Config, ErrorBody, Mode, Responder};
use crate::registry::TokenRegistry;
use crate::token::{Scopes, TokenKind};

/// Tower layer that authorizes requests by opaque Bearer token.
///
/// It parses `Authorization: Bearer <token>` (RFC 6750), resolves the token in a
/// [`TokenRegistry`] and puts the [`Caller`](crate::Caller) into the request's extensions. It works on any
/// `Service<http::Request<B>>`; in axum, read the caller with the [`Caller`](crate::Caller) extractor.
///
/// | request | required | optional | gRPC call (`grpc-status`) |
/// |---|---|---|---|
/// | no `Authorization`, an empty one, or another scheme | 401, `Bearer realm="api"` | passes, no `Caller` | UNAUTHENTICATED (16) when required |
/// | malformed `Bearer` credentials, several headers | 400 `invalid_request` | same | UNAUTHENTICATED (16) |
/// | unknown, expired or revoked token | 401 `invalid_token` | same | UNAUTHENTICATED (16) |
/// | valid token of another kind than [`with_kind`](Self::with_kind) | 403 `insufficient_scope` | same | PERMISSION_DENIED (7) |
/// | valid token without a scope of [`with_scopes`](Self::with_scopes) | 403 `insufficient_scope`, `scope="…"` | same | PERMISSION_DENIED (7) |
/// | store unreachable or timed out | 503 with `Retry-After` | same | UNAVAILABLE (14), with `retry-after` |
///
/// A gRPC call (`Content-Type: application/grpc` or `application/grpc+<format>`) is refused
/// as gRPC refuses: HTTP 200, trailers-only, `grpc-status` and `grpc-message` in the headers,
/// `WWW-Authenticate` kept; see [`with_grpc_refusals`](Self::with_grpc_refusals), which can
/// turn it off.
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

    /// Requests without bearer credentials pass as guests (no [`Caller`](crate::Caller) in the
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
                scopes: Scopes::default(),
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

    /// Accepts only tokens granting every one of `scopes` (holding each, or the wildcard
    /// [`ALL_SCOPES`](crate::token::ALL_SCOPES)); a valid token without them gets 403 with
    /// `WWW-Authenticate: Bearer realm="…", error="insufficient_scope", scope="<scopes>"`
    /// (RFC 6750 §3). Requests of a guest still pass an optional layer, without a caller.
    ///
    /// ```
    /// use tower_bearer::{BearerAuthLayer, TokenRegistry};
    /// use tower_bearer::token::Scopes;
    ///
    /// let catalog = BearerAuthLayer::required(TokenRegistry::memory())
    ///     .with_scopes(Scopes::new(["Magento_Catalog::products"])?);
    /// # Ok::<(), tower_bearer::token::InvalidScope>(())
    /// ```
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        Arc::make_mut(&mut self.config).scopes = scopes;
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

    /// Replaces the body of HTTP refusals (default `{"message": …}`). The status,
    /// `WWW-Authenticate` and `Retry-After` stay as RFC 6750 wants them. gRPC refusals
    /// (see [`with_grpc_refusals`](Self::with_grpc_refusals)) have no body and do not use it.
    ///
    /// ```
    /// use tower_bearer::{AuthError, BearerAuthLayer, TokenRegistry};
    /// use tower_bearer::bearer::ErrorBody;
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

    /// Whether gRPC calls are refused the gRPC way (default `true`).
    ///
    /// A request whose `Content-Type` is `application/grpc` or `application/grpc+<format>`
    /// is refused with a trailers-only gRPC response: HTTP 200, `content-type:
    /// application/grpc`, no body, and the status in the headers — `grpc-status` (see
    /// [`AuthError::grpc_status`]) and `grpc-message` (the error's text, percent-encoded as
    /// the gRPC spec wants) — beside the same `WWW-Authenticate` and `Retry-After` as the
    /// HTTP refusal. A gRPC client then reads UNAUTHENTICATED, PERMISSION_DENIED or
    /// UNAVAILABLE with the message, where from an HTTP refusal it would only guess a code
    /// from the status (a 400 becomes INTERNAL) and lose the message. The content type is
    /// looked at only when refusing: allowed requests pay nothing. With `false`, gRPC calls
    /// get the HTTP refusals too.
    ///
    /// gRPC-Web (`application/grpc-web…`) is answered as HTTP; put the gRPC-Web translation
    /// (e.g. tonic-web's layer) outside this layer to have it refused as gRPC.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use http::header::CONTENT_TYPE;
    /// use http::{Request, Response, StatusCode};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// use tower_bearer::{BearerAuthLayer, TokenRegistry};
    ///
    /// let grpc_call = || {
    ///     Request::post("/whoami.WhoAmI/WhoAmI")
    ///         .header(CONTENT_TYPE, "application/grpc")
    ///         .body(String::new())
    ///         .unwrap()
    /// };
    /// let layer = BearerAuthLayer::required(TokenRegistry::memory());
    /// let inner = service_fn(|_: Request<String>| async {
    ///     Ok::<_, std::convert::Infallible>(Response::new(String::new()))
    /// });
    ///
    /// let service = ServiceBuilder::new().layer(layer.clone()).service(inner);
    /// let response = service.oneshot(grpc_call()).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::OK);
    /// assert_eq!(response.headers()["grpc-status"], "16"); // UNAUTHENTICATED
    ///
    /// let http_only = layer.with_grpc_refusals(false);
    /// let service = ServiceBuilder::new().layer(http_only).service(inner);
    /// let response = service.oneshot(grpc_call()).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    /// # }
    /// ```
    pub fn with_grpc_refusals(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.config).responder.set_grpc(enabled);
        self
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth::new(inner, Arc::clone(&self.config))
    }
}
