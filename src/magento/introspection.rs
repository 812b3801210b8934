//! Token introspection (RFC 7662): `POST /V1/integration/token/introspect`, where a
//! resource server holding a token that grants [`INTROSPECT`] asks whether another token
//! is active, and whose it is.
//!
//! The request is RFC 7662 §2.1's form body (`token=…`; `token_type_hint` is accepted and
//! ignored: there is one kind of token here), or JSON `{"token": "…"}` as the other routes
//! take. The answer (§2.2) is `{"active": false}` and nothing else for a token that is not
//! live, whatever the reason (unknown, malformed, expired, idled out, revoked), so that it
//! tells nothing of tokens that do not work; for a live one, what the token records. Looking
//! a token up here records no use of it ([`TokenRegistry::inspect`]): introspection does
//! not keep a token alive. A store failure is a 503, never `{"active": false}`.
//!
//! [`TokenRegistry::inspect`]: crate::TokenRegistry::inspect

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

use super::json::{ApiError, missing_field, optional_json_object, read_body, required_string};
#[cfg(feature = "openapi")]
use super::openapi;
use super::{INTROSPECT, has_media_type, is_json};
use crate::bearer::extract::{RequiredScopes, Scoped};
use crate::sign_in::{SignIn, SignInError};
use crate::token::Caller;

/// The route, relative to the REST root.
const ROUTE: &str = "/V1/integration/token/introspect";
/// The form parameter naming the token (RFC 7662 §2.1), and the JSON field.
const TOKEN: &str = "token";
/// RFC 7662's media type of the request.
const FORM: &str = "application/x-www-form-urlencoded";

/// Tokens granting [`INTROSPECT`].
pub(super) struct Introspect;

impl RequiredScopes for Introspect {
    const SCOPES: &'static [&'static str] = &[INTROSPECT];
}

/// The introspection route, relative to the REST root; its caller is checked by the
/// extractor (a token granting [`INTROSPECT`]), behind the router's layer.
pub(super) fn routes() -> Router<SignIn> {
    Router::new().route(ROUTE, post(introspect))
}

/// `POST /V1/integration/token/introspect`: every answer of the route itself (the 200s and
/// its refusals of the body or of an outage) is marked `Cache-Control: no-store`.
#[cfg_attr(feature = "openapi", utoipa::path(
    post,
    path = "/V1/integration/token/introspect",
    tag = "introspection",
    summary = "Whether a token is active, and whose it is (RFC 7662)",
    security(("bearerAuth" = ["introspect"])),
    request_body(content(
        (openapi::IntrospectionRequest = "application/x-www-form-urlencoded"),
        (openapi::IntrospectionRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "`{\"active\": false}` alone for a token that is not live, whatever the reason; what a live token records otherwise (`Cache-Control: no-store`).", body = openapi::Introspection),
        (status = 400, description = "The `Authorization` header is malformed (`error=\"invalid_request\"`), or the body names no token, names it twice (form), or is malformed JSON.", body = openapi::ErrorMessage),
        (status = 401, description = openapi::UNAUTHORIZED, body = openapi::ErrorMessage),
        (status = 403, description = "The token does not grant `introspect` (`error=\"insufficient_scope\"`).", body = openapi::ErrorMessage),
        (status = 413, description = openapi::TOO_LARGE, body = openapi::ErrorMessage),
        (status = 415, description = "The body is neither a form (`application/x-www-form-urlencoded`) nor JSON.", body = openapi::ErrorMessage),
        (status = 503, description = openapi::UNAVAILABLE, body = openapi::ErrorMessage, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
))]
async fn introspect(
    State(sign_in): State<SignIn>,
    Scoped(caller, _): Scoped<Introspect>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut response = match answer(&sign_in, &caller, &headers, body).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => error.into_response(),
    };
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn answer(
    sign_in: &SignIn,
    caller: &Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let token = requested_token(headers, body)?;
    let found = sign_in
        .registry()
        .inspect(&token)
        .await
        .map_err(SignInError::from)?;
    tracing::debug!(
        caller = %caller.token_id(),
        active = found.is_some(),
        "token introspected"
    );
    Ok(match found {
        Some(token) => Value::Object(describe(&token)),
        None => json!({ "active": false }),
    })
}

/// The token the body names: a form (RFC 7662) or JSON; 415 for any other media type, 400
/// when there is no token, or an empty one.
fn requested_token(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, ApiError> {
    let body = read_body(body)?;
    if body.is_empty() {
        return Err(missing_field(TOKEN));
    }
    if has_media_type(headers, FORM) {
        return form_token(&body);
    }
    if is_json(headers) {
        let fields = optional_json_object(headers, Ok(body))?.unwrap_or_default();
        return required_string(&fields, TOKEN).map(str::to_owned);
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "The request body must be a form, sent with \
         \"Content-Type: application/x-www-form-urlencoded\", or JSON, sent with \
         \"Content-Type: application/json\".",
    ))
}

/// The `token` parameter of a form body. Other parameters (`token_type_hint`, extensions)
/// are ignored; a second `token` is refused, as OAuth refuses any repeated parameter (RFC
/// 6749 §3.1), rather than picking one.
fn form_token(body: &[u8]) -> Result<String, ApiError> {
    let mut token = None;
    for (name, value) in form_urlencoded::parse(body) {
        if name != TOKEN {
            continue;
        }
        if token.is_some() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "\"token\" may be given only once.",
            ));
        }
        token = Some(value.into_owned());
    }
    token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| missing_field(TOKEN))
}

/// The answer for a live token (RFC 7662 §2.2): what it records, never its secret.
///
/// `exp` is when the token expires unless it is used before: with an idle timeout, the end
/// of the current idle period (never past the absolute expiry), else the absolute expiry;
/// absent for a token that lives until revoked. `scope` is absent for a token without
/// scopes.
fn describe(token: &Caller) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("active".to_owned(), json!(true));
    fields.insert("token_type".to_owned(), json!("Bearer"));
    fields.insert("sub".to_owned(), json!(token.subject));
    if !token.scopes.is_empty() {
        fields.insert("scope".to_owned(), json!(token.scopes.to_string()));
    }
    if let Some(expires_at) = token.idle_expires_at().or(token.expires_at) {
        fields.insert("exp".to_owned(), json!(expires_at.timestamp()));
    }
    fields.insert("iat".to_owned(), json!(token.issued_at.timestamp()));
    fields.insert("token_id".to_owned(), json!(token.token_id().as_str()));
    fields.insert("kind".to_owned(), json!(token.kind));
    fields.insert("acting_admin".to_owned(), json!(token.acting_admin));
    fields
}
