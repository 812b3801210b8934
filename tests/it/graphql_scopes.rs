//! `ScopeGuard` on a GraphQL field behind `/graphql`: resolved for a token granting the
//! scope, Magento's authorization error for anyone else, a guest included.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use serde_json::{Value, json};
use tower_bearer::magento::graphql::{self, ScopeGuard};
use tower_bearer::registry::IssueRequest;
use tower_bearer::token::{ALL_SCOPES, Scopes};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::support::serve;

struct Query;

#[Object]
impl Query {
    #[graphql(guard = "ScopeGuard::new(&[\"Magento_Catalog::products\"])")]
    async fn product_count(&self) -> u32 {
        2048
    }
}

async fn ask(base: &str, token: Option<&str>) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ productCount }" }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    response.json().await.unwrap()
}

async fn token(registry: &TokenRegistry, kind: TokenKind, scopes: &[&str]) -> String {
    let request = IssueRequest::new(kind, "someone").with_scopes(Scopes::new(scopes).unwrap());
    let issued = registry.issue_request(request).await.unwrap();
    issued.token.expose().to_owned()
}

#[tokio::test]
async fn a_guarded_field_resolves_only_for_tokens_granting_its_scope() {
    let registry = TokenRegistry::memory();
    let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
    let base = serve(graphql::router(schema, registry.clone())).await;

    for granted in [&["Magento_Catalog::products"][..], &[ALL_SCOPES]] {
        let token = token(&registry, TokenKind::Admin, granted).await;
        assert_eq!(
            ask(&base, Some(&token)).await["data"]["productCount"],
            2048,
            "{granted:?}"
        );
    }
    let sales = token(&registry, TokenKind::Admin, &["Magento_Sales::sales"]).await;
    let customer = token(&registry, TokenKind::Customer, &[]).await;
    for token in [Some(sales.as_str()), Some(customer.as_str()), None] {
        let answer = ask(&base, token).await;
        assert_eq!(
            answer["errors"][0]["message"],
            "The current customer isn't authorized."
        );
        assert_eq!(
            answer["errors"][0]["extensions"]["category"],
            "graphql-authorization"
        );
        assert_eq!(answer["data"], Value::Null);
    }
}

#[tokio::test]
async fn an_admin_without_the_login_as_customer_scope_cannot_obtain_a_customers_token() {
    use async_graphql::EmptySubscription;
    use tower_bearer::SignIn;
    use tower_bearer::magento::graphql::TokenMutation;
    use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};

    let registry = TokenRegistry::memory();
    let directory = MemoryDirectory::new();
    directory
        .add_customer("ada@example.com", "s3cret", RemoteAssistance::Allowed)
        .unwrap();
    let schema = Schema::build(Query, TokenMutation, EmptySubscription)
        .data(SignIn::new(registry.clone(), directory))
        .finish();
    let base = serve(graphql::router(schema, registry.clone())).await;
    let mutation = r#"mutation { generateCustomerTokenAsAdmin(input: {customer_email: "ada@example.com"}) { customer_token } }"#;
    let send = |token: String| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": mutation }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let catalog = token(&registry, TokenKind::Admin, &["Magento_Catalog::products"]).await;
    let answer = send(catalog).await;
    assert_eq!(
        answer["errors"][0]["message"],
        "The current customer isn't authorized."
    );
    let assistant = token(
        &registry,
        TokenKind::Admin,
        &["Magento_LoginAsCustomer::login"],
    )
    .await;
    let answer = send(assistant).await;
    assert!(
        answer["data"]["generateCustomerTokenAsAdmin"]["customer_token"].is_string(),
        "{answer}"
    );
}
