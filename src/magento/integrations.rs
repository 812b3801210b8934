//! Integration tokens (Magento's third token service): machine clients' tokens, created,
//! listed and deleted by an admin.

use std::time::Duration;

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use bytes::Bytes;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

use super::admin::require_admin;
use super::json::{ApiError, json_object, rfc3339};
#[cfg(feature = "openapi")]
use super::openapi;
use crate::bearer::extract::{RequiredScopes, Scoped};
use crate::registry::IssueRequest;
use crate::sign_in::{SignIn, SignInError};
use crate::store::MAX_TOKENS_PER_SUBJECT;
use crate::telemetry::events::{Actor, EventDetail};
use crate::token::{Caller, MAX_LIFETIME, Scopes, TokenId, TokenKind};

/// The subject of every integration token: one index, which these routes list and revoke
/// from. A token's [`Caller::name`] names its integration.
pub const INTEGRATIONS_SUBJECT: &str = "integrations";
/// The scope an admin token needs to manage integration tokens (Magento's ACL resource of
/// the integrations page; the wildcard grants it).
pub const MANAGE_INTEGRATIONS: &str = "Magento_Integration::integrations";
/// The longest integration name accepted, in characters.
pub const MAX_NAME_LEN: usize = 100;

/// Admin tokens granting [`MANAGE_INTEGRATIONS`].
pub(super) struct ManageIntegrations;

impl RequiredScopes for ManageIntegrations {
    const SCOPES: &'static [&'static str] = &[MANAGE_INTEGRATIONS];
}

/// The integration routes, relative to the REST root; their callers are checked by the
/// extractors (an admin token granting [`MANAGE_INTEGRATIONS`]), behind the router's layer.
pub(super) fn routes() -> Router<SignIn> {
    Router::new()
        .route("/V1/integration/tokens", get(list).post(create))
        .route("/V1/integration/tokens/{token_id}", delete(remove))
}

/// `POST /V1/integration/tokens` `{"name", "scopes", "lifetime"}`.
#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/integration/tokens",
    tag = "integrations",
    summary = "Creates an integration token",
    security(("bearerAuth" = ["Magento_Integration::integrations"])),
    operation_id = "create_integration_token",
    request_body(content = openapi::NewIntegration, content_type = "application/json"),
    responses(
        (status = 200, description = "The new token, its secret shown this once (`Cache-Control: no-store`).", body = openapi::NewIntegrationToken),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the body is empty, not JSON, not an object, or has a missing or bad `name`, `scopes` or `lifetime`.", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "The token does not grant `Magento_Integration::integrations` (`error=\"insufficient_scope\"`), is not an admin's, or does not hold every scope asked for.", body = openapi::ErrorMessage),
        (status = 409, description = "As many integration tokens as allowed are live already: delete one first.", body = openapi::ErrorMessage),
        (status = 413, description = openapi::TOO_LARGE, body = openapi::ErrorMessage),
        (status = 415, description = openapi::NOT_JSON, body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn create(
    State(sign_in): State<SignIn>,
    Scoped(caller, _): Scoped<ManageIntegrations>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let fields = json_object(&headers, body)?;
    let request = integration_request(&fields, &caller)?;
    let registry = sign_in.registry();
    // All integrations share one index: past its ceiling the store would revoke the oldest
    // integration to make room. Refuse instead (a race may still pass it by a few).
    let live = registry
        .list(TokenKind::Integration, INTEGRATIONS_SUBJECT)
        .await
        .map_err(SignInError::from)?;
    if live.len() >= MAX_TOKENS_PER_SUBJECT {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "At most {MAX_TOKENS_PER_SUBJECT} integration tokens may be live at once: delete one first."
            ),
        ));
    }
    let issued = registry
        .issue_request(request)
        .await
        .map_err(SignInError::from)?;
    registry.emit(EventDetail::IntegrationTokenCreated {
        token_id: issued.caller.token_id(),
        name: issued.caller.name.clone(),
        scopes: issued.caller.scopes.clone(),
        by: Some(Actor::of(&caller)),
    });
    let mut body = describe(&issued.caller);
    body.insert("token".to_owned(), json!(issued.token.expose()));
    let mut response = Json(Value::Object(body)).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The issue request a body describes, or the 400 saying what is wrong with it.
