//! What the tests check the stores against, computed here independently of the crate: how
//! tokens, subjects and usernames enter keys, and lifetimes short enough to wait out.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tower_bearer::TokenKind;
use tower_bearer::token::Lifetimes;

/// The SHA-256 hex of `text`: how tokens, subjects and usernames enter Redis keys.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The store key of `username`'s lockout counter, with the default `lockout_name`
/// (lower-cased): `<kind>:<sha256 hex>`.
pub fn lockout_key(kind: TokenKind, username: &str) -> String {
    format!("{kind}:{}", sha256_hex(&username.to_lowercase()))
}

/// Short lifetimes for expiry tests: customer 1 s, admin 2 s.
pub fn short_lifetimes() -> Lifetimes {
    Lifetimes::new(Duration::from_secs(1), Duration::from_secs(2)).expect("valid lifetimes")
}
