//! Turning an [`AuthError`] into an HTTP response: status, RFC 6750 challenge, body.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response};

use super::error::AuthError;

/// The realm of the challenge when none is configured.
pub const DEFAULT_REALM: &str = "api";
/// The `Retry-After` of a 503 when none is configured.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The body of a refusal: content type and bytes. The status, `WWW-Authenticate` and
/// `Retry-After` headers are set by the layer and cannot be lost by a custom body.
///
/// By default it is `{"message": "<the error's text>"}`. Replace it with
/// [`BearerAuthLayer::with_error_body`](crate::BearerAuthLayer::with_error_body), e.g. for
/// GraphQL-shaped errors:
///
/// ```
/// use tower_bearer::AuthError;
/// use tower_bearer::bearer::ErrorBody;
///
/// let graphql = |error: &AuthError| {
///     ErrorBody::json(&serde_json::json!({
///         "errors": [{
///             "message": error.to_string(),
///             "extensions": { "category": "graphql-authentication" },
///         }]
///     }))
/// };
/// let body = graphql(&AuthError::InvalidToken);
/// assert_eq!(body.content_type(), "application/json");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    content_type: HeaderValue,
    bytes: Bytes,
}

impl ErrorBody {
    /// A body of any content type.
    pub fn new(content_type: HeaderValue, bytes: impl Into<Bytes>) -> Self {
        Self {
            content_type,
            bytes: bytes.into(),
        }
    }

    /// A JSON body.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        // Serializing a value to memory fails only for maps with non-string keys or a
        // failing Serialize impl; fall back to an empty object rather than panic.
        let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Self::new(HeaderValue::from_static("application/json"), bytes)
    }

    /// The default body: `{"message": "<error text>"}`, the shape Magento's REST API uses.
    pub fn message(error: &AuthError) -> Self {
        Self::json(&serde_json::json!({ "message": error.to_string() }))
    }

    /// The content type.
    pub fn content_type(&self) -> &HeaderValue {
        &self.content_type
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Builds the body of a refusal.
pub(crate) type BodyBuilder = Arc<dyn Fn(&AuthError) -> ErrorBody + Send + Sync>;

/// Everything that shapes refusals: realm, `Retry-After`, custom body.
#[derive(Clone)]
pub(crate) struct Responder {
    /// The realm, already escaped for a quoted-string.
    realm: String,
    retry_after: HeaderValue,
    body: Option<BodyBuilder>,
}

impl Default for Responder {
    fn default() -> Self {
        Self {
            realm: DEFAULT_REALM.to_owned(),
            retry_after: retry_after_value(DEFAULT_RETRY_AFTER),
            body: None,
        }
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("realm", &self.realm)
            .field("retry_after", &self.retry_after)
            .field("custom_body", &self.body.is_some())
            .finish()
    }
}

impl Responder {
    pub(crate) fn set_realm(&mut self, realm: &str) {
        // RFC 9110 quoted-string: escape `"` and `\`, drop what a header cannot carry.
        self.realm = realm
            .chars()
            .filter(|c| *c == ' ' || c.is_ascii_graphic())
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                _ => vec![c],
            })
            .collect();
    }

    pub(crate) fn set_retry_after(&mut self, delay: Duration) {
        self.retry_after = retry_after_value(delay);
    }

    pub(crate) fn set_body(&mut self, body: BodyBuilder) {
        self.body = Some(body);
    }

    /// The complete refusal for `error`.
    pub(crate) fn respond(&self, error: &AuthError) -> Response<Bytes> {
        let body = match &self.body {
            Some(build) => build(error),
            None => ErrorBody::message(error),
        };
        let mut response = Response::new(body.bytes);
        *response.status_mut() = error.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, body.content_type);
        if let Some(challenge) = self.challenge(error) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if matches!(error, AuthError::StoreUnavailable) {
            headers.insert(RETRY_AFTER, self.retry_after.clone());
        }
        // Why, for an outer layer or a test, without parsing the body.
        response.extensions_mut().insert(error.clone());
        response
    }

    /// The RFC 6750 §3 challenge; none for a 503, which is not about credentials.
    fn challenge(&self, error: &AuthError) -> Option<HeaderValue> {
        let realm = &self.realm;
        let text = match error {
            AuthError::StoreUnavailable => return None,
            AuthError::MissingCredentials => format!("Bearer realm=\"{realm}\""),
            AuthError::InvalidRequest(reason) => format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{reason}\""
            ),
            AuthError::InvalidToken => format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", \
                 error_description=\"The access token is invalid, expired or revoked\""
            ),
            AuthError::InsufficientScope { required } => format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{required}\""
            ),
            // Scope-tokens hold no `"` or `\` (RFC 6749 §3.3): safe inside the quotes.
            AuthError::MissingScope { required } => format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{required}\""
            ),
        };
        // Every part is ASCII we wrote or sanitized, so this always succeeds.
        HeaderValue::try_from(text).ok()
    }
}

/// Whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_value(delay: Duration) -> HeaderValue {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    HeaderValue::from(seconds.max(1))
}

/// The refusal with the default realm and body; an extractor behind a layer refuses with
/// the layer's own ([`Refusal`](super::Refusal)).
#[cfg(feature = "axum")]
impl axum::response::IntoResponse for AuthError {
    fn into_response(self) -> axum::response::Response {
        Responder::default()
            .respond(&self)
            .map(axum::body::Body::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::TokenKind;

    #[test]
    fn realm_is_escaped_into_a_quoted_string() {
        let mut responder = Responder::default();
        responder.set_realm("my \"shop\"\\\n");
        let response = responder.respond(&AuthError::MissingCredentials);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="my \"shop\"\\""#
        );
    }

    #[test]
    fn insufficient_scope_names_the_required_kind() {
        let response = Responder::default().respond(&AuthError::InsufficientScope {
            required: TokenKind::Admin,
        });
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="api", error="insufficient_scope", scope="admin""#
        );
    }
}