fn integration_request(
    fields: &Map<String, Value>,
    admin: &Caller,
) -> Result<IssueRequest, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let name = match fields.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim(),
        _ => return Err(bad("\"name\" is required. Enter and try again.".to_owned())),
    };
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(bad(format!(
            "\"name\" must be at most {MAX_NAME_LEN} printable characters."
        )));
    }
    let scopes = match fields.get("scopes") {
        None | Some(Value::Null) => Scopes::default(),
        Some(Value::Array(list)) => {
            let texts: Option<Vec<&str>> = list.iter().map(Value::as_str).collect();
            let texts =
                texts.ok_or_else(|| bad("\"scopes\" must be a list of strings.".to_owned()))?;
            Scopes::new(texts).map_err(|error| bad(format!("\"scopes\": {error}.")))?
        }
        Some(_) => return Err(bad("\"scopes\" must be a list of strings.".to_owned())),
    };
    // An admin grants only what its own token holds: no integration outranks its creator.
    if !admin.scopes.grants_all(&scopes) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "You may grant only scopes your own token holds.",
        ));
    }
    let mut request = IssueRequest::new(TokenKind::Integration, INTEGRATIONS_SUBJECT)
        .with_name(name)
        .with_scopes(scopes)
        .with_acting_admin(admin.subject.clone());
    match fields.get("lifetime") {
        None | Some(Value::Null) => {}
        Some(Value::Number(seconds)) => {
            let seconds = seconds
                .as_u64()
                .filter(|seconds| *seconds > 0)
                .ok_or_else(|| {
                    bad("\"lifetime\" must be a whole number of seconds above 0.".to_owned())
                })?;
            request = request
                .with_lifetime(Duration::from_secs(seconds))
                .map_err(|_| {
                    bad(format!(
                        "\"lifetime\" may be at most {} seconds.",
                        MAX_LIFETIME.as_secs()
                    ))
                })?;
        }
        Some(_) => {
            return Err(bad(
                "\"lifetime\" must be a whole number of seconds above 0.".to_owned(),
            ));
        }
    }
    Ok(request)
}

/// `GET /V1/integration/tokens`: the live integration tokens, newest first, no secret.
#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/V1/integration/tokens",
    tag = "integrations",
    summary = "The live integration tokens, newest first",
    security(("bearerAuth" = ["Magento_Integration::integrations"])),
    operation_id = "list_integration_tokens",
    responses(
        (status = 200, description = "The live integration tokens, never their secrets.", body = Vec<openapi::IntegrationToken>),
        (status = 400, description = openapi::MALFORMED_HEADER, body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "The token does not grant `Magento_Integration::integrations` (`error=\"insufficient_scope\"`), or is not an admin's.", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn list(
    State(sign_in): State<SignIn>,
    Scoped(caller, _): Scoped<ManageIntegrations>,
) -> Result<Json<Vec<Value>>, ApiError> {
    require_admin(&caller)?;
    let tokens = sign_in
        .registry()
        .list(TokenKind::Integration, INTEGRATIONS_SUBJECT)
        .await
        .map_err(SignInError::from)?;
    Ok(Json(
        tokens
            .iter()
            .map(|token| Value::Object(describe(token)))
            .collect(),
    ))
}

/// The `{token_id}` of the route (a struct: under `/rest/{store_code}` there are two).
#[derive(serde::Deserialize)]
struct TokenPath {
    token_id: String,
}

/// `DELETE /V1/integration/tokens/{token_id}`: `true`, or 404 for an id that is not a live
/// integration token's.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete,
    path = "/V1/integration/tokens/{token_id}",
    tag = "integrations",
    summary = "Deletes an integration token",
    security(("bearerAuth" = ["Magento_Integration::integrations"])),
    params(("token_id" = String, Path, description = "The token's public id (`token_id` of the listing).")),
    operation_id = "delete_integration_token",
    responses(
        (status = 200, description = "`true`: the token is revoked.", body = bool),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the token id in the path is malformed (not UTF-8).", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "The token does not grant `Magento_Integration::integrations` (`error=\"insufficient_scope\"`), or is not an admin's.", body = openapi::ErrorMessage),
        (status = 404, description = "No live integration token has this id.", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn remove(
    State(sign_in): State<SignIn>,
    Scoped(caller, _): Scoped<ManageIntegrations>,
    path: Result<Path<TokenPath>, PathRejection>,
) -> Result<Json<bool>, ApiError> {
    require_admin(&caller)?;
    let Path(TokenPath { token_id }) = path.map_err(|rejection| {
        ApiError::new(rejection.status(), "The token id in the path is malformed.")
    })?;
    let revoked = sign_in
        .registry()
        .acting_as(Actor::of(&caller))
        .revoke_by_id(TokenKind::Integration, INTEGRATIONS_SUBJECT, &token_id)
        .await
        .map_err(SignInError::from)?;
    if !revoked {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "No live integration token has this id.",
        ));
    }
    if let Some(token_id) = TokenId::parse(&token_id) {
        sign_in
            .registry()
            .emit(EventDetail::IntegrationTokenDeleted {
                token_id,
                by: Some(Actor::of(&caller)),
            });
    }
    Ok(Json(true))
}

/// What the routes show of an integration token: never its secret.
fn describe(token: &Caller) -> Map<String, Value> {
    let fields = json!({
        "token_id": token.token_id().as_str(),
        "name": token.name,
        "scopes": token.scopes,
        "created_at": rfc3339(token.issued_at),
        "expires_at": token.expires_at.map(rfc3339),
        "created_by": token.acting_admin,
    });
    match fields {
        Value::Object(fields) => fields,
        _ => Map::new(),
    }
}
