//! The front ends of Magento's token services, over [`SignIn`](crate::SignIn) and the
//! registry: the REST routes ([`rest`]) and, with feature `graphql`, the GraphQL mutations
//! and their `/graphql` transport. What both share lives here.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue};

use crate::bearer::{DEFAULT_RETRY_AFTER, retry_after_value};
use crate::token::Token;

pub(crate) use crate::bearer::UNAVAILABLE_MESSAGE;

/// The scope an admin token needs to act on customers' tokens (force sign-out, revoking a
/// customer's token): Magento's ACL resource of customer management. The wildcard grants it.
pub const MANAGE_CUSTOMERS: &str = "Magento_Customer::manage";
/// The scope an admin token needs to obtain a token on a customer's behalf
/// (`generateCustomerTokenAsAdmin`): Magento's ACL resource of "login as customer".
pub const LOGIN_AS_CUSTOMER: &str = "Magento_LoginAsCustomer::login";

/// The scope a token needs to introspect other tokens (RFC 7662):
/// `POST /V1/integration/token/introspect`, one of the [`rest`] routes. The wildcard
/// [`ALL_SCOPES`](crate::token::ALL_SCOPES) grants it, so full admins may introspect; the
/// typical client is a resource server holding an integration token created with this
/// scope alone.
///
/// ```
/// use tower_bearer::TokenKind;
/// use tower_bearer::magento::INTROSPECT;
/// use tower_bearer::registry::IssueRequest;
/// use tower_bearer::token::Scopes;
///
/// let request = IssueRequest::new(TokenKind::Integration, "integrations")
///     .with_name("resource-server")
///     .with_scopes(Scopes::new([INTROSPECT])?);
/// assert!(request.scopes.grants(INTROSPECT));
/// # Ok::<(), tower_bearer::token::InvalidScope>(())
/// ```
pub const INTROSPECT: &str = "introspect";

/// The answer to an issue past the subject's [limit](crate::registry::SessionRules::with_limit)
/// when the limit refuses more (REST: 409; GraphQL: `graphql-authorization`).
pub fn token_limit_message(limit: usize) -> String {
    format!(
        "This account already holds {limit} active tokens, the most allowed: \
         sign out of one of its sessions first."
    )
}

/// The answer to an attempt to end one of one's own tokens by an id that is not one of
/// one's live tokens (REST: 404; GraphQL: `graphql-input`): the same whether the id names
/// somebody else's token or nothing, so that it tells nothing of other accounts.
pub const NO_SUCH_TOKEN_MESSAGE: &str = "No live token of yours has this id.";

mod admin;
#[cfg(feature = "graphql")]
#[cfg_attr(docsrs, doc(cfg(feature = "graphql")))]
pub mod graphql;
pub mod integrations;
mod introspection;
mod json;
#[cfg(feature = "openapi")]
mod openapi;
pub mod rest;
mod sessions;

#[cfg(feature = "openapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub use openapi::{BEARER_AUTH, openapi};

/// The address of the connection's other end, when the app is served with
/// `into_make_service_with_connect_info::<SocketAddr>()` (axum's `ConnectInfo`); `None`
/// otherwise (then no address is recorded with the tokens issued).
pub(crate) struct Peer(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        Ok(Self(peer))
    }
}

/// Whether the request says its body is JSON (`application/json`, matched by essence,
/// ignoring case and parameters).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    has_media_type(headers, "application/json")
}

/// Whether the request's `Content-Type` is `essence` (matched ignoring case and
/// parameters, so `application/json; charset=utf-8` is `application/json`).
pub(crate) fn has_media_type(headers: &HeaderMap, essence: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|given| given.trim().eq_ignore_ascii_case(essence))
}

/// A new token as Magento answers it: a bare JSON string, never cached.
pub(crate) fn token_response(token: &Token) -> Response {
    let mut response = axum::Json(token.expose()).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `Retry-After` of the routes' 503s: the layer's default, so one client back-off fits
/// every refusal.
pub(crate) fn retry_after() -> HeaderValue {
    retry_after_value(DEFAULT_RETRY_AFTER)
}
