//! Backpressure: the layer is ready exactly when the service it wraps is, so a concurrency
//! or rate limit under it still holds requests back.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tower::Layer;
use tower::Service;
use tower_bearer::{BearerAuthLayer, TokenRegistry};

/// A service that is ready only when its switch is on.
#[derive(Clone)]
struct Gate(Arc<AtomicBool>);

impl Service<http::Request<String>> for Gate {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.0.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, _: http::Request<String>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(String::new())))
    }
}

#[test]
fn the_layer_is_ready_only_when_the_inner_service_is() {
    let open = Arc::new(AtomicBool::new(false));
    let mut service = BearerAuthLayer::optional(TokenRegistry::memory()).layer(Gate(open.clone()));
    let mut context = Context::from_waker(Waker::noop());

    assert!(service.poll_ready(&mut context).is_pending());
    open.store(true, Ordering::SeqCst);
    assert!(matches!(
        service.poll_ready(&mut context),
        Poll::Ready(Ok(()))
    ));
}
