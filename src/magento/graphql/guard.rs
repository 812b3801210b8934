//! [`ScopeGuard`]: a field only callers with the right scopes may resolve.

use std::future::Future;

use async_graphql::{Context, Guard};

use super::{NOT_AUTHORIZED_MESSAGE, caller, category, error};

/// An async-graphql guard admitting only callers whose token grants every one of its scopes
/// (or the wildcard [`ALL_SCOPES`](crate::token::ALL_SCOPES)); anyone else, a guest
/// included, gets Magento's `The current customer isn't authorized.`
/// (`graphql-authorization`), as the REST side answers 403 `insufficient_scope`.
///
/// ```
/// use async_graphql::{Object, Schema, EmptyMutation, EmptySubscription};
/// use tower_bearer::magento::graphql::ScopeGuard;
///
/// struct Query;
///
/// #[Object]
/// impl Query {
///     #[graphql(guard = "ScopeGuard::new(&[\"Magento_Catalog::products\"])")]
///     async fn product_count(&self) -> u32 {
///         2048
///     }
/// }
///
/// let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ScopeGuard {
    required: &'static [&'static str],
}

impl ScopeGuard {
    /// A guard requiring every one of `required`.
    pub const fn new(required: &'static [&'static str]) -> Self {
        Self { required }
    }
}

impl Guard for ScopeGuard {
    fn check(&self, ctx: &Context<'_>) -> impl Future<Output = async_graphql::Result<()>> + Send {
        let granted = caller(ctx).is_some_and(|caller| {
            self.required
                .iter()
                .all(|scope| caller.scopes.grants(scope))
        });
        async move {
            if granted {
                Ok(())
            } else {
                Err(error(NOT_AUTHORIZED_MESSAGE, category::AUTHORIZATION))
            }
        }
    }
}
