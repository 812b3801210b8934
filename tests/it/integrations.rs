//! Integration tokens over HTTP: created, listed and deleted by an admin granting
//! `Magento_Integration::integrations`, refused to anyone else, with every bad input a 400
//! that stores nothing; and the registry's `list` on every store.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_bearer::bearer::{RequiredScopes, Scoped};
use tower_bearer::magento::integrations::MANAGE_INTEGRATIONS;
use tower_bearer::magento::rest;
use tower_bearer::registry::IssueRequest;
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};
use tower_bearer::token::{MAX_LIFETIME, Scopes};
use tower_bearer::{BearerAuthLayer, SignIn, TokenKind, TokenRegistry};

use crate::support::{TestRedis, serve, sha256_hex};

const PRODUCTS: &str = "Magento_Catalog::products";
const SALES: &str = "Magento_Sales::sales";
const TOKENS: &str = "/V1/integration/tokens";

struct Products;
impl RequiredScopes for Products {
    const SCOPES: &'static [&'static str] = &[PRODUCTS];
}

/// The token routes and a catalog route requiring `PRODUCTS`, with admins `admin` (every
/// scope), `catalog` (products only) and `integrator` (integrations and products).
struct App {
    base: String,
    registry: TokenRegistry,
    client: reqwest::Client,
}

impl App {
    async fn start(registry: TokenRegistry) -> Self {
        let directory = MemoryDirectory::new();
        directory.add_admin("admin", "admin123").unwrap();
        let scopes = |list: &[&str]| Scopes::new(list).unwrap();
        directory
            .add_admin_with_scopes("catalog", "admin123", scopes(&[PRODUCTS]))
            .unwrap();
        directory
            .add_admin_with_scopes(
                "integrator",
                "admin123",
                scopes(&[MANAGE_INTEGRATIONS, PRODUCTS]),
            )
            .unwrap();
        directory
            .add_customer("ada@example.com", "s3cret", RemoteAssistance::Denied)
            .unwrap();
        let sign_in = SignIn::new(registry.clone(), directory);
        let catalog = Router::new()
            .route("/V1/products", get(|_: Scoped<Products>| async { "[]" }))
            .layer(BearerAuthLayer::required(registry.clone()));
        let base = serve(rest::router(sign_in).merge(catalog)).await;
        Self {
            base,
            registry,
            client: reqwest::Client::new(),
        }
    }

    async fn token(&self, route: &str, username: &str, password: &str) -> String {
        let response = self
            .client
            .post(format!("{}{route}", self.base))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn admin(&self, username: &str) -> String {
        self.token("/V1/integration/admin/token", username, "admin123")
            .await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        bearer: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let request = match bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body, headers)
    }

    async fn create(&self, bearer: &str, body: Value) -> (StatusCode, Value) {
        let request = self
            .client
            .post(format!("{}{TOKENS}", self.base))
            .json(&body);
        let (status, body, _) = self.send(request, Some(bearer)).await;
        (status, body)
    }

    async fn list(&self, bearer: &str) -> (StatusCode, Value) {
        let request = self.client.get(format!("{}{TOKENS}", self.base));
        let (status, body, _) = self.send(request, Some(bearer)).await;
        (status, body)
    }

    async fn delete(&self, bearer: &str, token_id: &str) -> (StatusCode, Value) {
        let request = self
            .client
            .delete(format!("{}{TOKENS}/{token_id}", self.base));
        let (status, body, _) = self.send(request, Some(bearer)).await;
        (status, body)
    }

    async fn products(&self, bearer: &str) -> StatusCode {
        let request = self.client.get(format!("{}/V1/products", self.base));
        self.send(request, Some(bearer)).await.0
    }
}

