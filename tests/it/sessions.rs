//! A user's tokens as sessions over HTTP: listed with where they came from and which one is
//! current, ended one by one or all but the current one, and an admin's view of a
//! customer's; on the memory store and on Redis.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_bearer::magento::rest;
use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance};
use tower_bearer::token::Scopes;
use tower_bearer::{SignIn, TokenRegistry};

use crate::support::{TestRedis, serve};

struct App {
    base: String,
    client: reqwest::Client,
}

impl App {
    async fn start(registry: TokenRegistry) -> Self {
        let directory = MemoryDirectory::new();
        directory
            .add_customer("ada@example.com", "s3cret", RemoteAssistance::Allowed)
            .unwrap();
        directory
            .add_customer("bob@example.com", "s3cret", RemoteAssistance::Denied)
            .unwrap();
        directory.add_admin("root", "admin123").unwrap();
        directory
            .add_admin_with_scopes(
                "catalog",
                "admin123",
                Scopes::new(["Magento_Catalog::products"]).unwrap(),
            )
            .unwrap();
        let base = serve(rest::router(SignIn::new(registry, directory))).await;
        Self {
            base,
            client: reqwest::Client::new(),
        }
    }

    async fn sign_in(&self, route: &str, username: &str, password: &str, agent: &str) -> String {
        let response = self
            .client
            .post(format!("{}{route}", self.base))
            .header("user-agent", agent)
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn customer(&self, email: &str, agent: &str) -> String {
        self.sign_in("/V1/integration/customer/token", email, "s3cret", agent)
            .await
    }

    async fn admin(&self, username: &str) -> String {
        self.sign_in(
            "/V1/integration/admin/token",
            username,
            "admin123",
            "admin-console",
        )
        .await
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn opens(&self, token: &str) -> bool {
        self.call(reqwest::Method::GET, "/V1/customers/me/tokens", token)
            .await
            .0
            == StatusCode::OK
    }
}

async fn a_customer_sees_and_ends_their_sessions(registry: TokenRegistry) {
    let app = App::start(registry).await;
    let phone = app.customer("ada@example.com", "ShopApp/2 (iOS)").await;
    let laptop = app.customer("ada@example.com", "Firefox/140").await;
    let tablet = app.customer("ada@example.com", "Safari/18").await;
    let bob = app.customer("bob@example.com", "Chrome/130").await;

    let (status, listed) = app
        .call(reqwest::Method::GET, "/V1/customers/me/tokens", &laptop)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 3, "only ada's tokens: {listed:?}");
    assert_eq!(listed[0]["user_agent"], "Safari/18", "newest first");
    let current: Vec<&Value> = listed.iter().filter(|t| t["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "Firefox/140");
    for entry in &listed {
        let text = entry.to_string();
        assert!(
            !text.contains(&phone) && !text.contains(&laptop),
            "no secret: {text}"
        );
        assert_eq!(entry["kind"], "customer");
    }

    // End the phone's session by its id; an id of bob's, or of nothing, is a 404 alike.
    let phone_id = listed
        .iter()
        .find(|t| t["user_agent"] == "ShopApp/2 (iOS)")
        .unwrap()["token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/V1/customers/me/tokens/{phone_id}");
    assert_eq!(
        app.call(reqwest::Method::DELETE, &path, &laptop).await,
        (StatusCode::OK, json!(true))
    );
    assert!(!app.opens(&phone).await);
    let (_, bobs) = app
        .call(reqwest::Method::GET, "/V1/customers/me/tokens", &bob)
        .await;
    let bob_id = bobs[0]["token_id"].as_str().unwrap();
    for id in [bob_id, "000000000000", phone_id.as_str()] {
        let path = format!("/V1/customers/me/tokens/{id}");
        let (status, body) = app.call(reqwest::Method::DELETE, &path, &laptop).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(body["message"], "No live token of yours has this id.");
    }
    assert!(app.opens(&bob).await, "bob's token untouched");

    // Sign out everywhere else.
    let (status, count) = app
        .call(
            reqwest::Method::POST,
            "/V1/customers/me/tokens/revoke-others",
            &laptop,
        )
        .await;
    assert_eq!((status, count), (StatusCode::OK, json!(1)));
    assert!(!app.opens(&tablet).await);
    assert!(
        app.opens(&laptop).await,
        "the caller's own token stays valid"
    );
    assert!(app.opens(&bob).await);
}

#[tokio::test]
async fn a_customer_sees_and_ends_their_sessions_in_memory() {
    a_customer_sees_and_ends_their_sessions(TokenRegistry::memory()).await;
}

#[tokio::test]
async fn a_customer_sees_and_ends_their_sessions_in_redis() {
    let redis = TestRedis::start();
    a_customer_sees_and_ends_their_sessions(redis.registry().await).await;
}

#[tokio::test]
async fn admins_manage_their_own_sessions_and_see_and_end_a_customers() {
    let app = App::start(TokenRegistry::memory()).await;
    let root = app.admin("root").await;
    let other_root = app.admin("root").await;
    let ada = app.customer("ada@example.com", "Firefox/140").await;

    let (status, mine) = app
        .call(reqwest::Method::GET, "/V1/admin/me/tokens", &root)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let (status, count) = app
        .call(
            reqwest::Method::POST,
            "/V1/admin/me/tokens/revoke-others",
            &root,
        )
        .await;
    assert_eq!((status, count), (StatusCode::OK, json!(1)));
    assert_eq!(
        app.call(reqwest::Method::GET, "/V1/admin/me/tokens", &other_root)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let (status, adas) = app
        .call(
            reqwest::Method::GET,
            "/V1/customers/ada@example.com/tokens",
            &root,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(adas[0]["user_agent"], "Firefox/140");
    assert_eq!(adas[0]["current"], false);
    let path = format!(
        "/V1/customers/ada@example.com/tokens/{}",
        adas[0]["token_id"].as_str().unwrap()
    );
    assert_eq!(
        app.call(reqwest::Method::DELETE, &path, &root).await,
        (StatusCode::OK, json!(true))
    );
    assert!(!app.opens(&ada).await);
    assert_eq!(
        app.call(reqwest::Method::DELETE, &path, &root).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(
            reqwest::Method::GET,
            "/V1/customers/nobody@example.com/tokens",
            &root
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_wrong_kind_or_no_token_is_refused_as_elsewhere() {
    let app = App::start(TokenRegistry::memory()).await;
    let ada = app.customer("ada@example.com", "Firefox/140").await;
    let root = app.admin("root").await;
    let catalog = app.admin("catalog").await;
    assert_eq!(
        app.call(reqwest::Method::GET, "/V1/admin/me/tokens", &ada)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(reqwest::Method::GET, "/V1/customers/me/tokens", &root)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    for token in [&ada, &catalog] {
        let path = "/V1/customers/ada@example.com/tokens";
        assert_eq!(
            app.call(reqwest::Method::GET, path, token).await.0,
            StatusCode::FORBIDDEN
        );
    }
    let response = app
        .client
        .get(format!("{}/V1/customers/me/tokens", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
