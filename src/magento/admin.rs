//! What the admin routes share: the scope of customer management and the admin-only check.

use http::StatusCode;

use super::MANAGE_CUSTOMERS;
use super::json::ApiError;
use crate::bearer::extract::RequiredScopes;
use crate::token::{Caller, TokenKind};

/// Tokens granting [`MANAGE_CUSTOMERS`].
pub(super) struct ManageCustomers;

impl RequiredScopes for ManageCustomers {
    const SCOPES: &'static [&'static str] = &[MANAGE_CUSTOMERS];
}

/// 403 unless `caller` holds an admin token: an integration may be granted an admin's scope,
/// not an admin's powers over other people's tokens.
pub(super) fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.kind == TokenKind::Admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "This resource requires an admin token.",
        ))
    }
}
