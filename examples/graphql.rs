//! Magento's GraphQL token API beside the REST token routes, in one app.
//!
//! ```sh
//! cargo run --example graphql --features graphql
//! ```
//!
//! GraphiQL at `GET /graphql`. Settings are those of the REST example
//! (`examples/common/mod.rs`); admins obtain their tokens over REST, as in Magento.

mod common;

use async_graphql::{Context, EmptySubscription, MergedObject, Object, Schema, SimpleObject};
use tower_bearer::TokenKind;
use tower_bearer::magento::graphql::{
    self, ScopeGuard, TokenMutation, TokenQuery, with_default_limits,
};

/// The example protected queries: `customer { email }` for a customer token, and
/// `productCount` for a token granting `Magento_Catalog::products` (admins `admin` and
/// `catalog`).
#[derive(Default)]
struct StoreQuery;

#[derive(SimpleObject)]
struct Customer {
    email: String,
}

#[Object]
impl StoreQuery {
    /// The signed-in customer.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Customer> {
        match graphql::caller(ctx) {
            Some(caller) if caller.kind == TokenKind::Customer => Ok(Customer {
                email: caller.subject.clone(),
            }),
            _ => Err(graphql::error(
                graphql::NOT_AUTHORIZED_MESSAGE,
                graphql::category::AUTHORIZATION,
            )),
        }
    }

    /// How many products the catalog holds: only for tokens granting the catalog's scope.
    #[graphql(guard = "ScopeGuard::new(&[common::PRODUCTS])")]
    async fn product_count(&self) -> u32 {
        2
    }
}

/// The query root: the example's queries and the token queries (`customerTokens`).
#[derive(MergedObject, Default)]
struct Query(StoreQuery, TokenQuery);

#[derive(MergedObject, Default)]
struct Mutation(TokenMutation);

const HELP: &str = r#"GraphiQL: {base}/graphql
Get a customer token over GraphQL:
  TOKEN=$(curl -s {base}/graphql -H 'Content-Type: application/json' \
    -d '{"query":"mutation($e:String!,$p:String!){generateCustomerToken(email:$e,password:$p){token}}","variables":{"e":"customer@example.com","p":"password"}}' \
    | sed 's/.*"token":"\([a-z0-9]*\)".*/\1/')
Query as that customer (GET, as PWA Studio sends queries):
  curl -s -G {base}/graphql --data-urlencode 'query={customer{email}}' -H "Authorization: Bearer $TOKEN"
A field guarded by a scope (admin token of catalog / admin123, from the REST route below):
  curl -s {base}/graphql -H 'Content-Type: application/json' -H "Authorization: Bearer $CATALOG" \
    -d '{"query":"{productCount}"}'
That customer's sessions (tokens), newest first, and ending one by its id:
  curl -s {base}/graphql -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
    -d '{"query":"{customerTokens{items{token_id created_at user_agent current}}}"}'
  curl -s {base}/graphql -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
    -d '{"query":"mutation{revokeCustomerTokenById(token_id:\"<token_id>\"){result}}"}'
Revoke all of that customer's tokens:
  curl -s {base}/graphql -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
    -d '{"query":"mutation{revokeCustomerToken{result}}"}'
"#;

#[tokio::main]
async fn main() {
    let result = async {
        let demo = common::setup().await?;
        // Depth, complexity and nesting limits: async-graphql has no depth or complexity
        // limit by default.
        let schema = with_default_limits(Schema::build(
            Query::default(),
            Mutation::default(),
            EmptySubscription,
        ))
        .data(demo.service.clone())
        .finish();
        let app = common::rest_app(&demo).merge(graphql::router(schema, demo.registry.clone()));
        let help = format!("{HELP}\n{}", common::rest_help(&demo));
        common::serve(&demo, app, &help).await
    };
    if let Err(error) = result.await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
