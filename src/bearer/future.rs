//! [`ResponseFuture`]: the response of [`BearerAuth`](crate::BearerAuth).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{Config, ResponseBody};
use crate::registry::finish_resolve;
use crate::store::StoreFuture;
use crate::token::{Caller, TokenHash};

pin_project! {
    /// Response future of [`BearerAuth`](crate::BearerAuth): waits for the token store, then
    /// runs the inner service or answers the refusal.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Resolving {
            hash: TokenHash,
            lookup: StoreFuture<Option<Caller>>,
            pending: Option<(S, Request<B>)>,
            config: Arc<Config>,
        },
        Calling { #[pin] future: S::Future },
        Refused { response: Option<Response<Bytes>> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn resolving(
        hash: TokenHash,
        lookup: StoreFuture<Option<Caller>>,
        service: S,
        request: Request<B>,
        config: Arc<Config>,
    ) -> Self {
        Self {
            state: State::Resolving {
                hash,
                lookup,
                pending: Some((service, request)),
                config,
            },
        }
    }

    pub(crate) fn calling(future: S::Future) -> Self {
        Self {
            state: State::Calling { future },
        }
    }

    pub(crate) fn refused(response: Response<Bytes>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Resolving {
                    hash,
                    lookup,
                    pending,
                    config,
                } => {
                    let answer = finish_resolve(*hash, ready!(lookup.as_mut().poll(cx)));
                    let caller = match config.admit(answer) {
                        Ok(caller) => caller,
                        Err(error) => {
                            // The content type is read only when refusing (gRPC or HTTP).
                            let grpc = pending.as_ref().is_some_and(|(_, request)| {
                                config.responder.refuses_as_grpc(request.headers())
                            });
                            let response = config.responder.respond_as(&error, grpc);
                            this.state.set(State::Refused {
                                response: Some(response),
                            });
                            continue;
                        }
                    };
                    let Some((mut service, mut request)) = pending.take() else {
                        polled_after_completion()
                    };
                    config.hand_over(&mut request, caller);
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                StateProj::Refused { response } => {
                    let Some(response) = response.take() else {
                        polled_after_completion()
                    };
                    return Poll::Ready(Ok(response.map(ResponseBody::refusal)));
                }
            }
        }
    }
}

#[cold]
fn polled_after_completion() -> ! {
    panic!("tower_bearer::bearer::ResponseFuture polled after completion")
}
