//! Magento's GraphQL token API on async-graphql (feature `graphql`).
//!
//! - [`TokenMutation`]: `generateCustomerToken`, `generateCustomerTokenAsAdmin` and
//!   `revokeCustomerToken`, with Magento's type names, messages and error categories, and
//!   `revokeCustomerTokenById` (end one of one's own sessions); merge it into your schema's
//!   mutation root.
//! - [`TokenQuery`]: `customerTokens`, the calling customer's live tokens as sessions
//!   (where and when each was obtained, last used, expires; which one is asking), as the
//!   REST route `GET /V1/customers/me/tokens` lists them; merge it into your query root.
//! - [`router`]: `/graphql` over POST and GET (queries only, as PWA Studio sends
//!   them), behind [`BearerAuthLayer::optional`](crate::BearerAuthLayer::optional) with GraphQL-shaped refusals; the
//!   [`Caller`] (or nothing, for a guest) reaches resolvers through the context:
//!   `ctx.data_opt::<Caller>()`, or [`caller`].
//! - the same [`router`] serves subscriptions (and queries) over WebSocket at `/graphql`
//!   itself, with the `graphql-transport-ws` protocol of the `graphql-ws` client library
//!   (and of Apollo's `GraphQLWsLink`); see [WebSocket](#websocket) below;
//! - [`with_default_limits`]: depth, complexity, nesting and expansion limits for a public
//!   endpoint; async-graphql has no depth or complexity limit of its own, and checks a
//!   document's fragments written out in place, so a short document of fragments spreading
//!   fragments is refused ([`MAX_EXPANDED_NODES`]) before those checks run.
//!
//! One request obtains one token at most: a request that selects `generateCustomerToken` or
//! `generateCustomerTokenAsAdmin` more than once (aliases, fragments) is refused before
//! any of them runs, so aliases cannot turn a request into a password spray.
//!
//! # WebSocket
//!
//! A WebSocket upgrade of `/graphql` (HTTP/1.1 `GET` with `Upgrade: websocket`, offering the
//! subprotocol [`GRAPHQL_TRANSPORT_WS`]) is served past the HTTP layer: a browser cannot set
//! `Authorization` on a WebSocket, so a header on the upgrade is not judged. The token comes
//! in the `connection_init` payload instead, as the `graphql-ws` client's
//! `connectionParams` send it:
//!
//! ```json
//! {"type": "connection_init", "payload": {"Authorization": "Bearer <token>"}}
//! ```
//!
//! The key is read in any case (`authorization` too), its value with the layer's own parser,
//! and judged as [`BearerAuthLayer::optional`](crate::BearerAuthLayer::optional) judges a
//! header: no payload, no key, an empty value, `null` or another scheme is a guest; a valid
//! token's [`Caller`] joins the connection's data, so that resolvers of subscriptions read
//! it as queries do (`ctx.data_opt::<Caller>()`, or [`caller`]). A refused socket is never
//! acknowledged; it is closed with a code of [`close`]:
//!
//! | when | code | reason |
//! |---|---|---|
//! | the token is unknown, expired or revoked, at `connection_init` | 4403 ([`close::FORBIDDEN`]) | `Forbidden` |
//! | the token is revoked (on any instance) or expires, or idles out, while the socket is open | 4403 | `Forbidden` |
//! | the token store fails at `connection_init` or at a later check (fail closed) | 4500 ([`close::INTERNAL_ERROR`]) | `Service Unavailable` |
//! | a malformed `Authorization` (not a string, not a header value, `Bearer` with no token or a bad character, given twice) or a payload that is not an object | 4400 ([`close::BAD_REQUEST`]) | |
//! | no `graphql-transport-ws` offered | 4406 ([`close::SUBPROTOCOL_NOT_ACCEPTABLE`]) | |
//! | no `connection_init` within [`CONNECTION_INIT_TIMEOUT`] | 4408 ([`close::INIT_TIMEOUT`]) | |
//! | a second `connection_init` | 4429 | |
//!
//! An open socket learns of its token's revocation from the store's announcements
//! ([`TokenStore::revocations`](crate::store::TokenStore::revocations)): at once on the
//! memory store, and within milliseconds on the Redis store with its local cache on, whose
//! revocation channel carries every instance's revocations (revoke-all included). With
//! no announcements (the Redis store without its cache), or while they may be missed (its
//! channel lost), the socket's token is checked with the store every
//! [`TokenRegistry::recheck_every`](crate::TokenRegistry::recheck_every) (5 s by default). A
//! token is closed at its expiry by the clock. Keeping a socket open is not a use of its
//! token (it does not extend an idle timeout); see [`TokenWatch`](crate::registry::TokenWatch).
//!
//! Each operation on the socket passes the transport's checks as over HTTP (nesting,
//! size with fragments written out); mutations are refused
//! ([`MUTATION_OVER_SOCKET_MESSAGE`]: tokens are issued over POST only), and at most
//! [`MAX_OPERATIONS_PER_SOCKET`] run at once on one socket; a refused operation gets one
//! `next` with the error, then `complete`. Messages are at most [`MAX_REQUEST_BYTES`].
//! What a socket holds beyond async-graphql's own state is fixed in size: a guest's socket
//! holds no token and no listener, a member's one token and one listener of the store's
//! announcements.
//!
//! ```
//! use async_graphql::{Context, EmptySubscription, MergedObject, Object, Schema};
//! use axum::Router;
//! use tower_bearer::magento::graphql::{self, TokenMutation, TokenQuery, with_default_limits};
//! use tower_bearer::sign_in::MemoryDirectory;
//! use tower_bearer::{Caller, SignIn, TokenRegistry};
//!
//! #[derive(Default)]
//! struct StoreQuery;
//!
//! #[Object]
//! impl StoreQuery {
//!     /// Who is asking: the one line that reads the caller in a resolver.
//!     async fn whoami(&self, ctx: &Context<'_>) -> Option<String> {
//!         ctx.data_opt::<Caller>().map(|caller| caller.subject.clone())
//!     }
//! }
//!
//! #[derive(MergedObject, Default)]
//! struct Query(StoreQuery, TokenQuery);
//!
//! #[derive(MergedObject, Default)]
//! struct Mutation(TokenMutation);
//!
//! let registry = TokenRegistry::memory();
//! let service = SignIn::new(registry.clone(), MemoryDirectory::new());
//! let schema = with_default_limits(Schema::build(Query::default(), Mutation::default(), EmptySubscription))
//!     .data(service)
//!     .finish();
//! let app: Router = graphql::router(schema, registry);
//! ```

