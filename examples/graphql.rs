//! Magento's GraphQL token API beside the REST token routes, in one app.
//!
//! ```sh
//! cargo run --example graphql --features graphql
//! ```
//!
//! GraphiQL at `GET /graphql`; subscriptions over WebSocket at `/graphql` too
//! (`graphql-transport-ws`): `subscription { tick(every_ms: 1000) { n subject } }`. Settings are those of the REST example
//! (`examples/common/mod.rs`); admins obtain their tokens over REST, as in Magento.

mod common;

use std::time::Duration;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, MergedObject, Object, Schema, SimpleObject, Subscription};
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

/// The example subscription, served over WebSocket at `/graphql` itself
/// (`graphql-transport-ws`): `tick(every_ms)` counts, naming the caller of the socket.
#[derive(Default)]
struct Subscription;

/// One tick: its number (from 1) and the subject of the socket's token (null for a guest).
#[derive(SimpleObject)]
struct Tick {
    n: u64,
    subject: Option<String>,
}

/// The range of `every_ms`: fast enough to watch, slow enough not to flood.
const TICK_EVERY_MS: std::ops::RangeInclusive<i32> = 10..=60_000;

#[Subscription]
impl Subscription {
    /// A counter, one tick every `every_ms` milliseconds (10 to 60 000), with the caller's
    /// subject: the caller is read as queries read it.
    async fn tick(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "every_ms")] every_ms: i32,
    ) -> async_graphql::Result<impl Stream<Item = Tick> + use<>> {
        if !TICK_EVERY_MS.contains(&every_ms) {
            return Err(graphql::error(
                format!(
                    "\"every_ms\" must be between {} and {}.",
                    TICK_EVERY_MS.start(),
                    TICK_EVERY_MS.end()
                ),
                graphql::category::INPUT,
            ));
        }
        let subject = graphql::caller(ctx).map(|caller| caller.subject.clone());
        let every = Duration::from_millis(u64::from(every_ms.unsigned_abs()));
        Ok(async_graphql::futures_util::stream::unfold(
            (0u64, subject),
            move |(n, subject)| async move {
                tokio::time::sleep(every).await;
                let n = n + 1;
                let tick = Tick {
                    n,
                    subject: subject.clone(),
                };
                Some((tick, (n, subject)))
            },
        ))
    }
}

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
Subscribe over WebSocket (graphql-transport-ws, the `graphql-ws` client), the token in
connection_init's payload; the socket is closed with 4403 when the token is revoked:
  connectionParams: { Authorization: "Bearer $TOKEN" }
  subscription { tick(every_ms: 1000) { n subject } }
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
            Subscription,
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
