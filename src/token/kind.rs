//! [`TokenKind`]: whose a token is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whose a token is, as in Magento: a customer's, an admin's, or an integration's (a machine
/// client of the back office).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TokenKind {
    /// A shop customer (Magento user type 3). Default lifetime 1 hour.
    Customer,
    /// A back-office administrator (Magento user type 2). Default lifetime 4 hours.
    Admin,
    /// A machine client (Magento user type 1, an integration): created by an admin, named,
    /// scoped, and living until revoked unless created with a lifetime.
    Integration,
}

impl TokenKind {
    /// `"customer"`, `"admin"` or `"integration"`, as used in store keys and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
            Self::Integration => "integration",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenKind {
    type Err = UnknownTokenKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "customer" => Ok(Self::Customer),
            "admin" => Ok(Self::Admin),
            "integration" => Ok(Self::Integration),
            _ => Err(UnknownTokenKind),
        }
    }
}

/// The text was not `"customer"`, `"admin"` or `"integration"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token kind (expected \"customer\", \"admin\" or \"integration\")")]
pub struct UnknownTokenKind;
