//! Serving an app on a loopback port, and `GET /me` behind the layer, in-process.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, StatusCode};
use tokio::task::JoinHandle;
use tower::ServiceExt;
use tower_bearer::{BearerAuthLayer, Caller, TokenRegistry};

/// Serves `app` on a free port of 127.0.0.1 for the rest of the test; returns its base URL.
pub async fn serve(app: Router) -> String {
    spawn_server(app).await.0
}

/// Serves `app` on a free port of 127.0.0.1; returns its base URL and the serving task, to
/// stop the server before the test ends.
pub async fn spawn_server(app: Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), task)
}

/// `GET /me` behind a required layer over `registry`: the caller's subject.
fn me_app(registry: TokenRegistry) -> Router {
    Router::new()
        .route("/me", get(|caller: Caller| async move { caller.subject }))
        .layer(BearerAuthLayer::required(registry))
}

/// What [`get_me`] was answered, and how long the answer took.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub elapsed: Duration,
}

/// `GET /me` with `token` as a Bearer token, through [`me_app`] over `registry`, in-process.
pub async fn get_me(registry: &TokenRegistry, token: &str) -> Answer {
    let request = Request::get("/me")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let started = Instant::now();
    let response = me_app(registry.clone()).oneshot(request).await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        elapsed: started.elapsed(),
    }
}

/// Sends [`get_me`] every 100 ms until it is answered `status`; fails the test, naming
/// `what`, if that has not happened by `deadline`.
pub async fn get_me_until(
    registry: &TokenRegistry,
    token: &str,
    status: StatusCode,
    deadline: Instant,
    what: &str,
) {
    loop {
        let answer = get_me(registry, token).await;
        if answer.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {}, not {status}",
            answer.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An outage's answer: 503 with `Retry-After`, no challenge (an outage is not a credential
/// problem), and no later than `within`.
#[track_caller]
pub fn assert_unavailable(answer: &Answer, within: Duration, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: fail closed with 503"
    );
    assert!(
        answer.headers.contains_key(RETRY_AFTER),
        "{what}: 503 carries Retry-After"
    );
    assert!(
        !answer.headers.contains_key(WWW_AUTHENTICATE),
        "{what}: an outage is not a credential problem"
    );
    assert!(
        answer.elapsed <= within,
        "{what}: answered after {:?}, later than {within:?}",
        answer.elapsed
    );
}
