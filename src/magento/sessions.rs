//! A user's own tokens, as sessions: list them, end one, end all but the current one; and an
//! admin's view of a customer's.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{Value, json};

use super::NO_SUCH_TOKEN_MESSAGE;
use super::admin::{ManageCustomers, require_admin};
use super::json::{ApiError, rfc3339};
#[cfg(feature = "openapi")]
use super::openapi;
use crate::bearer::extract::{Admin, Customer, Scoped};
use crate::sign_in::{SignIn, SignInError};
use crate::telemetry::events::Actor;
use crate::token::{Caller, TokenKind};

/// The session routes, relative to the REST root; callers are checked by the extractors,
/// behind the router's layer.
pub(super) fn routes() -> Router<SignIn> {
    Router::new()
        .route("/V1/customers/me/tokens", get(customer_list))
        .route("/V1/customers/me/tokens/{token_id}", delete(customer_end))
        .route(
            "/V1/customers/me/tokens/revoke-others",
            post(customer_end_others),
        )
        .route("/V1/admin/me/tokens", get(admin_list))
        .route("/V1/admin/me/tokens/{token_id}", delete(admin_end))
        .route("/V1/admin/me/tokens/revoke-others", post(admin_end_others))
        .route(
            "/V1/customers/{email}/tokens",
            get(customer_tokens_for_admin),
        )
        .route(
            "/V1/customers/{email}/tokens/{token_id}",
            delete(end_customer_token_for_admin),
        )
}

/// The `{token_id}` (and, on the admin routes, `{email}`) of a route: a struct, as under
/// `/rest/{store_code}` there is one parameter more.
#[derive(serde::Deserialize)]
struct TokenPath {
    token_id: String,
}

#[derive(serde::Deserialize)]
struct CustomerPath {
    email: String,
}

#[derive(serde::Deserialize)]
struct CustomerTokenPath {
    email: String,
    token_id: String,
}

fn malformed_path(rejection: PathRejection) -> ApiError {
    ApiError::new(rejection.status(), "The path is malformed.")
}

