//! [`TokenMutation`]: Magento's token mutations, and the types they answer with.

use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::Origin;
use super::{
    ASSISTANCE_DENIED_MESSAGE, NOT_AUTHORIZED_MESSAGE, ONE_TOKEN_PER_REQUEST_MESSAGE,
    UNKNOWN_CUSTOMER_MESSAGE, caller_of_kind, category, error, limits, service, unavailable,
};
use crate::TokenKind;
use crate::magento::{LOGIN_AS_CUSTOMER, NO_SUCH_TOKEN_MESSAGE, token_limit_message};
use crate::registry::IssueRequest;
use crate::sign_in::{INVALID_CREDENTIALS_MESSAGE, SignIn, SignInError};
use crate::store::StoreError;
use crate::telemetry::events::Actor;
use crate::token::ClientDetails;

/// Where the request comes from, as the transport recorded it (nothing behind a transport
/// that records nothing).
fn client(ctx: &Context<'_>, service: &SignIn) -> ClientDetails {
    ctx.data_opt::<Origin>()
        .map(|origin| service.client_details(origin.peer, &origin.headers))
        .unwrap_or_default()
}

/// A failed issue: past the subject's limit (when it refuses more), or a backend failure.
fn issue_error(failure: StoreError) -> async_graphql::Error {
    match failure {
        StoreError::LimitReached { limit } => {
            error(token_limit_message(limit), category::AUTHORIZATION)
        }
        other => unavailable(other),
    }
}

/// Refuses the whole request if it selects more than one token-issuing field. Each issuing
/// resolver asks before it does anything, so no sign-in runs for such a request wherever
/// [`TokenMutation`] is merged, behind [`router`] or any other transport.
fn refuse_several_issuing_fields(ctx: &Context<'_>) -> async_graphql::Result<()> {
    // `query_env` is public but hidden in async-graphql's docs; its derive macros use it.
    let env = ctx.query_env;
    if limits::issuing_fields(&env.operation.node.selection_set.node, &env.fragments) > 1 {
        return Err(error(ONE_TOKEN_PER_REQUEST_MESSAGE, category::INPUT));
    }
    Ok(())
}

fn require_value(value: &str, name: &str) -> async_graphql::Result<()> {
    if value.is_empty() {
        return Err(error(
            format!("Specify the \"{name}\" value."),
            category::INPUT,
        ));
    }
    Ok(())
}

/// Magento's token mutations. Needs a [`SignIn`] in the schema's data.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenMutation;

/// The answer of `generateCustomerToken`.
#[derive(Clone, SimpleObject)]
pub struct CustomerToken {
    /// The customer token.
    pub token: Option<String>,
}

impl std::fmt::Debug for CustomerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerToken")
            .field("token", &self.token.as_ref().map(|_| Redacted))
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The input of `generateCustomerTokenAsAdmin`.
#[derive(Clone, Debug, InputObject)]
pub struct GenerateCustomerTokenAsAdminInput {
    /// The email of the customer to act for.
    #[graphql(name = "customer_email")]
    pub customer_email: String,
}

/// The answer of `generateCustomerTokenAsAdmin`.
#[derive(Clone, SimpleObject)]
pub struct GenerateCustomerTokenAsAdminOutput {
    /// A customer token recording the acting admin.
    #[graphql(name = "customer_token")]
    pub customer_token: String,
}

impl std::fmt::Debug for GenerateCustomerTokenAsAdminOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateCustomerTokenAsAdminOutput")
            .field("customer_token", &Redacted)
            .finish()
    }
}

/// The answer of `revokeCustomerToken` and `revokeCustomerTokenById`.
#[derive(Clone, Copy, Debug, SimpleObject)]
pub struct RevokeCustomerTokenOutput {
    /// Always `true` once revoked.
    pub result: bool,
}

