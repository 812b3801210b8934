//! Magento's GraphQL token API over HTTP, against real Redis.

use std::time::Duration;

use async_graphql::{Context, EmptySubscription, MergedObject, Object, Schema, SimpleObject};
use axum::Json;
use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_bearer::graphql::{self, TokenMutation, graphql_router};
use tower_bearer::magento::rest;
use tower_bearer::sign_in::{INVALID_CREDENTIALS_MESSAGE, MemoryDirectory, RemoteAssistance};
use tower_bearer::store::{RedisStore, RedisStoreOptions};
use tower_bearer::{BearerAuthLayer, Customer, SignIn, TokenRegistry};

use crate::support::{RedisServer, TestRedis, serve};

const NOT_AUTHORIZED: &str = "The current customer isn't authorized.";

/// The example protected query: `customer { email }`.
#[derive(Default)]
struct Query;

#[derive(SimpleObject)]
struct CustomerOutput {
    email: String,
}

#[Object]
impl Query {
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<CustomerOutput> {
        match graphql::caller(ctx) {
            Some(caller) if caller.kind == tower_bearer::TokenKind::Customer => {
                Ok(CustomerOutput {
                    email: caller.subject.clone(),
                })
            }
            _ => Err(graphql::error(
                NOT_AUTHORIZED,
                graphql::category::AUTHORIZATION,
            )),
        }
    }
}

#[derive(MergedObject, Default)]
struct Mutation(TokenMutation);

/// One app as in Magento: GraphQL and the REST token and demo routes side by side.
fn app(registry: TokenRegistry) -> Router {
    let directory = MemoryDirectory::new();
    directory
        .add_customer(
            "customer@example.com",
            "password",
            RemoteAssistance::Allowed,
        )
        .unwrap();
    directory
        .add_customer("noassist@example.com", "password", RemoteAssistance::Denied)
        .unwrap();
    directory.add_admin("admin", "admin123").unwrap();
    let service = SignIn::new(registry.clone(), directory);
    let schema = Schema::build(Query, Mutation::default(), EmptySubscription)
        .data(service.clone())
        .finish();
    let rest_me = Router::new()
        .route(
            "/V1/customers/me",
            get(|Customer(caller): Customer| async move { Json(caller) }),
        )
        .route_layer(BearerAuthLayer::required(registry.clone()));
    graphql_router(schema, registry)
        .merge(rest::router(service))
        .merge(rest_me)
}

struct Server {
    base: String,
    http: reqwest::Client,
    _redis: TestRedis,
}

async fn start() -> Server {
    let redis = TestRedis::start();
    let base = serve(app(redis.registry().await)).await;
    Server {
        base,
        http: reqwest::Client::new(),
        _redis: redis,
    }
}