mod expansion;
mod guard;
mod limits;
mod mutations;
mod sessions;
mod transport;
mod websocket;

use async_graphql::{Context, ErrorExtensions};

#[doc(inline)]
pub use self::guard::ScopeGuard;
#[doc(inline)]
pub use self::limits::{
    MAX_COMPLEXITY, MAX_DEPTH, MAX_DIRECTIVES, MAX_EXPANDED_NODES, MAX_NESTING,
    MAX_RECURSIVE_DEPTH, MAX_REQUEST_BYTES, with_default_limits,
};
#[doc(inline)]
pub use self::mutations::{
    CustomerToken, GenerateCustomerTokenAsAdminInput, GenerateCustomerTokenAsAdminOutput,
    RevokeCustomerTokenOutput, TokenMutation,
};
#[doc(inline)]
pub use self::sessions::{CustomerTokenInfo, CustomerTokens, TokenQuery};
#[doc(inline)]
pub use self::transport::{graphql_error_body, router};
#[doc(inline)]
pub use self::websocket::{
    CONNECTION_INIT_TIMEOUT, GRAPHQL_TRANSPORT_WS, MAX_OPERATIONS_PER_SOCKET,
    MUTATION_OVER_SOCKET_MESSAGE, TOO_MANY_OPERATIONS_MESSAGE,
};

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName, USER_AGENT};

use crate::magento::UNAVAILABLE_MESSAGE;
use crate::sign_in::SignIn;
use crate::{Caller, TokenKind};

/// Magento's answer to a guest, or the wrong kind of caller, on a protected field.
pub const NOT_AUTHORIZED_MESSAGE: &str = "The current customer isn't authorized.";
/// The answer of `generateCustomerTokenAsAdmin` for an email no customer has.
pub const UNKNOWN_CUSTOMER_MESSAGE: &str = "Customer email provided does not exist";
/// The answer of `generateCustomerTokenAsAdmin` for a customer who did not allow it.
pub const ASSISTANCE_DENIED_MESSAGE: &str =
    "Allow remote shopping assistance is disabled for this customer.";
/// The answer to a request that selects more than one token-issuing mutation
/// (`generateCustomerToken`, `generateCustomerTokenAsAdmin`, under any alias).
pub const ONE_TOKEN_PER_REQUEST_MESSAGE: &str = "A request can generate one token at most.";

