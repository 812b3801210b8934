//! The extractors on their own: `Customer` and `Admin` refuse the other kind, `Caller`
//! refuses a guest the optional layer let through, `Option<Caller>` gives `None` for one,
//! and without the layer every extractor fails closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::routing::any;
use axum::{Json, Router};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_bearer::{Admin, BearerAuthLayer, Caller, Customer, TokenKind, TokenRegistry};

use super::{
    ADMIN_SCOPE_CHALLENGE, BARE_CHALLENGE, CUSTOMER_SCOPE_CHALLENGE, bearer, header, header_text,
    issue,
};

async fn call_router(app: Router, authorization: Option<&str>) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::new(Body::empty());
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert(AUTHORIZATION, header(value.as_bytes()));
    }
    let response = app
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the response body can be read")
        .to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn assert_extractor_refusal(
    (status, headers, json): &(StatusCode, HeaderMap, Value),
    expected_status: StatusCode,
    challenge: &str,
    case: &str,
) {
    assert_eq!(*status, expected_status, "{case}: status");
    assert_eq!(
        header_text(headers, WWW_AUTHENTICATE).as_deref(),
        Some(challenge),
        "{case}: WWW-Authenticate"
    );
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "{case}: body {json}"
    );
}

#[tokio::test]
async fn the_customer_extractor_refuses_an_admin_token_with_insufficient_scope() {
    let registry = TokenRegistry::memory();
    let (admin_token, _) = issue(&registry, TokenKind::Admin, "root").await;
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/",
            any(move |Customer(caller): Customer| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { caller.subject }
            }),
        )
        .layer(BearerAuthLayer::required(registry.clone()));

    let refused = call_router(app.clone(), Some(&format!("Bearer {admin_token}"))).await;
    assert_extractor_refusal(
        &refused,
        StatusCode::FORBIDDEN,
        CUSTOMER_SCOPE_CHALLENGE,
        "admin token",
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");

    let (status, _, _) = call_router(app, Some(&format!("Bearer {customer_token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_admin_extractor_refuses_a_customer_token_with_insufficient_scope() {
    let registry = TokenRegistry::memory();
    let (admin_token, _) = issue(&registry, TokenKind::Admin, "root").await;
    let (customer_token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/",
            any(move |Admin(caller): Admin| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { caller.subject }
            }),
        )
        .layer(BearerAuthLayer::optional(registry.clone()));

    let refused = call_router(app.clone(), Some(&format!("Bearer {customer_token}"))).await;
    assert_extractor_refusal(
        &refused,
        StatusCode::FORBIDDEN,
        ADMIN_SCOPE_CHALLENGE,
        "customer token",
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");

    let guest = call_router(app.clone(), None).await;
    assert_extractor_refusal(&guest, StatusCode::UNAUTHORIZED, BARE_CHALLENGE, "guest");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");

    let (status, _, _) = call_router(app, Some(&format!("Bearer {admin_token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_caller_extractor_refuses_a_guest_let_through_by_the_optional_layer() {
    let registry = TokenRegistry::memory();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/",
            any(move |caller: Caller| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { caller.subject }
            }),
        )
        .layer(BearerAuthLayer::optional(registry));
    for (name, authorization) in [("no header", None), ("empty header", Some(""))] {
        let refused = call_router(app.clone(), authorization).await;
        assert_extractor_refusal(&refused, StatusCode::UNAUTHORIZED, BARE_CHALLENGE, name);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");
}

#[tokio::test]
async fn the_optional_caller_extractor_gives_none_for_a_guest() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let app = Router::new()
        .route(
            "/",
            any(|caller: Option<Caller>| async move {
                Json(json!({ "subject": caller.map(|caller| caller.subject) }))
            }),
        )
        .layer(BearerAuthLayer::optional(registry));
    for authorization in [None, Some(""), Some("Basic dXNlcjpwYXNz")] {
        let (status, _, json) = call_router(app.clone(), authorization).await;
        assert_eq!(status, StatusCode::OK, "{authorization:?}");
        assert_eq!(json, json!({ "subject": null }), "{authorization:?}");
    }
    let (status, _, json) = call_router(app, Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({ "subject": "ada@example.com" }));
}

#[tokio::test]
async fn extractors_without_the_layer_fail_closed() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let app = Router::new()
        .route(
            "/caller",
            any(|caller: Caller| async move { caller.subject }),
        )
        .route(
            "/customer",
            any(|Customer(caller): Customer| async move { caller.subject }),
        )
        .route(
            "/admin",
            any(|Admin(caller): Admin| async move { caller.subject }),
        )
        .route(
            "/optional",
            any(|caller: Option<Caller>| async move { format!("{}", caller.is_some()) }),
        );
    for path in ["/caller", "/customer", "/admin"] {
        let mut request = Request::get(path).body(Body::empty()).expect("request");
        request.headers_mut().insert(AUTHORIZATION, bearer(&token));
        let response = app
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            header_text(response.headers(), WWW_AUTHENTICATE).as_deref(),
            Some(BARE_CHALLENGE),
            "{path}"
        );
    }
    let mut request = Request::get("/optional")
        .body(Body::empty())
        .expect("request");
    request.headers_mut().insert(AUTHORIZATION, bearer(&token));
    let response = app
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"false", "no layer, no caller");
}

#[tokio::test]
async fn extractors_refuse_with_the_realm_body_and_reason_of_the_layer_in_front() {
    let registry = TokenRegistry::memory();
    let layer = BearerAuthLayer::optional(registry.clone())
        .with_realm("shop")
        .with_error_body(|refusal| {
            tower_bearer::bearer::ErrorBody::json(&json!({ "errors": [refusal.to_string()] }))
        });
    let admin_route = Router::new()
        .route("/", any(|Admin(admin): Admin| async move { admin.subject }))
        .layer(layer);
    let (customer, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;

    let request = |token: Option<&str>| {
        let mut request = Request::new(Body::empty());
        if let Some(token) = token {
            request.headers_mut().insert(AUTHORIZATION, bearer(token));
        }
        request
    };
    for (token, status, challenge) in [
        (None, StatusCode::UNAUTHORIZED, "Bearer realm=\"shop\""),
        (
            Some(customer.as_str()),
            StatusCode::FORBIDDEN,
            "Bearer realm=\"shop\", error=\"insufficient_scope\", scope=\"admin\"",
        ),
    ] {
        let response = admin_route.clone().oneshot(request(token)).await.unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], challenge);
        let reason = response
            .extensions()
            .get::<tower_bearer::AuthError>()
            .cloned();
        assert!(reason.is_some(), "the refusal carries its AuthError");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["errors"][0],
            reason.unwrap().to_string(),
            "the layer's body"
        );
    }
}
