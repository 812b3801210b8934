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

async fn customer_list(
    State(sign_in): State<SignIn>,
    Customer(caller): Customer,
) -> Result<Json<Vec<Value>>, ApiError> {
    list(&sign_in, &caller).await
}

async fn admin_list(
    State(sign_in): State<SignIn>,
    Admin(caller): Admin,
) -> Result<Json<Vec<Value>>, ApiError> {
    list(&sign_in, &caller).await
}

async fn customer_end(
    State(sign_in): State<SignIn>,
    Customer(caller): Customer,
    path: Result<Path<TokenPath>, PathRejection>,
) -> Result<Json<bool>, ApiError> {
    let Path(TokenPath { token_id }) = path.map_err(malformed_path)?;
    end(&sign_in, &caller, caller.kind, &caller.subject, &token_id).await
}

async fn admin_end(
    State(sign_in): State<SignIn>,
    Admin(caller): Admin,
    path: Result<Path<TokenPath>, PathRejection>,
) -> Result<Json<bool>, ApiError> {
    let Path(TokenPath { token_id }) = path.map_err(malformed_path)?;
    end(&sign_in, &caller, caller.kind, &caller.subject, &token_id).await
}

async fn customer_end_others(
    State(sign_in): State<SignIn>,
    Customer(caller): Customer,
) -> Result<Json<u64>, ApiError> {
    end_others(&sign_in, &caller).await
}

async fn admin_end_others(
    State(sign_in): State<SignIn>,
    Admin(caller): Admin,
) -> Result<Json<u64>, ApiError> {
    end_others(&sign_in, &caller).await
}

/// `GET /V1/customers/{email}/tokens`: a customer's tokens, for an admin granting
/// [`MANAGE_CUSTOMERS`] (who signed in where, and which tokens admins obtained on the
/// customer's behalf).
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
