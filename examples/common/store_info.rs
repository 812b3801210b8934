//! Magento's store-information routes, for admin-side REST clients that check a fresh admin
//! token by reading them right after sign-in and sign in again when one answers 401:
//! `GET /V1/store/websites`, `/V1/store/storeViews` and `/V1/store/storeConfigs`, with
//! Magento's response shapes for a fresh install (one website, store and store view beside
//! the admin ones). Admin tokens only (Magento's ACL resource `Magento_Backend::stores`).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_bearer::bearer::{RequiredScopes, Scoped};
use tower_bearer::{Admin, BearerAuthLayer, TokenRegistry};

/// Magento's ACL resource of the store routes.
pub struct Stores;

impl RequiredScopes for Stores {
    const SCOPES: &'static [&'static str] = &["Magento_Backend::stores"];
}

/// The three routes, behind a required layer over `registry` (mount them under `/rest` and
/// `/rest/<store_code>` too, as the other routes are).
pub fn routes(registry: TokenRegistry) -> Router {
    Router::new()
        .route("/V1/store/websites", get(websites))
        .route("/V1/store/storeViews", get(store_views))
        .route("/V1/store/storeConfigs", get(store_configs))
        .route_layer(BearerAuthLayer::required(registry))
}

async fn websites(_: Admin, _: Scoped<Stores>) -> Json<Value> {
    Json(json!([
        { "id": 0, "code": "admin", "name": "Admin", "default_group_id": 0 },
        { "id": 1, "code": "base", "name": "Main Website", "default_group_id": 1 },
    ]))
}

async fn store_views(_: Admin, _: Scoped<Stores>) -> Json<Value> {
    Json(json!([
        {
            "id": 0, "code": "admin", "name": "Admin",
            "website_id": 0, "store_group_id": 0, "is_active": 1,
        },
        {
            "id": 1, "code": "default", "name": "Default Store View",
            "website_id": 1, "store_group_id": 1, "is_active": 1,
        },
    ]))
}

async fn store_configs(_: Admin, _: Scoped<Stores>) -> Json<Value> {
    let base = "http://localhost/";
    let secure = "https://localhost/";
    Json(json!([{
        "id": 1,
        "code": "default",
        "website_id": 1,
        "locale": "en_US",
        "base_currency_code": "USD",
        "default_display_currency_code": "USD",
        "timezone": "UTC",
        "weight_unit": "lbs",
        "base_url": base,
        "base_link_url": base,
        "base_static_url": format!("{base}static/"),
        "base_media_url": format!("{base}media/"),
        "secure_base_url": secure,
        "secure_base_link_url": secure,
        "secure_base_static_url": format!("{secure}static/"),
        "secure_base_media_url": format!("{secure}media/"),
    }]))
}