async fn create_list_and_delete(registry: TokenRegistry) {
    let app = App::start(registry).await;
    let admin = app.admin("admin").await;

    let (status, created) = app
        .create(&admin, json!({ "name": "erp-sync", "scopes": [PRODUCTS] }))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tbi_"), "{token}");
    assert_eq!(created["name"], "erp-sync");
    assert_eq!(created["scopes"], json!([PRODUCTS]));
    assert_eq!(created["expires_at"], Value::Null, "lives until revoked");
    assert_eq!(created["created_by"], "admin");
    assert_eq!(created["token_id"].as_str().unwrap().len(), 12);

    let (status, with_lifetime) = app
        .create(&admin, json!({ "name": "nightly", "lifetime": 86_400 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let expires =
        chrono::DateTime::parse_from_rfc3339(with_lifetime["expires_at"].as_str().unwrap())
            .unwrap();
    let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!((86_000..=86_400).contains(&left.num_seconds()), "{left}");

    // The integration token is a Bearer token like any other, with its scopes.
    assert_eq!(app.products(&token).await, StatusCode::OK);
    let caller = app.registry.resolve(&token).await.unwrap().unwrap();
    assert_eq!(caller.kind, TokenKind::Integration);
    assert_eq!(caller.name.as_deref(), Some("erp-sync"));
    assert_eq!(caller.acting_admin.as_deref(), Some("admin"));

    let (status, listed) = app.list(&admin).await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["name"], "nightly", "newest first");
    assert_eq!(listed[1]["token_id"], created["token_id"]);
    for entry in listed {
        assert!(
            entry.get("token").is_none(),
            "no secret in a listing: {entry}"
        );
        assert!(!entry.to_string().contains(&token));
    }

    let id = created["token_id"].as_str().unwrap();
    assert_eq!(app.delete(&admin, id).await, (StatusCode::OK, json!(true)));
    assert_eq!(app.products(&token).await, StatusCode::UNAUTHORIZED);
    let (status, body) = app.delete(&admin, id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["message"].is_string());
    assert_eq!(
        app.delete(&admin, "000000000000").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.list(&admin).await.1.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_admin_creates_lists_and_deletes_integration_tokens_in_memory() {
    create_list_and_delete(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn an_admin_creates_lists_and_deletes_integration_tokens_in_redis() {
    let redis = TestRedis::start();
    create_list_and_delete(redis.registry().await).await;
}

#[tokio::test]
async fn bad_input_is_a_400_that_stores_nothing() {
    let app = App::start(TokenRegistry::memory()).await;
    let admin = app.admin("admin").await;
    let cases = [
        json!({}),
        json!({ "name": "" }),
        json!({ "name": "   " }),
        json!({ "name": 7 }),
        json!({ "name": "x".repeat(101) }),
        json!({ "name": "a", "scopes": ["has space"] }),
        json!({ "name": "a", "scopes": ["quo\"te"] }),
        json!({ "name": "a", "scopes": "Magento_Catalog::products" }),
        json!({ "name": "a", "scopes": [7] }),
        json!({ "name": "a", "lifetime": 0 }),
        json!({ "name": "a", "lifetime": -5 }),
        json!({ "name": "a", "lifetime": 1.5 }),
        json!({ "name": "a", "lifetime": "86400" }),
        json!({ "name": "a", "lifetime": MAX_LIFETIME.as_secs() + 1 }),
    ];
    for body in cases {
        let (status, answer) = app.create(&admin, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    assert_eq!(app.list(&admin).await.1, json!([]), "nothing stored");
    let list = app
        .registry
        .list(TokenKind::Integration, "integrations")
        .await
        .unwrap();
    assert!(list.is_empty());
}

#[tokio::test]
async fn only_admins_granting_the_integrations_scope_may_manage_and_only_their_own_scopes() {
    let app = App::start(TokenRegistry::memory()).await;
    let customer = app
        .token(
            "/V1/integration/customer/token",
            "ada@example.com",
            "s3cret",
        )
        .await;
    let catalog = app.admin("catalog").await;
    for token in [&customer, &catalog] {
        assert_eq!(app.list(token).await.0, StatusCode::FORBIDDEN);
        assert_eq!(
            app.create(token, json!({ "name": "x" })).await.0,
            StatusCode::FORBIDDEN
        );
    }
    let request = app.client.get(format!("{}{TOKENS}", app.base));
    let (status, _, headers) = app.send(request, Some(&catalog)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"Magento_Integration::integrations\"")
    );
    let request = app.client.get(format!("{}{TOKENS}", app.base));
    assert_eq!(app.send(request, None).await.0, StatusCode::UNAUTHORIZED);

    // An admin grants no scope its own token lacks.
    let integrator = app.admin("integrator").await;
    assert_eq!(
        app.create(&integrator, json!({ "name": "x", "scopes": [SALES] }))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.create(&integrator, json!({ "name": "x", "scopes": [PRODUCTS] }))
            .await
            .0,
        StatusCode::OK
    );
}

// --- the registry's list, on every store -------------------------------------------------

async fn list_shows_the_live_tokens_of_a_subject_newest_first(registry: TokenRegistry) {
    let mut issued = Vec::new();
    for _ in 0..3 {
        issued.push(registry.issue(TokenKind::Customer, "ada").await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    registry.issue(TokenKind::Customer, "bob").await.unwrap();
    let never = IssueRequest::new(TokenKind::Integration, "integrations").with_name("forever");
    let forever = registry.issue_request(never).await.unwrap();
    registry.revoke(issued[1].token.expose()).await.unwrap();

    let listed = registry.list(TokenKind::Customer, "ada").await.unwrap();
    assert_eq!(listed, [issued[2].caller.clone(), issued[0].caller.clone()]);
    let integrations = registry
        .list(TokenKind::Integration, "integrations")
        .await
        .unwrap();
    assert_eq!(integrations, [forever.caller]);
    assert_eq!(integrations[0].expires_at, None);
    assert!(
        registry
            .list(TokenKind::Admin, "ada")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn list_shows_the_live_tokens_of_a_subject_newest_first_in_memory() {
    list_shows_the_live_tokens_of_a_subject_newest_first(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn list_shows_the_live_tokens_of_a_subject_newest_first_in_redis() {
    let redis = TestRedis::start();
    list_shows_the_live_tokens_of_a_subject_newest_first(redis.registry().await).await;
}

#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_the_live_tokens_of_a_subject_newest_first_in_a_redis_cluster() {
    let cluster = crate::support::TestCluster::shared();
    list_shows_the_live_tokens_of_a_subject_newest_first(cluster.registry().await).await;
}

#[tokio::test]
async fn list_skips_and_unlists_index_entries_whose_token_is_gone_in_redis() {
    let redis = TestRedis::start();
    let registry = redis.registry().await;
    let mut inspect = redis.inspector().await;
    let gone = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    let live = registry.issue(TokenKind::Customer, "ada").await.unwrap();
    // The record vanishes behind the index's back (evicted under maxmemory, say).
    let key = redis.token_key(&gone.token.hash());
    let _: () = ::redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut inspect)
        .await
        .unwrap();

    assert_eq!(
        registry.list(TokenKind::Customer, "ada").await.unwrap(),
        [live.caller]
    );
    let index = format!("{}index:customer:{}", redis.prefix, sha256_hex("ada"));
    let listed: u64 = ::redis::cmd("ZCARD")
        .arg(&index)
        .query_async(&mut inspect)
        .await
        .unwrap();
    assert_eq!(listed, 1, "the stale entry was dropped");
}