/// Magento's GraphQL error categories (`extensions.category`).
pub mod category {
    /// Bad or missing input.
    pub const INPUT: &str = "graphql-input";
    /// Sign-in failed, or the token is invalid.
    pub const AUTHENTICATION: &str = "graphql-authentication";
    /// The caller may not do this.
    pub const AUTHORIZATION: &str = "graphql-authorization";
    /// A backend failed.
    pub const INTERNAL: &str = "internal";
}

/// The close codes of the GraphQL socket (see [`router`]), after those of the `graphql-ws`
/// library where it has one.
///
/// ```
/// use tower_bearer::magento::graphql::close;
///
/// assert_eq!(close::FORBIDDEN, 4403);
/// ```
pub mod close {
    /// The `connection_init` payload's `Authorization` is malformed (not a string, not a
    /// header value, `Bearer` with no token or a bad character, given twice).
    pub const BAD_REQUEST: u16 = 4400;
    /// The token is invalid, expired or revoked: at `connection_init`, or later while the
    /// socket is open. Reason `Forbidden`.
    pub const FORBIDDEN: u16 = 4403;
    /// The client did not offer the `graphql-transport-ws` subprotocol.
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    /// No `connection_init` within [`CONNECTION_INIT_TIMEOUT`](super::CONNECTION_INIT_TIMEOUT).
    pub const INIT_TIMEOUT: u16 = 4408;
    /// A second `connection_init` (async-graphql's own answer).
    pub const TOO_MANY_INITIALISATION_REQUESTS: u16 = 4429;
    /// The token store could not say whether the token is valid (at `connection_init`, or
    /// at a later check): the socket is closed, never admitted as a guest or kept open.
    /// Reason `Service Unavailable`.
    pub const INTERNAL_ERROR: u16 = 4500;
}

/// A GraphQL error with Magento's `extensions.category`.
pub fn error(message: impl Into<String>, category: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, extensions| {
        extensions.set("category", category);
    })
}

/// The caller behind the request, as [`router`] passes it to resolvers.
pub fn caller<'a>(ctx: &Context<'a>) -> Option<&'a Caller> {
    ctx.data_opt::<Caller>()
}

/// The caller, if its token is of `kind`; anyone else, a guest included, gets Magento's
/// [`NOT_AUTHORIZED_MESSAGE`] (`graphql-authorization`).
fn caller_of_kind<'a>(ctx: &Context<'a>, kind: TokenKind) -> async_graphql::Result<&'a Caller> {
    caller(ctx)
        .filter(|caller| caller.kind == kind)
        .ok_or_else(|| error(NOT_AUTHORIZED_MESSAGE, category::AUTHORIZATION))
}

/// The schema's [`SignIn`]; without one, the `internal` unavailable error (and a log line
/// for the operator).
fn service<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a SignIn> {
    ctx.data::<SignIn>().map_err(|_| {
        tracing::error!("the GraphQL schema has no SignIn: add it with .data(service)");
        error(UNAVAILABLE_MESSAGE, category::INTERNAL)
    })
}

/// The answer to a backend failure: `internal`, with the details in the log only.
fn unavailable(error_text: impl std::fmt::Display) -> async_graphql::Error {
    tracing::warn!(error = %error_text, "GraphQL token field failed on a backend");
    error(UNAVAILABLE_MESSAGE, category::INTERNAL)
}

/// Where a request comes from, as a front end sees it: the connection's address and the
/// headers that describe the client. [`SignIn::client_details`](crate::SignIn::client_details)
/// turns it into what a token records, trusting forwarding headers only from trusted proxies.
#[derive(Clone, Debug)]
pub(super) struct Origin {
    pub(super) peer: Option<IpAddr>,
    pub(super) headers: HeaderMap,
}

impl Origin {
    /// The origin of a request from `peer` with `headers`, keeping only the headers that
    /// describe the client (the rest may be large, and some are secrets).
    pub(super) fn new(peer: Option<IpAddr>, headers: &HeaderMap) -> Self {
        let mut kept = HeaderMap::new();
        for name in [
            USER_AGENT,
            FORWARDED,
            HeaderName::from_static("x-forwarded-for"),
        ] {
            for value in headers.get_all(&name) {
                kept.append(name.clone(), value.clone());
            }
        }
        Self {
            peer,
            headers: kept,
        }
    }
}
