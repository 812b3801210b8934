#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod caller;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod future;
pub mod header;
mod layer;
mod lifetimes;
mod registry;
mod response;
pub mod store;
mod token;

pub use body::ResponseBody;
pub use caller::{Caller, TokenKind, UnknownTokenKind};
pub use error::{AuthError, ConfigError, StoreError};
#[cfg(feature = "axum")]
pub use extract::{Admin, Customer};
pub use future::ResponseFuture;
pub use layer::{BearerAuth, BearerAuthLayer};
pub use lifetimes::{Lifetimes, MAX_LIFETIME, MIN_LIFETIME};
pub use registry::{IssuedToken, TokenRegistry};
pub use response::{DEFAULT_REALM, DEFAULT_RETRY_AFTER, ErrorBody};
pub use token::{TOKEN_LEN, Token, TokenHash, TokenId};
