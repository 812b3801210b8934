//! A customer's own tokens as sessions over GraphQL: `customerTokens` lists them with where
//! they came from and which one is asking, `revokeCustomerTokenById` ends one; only for
//! customer tokens. On the memory store and on Redis.

use async_graphql::{EmptySubscription, MergedObject, Schema};
use axum::Router;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_bearer::magento::graphql::{self, TokenMutation, TokenQuery, with_default_limits};
use tower_bearer::magento::rest;
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};
use tower_bearer::{SignIn, TokenRegistry};

use crate::support::{TestRedis, serve};

const NOT_AUTHORIZED: &str = "The current customer isn't authorized.";
const NO_SUCH_TOKEN: &str = "No live token of yours has this id.";

const LIST: &str = "{ customerTokens { items { token_id created_at expires_at \
     idle_expires_at last_used_at user_agent ip acting_admin current } } }";
const REVOKE_BY_ID: &str = "mutation End($id: String!) { \
     revokeCustomerTokenById(token_id: $id) { result } }";
/// A protected query the test schema answers for any customer token: whether a token
/// still works.
const PROBE: &str = "{ customerTokens { items { current } } }";

#[derive(MergedObject, Default)]
struct Query(TokenQuery);

#[derive(MergedObject, Default)]
struct Mutation(TokenMutation);

/// `/graphql` with the token query and mutations, as a shop builds it, and the REST token
/// routes (admins sign in over REST, as in Magento).
fn app(registry: TokenRegistry) -> Router {
    let directory = MemoryDirectory::new();
    directory
        .add_customer("ada@example.com", "s3cret", RemoteAssistance::Allowed)
        .unwrap();
    directory
        .add_customer("bob@example.com", "s3cret", RemoteAssistance::Denied)
        .unwrap();
    directory.add_admin("root", "admin123").unwrap();
    let service = SignIn::new(registry.clone(), directory);
    let schema = with_default_limits(Schema::build(
        Query::default(),
        Mutation::default(),
        EmptySubscription,
    ))
    .data(service.clone())
    .finish();
    graphql::router(schema, registry).merge(rest::router(service))
}

struct Shop {
    base: String,
    http: reqwest::Client,
}

