//! JSON in and out of the REST routes: request bodies read as JSON objects, and
//! [`ApiError`], the `{"message": …}` answer of every refusal.

use std::borrow::Cow;

use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::header::RETRY_AFTER;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::{UNAVAILABLE_MESSAGE, is_json, retry_after};
use crate::sign_in::SignInError;
use crate::store::StoreError;

/// An instant as the token listings show it: RFC 3339, UTC, to the second.
pub(super) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The request body as a JSON object, or the Magento-style error explaining why not.
pub(super) fn json_object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    optional_json_object(headers, body)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "The request body is empty: send a JSON object.",
        )
    })
}

/// The request body, or the error saying why it could not be read (413 past
/// [`MAX_BODY_BYTES`](super::rest::MAX_BODY_BYTES)).
pub(super) fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "The request body is larger than 16 KiB.")
        } else {
            ApiError::new(status, "The request body could not be read.")
        }
    })
}

/// Like [`json_object`], but an empty body is `None`.
pub(super) fn optional_json_object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let body = read_body(body)?;
    if body.is_empty() {
        return Ok(None);
    }
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The request body must be JSON, sent with \"Content-Type: application/json\".",
        ));
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(fields)) => Ok(Some(fields)),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object.",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        )),
    }
}

/// The non-empty string field `name`, else Magento's `"<name>" is required. Enter and try again.`
pub(super) fn required_string<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, ApiError> {
    match fields.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        _ => Err(missing_field(name)),
    }
}

/// Magento's 400 for a missing or empty field: `"<name>" is required. Enter and try again.`
pub(super) fn missing_field(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("\"{name}\" is required. Enter and try again."),
    )
}

/// An error answer of the token routes: a status and `{"message": …}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::InvalidCredentials | SignInError::TwoFactorRequired => {
                Self::new(StatusCode::UNAUTHORIZED, error.to_string())
            }
            SignInError::Busy => Self::new(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE),
            SignInError::Store(StoreError::LimitReached { limit }) => {
                Self::new(StatusCode::CONFLICT, super::token_limit_message(limit))
            }
            _ => {
                tracing::warn!(%error, "token route failed on a backend");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unavailable = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = (
            self.status,
            axum::Json(serde_json::json!({ "message": self.message })),
        )
            .into_response();
        if unavailable {
            response.headers_mut().insert(RETRY_AFTER, retry_after());
        }
        response
    }
}