#[Object]
impl TokenMutation {
    /// Generate a customer token from an email and password (same lockout as REST).
    async fn generate_customer_token(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<CustomerToken> {
        refuse_several_issuing_fields(ctx)?;
        require_value(&email, "email")?;
        require_value(&password, "password")?;
        let service = service(ctx)?;
        match service
            .sign_in_from(client(ctx, service), TokenKind::Customer, &email, &password)
            .await
        {
            Ok(issued) => Ok(CustomerToken {
                token: Some(issued.token.expose().to_owned()),
            }),
            Err(SignInError::InvalidCredentials | SignInError::TwoFactorRequired) => {
                Err(error(INVALID_CREDENTIALS_MESSAGE, category::AUTHENTICATION))
            }
            Err(SignInError::Store(refused @ StoreError::LimitReached { .. })) => {
                Err(issue_error(refused))
            }
            Err(other) => Err(unavailable(other)),
        }
    }

    /// Generate a token for a customer, as an admin (remote shopping assistance). Needs an
    /// admin token; the customer must allow remote shopping assistance.
    async fn generate_customer_token_as_admin(
        &self,
        ctx: &Context<'_>,
        input: GenerateCustomerTokenAsAdminInput,
    ) -> async_graphql::Result<GenerateCustomerTokenAsAdminOutput> {
        refuse_several_issuing_fields(ctx)?;
        let admin = caller_of_kind(ctx, TokenKind::Admin)?;
        if !admin.has_scope(LOGIN_AS_CUSTOMER) {
            return Err(error(NOT_AUTHORIZED_MESSAGE, category::AUTHORIZATION));
        }
        require_value(&input.customer_email, "customer_email")?;
        let service = service(ctx)?;
        let customer = service
            .directory()
            .customer(&input.customer_email)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| error(UNKNOWN_CUSTOMER_MESSAGE, category::INPUT))?;
        if !customer.allows_remote_assistance {
            return Err(error(ASSISTANCE_DENIED_MESSAGE, category::AUTHORIZATION));
        }
        let request = IssueRequest::new(TokenKind::Customer, customer.subject)
            .with_acting_admin(admin.subject.clone())
            .with_client(client(ctx, service));
        let issued = service
            .registry()
            .issue_request(request)
            .await
            .map_err(issue_error)?;
        Ok(GenerateCustomerTokenAsAdminOutput {
            customer_token: issued.token.expose().to_owned(),
        })
    }

    /// Revoke all of the calling customer's tokens.
    async fn revoke_customer_token(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<RevokeCustomerTokenOutput> {
        let customer = caller_of_kind(ctx, TokenKind::Customer)?;
        service(ctx)?
            .registry()
            .acting_as(Actor::of(customer))
            .revoke_all(TokenKind::Customer, &customer.subject)
            .await
            .map_err(unavailable)?;
        Ok(RevokeCustomerTokenOutput { result: true })
    }

    /// Revoke one of the calling customer's own tokens by its `token_id` (as
    /// `customerTokens` lists it): sign out one device or browser. Needs a customer token;
    /// the token used for this request may be revoked too. An id that is not one of the
    /// caller's live tokens, whether it names somebody else's token or nothing, is an
    /// error (`graphql-input`) and revokes nothing.
    async fn revoke_customer_token_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "token_id", desc = "The id of the token to revoke.")] token_id: String,
    ) -> async_graphql::Result<Option<RevokeCustomerTokenOutput>> {
        let customer = caller_of_kind(ctx, TokenKind::Customer)?;
        let revoked = service(ctx)?
            .registry()
            .acting_as(Actor::of(customer))
            .revoke_by_id(TokenKind::Customer, &customer.subject, &token_id)
            .await
            .map_err(unavailable)?;
        if !revoked {
            return Err(error(NO_SUCH_TOKEN_MESSAGE, category::INPUT));
        }
        Ok(Some(RevokeCustomerTokenOutput { result: true }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_the_token_answers_hides_the_token() {
        let token = "k3v9m2q8x7w1z5t4r6y0u2i8o3p1a5s7";
        let answers = [
            format!(
                "{:?}",
                CustomerToken {
                    token: Some(token.to_owned())
                }
            ),
            format!(
                "{:?}",
                GenerateCustomerTokenAsAdminOutput {
                    customer_token: token.to_owned()
                }
            ),
        ];
        for debug in answers {
            assert!(!debug.contains(token), "{debug}");
            assert!(debug.contains("<redacted>"), "{debug}");
        }
        assert_eq!(
            format!("{:?}", CustomerToken { token: None }),
            "CustomerToken { token: None }"
        );
    }
}
