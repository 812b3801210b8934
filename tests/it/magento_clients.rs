//! What an admin-side Magento REST client does, unchanged, against the example server's
//! routes: sign in, check the fresh token on a store route, use it, and sign in again when
//! a call answers 401 (here: once the token has expired). Over HTTP on a loopback port.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_bearer::magento::rest;
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};
use tower_bearer::token::{Lifetimes, Scopes};
use tower_bearer::{SignIn, TokenRegistry};

use crate::support::serve;

/// The example server's store routes (`examples/common/store_info.rs`), as they are.
#[path = "../../examples/common/store_info.rs"]
mod store_info;

const ADMIN: &str = "admin";
const CATALOG_ADMIN: &str = "catalog";
const CUSTOMER: &str = "customer@example.com";
const PASSWORD: &str = "admin123";

static ACCOUNTS: LazyLock<Arc<MemoryDirectory>> = LazyLock::new(|| {
    let directory = MemoryDirectory::new();
    directory
        .add_admin(ADMIN, PASSWORD)
        .expect("hash a password");
    let catalog = Scopes::new(["Magento_Catalog::products"]).expect("a scope");
    directory
        .add_admin_with_scopes(CATALOG_ADMIN, PASSWORD, catalog)
        .expect("hash a password");
    directory
        .add_customer(CUSTOMER, PASSWORD, RemoteAssistance::Denied)
        .expect("hash a password");
    Arc::new(directory)
});

/// The routes as the example server mounts them: bare, under `/rest` and a store code.
async fn example_server(admin_lifetime: Duration) -> String {
    let lifetimes = Lifetimes::new(Duration::from_secs(3600), admin_lifetime).expect("valid");
    let registry = TokenRegistry::memory().with_lifetimes(lifetimes);
    let api = rest::router(SignIn::from_shared(registry.clone(), ACCOUNTS.clone()))
        .merge(store_info::routes(registry));
    serve(
        Router::new()
            .merge(api.clone())
            .nest("/rest", api.clone())
            .nest("/rest/{store_code}", api),
    )
    .await
}

/// A Magento REST client: one admin token, renewed when a call answers 401.
struct MagentoClient {
    http: reqwest::Client,
    base: String,
    username: &'static str,
    token: Option<String>,
    sign_ins: usize,
}

impl MagentoClient {
    fn new(base: &str, username: &'static str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("{base}/rest/default"),
            username,
            token: None,
            sign_ins: 0,
        }
    }

    async fn sign_in(&mut self) -> StatusCode {
        let response = self
            .http
            .post(format!("{}/V1/integration/admin/token", self.base))
            .json(&json!({ "username": self.username, "password": PASSWORD }))
            .send()
            .await
            .expect("request");
        let status = response.status();
        if status == StatusCode::OK {
            self.token = Some(response.json().await.expect("a token string"));
            self.sign_ins += 1;
        }
        status
    }

    async fn get_once(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token.as_deref().unwrap_or_default())
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A call as such clients make it: on 401, sign in once more and repeat it.
    async fn get(&mut self, path: &str) -> (StatusCode, Value) {
        let answer = self.get_once(path).await;
        if answer.0 != StatusCode::UNAUTHORIZED {
            return answer;
        }
        assert_eq!(self.sign_in().await, StatusCode::OK, "signed in again");
        self.get_once(path).await
    }
}

#[tokio::test]
async fn a_client_validates_its_fresh_token_on_a_store_route_and_renews_it_on_401() {
    let base = example_server(Duration::from_secs(2)).await;
    let mut client = MagentoClient::new(&base, ADMIN);
    assert_eq!(client.sign_in().await, StatusCode::OK);

    // The check right after sign-in, on each of the three routes clients use for it.
    let (status, websites) = client.get("/V1/store/websites").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(websites[1]["code"], "base");
    assert_eq!(websites[1]["default_group_id"], 1);
    let (status, views) = client.get("/V1/store/storeViews").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(views[1]["code"], "default");
    assert_eq!(views[1]["website_id"], 1);
    let (status, configs) = client.get("/V1/store/storeConfigs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(configs[0]["code"], "default");
    assert_eq!(configs[0]["base_currency_code"], "USD");
    assert_eq!(client.sign_ins, 1, "the fresh token passed the checks");

    // The token expires; the next call answers 401, the client signs in again, and the
    // repeated call passes.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        client.get_once("/V1/store/websites").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = client.get("/V1/store/storeViews").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(client.sign_ins, 2);
}

#[tokio::test]
async fn store_routes_refuse_customers_guests_and_admins_without_the_stores_resource() {
    let base = example_server(Duration::from_secs(3600)).await;
    let http = reqwest::Client::new();
    let customer: String = http
        .post(format!("{base}/V1/integration/customer/token"))
        .json(&json!({ "username": CUSTOMER, "password": PASSWORD }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a token");
    let mut catalog_admin = MagentoClient::new(&base, CATALOG_ADMIN);
    assert_eq!(catalog_admin.sign_in().await, StatusCode::OK);

    for path in [
        "/V1/store/websites",
        "/V1/store/storeViews",
        "/V1/store/storeConfigs",
    ] {
        let url = format!("{base}{path}");
        let guest = http.get(&url).send().await.expect("request");
        assert_eq!(guest.status(), StatusCode::UNAUTHORIZED, "{path}");
        let as_customer = http.get(&url).bearer_auth(&customer).send().await;
        assert_eq!(
            as_customer.expect("request").status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(catalog_admin.get_once(path).await.0, StatusCode::FORBIDDEN);
    }
}