impl Shop {
    async fn start(registry: TokenRegistry) -> Self {
        Self {
            base: serve(app(registry)).await,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A customer token obtained over GraphQL by a client sending `agent`.
    async fn customer(&self, email: &str, agent: &str) -> String {
        let mutation = "mutation Sign($email: String!, $password: String!) { \
             generateCustomerToken(email: $email, password: $password) { token } }";
        let response = self
            .http
            .post(format!("{}/graphql", self.base))
            .header("user-agent", agent)
            .json(&json!({
                "query": mutation,
                "variables": { "email": email, "password": "s3cret" },
            }))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["data"]["generateCustomerToken"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {body}"))
            .to_owned()
    }

    async fn admin(&self) -> String {
        let response = self
            .http
            .post(format!("{}/V1/integration/admin/token", self.base))
            .json(&json!({ "username": "root", "password": "admin123" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The `customerTokens` items `token` is shown.
    async fn sessions(&self, token: &str) -> Vec<Value> {
        let body = self.post(Some(token), LIST, json!({})).await;
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["customerTokens"]["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items in {body}"))
            .clone()
    }

    async fn revoke_by_id(&self, token: &str, id: &str) -> Value {
        self.post(Some(token), REVOKE_BY_ID, json!({ "id": id }))
            .await
    }

    /// Whether `token` still opens the API: over GraphQL, and over REST (where a revoked
    /// token is a 401).
    async fn opens(&self, token: &str) -> bool {
        let response = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(&json!({ "query": PROBE }))
            .send()
            .await
            .unwrap();
        let graphql = response.status() == StatusCode::OK && {
            let body: Value = response.json().await.unwrap();
            body["data"]["customerTokens"]["items"].is_array()
        };
        let rest = self
            .http
            .get(format!("{}/V1/customers/me/tokens", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK;
        assert_eq!(graphql, rest, "GraphQL and REST agree on {token:.4}…");
        graphql
    }
}

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

fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| chrono::DateTime::parse_from_rfc3339(text).is_ok())
}

fn id_of<'a>(items: &'a [Value], agent: &str) -> &'a str {
    items
        .iter()
        .find(|item| item["user_agent"] == agent)
        .unwrap_or_else(|| panic!("no token from {agent} in {items:?}"))["token_id"]
        .as_str()
        .unwrap()
}

async fn customer_tokens_lists_the_callers_tokens_newest_first(registry: TokenRegistry) {
    let shop = Shop::start(registry).await;
    let phone = shop.customer("ada@example.com", "ShopApp/2 (iOS)").await;
    // A second apart at least, so that the order by issue is unambiguous to the second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let laptop = shop.customer("ada@example.com", "Firefox/140").await;
    let bob = shop.customer("bob@example.com", "Chrome/130").await;

    let items = shop.sessions(&phone).await;
    assert_eq!(items.len(), 2, "only ada's tokens: {items:?}");
    assert_eq!(items[0]["user_agent"], "Firefox/140", "newest first");
    assert_eq!(items[1]["user_agent"], "ShopApp/2 (iOS)");
    assert_eq!(
        (&items[0]["current"], &items[1]["current"]),
        (&json!(false), &json!(true)),
        "the phone is asking"
    );
    assert!(
        items[0]["created_at"].as_str() > items[1]["created_at"].as_str(),
        "{items:?}"
    );
    for item in &items {
        let text = item.to_string();
        for secret in [&phone, &laptop, &bob] {
            assert!(!text.contains(secret.as_str()), "no secret: {text}");
        }
        assert_eq!(item["token_id"].as_str().map(str::len), Some(12), "{item}");
        assert!(is_rfc3339(&item["created_at"]), "{item}");
        assert!(
            is_rfc3339(&item["expires_at"]),
            "customer tokens expire: {item}"
        );
        assert_eq!(item["acting_admin"], Value::Null);
    }

    // Asked with the other token, the other one is current.
    let items = shop.sessions(&laptop).await;
    let current: Vec<&Value> = items.iter().filter(|t| t["current"] == true).collect();
    assert_eq!(current.len(), 1, "{items:?}");
    assert_eq!(current[0]["user_agent"], "Firefox/140");

    let bobs = shop.sessions(&bob).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["user_agent"], "Chrome/130");
}

#[tokio::test]
async fn graphql_sessions_list_the_callers_tokens_newest_first_in_memory() {
    customer_tokens_lists_the_callers_tokens_newest_first(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn graphql_sessions_list_the_callers_tokens_newest_first_in_redis() {
    let redis = TestRedis::start();
    customer_tokens_lists_the_callers_tokens_newest_first(redis.registry().await).await;
}

async fn revoke_customer_token_by_id_ends_only_that_token(registry: TokenRegistry) {
    let shop = Shop::start(registry).await;
    let phone = shop.customer("ada@example.com", "ShopApp/2 (iOS)").await;
    let laptop = shop.customer("ada@example.com", "Firefox/140").await;
    let items = shop.sessions(&laptop).await;
    let phone_id = id_of(&items, "ShopApp/2 (iOS)").to_owned();

    let body = shop.revoke_by_id(&laptop, &phone_id).await;
    assert_eq!(
        body,
        json!({ "data": { "revokeCustomerTokenById": { "result": true } } })
    );
    assert!(!shop.opens(&phone).await, "the phone's token is revoked");
    assert!(
        shop.opens(&laptop).await,
        "the caller's own token still works"
    );
    let items = shop.sessions(&laptop).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["user_agent"], "Firefox/140");

    // Once revoked, its id is no live token of the caller's any more.
    let body = shop.revoke_by_id(&laptop, &phone_id).await;
    assert_eq!(only_error(&body), (NO_SUCH_TOKEN, "graphql-input"));
    assert_eq!(body["data"]["revokeCustomerTokenById"], Value::Null);
}

#[tokio::test]
async fn graphql_sessions_revoke_by_id_ends_only_that_token_in_memory() {
    revoke_customer_token_by_id_ends_only_that_token(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn graphql_sessions_revoke_by_id_ends_only_that_token_in_redis() {
    let redis = TestRedis::start();
    revoke_customer_token_by_id_ends_only_that_token(redis.registry().await).await;
}

async fn an_id_not_of_the_callers_tokens_is_not_found_and_revokes_nothing(registry: TokenRegistry) {
    let shop = Shop::start(registry).await;
    let ada = shop.customer("ada@example.com", "Firefox/140").await;
    let bob = shop.customer("bob@example.com", "Chrome/130").await;
    let bob_id = shop.sessions(&bob).await[0]["token_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bob's id, and an id of nothing, are answered alike.
    for id in [bob_id.as_str(), "000000000000", ""] {
        let body = shop.revoke_by_id(&ada, id).await;
        assert_eq!(
            only_error(&body),
            (NO_SUCH_TOKEN, "graphql-input"),
            "{id:?}"
        );
    }
    assert!(shop.opens(&bob).await, "bob's token untouched");
    assert!(shop.opens(&ada).await);
    assert_eq!(shop.sessions(&bob).await.len(), 1);
    assert_eq!(shop.sessions(&ada).await.len(), 1);
}

#[tokio::test]
async fn graphql_sessions_an_id_of_another_customers_token_revokes_nothing_in_memory() {
    an_id_not_of_the_callers_tokens_is_not_found_and_revokes_nothing(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn graphql_sessions_an_id_of_another_customers_token_revokes_nothing_in_redis() {
    let redis = TestRedis::start();
    an_id_not_of_the_callers_tokens_is_not_found_and_revokes_nothing(redis.registry().await).await;
}

async fn guests_and_admins_are_not_authorized(registry: TokenRegistry) {
    let shop = Shop::start(registry).await;
    let ada = shop.customer("ada@example.com", "Firefox/140").await;
    let ada_id = shop.sessions(&ada).await[0]["token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = shop.admin().await;
    for token in [None, Some(admin.as_str())] {
        let body = shop.post(token, LIST, json!({})).await;
        assert_eq!(
            only_error(&body),
            (NOT_AUTHORIZED, "graphql-authorization"),
            "customerTokens"
        );
        assert_eq!(body["data"]["customerTokens"], Value::Null, "{body}");
        let body = shop
            .post(token, REVOKE_BY_ID, json!({ "id": ada_id }))
            .await;
        assert_eq!(
            only_error(&body),
            (NOT_AUTHORIZED, "graphql-authorization"),
            "revokeCustomerTokenById"
        );
    }
    assert!(shop.opens(&ada).await, "nothing was revoked");
}

#[tokio::test]
async fn graphql_sessions_refuse_guests_and_admins_in_memory() {
    guests_and_admins_are_not_authorized(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn graphql_sessions_refuse_guests_and_admins_in_redis() {
    let redis = TestRedis::start();
    guests_and_admins_are_not_authorized(redis.registry().await).await;
}

#[tokio::test]
async fn graphql_sessions_are_not_token_issuing_fields() {
    let shop = Shop::start(TokenRegistry::memory()).await;
    let ada = shop.customer("ada@example.com", "Firefox/140").await;
    // Aliased twice, beside a sign-in: not refused as more than one token per request.
    let query = "mutation { a: revokeCustomerTokenById(token_id: \"000000000000\") { result } \
         b: revokeCustomerTokenById(token_id: \"000000000001\") { result } \
         generateCustomerToken(email: \"ada@example.com\", password: \"s3cret\") { token } }";
    let body = shop.post(Some(&ada), query, json!({})).await;
    assert!(
        body["data"]["generateCustomerToken"]["token"].is_string(),
        "{body}"
    );
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{body}");
    assert!(errors.iter().all(|error| error["message"] == NO_SUCH_TOKEN));

    let query =
        "{ a: customerTokens { items { token_id } } b: customerTokens { items { current } } }";
    let body = shop.post(Some(&ada), query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["a"]["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["data"]["b"]["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn graphql_sessions_introspection_shows_the_fields_in_snake_case() {
    let shop = Shop::start(TokenRegistry::memory()).await;
    let body = shop
        .post(
            None,
            r#"{
                query: __schema { queryType { fields { name } } }
                info: __type(name: "CustomerTokenInfo") { fields { name } }
                mutation: __type(name: "Mutation") {
                    fields { name args { name type { kind ofType { name } } } }
                }
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
    assert_eq!(
        names(&body["data"]["query"]["queryType"]["fields"]),
        ["customerTokens"]
    );
    assert_eq!(
        names(&body["data"]["info"]["fields"]),
        [
            "token_id",
            "created_at",
            "expires_at",
            "idle_expires_at",
            "last_used_at",
            "user_agent",
            "ip",
            "acting_admin",
            "current"
        ]
    );
    let mutations = body["data"]["mutation"]["fields"].as_array().unwrap();
    let by_id = mutations
        .iter()
        .find(|field| field["name"] == "revokeCustomerTokenById")
        .unwrap_or_else(|| panic!("no revokeCustomerTokenById in {body}"));
    assert_eq!(
        by_id["args"],
        json!([{ "name": "token_id", "type": { "kind": "NON_NULL", "ofType": { "name": "String" } } }])
    );
}
