#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod caller;
mod directory;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod future;
#[cfg(feature = "graphql")]
#[cfg_attr(docsrs, doc(cfg(feature = "graphql")))]
pub mod graphql;
mod hashing_pool;
pub mod header;
mod layer;
mod lifetimes;
mod lockout;
pub mod password;
mod registry;
mod response;
#[cfg(feature = "axum")]
mod routes;
pub mod store;
mod token;
mod token_service;
mod totp;

pub use body::ResponseBody;
pub use caller::SecondFactor;
pub use caller::{Caller, TokenKind, UnknownTokenKind};
pub use directory::{
    CustomerAccount, Directory, DirectoryError, DirectoryFuture, MemoryDirectory, RemoteAssistance,
};
pub use error::{AuthError, ConfigError, StoreError};
#[cfg(feature = "axum")]
pub use extract::{Admin, Customer};
pub use future::ResponseFuture;
pub use layer::{BearerAuth, BearerAuthLayer};
pub use lifetimes::{Lifetimes, MAX_LIFETIME, MIN_LIFETIME};
pub use lockout::{LockoutPolicy, MAX_LOCK_DURATION, MIN_LOCK_DURATION};
pub use password::PasswordError;
pub use registry::IssueRequest;
pub use registry::{IssuedToken, TokenRegistry};
pub use response::{DEFAULT_REALM, DEFAULT_RETRY_AFTER, ErrorBody};
#[cfg(feature = "axum")]
pub use routes::{MAX_BODY_BYTES, token_routes};
pub use token::{TOKEN_LEN, Token, TokenHash, TokenId};
pub use token_service::{
    INVALID_CREDENTIALS_MESSAGE, MAX_USERNAME_LEN, SignInError, TWO_FACTOR_REQUIRED_MESSAGE,
    TokenService,
};
pub use totp::{TotpError, TotpSecret};
