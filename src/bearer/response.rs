//! Turning an [`AuthError`] into a response: for HTTP, status, RFC 6750 challenge and body;
//! for gRPC, a trailers-only response with `grpc-status` and `grpc-message`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Response};

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

/// Everything that shapes refusals: realm, `Retry-After`, custom body, gRPC refusals.
#[derive(Clone)]
pub(crate) struct Responder {
    /// The realm, already escaped for a quoted-string.
    realm: String,
    retry_after: HeaderValue,
    body: Option<BodyBuilder>,
    /// Whether gRPC requests are refused the gRPC way.
    grpc: bool,
}

impl Default for Responder {
    fn default() -> Self {
        Self {
            realm: DEFAULT_REALM.to_owned(),
            retry_after: retry_after_value(DEFAULT_RETRY_AFTER),
            body: None,
            grpc: true,
        }
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("realm", &self.realm)
            .field("retry_after", &self.retry_after)
            .field("custom_body", &self.body.is_some())
            .field("grpc", &self.grpc)
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

    pub(crate) fn set_grpc(&mut self, enabled: bool) {
        self.grpc = enabled;
    }

    /// Whether the refusal of a request with these headers is a gRPC one: gRPC refusals on
    /// and a gRPC request. Asked only when refusing, so allowed requests pay nothing.
    pub(crate) fn refuses_as_grpc(&self, request: &HeaderMap) -> bool {
        self.grpc && is_grpc(request)
    }

    /// The complete refusal for `error` of a request with these headers: gRPC's for a
    /// gRPC request (unless turned off), else HTTP's.
    pub(crate) fn respond_to(&self, error: &AuthError, request: &HeaderMap) -> Response<Bytes> {
        self.respond_as(error, self.refuses_as_grpc(request))
    }

    /// The gRPC refusal for `error` when `grpc`, else the HTTP one.
    pub(crate) fn respond_as(&self, error: &AuthError, grpc: bool) -> Response<Bytes> {
        if grpc {
            self.respond_grpc(error)
        } else {
            self.respond(error)
        }
    }

    /// The gRPC refusal: a trailers-only response (HTTP 200, `grpc-status` and
    /// `grpc-message` among the headers, no body), with the challenge and `Retry-After` of
    /// the HTTP refusal. The custom body does not apply: a gRPC refusal has none.
    fn respond_grpc(&self, error: &AuthError) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(GRPC_CONTENT_TYPE));
        headers.insert(GRPC_STATUS, HeaderValue::from(error.grpc_status()));
        headers.insert(GRPC_MESSAGE, grpc_message(&error.to_string()));
        self.add_auth_headers(headers, error);
        response.extensions_mut().insert(error.clone());
        response
    }

    /// The complete HTTP refusal for `error`.
    pub(crate) fn respond(&self, error: &AuthError) -> Response<Bytes> {
        let body = match &self.body {
            Some(build) => build(error),
            None => ErrorBody::message(error),
        };
        let mut response = Response::new(body.bytes);
        *response.status_mut() = error.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, body.content_type);
        self.add_auth_headers(headers, error);
        // Why, for an outer layer or a test, without parsing the body.
        response.extensions_mut().insert(error.clone());
        response
    }

    /// `WWW-Authenticate` (unless a 503) and `Retry-After` (a 503).
    fn add_auth_headers(&self, headers: &mut HeaderMap, error: &AuthError) {
        if let Some(challenge) = self.challenge(error) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if matches!(error, AuthError::StoreUnavailable) {
            headers.insert(RETRY_AFTER, self.retry_after.clone());
        }
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

/// The content type of gRPC, and of its refusals.
const GRPC_CONTENT_TYPE: &str = "application/grpc";
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Whether a request is a gRPC call: its `Content-Type` is `application/grpc` or
/// `application/grpc+<format>` (case-insensitive). gRPC-Web (`application/grpc-web…`) is
/// not: it carries its status in the body.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    match value.as_bytes().split_at_checked(GRPC_CONTENT_TYPE.len()) {
        Some((media, rest)) => {
            media.eq_ignore_ascii_case(GRPC_CONTENT_TYPE.as_bytes())
                && matches!(rest.first(), None | Some(b'+' | b';'))
        }
        None => false,
    }
}

/// `text` percent-encoded as the gRPC spec wants `grpc-message`: every byte of its UTF-8
/// outside space and visible ASCII, and `%` itself, as `%XX`.
fn grpc_message(text: &str) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if matches!(byte, b' '..=b'$' | b'&'..=b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    // Only space and visible ASCII remain, which a header value always accepts.
    HeaderValue::try_from(encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
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
    fn grpc_requests_are_told_by_their_content_type() {
        let with = |content_type: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            is_grpc(&headers)
        };
        for grpc in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc+json",
            "Application/GRPC",
            "application/grpc;charset=utf-8",
        ] {
            assert!(with(grpc), "{grpc}");
        }
        for other in [
            "application/json",
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpcx",
            "application/grp",
            "",
        ] {
            assert!(!with(other), "{other}");
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn grpc_message_is_percent_encoded_as_the_grpc_spec_wants() {
        assert_eq!(
            grpc_message("100% \"sure\" ~ caf\u{e9}\n"),
            "100%25 \"sure\" ~ caf%C3%A9%0A"
        );
    }

    #[test]
    fn a_grpc_refusal_is_trailers_only_with_status_message_and_challenge() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        let responder = Responder::default();
        let response = responder.respond_to(&AuthError::InvalidToken, &headers);
        assert_eq!(response.status(), http::StatusCode::OK);
        assert!(response.body().is_empty());
        assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
        assert_eq!(response.headers()["grpc-status"], "16");
        assert_eq!(
            response.headers()["grpc-message"],
            "The access token is invalid, expired or revoked."
        );
        assert!(response.headers().contains_key(WWW_AUTHENTICATE));

        let response = responder.respond_to(&AuthError::StoreUnavailable, &headers);
        assert_eq!(response.headers()["grpc-status"], "14");
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert!(!response.headers().contains_key(WWW_AUTHENTICATE));

        let mut http_only = Responder::default();
        http_only.set_grpc(false);
        let response = http_only.respond_to(&AuthError::InvalidToken, &headers);
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
        assert!(!response.headers().contains_key("grpc-status"));
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
