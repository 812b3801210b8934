//! [`AuthError`]: why a request was refused.

use http::StatusCode;

use super::MalformedAuthorization;
use crate::telemetry::metrics::LayerOutcome;
use crate::token::{Scopes, TokenKind};

/// The answer to a client when a backend (token store, directory) cannot serve it.
pub(crate) const UNAVAILABLE_MESSAGE: &str =
    "The token service is temporarily unavailable. Please try again later.";

/// Why the layer or an extractor refused a request. Each variant owns its status and its
/// RFC 6750 error code; see [`ErrorBody`](crate::bearer::ErrorBody) to shape the response built
/// from it.
///
/// ```
/// use http::StatusCode;
/// use tower_bearer::AuthError;
///
/// assert_eq!(AuthError::InvalidToken.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(AuthError::InvalidToken.error_code(), Some("invalid_token"));
/// assert_eq!(AuthError::StoreUnavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer credentials where they are required: 401 with a bare challenge.
    #[error("Authorization is required: send an \"Authorization: Bearer <token>\" header.")]
    MissingCredentials,
    /// The `Authorization` header is malformed: 400 `invalid_request`.
    #[error("The Authorization header is malformed: {0}.")]
    InvalidRequest(MalformedAuthorization),
    /// The token is unknown, expired or revoked: 401 `invalid_token`.
    #[error("The access token is invalid, expired or revoked.")]
    InvalidToken,
    /// A valid token of the wrong kind for this resource: 403 `insufficient_scope`.
    #[error("This resource requires {} token.", article(*required))]
    InsufficientScope {
        /// The kind this resource accepts.
        required: TokenKind,
    },
    /// A valid token without a scope this resource requires: 403 `insufficient_scope`, the
    /// challenge naming the scopes required (RFC 6750 §3).
    #[error("This resource requires the scopes {required}.")]
    MissingScope {
        /// Every scope this resource requires.
        required: Scopes,
    },
    /// The token store did not answer in time: 503 with `Retry-After`. Never reported as an
    /// invalid token, never let through.
    #[error("{}", UNAVAILABLE_MESSAGE)]
    StoreUnavailable,
}

/// gRPC status codes (`grpc/status.h`, `google.rpc.Code`).
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAVAILABLE: i32 = 14;
const GRPC_UNAUTHENTICATED: i32 = 16;

fn article(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Customer => "a customer",
        TokenKind::Admin => "an admin",
        TokenKind::Integration => "an integration",
    }
}

impl AuthError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } | Self::MissingScope { .. } => StatusCode::FORBIDDEN,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 §3.1 error code, if the refusal has one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope { .. } | Self::MissingScope { .. } => {
                Some("insufficient_scope")
            }
            Self::MissingCredentials | Self::StoreUnavailable => None,
        }
    }

    /// The gRPC status code of this refusal, as a gRPC request gets it in `grpc-status`:
    /// UNAUTHENTICATED (16) for missing, malformed and invalid credentials,
    /// PERMISSION_DENIED (7) for a token of the wrong kind or without a scope, UNAVAILABLE
    /// (14) when the store cannot answer. The number converts into `tonic::Code`.
    ///
    /// ```
    /// use tower_bearer::AuthError;
    ///
    /// assert_eq!(AuthError::MissingCredentials.grpc_status(), 16);
    /// assert_eq!(AuthError::StoreUnavailable.grpc_status(), 14);
    /// ```
    pub fn grpc_status(&self) -> i32 {
        match self {
            Self::MissingCredentials | Self::InvalidRequest(_) | Self::InvalidToken => {
                GRPC_UNAUTHENTICATED
            }
            Self::InsufficientScope { .. } | Self::MissingScope { .. } => GRPC_PERMISSION_DENIED,
            Self::StoreUnavailable => GRPC_UNAVAILABLE,
        }
    }

    /// What the layer's metrics call this refusal.
    pub(crate) fn outcome(&self) -> LayerOutcome {
        match self {
            Self::MissingCredentials => LayerOutcome::Missing,
            Self::InvalidRequest(_) => LayerOutcome::Malformed,
            Self::InvalidToken => LayerOutcome::Invalid,
            Self::InsufficientScope { .. } => LayerOutcome::WrongKind,
            Self::MissingScope { .. } => LayerOutcome::InsufficientScope,
            Self::StoreUnavailable => LayerOutcome::Unavailable,
        }
    }
}
