//! The vocabulary every other part speaks: the bearer secret ([`Token`]) and its hash,
//! who a token stands for ([`Caller`], [`TokenKind`],
//! [`SecondFactor`]), how long tokens live ([`Lifetimes`]) and the [`ConfigError`] of a
//! refused setting. It imports nothing else of this crate.

pub(crate) mod caller;
mod client;
mod config_error;
mod format;
mod hash_state;
pub(crate) mod kind;
mod lifetimes;
mod scope;
mod secret;

pub(crate) use self::hash_state::TokenHashState;
pub(crate) use self::secret::random_fill;
#[cfg(any(feature = "redis", feature = "sign-in"))]
pub(crate) use self::secret::sha256_hex;
pub(crate) use self::{caller::Caller, kind::TokenKind};
#[doc(inline)]
pub use self::{
    caller::SecondFactor,
    client::{ClientDetails, MAX_USER_AGENT_LEN},
    config_error::ConfigError,
    format::{INTEGRATION_PREFIX, MAX_PREFIX_LEN, Prefix, TokenFormat},
    kind::UnknownTokenKind,
    lifetimes::{Lifetimes, MAX_LIFETIME, MIN_LIFETIME},
    scope::{ALL_SCOPES, InvalidScope, MAX_SCOPE_LEN, MAX_SCOPES, Scopes},
    secret::{RandomError, TOKEN_LEN, Token, TokenHash, TokenId},
};