impl Server {
    async fn post(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn get(&self, token: Option<&str>, params: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}/graphql", self.base))
            .query(params);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn customer_token(&self) -> String {
        let (status, body) = self
            .post(
                None,
                GENERATE,
                json!({"email": "customer@example.com", "password": "password"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["generateCustomerToken"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {body}"))
            .to_owned()
    }

    async fn admin_token(&self) -> String {
        let response = self
            .http
            .post(format!("{}/V1/integration/admin/token", self.base))
            .json(&json!({"username": "admin", "password": "admin123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn rest_me(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/V1/customers/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

const GENERATE: &str = "mutation Sign($email: String!, $password: String!) { \
     generateCustomerToken(email: $email, password: $password) { token } }";
const AS_ADMIN: &str = "mutation AsAdmin($email: String!) { \
     generateCustomerTokenAsAdmin(input: {customer_email: $email}) { customer_token } }";
const REVOKE: &str = "mutation { revokeCustomerToken { result } }";
const CUSTOMER: &str = "query Me { customer { email } }";

/// The single error of a GraphQL answer: (message, category).
fn only_error(body: &Value) -> (&str, &str) {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    (
        errors[0]["message"].as_str().unwrap(),
        errors[0]["extensions"]["category"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn generate_customer_token_issues_a_token_that_resolves_the_customer() {
    let server = start().await;
    let token = server.customer_token().await;
    assert_eq!(token.len(), 32);
    let (status, body) = server.post(Some(&token), CUSTOMER, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["customer"]["email"], "customer@example.com",
        "{body}"
    );
    assert_eq!(
        server.rest_me(&token).await.status(),
        StatusCode::OK,
        "works on REST too"
    );
}

#[tokio::test]
async fn wrong_credentials_are_a_graphql_authentication_error_with_http_200() {
    let server = start().await;
    for (email, password) in [
        ("customer@example.com", "wrong"),
        ("nobody@example.com", "password"),
    ] {
        let (status, body) = server
            .post(
                None,
                GENERATE,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "Apollo reads graphQLErrors only on 2xx"
        );
        assert_eq!(
            only_error(&body),
            (INVALID_CREDENTIALS_MESSAGE, "graphql-authentication")
        );
        assert_eq!(body["data"]["generateCustomerToken"], Value::Null);
    }
}

#[tokio::test]
async fn empty_email_or_password_is_a_graphql_input_error() {
    let server = start().await;
    let (_, body) = server
        .post(None, GENERATE, json!({"email": "", "password": "password"}))
        .await;
    assert_eq!(
        only_error(&body),
        ("Specify the \"email\" value.", "graphql-input")
    );
    let (_, body) = server
        .post(
            None,
            GENERATE,
            json!({"email": "customer@example.com", "password": ""}),
        )
        .await;
    assert_eq!(
        only_error(&body),
        ("Specify the \"password\" value.", "graphql-input")
    );
}

#[tokio::test]
async fn graphql_failures_count_toward_the_shared_lockout() {
    let server = start().await;
    for _ in 0..6 {
        server
            .post(
                None,
                GENERATE,
                json!({"email": "customer@example.com", "password": "bad"}),
            )
            .await;
    }
    let (_, body) = server
        .post(
            None,
            GENERATE,
            json!({"email": "customer@example.com", "password": "password"}),
        )
        .await;
    assert_eq!(
        only_error(&body).0,
        INVALID_CREDENTIALS_MESSAGE,
        "locked over GraphQL"
    );
    let rest = server
        .http
        .post(format!("{}/V1/integration/customer/token", server.base))
        .json(&json!({"username": "customer@example.com", "password": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::UNAUTHORIZED, "and over REST");
}

#[tokio::test]
async fn an_admin_token_generates_a_customer_token_that_records_the_admin() {
    let server = start().await;
    let admin = server.admin_token().await;
    let (status, body) = server
        .post(
            Some(&admin),
            AS_ADMIN,
            json!({"email": "customer@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["data"]["generateCustomerTokenAsAdmin"]["customer_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {body}"));

    let me = server.rest_me(token).await;
    assert_eq!(me.status(), StatusCode::OK);
    let caller: Value = me.json().await.unwrap();
    assert_eq!(caller["subject"], "customer@example.com");
    assert_eq!(caller["kind"], "customer");
    assert_eq!(caller["acting_admin"], "admin");
    let lifetime = chrono::DateTime::parse_from_rfc3339(caller["expires_at"].as_str().unwrap())
        .unwrap()
        - chrono::DateTime::parse_from_rfc3339(caller["issued_at"].as_str().unwrap()).unwrap();
    assert_eq!(lifetime, chrono::Duration::hours(1), "a customer lifetime");
}

#[tokio::test]
async fn generate_customer_token_as_admin_refuses_everyone_but_admins() {
    let server = start().await;
    let customer = server.customer_token().await;
    for token in [None, Some(customer.as_str())] {
        let (status, body) = server
            .post(token, AS_ADMIN, json!({"email": "customer@example.com"}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
    }
}

#[tokio::test]
async fn generate_customer_token_as_admin_needs_an_existing_customer_who_allows_it() {
    let server = start().await;
    let admin = server.admin_token().await;
    let (_, body) = server
        .post(
            Some(&admin),
            AS_ADMIN,
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(
        only_error(&body),
        ("Customer email provided does not exist", "graphql-input")
    );
    let (_, body) = server
        .post(
            Some(&admin),
            AS_ADMIN,
            json!({"email": "noassist@example.com"}),
        )
        .await;
    assert_eq!(
        only_error(&body),
        (graphql::ASSISTANCE_DENIED_MESSAGE, "graphql-authorization")
    );
    let (_, body) = server
        .post(Some(&admin), AS_ADMIN, json!({"email": ""}))
        .await;
    assert_eq!(
        only_error(&body),
        ("Specify the \"customer_email\" value.", "graphql-input")
    );
}

#[tokio::test]
async fn revoke_customer_token_kills_rest_access_too() {
    let server = start().await;
    let token = server.customer_token().await;
    let other = server.customer_token().await;
    let (status, body) = server.post(Some(&token), REVOKE, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["revokeCustomerToken"]["result"], true,
        "{body}"
    );
    assert_eq!(
        server.rest_me(&token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.rest_me(&other).await.status(),
        StatusCode::UNAUTHORIZED,
        "all the customer's tokens are revoked"
    );
}

#[tokio::test]
async fn revoke_customer_token_refuses_guests_and_admins() {
    let server = start().await;
    let admin = server.admin_token().await;
    for token in [None, Some(admin.as_str())] {
        let (_, body) = server.post(token, REVOKE, json!({})).await;
        assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
    }
}

#[tokio::test]
async fn the_protected_query_refuses_a_guest_with_graphql_authorization() {
    let server = start().await;
    let (status, body) = server.post(None, CUSTOMER, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
}

#[tokio::test]
async fn queries_work_over_get_with_variables_and_operation_name() {
    let server = start().await;
    let token = server.customer_token().await;
    let response = server
        .get(
            Some(&token),
            &[
                (
                    "query",
                    "query Other { __typename } \
                     query Me($show: Boolean!) { customer @include(if: $show) { email } }",
                ),
                ("operationName", "Me"),
                ("variables", r#"{"show": true}"#),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["customer"]["email"], "customer@example.com",
        "{body}"
    );
}

#[tokio::test]
async fn a_mutation_sent_by_get_is_refused() {
    let server = start().await;
    let response = server
        .get(
            None,
            &[
                ("query", GENERATE),
                (
                    "variables",
                    r#"{"email":"customer@example.com","password":"password"}"#,
                ),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn get_without_a_query_serves_graphiql() {
    let server = start().await;
    let response = server.get(None, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

#[tokio::test]
async fn an_empty_authorization_header_is_a_guest() {
    let server = start().await;
    let response = server
        .http
        .post(format!("{}/graphql", server.base))
        .header("authorization", "")
        .json(&json!({ "query": CUSTOMER }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
}

#[tokio::test]
async fn an_invalid_token_is_a_401_with_a_challenge_and_a_graphql_body() {
    let server = start().await;
    let token = server.customer_token().await;
    server.post(Some(&token), REVOKE, json!({})).await;
    for bad in [token.as_str(), "0123456789abcdefghijklmnopqrstuv"] {
        let response = server
            .http
            .post(format!("{}/graphql", server.base))
            .bearer_auth(bad)
            .json(&json!({ "query": CUSTOMER }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(only_error(&body).1, "graphql-authentication");
    }
}

#[tokio::test]
async fn a_store_outage_is_a_503_in_graphql_shape() {
    let mut redis = RedisServer::start();
    let store = RedisStore::connect_with(
        &redis.url(),
        RedisStoreOptions::default().with_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let registry = TokenRegistry::new(store);
    let issued = registry
        .issue(tower_bearer::TokenKind::Customer, "customer@example.com")
        .await
        .unwrap();
    let base = serve(app(registry)).await;
    redis.stop();

    let response = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(issued.token.expose())
        .json(&json!({ "query": CUSTOMER }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn introspection_shows_magentos_names() {
    let server = start().await;
    let (_, body) = server
        .post(
            None,
            r#"{
                mutation: __schema { mutationType { fields { name } } }
                input: __type(name: "GenerateCustomerTokenAsAdminInput") { inputFields { name } }
                output: __type(name: "GenerateCustomerTokenAsAdminOutput") { fields { name } }
                token: __type(name: "CustomerToken") { fields { name } }
                revoke: __type(name: "RevokeCustomerTokenOutput") { fields { name } }
            }"#,
            json!({}),
        )
        .await;
    let names = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {body}"))
            .iter()
            .map(|field| field["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let mutations = names(&body["data"]["mutation"]["mutationType"]["fields"]);
    for name in [
        "generateCustomerToken",
        "generateCustomerTokenAsAdmin",
        "revokeCustomerToken",
    ] {
        assert!(
            mutations.contains(&name.to_owned()),
            "{name} missing from {mutations:?}"
        );
    }
    assert_eq!(
        names(&body["data"]["input"]["inputFields"]),
        ["customer_email"]
    );
    assert_eq!(names(&body["data"]["output"]["fields"]), ["customer_token"]);
    assert_eq!(names(&body["data"]["token"]["fields"]), ["token"]);
    assert_eq!(names(&body["data"]["revoke"]["fields"]), ["result"]);
}