#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/V1/customers/me/tokens",
    tag = "sessions",
    summary = "The calling customer's live tokens",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The live tokens, never their secrets; `current` marks this request's.", body = Vec<openapi::Session>),
        (status = 400, description = openapi::MALFORMED_HEADER, body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "Not a customer token (`error=\"insufficient_scope\"`).", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn customer_list(
    State(sign_in): State<SignIn>,
    Customer(caller): Customer,
) -> Result<Json<Vec<Value>>, ApiError> {
    list(&sign_in, &caller).await
}

#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/V1/admin/me/tokens",
    tag = "sessions",
    summary = "The calling admin's live tokens",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The live tokens, never their secrets; `current` marks this request's.", body = Vec<openapi::Session>),
        (status = 400, description = openapi::MALFORMED_HEADER, body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "Not an admin token (`error=\"insufficient_scope\"`).", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn admin_list(
    State(sign_in): State<SignIn>,
    Admin(caller): Admin,
) -> Result<Json<Vec<Value>>, ApiError> {
    list(&sign_in, &caller).await
}

#[cfg_attr(feature = "openapi", utoipa::path(
    delete,
    path = "/V1/customers/me/tokens/{token_id}",
    tag = "sessions",
    summary = "Ends one of the calling customer's tokens",
    security(("bearerAuth" = [])),
    params(("token_id" = String, Path, description = "The token's public id (`token_id` of the listing).")),
    responses(
        (status = 200, description = "`true`: the token is revoked.", body = bool),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the path is malformed (not UTF-8).", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "Not a customer token (`error=\"insufficient_scope\"`).", body = openapi::ErrorMessage),
        (status = 404, description = "No live token of the account has this id.", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn customer_end(
    State(sign_in): State<SignIn>,
    Customer(caller): Customer,
    path: Result<Path<TokenPath>, PathRejection>,
) -> Result<Json<bool>, ApiError> {
    let Path(TokenPath { token_id }) = path.map_err(malformed_path)?;
    end(&sign_in, &caller, caller.kind, &caller.subject, &token_id).await
}

#[cfg_attr(feature = "openapi", utoipa::path(
    delete,
    path = "/V1/admin/me/tokens/{token_id}",
    tag = "sessions",
    summary = "Ends one of the calling admin's tokens",
    security(("bearerAuth" = [])),
    params(("token_id" = String, Path, description = "The token's public id (`token_id` of the listing).")),
    responses(
        (status = 200, description = "`true`: the token is revoked.", body = bool),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the path is malformed (not UTF-8).", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "Not an admin token (`error=\"insufficient_scope\"`).", body = openapi::ErrorMessage),
        (status = 404, description = "No live token of the account has this id.", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn admin_end(
    State(sign_in): State<SignIn>,
    Admin(caller): Admin,
    path: Result<Path<TokenPath>, PathRejection>,
) -> Result<Json<bool>, ApiError> {
    let Path(TokenPath { token_id }) = path.map_err(malformed_path)?;
    end(&sign_in, &caller, caller.kind, &caller.subject, &token_id).await
}

#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/customers/me/tokens/revoke-others",
    tag = "sessions",
    summary = "Ends every token of the calling customer but this request's",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "How many tokens were revoked.", body = u64),
        (status = 400, description = openapi::MALFORMED_HEADER, body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "Not a customer token (`error=\"insufficient_scope\"`).", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn customer_end_others(
    State(sign_in): State<SignIn>,
    Customer(caller): Customer,
) -> Result<Json<u64>, ApiError> {
    end_others(&sign_in, &caller).await
}

#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/admin/me/tokens/revoke-others",
    tag = "sessions",
    summary = "Ends every token of the calling admin but this request's",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "How many tokens were revoked.", body = u64),
        (status = 400, description = openapi::MALFORMED_HEADER, body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "Not an admin token (`error=\"insufficient_scope\"`).", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn admin_end_others(
    State(sign_in): State<SignIn>,
    Admin(caller): Admin,
) -> Result<Json<u64>, ApiError> {
    end_others(&sign_in, &caller).await
}

/// `GET /V1/customers/{email}/tokens`: a customer's tokens, for an admin granting
/// [`MANAGE_CUSTOMERS`] (who signed in where, and which tokens admins obtained on the
/// customer's behalf).
#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/V1/customers/{email}/tokens",
    tag = "sessions",
    summary = "A customer's live tokens, for an admin",
    security(("bearerAuth" = ["Magento_Customer::manage"])),
    params(("email" = String, Path, description = "The customer's email.")),
    responses(
        (status = 200, description = "The customer's live tokens, never their secrets.", body = Vec<openapi::Session>),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the path is malformed (not UTF-8).", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "The token does not grant `Magento_Customer::manage` (`error=\"insufficient_scope\"`), or is not an admin's.", body = openapi::ErrorMessage),
        (status = 404, description = "No customer has this email.", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn customer_tokens_for_admin(
    State(sign_in): State<SignIn>,
    Scoped(admin, _): Scoped<ManageCustomers>,
    path: Result<Path<CustomerPath>, PathRejection>,
) -> Result<Json<Vec<Value>>, ApiError> {
    require_admin(&admin)?;
    let Path(CustomerPath { email }) = path.map_err(malformed_path)?;
    let subject = customer_subject(&sign_in, &email).await?;
    let tokens = sign_in
        .registry()
        .list(TokenKind::Customer, &subject)
        .await
        .map_err(SignInError::from)?;
    Ok(Json(
        tokens.iter().map(|token| describe(token, None)).collect(),
    ))
}

/// `DELETE /V1/customers/{email}/tokens/{token_id}`, for an admin granting
/// [`MANAGE_CUSTOMERS`].
#[cfg_attr(feature = "openapi", utoipa::path(
    delete,
    path = "/V1/customers/{email}/tokens/{token_id}",
    tag = "sessions",
    summary = "Ends one of a customer's tokens, for an admin",
    security(("bearerAuth" = ["Magento_Customer::manage"])),
    params(("email" = String, Path, description = "The customer's email."), ("token_id" = String, Path, description = "The token's public id (`token_id` of the listing).")),
    responses(
        (status = 200, description = "`true`: the token is revoked.", body = bool),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the path is malformed (not UTF-8).", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "The token does not grant `Magento_Customer::manage` (`error=\"insufficient_scope\"`), or is not an admin's.", body = openapi::ErrorMessage),
        (status = 404, description = "No customer has this email, or no live token of theirs has this id.", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn end_customer_token_for_admin(
    State(sign_in): State<SignIn>,
    Scoped(admin, _): Scoped<ManageCustomers>,
    path: Result<Path<CustomerTokenPath>, PathRejection>,
) -> Result<Json<bool>, ApiError> {
    require_admin(&admin)?;
    let Path(CustomerTokenPath { email, token_id }) = path.map_err(malformed_path)?;
    let subject = customer_subject(&sign_in, &email).await?;
    end(&sign_in, &admin, TokenKind::Customer, &subject, &token_id).await
}

/// The subject of the customer `email` names, as the directory records it; 404 for none.
async fn customer_subject(sign_in: &SignIn, email: &str) -> Result<String, ApiError> {
    match sign_in
        .directory()
        .customer(email)
        .await
        .map_err(SignInError::from)?
    {
        Some(customer) => Ok(customer.subject),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Customer email provided does not exist",
        )),
    }
}

async fn list(sign_in: &SignIn, caller: &Caller) -> Result<Json<Vec<Value>>, ApiError> {
    let tokens = sign_in
        .registry()
        .list(caller.kind, &caller.subject)
        .await
        .map_err(SignInError::from)?;
    Ok(Json(
        tokens
            .iter()
            .map(|token| describe(token, Some(caller)))
            .collect(),
    ))
}

/// Revokes `subject`'s token `token_id`, by `actor`'s request.
async fn end(
    sign_in: &SignIn,
    actor: &Caller,
    kind: TokenKind,
    subject: &str,
    token_id: &str,
) -> Result<Json<bool>, ApiError> {
    let ended = sign_in
        .registry()
        .acting_as(Actor::of(actor))
        .revoke_by_id(kind, subject, token_id)
        .await
        .map_err(SignInError::from)?;
    if ended {
        Ok(Json(true))
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, NO_SUCH_TOKEN_MESSAGE))
    }
}

async fn end_others(sign_in: &SignIn, caller: &Caller) -> Result<Json<u64>, ApiError> {
    let ended = sign_in
        .registry()
        .acting_as(Actor::of(caller))
        .revoke_all_but(caller.kind, &caller.subject, caller.token_hash)
        .await
        .map_err(SignInError::from)?;
    Ok(Json(ended))
}

/// What a user sees of one of their tokens: never its secret. `current` marks the token of
/// `viewer`'s own request; `expires_at` is the absolute expiry, `idle_expires_at` (with an
/// idle timeout) when it expires unless used before.
fn describe(token: &Caller, viewer: Option<&Caller>) -> Value {
    json!({
        "token_id": token.token_id().as_str(),
        "kind": token.kind,
        "created_at": rfc3339(token.issued_at),
        "expires_at": token.expires_at.map(rfc3339),
        "idle_expires_at": token.idle_expires_at().map(rfc3339),
        "last_used_at": token.last_used_at.map(rfc3339),
        "user_agent": token.client.user_agent(),
        "ip": token.client.ip,
        "acting_admin": token.acting_admin,
        "second_factor": token.second_factor,
        "scopes": token.scopes,
        "name": token.name,
        "current": viewer.is_some_and(|viewer| viewer.token_hash == token.token_hash),
    })
}
