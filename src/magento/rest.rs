//! Magento's REST token services as an axum [`router`].

use std::net::IpAddr;

use axum::Router;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::admin::{ManageCustomers, require_admin};
use super::json::{ApiError, json_object, optional_json_object, required_string};
#[cfg(feature = "openapi")]
use super::openapi;
use super::{MANAGE_CUSTOMERS, Peer, token_response};
use crate::bearer::extract::{Customer, Scoped};
use crate::bearer::layer::BearerAuthLayer;
use crate::sign_in::{SignIn, SignInError};
use crate::telemetry::events::Actor;
use crate::token::{Caller, TokenHash, TokenKind};

/// The largest request body the token routes read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The routes of Magento's token services, relative to the REST root (`/V1/…`):
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /V1/integration/customer/token` | `{"username", "password"}` | `"<token>"` (customer) |
/// | `POST /V1/integration/admin/token` | `{"username", "password"}` | `"<token>"` (admin without two-factor authentication) |
/// | `POST /V1/tfa/provider/google/authenticate` | `{"username", "password", "otp"}` | `"<token>"` (admin with a TOTP second factor) |
/// | `POST /V1/integration/customer/revoke-customer-token` | customer Bearer token | `true`: all the customer's tokens revoked |
/// | `POST /V1/integration/token/revoke` | `{"token"}` or none, any Bearer token | `true`: that one token (or the caller's own) revoked |
/// | `POST /V1/customers/{email}/tokens/revoke` | admin Bearer token | the number of the customer's tokens revoked |
/// | `POST /V1/integration/tokens` | admin Bearer token granting `Magento_Integration::integrations`; `{"name", "scopes", "lifetime"}` | the new integration token and what it records |
/// | `GET /V1/integration/tokens` | the same admin token | the live integration tokens (no secret) |
/// | `DELETE /V1/integration/tokens/{token_id}` | the same admin token | `true`, or 404 |
/// | `POST /V1/integration/token/introspect` | any Bearer token granting [`INTROSPECT`](super::INTROSPECT); form `token=…` (RFC 7662) or `{"token"}` | `{"active": true, "sub", "scope", "exp", …}`, or just `{"active": false}` |
///
/// An admin with a TOTP secret in the [`Directory`](crate::sign_in::Directory) gets tokens only from
/// the two-factor route ([`SignIn::sign_in_with_totp`]); the plain admin route answers
/// them 401 with [`TWO_FACTOR_REQUIRED_MESSAGE`](crate::sign_in::TWO_FACTOR_REQUIRED_MESSAGE).
///
/// Errors are JSON `{"message": …}` with Magento's texts. Mount it at any prefix; Magento
/// clients post to `/rest/V1/…` and `/rest/<store_code>/V1/…`:
///
/// ```
/// use axum::Router;
/// use tower_bearer::{SignIn, TokenRegistry};
/// use tower_bearer::magento::rest;
/// use tower_bearer::sign_in::MemoryDirectory;
///
/// let service = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new());
/// let api = rest::router(service);
/// let app: Router = Router::new()
///     .merge(api.clone())
///     .nest("/rest", api.clone())
///     .nest("/rest/{store_code}", api);
/// ```
///
/// The routes that take a Bearer token (revoking, sessions, integrations, introspection)
/// carry their own [`BearerAuthLayer`]; the token-issuing routes need none.
pub fn router(service: SignIn) -> Router {
    let registry = service.registry().clone();
    let authenticated = Router::new()
        .route(
            "/V1/integration/customer/revoke-customer-token",
            post(revoke_customer_tokens),
        )
        .route("/V1/integration/token/revoke", post(revoke_token))
        .route("/V1/customers/{email}/tokens/revoke", post(force_sign_out))
        .merge(super::integrations::routes())
        .merge(super::introspection::routes())
        .merge(super::sessions::routes())
        .route_layer(BearerAuthLayer::required(registry));
    Router::new()
        .route("/V1/integration/customer/token", post(customer_token))
        .route("/V1/integration/admin/token", post(admin_token))
        .route(
            "/V1/tfa/provider/google/authenticate",
            post(admin_token_with_totp),
        )
        .merge(authenticated)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/integration/customer/token",
    tag = "tokens",
    summary = "A customer token for an email and a password",
    request_body(content = openapi::Credentials, content_type = "application/json"),
    responses(
        (status = 200, description = openapi::TOKEN_ISSUED, body = String, content_type = "application/json"),
        (status = 400, description = "The body is empty, not JSON, not an object, or lacks `username` or `password`.", body = openapi::ErrorMessage),
        (status = 401, description = openapi::CREDENTIALS_REFUSED, body = openapi::ErrorMessage),
        (status = 409, description = openapi::LIMIT, body = openapi::ErrorMessage),
        (status = 413, description = openapi::TOO_LARGE, body = openapi::ErrorMessage),
        (status = 415, description = openapi::NOT_JSON, body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn customer_token(
    State(service): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    sign_in(&service, TokenKind::Customer, peer, &headers, body).await
}

#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/integration/admin/token",
    tag = "tokens",
    summary = "An admin token for a username and a password (admins without a second factor)",
    request_body(content = openapi::Credentials, content_type = "application/json"),
    responses(
        (status = 200, description = openapi::TOKEN_ISSUED, body = String, content_type = "application/json"),
        (status = 400, description = "The body is empty, not JSON, not an object, or lacks `username` or `password`.", body = openapi::ErrorMessage),
        (status = 401, description = "Wrong username or password, unknown or locked account; or an admin with a second factor, who must use `/V1/tfa/provider/google/authenticate`.", body = openapi::ErrorMessage),
        (status = 409, description = openapi::LIMIT, body = openapi::ErrorMessage),
        (status = 413, description = openapi::TOO_LARGE, body = openapi::ErrorMessage),
        (status = 415, description = openapi::NOT_JSON, body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn admin_token(
    State(service): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    sign_in(&service, TokenKind::Admin, peer, &headers, body).await
}

/// Magento's Google Authenticator provider: an admin token for a password and a TOTP code.
#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/tfa/provider/google/authenticate",
    tag = "tokens",
    summary = "An admin token for a username, a password and a TOTP code",
    request_body(content = openapi::TotpCredentials, content_type = "application/json"),
    responses(
        (status = 200, description = openapi::TOKEN_ISSUED, body = String, content_type = "application/json"),
        (status = 400, description = "The body is empty, not JSON, not an object, or lacks `username`, `password` or `otp`.", body = openapi::ErrorMessage),
        (status = 401, description = "Wrong username, password or code (or a code already used), locked account, or an admin without a second factor: deliberately one answer.", body = openapi::ErrorMessage),
        (status = 409, description = openapi::LIMIT, body = openapi::ErrorMessage),
        (status = 413, description = openapi::TOO_LARGE, body = openapi::ErrorMessage),
        (status = 415, description = openapi::NOT_JSON, body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn admin_token_with_totp(
    State(service): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let fields = json_object(&headers, body)?;
    let username = required_string(&fields, "username")?;
    let password = required_string(&fields, "password")?;
    let otp = required_string(&fields, "otp")?;
    let client = service.client_details(peer, &headers);
    let issued = service
        .sign_in_with_totp_from(client, username, password, otp)
        .await?;
    Ok(token_response(&issued.token))
}

async fn sign_in(
    service: &SignIn,
    kind: TokenKind,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let fields = json_object(headers, body)?;
    let username = required_string(&fields, "username")?;
    let password = required_string(&fields, "password")?;
    let client = service.client_details(peer, headers);
    let issued = service
        .sign_in_from(client, kind, username, password)
        .await?;
    Ok(token_response(&issued.token))
}

/// `200` with the token as a bare JSON string, never cached (RFC 6749 §5.1).
#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/integration/customer/revoke-customer-token",
    tag = "tokens",
    summary = "Revokes every token of the calling customer",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "`true`: all the customer's tokens are revoked.", body = bool),
        (status = 400, description = openapi::MALFORMED_HEADER, body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "Not a customer token (`error=\"insufficient_scope\"`).", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn revoke_customer_tokens(
    State(service): State<SignIn>,
    Customer(caller): Customer,
) -> Result<axum::Json<bool>, ApiError> {
    service
        .registry()
        .acting_as(Actor::of(&caller))
        .revoke_all(TokenKind::Customer, &caller.subject)
        .await
        .map_err(SignInError::from)?;
    Ok(axum::Json(true))
}

/// RFC 7009 semantics: `true` whether or not the token was live; only its owner or an
/// admin may revoke it.
#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/integration/token/revoke",
    tag = "tokens",
    summary = "Revokes one token: the one named, or the caller's own (RFC 7009: `true` even for a token that was not live)",
    security(("bearerAuth" = [])),
    request_body(content = Option<openapi::RevokeRequest>, content_type = "application/json", description = "Optional: without a body, or without `token`, the caller's own token is revoked."),
    responses(
        (status = 200, description = "`true`: the token is no longer live.", body = bool),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the body is not JSON, not an object, or has a `token` that is not a non-empty string.", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "The token named is somebody else's, and the caller is not an admin granting `Magento_Customer::manage`.", body = openapi::ErrorMessage),
        (status = 413, description = openapi::TOO_LARGE, body = openapi::ErrorMessage),
        (status = 415, description = openapi::NOT_JSON, body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn revoke_token(
    State(service): State<SignIn>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<bool>, ApiError> {
    let registry = service.registry();
    let target = match optional_json_object(&headers, body)? {
        Some(fields) if fields.contains_key("token") => {
            Some(required_string(&fields, "token")?.to_owned())
        }
        _ => None,
    };
    let hash = match target {
        None => caller.token_hash,
        Some(token) => {
            let Some(owner) = registry.resolve(&token).await.map_err(SignInError::from)? else {
                return Ok(axum::Json(true)); // unknown, expired or already revoked
            };
            let own = owner.kind == caller.kind && owner.subject == caller.subject;
            let manages_customers =
                caller.kind == TokenKind::Admin && caller.has_scope(MANAGE_CUSTOMERS);
            if !own && !manages_customers {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "You may revoke only your own tokens.",
                ));
            }
            TokenHash::of(&token)
        }
    };
    registry
        .acting_as(Actor::of(&caller))
        .revoke_hash(hash)
        .await
        .map_err(SignInError::from)?;
    Ok(axum::Json(true))
}

/// The `{email}` of the route. A struct, not `Path<String>`: mounted under
/// `/rest/{store_code}` the route has two parameters, and only this one matters here.
#[derive(serde::Deserialize)]
struct CustomerPath {
    email: String,
}

/// Admin "force sign-in": revokes every token of a customer.
#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/customers/{email}/tokens/revoke",
    tag = "tokens",
    summary = "Revokes every token of a customer (an admin's force sign-out)",
    security(("bearerAuth" = ["Magento_Customer::manage"])),
    params(("email" = String, Path, description = "The customer's email.")),
    responses(
        (status = 200, description = "How many tokens were revoked.", body = u64),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the email in the path is malformed (not UTF-8).", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "The token does not grant `Magento_Customer::manage` (`error=\"insufficient_scope\"`), or is not an admin's.", body = openapi::ErrorMessage),
        (status = 404, description = "No customer has this email.", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn force_sign_out(
    State(service): State<SignIn>,
    Scoped(admin, _): Scoped<ManageCustomers>,
    path: Result<Path<CustomerPath>, PathRejection>,
) -> Result<axum::Json<u64>, ApiError> {
    require_admin(&admin)?;
    let Path(CustomerPath { email }) = path.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "The customer email in the path is malformed.",
        )
    })?;
    let Some(customer) = service
        .directory()
        .customer(&email)
        .await
        .map_err(SignInError::from)?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Customer email provided does not exist",
        ));
    };
    let count = service
        .registry()
        .acting_as(Actor::of(&admin))
        .revoke_all(TokenKind::Customer, &customer.subject)
        .await
        .map_err(SignInError::from)?;
    Ok(axum::Json(count))
}
