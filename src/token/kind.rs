//! [`TokenKind`]: whose a token is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The two kinds of token, as in Magento: customers and admins (integrations of the back office).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TokenKind {
    /// A shop customer (Magento user type 3). Default lifetime 1 hour.
    Customer,
    /// A back-office administrator (Magento user type 2). Default lifetime 4 hours.
    Admin,
}

impl TokenKind {
    /// `"customer"` or `"admin"`, as used in store keys and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
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
            _ => Err(UnknownTokenKind),
        }
    }
}

/// The text was neither `"customer"` nor `"admin"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token kind (expected \"customer\" or \"admin\")")]
pub struct UnknownTokenKind;
