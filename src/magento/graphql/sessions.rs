//! [`TokenQuery`]: the calling customer's own tokens, as sessions, and the types it answers
//! with. Ending one of them is `revokeCustomerTokenById`, on
//! [`TokenMutation`](super::TokenMutation).

use async_graphql::{Context, Object, SimpleObject};

use super::{caller_of_kind, service, unavailable};
use crate::magento::json::rfc3339;
use crate::{Caller, TokenKind};

/// Magento-style queries on the caller's own tokens: `customerTokens`. Merge it into your
/// schema's query root (with `#[derive(MergedObject)]`); it needs a
/// [`SignIn`](crate::SignIn) in the schema's data, as [`TokenMutation`](super::TokenMutation)
/// does.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenQuery;

/// The answer of `customerTokens`: the calling customer's live tokens.
#[derive(Clone, Debug, SimpleObject)]
pub struct CustomerTokens {
    /// The tokens, newest first.
    pub items: Vec<CustomerTokenInfo>,
}

/// One of the calling customer's live tokens, as a session: where and when it was
/// obtained, when it was last used and when it expires; never its secret. Times are
/// RFC 3339, UTC, to the second (as the REST token listings show them).
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub struct CustomerTokenInfo {
    /// The token's short id, safe to show and to log: what `revokeCustomerTokenById`
    /// takes.
    pub token_id: String,
    /// When the token was issued.
    pub created_at: String,
    /// When the token stops being valid (absolute, fixed at issue); null for a token that
    /// lives until revoked.
    pub expires_at: Option<String>,
    /// When the token expires unless it is used before (with an idle timeout, never later
    /// than `expires_at`); null without an idle timeout.
    pub idle_expires_at: Option<String>,
    /// When a use of the token was last recorded (uses are recorded at most once per
    /// interval, so this may lag); null before the first.
    pub last_used_at: Option<String>,
    /// The `User-Agent` of the client that obtained the token, if it sent one.
    pub user_agent: Option<String>,
    /// The address of the client that obtained the token, if known.
    pub ip: Option<String>,
    /// For a token an admin obtained on the customer's behalf (remote shopping
    /// assistance), that admin.
    pub acting_admin: Option<String>,
    /// Whether this is the token of the request asking.
    pub current: bool,
}

impl CustomerTokenInfo {
    /// What `viewer` sees of `token`: `current` when it is the token of `viewer`'s request.
    fn of(token: &Caller, viewer: &Caller) -> Self {
        Self {
            token_id: token.token_id().as_str().to_owned(),
            created_at: rfc3339(token.issued_at),
            expires_at: token.expires_at.map(rfc3339),
            idle_expires_at: token.idle_expires_at().map(rfc3339),
            last_used_at: token.last_used_at.map(rfc3339),
            user_agent: token.client.user_agent().map(str::to_owned),
            ip: token.client.ip.map(|ip| ip.to_string()),
            acting_admin: token.acting_admin.clone(),
            current: token.token_hash == viewer.token_hash,
        }
    }
}

#[Object]
impl TokenQuery {
    /// The calling customer's live tokens (one per signed-in device or browser), newest
    /// first, with `current` marking the token of this request; never a token's secret.
    /// Needs a customer token. Revoke one with `revokeCustomerTokenById`.
    async fn customer_tokens(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<CustomerTokens>> {
        let customer = caller_of_kind(ctx, TokenKind::Customer)?;
        let tokens = service(ctx)?
            .registry()
            .list(TokenKind::Customer, &customer.subject)
            .await
            .map_err(unavailable)?;
        Ok(Some(CustomerTokens {
            items: tokens
                .iter()
                .map(|token| CustomerTokenInfo::of(token, customer))
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeDelta, TimeZone, Utc};

    use super::*;
    use crate::token::{ClientDetails, TokenHash};

    #[test]
    fn a_token_is_described_in_rfc_3339_with_nulls_for_what_is_unknown() {
        let issued = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).single().unwrap();
        let viewer = Caller::new(
            TokenKind::Customer,
            "ada",
            TokenHash::of("a"),
            issued,
            Some(issued + TimeDelta::hours(1)),
        )
        .with_idle_timeout(Duration::from_secs(600));
        let mut other = Caller::new(TokenKind::Customer, "ada", TokenHash::of("b"), issued, None)
            .with_acting_admin("root");
        other.client = ClientDetails::new(Some("Firefox/140"), "203.0.113.7".parse().ok());

        let current = CustomerTokenInfo::of(&viewer, &viewer);
        assert_eq!(current.token_id, viewer.token_id().as_str());
        assert_eq!(current.created_at, "2025-03-01T12:00:00Z");
        assert_eq!(current.expires_at.as_deref(), Some("2025-03-01T13:00:00Z"));
        assert_eq!(
            current.idle_expires_at.as_deref(),
            Some("2025-03-01T12:10:00Z")
        );
        assert!(current.current);
        assert_eq!(
            (current.last_used_at, current.user_agent, current.ip),
            (None, None, None)
        );

        let described = CustomerTokenInfo::of(&other, &viewer);
        assert!(!described.current);
        assert_eq!(
            (described.expires_at, described.idle_expires_at),
            (None, None)
        );
        assert_eq!(described.user_agent.as_deref(), Some("Firefox/140"));
        assert_eq!(described.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(described.acting_admin.as_deref(), Some("root"));
    }
}
