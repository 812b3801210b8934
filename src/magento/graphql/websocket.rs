//! `/graphql` over WebSocket: subscriptions (and queries) with the `graphql-transport-ws`
//! protocol, the token taken from the `connection_init` payload and watched while the
//! socket is open.

use std::future::{Future, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::http::{WebSocket as GraphQLWebSocket, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Pos, Request};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{BoxStream, SplitSink};
use futures_util::{SinkExt, StreamExt};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use tokio::sync::oneshot;
use tracing::debug;

use super::{MAX_REQUEST_BYTES, category, close, limits};
use crate::bearer::bearer_token;
use crate::registry::{TokenWatch, WatchEnd};
use crate::{Caller, TokenRegistry};

/// The subprotocol served: `graphql-transport-ws`, the protocol of the `graphql-ws` client
/// library (and of Apollo's `GraphQLWsLink`).
pub const GRAPHQL_TRANSPORT_WS: &str = "graphql-transport-ws";

/// How long a socket may stay open without a `connection_init` (then it is closed with
/// [`close::INIT_TIMEOUT`]).
pub const CONNECTION_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most operations one socket runs at once; past it, a `subscribe` is answered with an
/// error.
pub const MAX_OPERATIONS_PER_SOCKET: usize = 100;

/// The answer to a mutation sent over the socket.
pub const MUTATION_OVER_SOCKET_MESSAGE: &str = "Mutations must be sent with POST.";

/// The answer to an operation past [`MAX_OPERATIONS_PER_SOCKET`].
pub const TOO_MANY_OPERATIONS_MESSAGE: &str = "Too many operations on this connection.";

/// How long one message may take to reach a client that does not read: past it, the socket
/// is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Upgrades the connection and serves it.
pub(super) fn serve<E: Executor>(
    upgrade: WebSocketUpgrade,
    executor: E,
    registry: TokenRegistry,
) -> Response {
    let upgrade = upgrade
        .protocols([GRAPHQL_TRANSPORT_WS])
        .max_message_size(MAX_REQUEST_BYTES)
        .max_frame_size(MAX_REQUEST_BYTES);
    let accepted = upgrade.selected_protocol().is_some();
    upgrade.on_upgrade(move |socket| run(socket, executor, registry, accepted))
}

/// What `connection_init` decided.
enum Verdict {
    /// No token: a guest.
    Guest,
    /// A valid token, watched from now on.
    Member(Box<TokenWatch>),
    /// Closed with this code and reason.
    Refused(u16, &'static str),
}

type Sink = SplitSink<WebSocket, Message>;

async fn run<E: Executor>(socket: WebSocket, executor: E, registry: TokenRegistry, accepted: bool) {
    let (mut sink, stream) = socket.split();
    if !accepted {
        send_close(
            &mut sink,
            close::SUBPROTOCOL_NOT_ACCEPTABLE,
            "Subprotocol not acceptable",
        )
        .await;
        return;
    }
    // The client's messages, up to its close or a failure; pings are answered below us.
    let input = stream
        .take_while(|message| {
            ready(matches!(message, Ok(message) if !matches!(message, Message::Close(_))))
        })
        .filter_map(|message| {
            ready(match message {
                Ok(Message::Text(text)) => Some(Bytes::from(text)),
                Ok(Message::Binary(bytes)) => Some(bytes),
                _ => None,
            })
        });
    let (verdict_sender, mut verdict) = oneshot::channel();
    let executor = Guarded {
        inner: executor,
        operations: Arc::default(),
    };
    let graphql = GraphQLWebSocket::new(executor, input, WebSocketProtocols::GraphQLWS)
        .on_connection_init(move |payload| admit(payload, registry, verdict_sender));
    let mut graphql = std::pin::pin!(graphql);
    let init_timeout = tokio::time::sleep(CONNECTION_INIT_TIMEOUT);
    let mut init_timeout = std::pin::pin!(init_timeout);
    let mut decided = false;
    let mut watch: Option<Box<TokenWatch>> = None;
    loop {
        tokio::select! {
            outgoing = graphql.next() => match outgoing {
                Some(WsMessage::Text(text)) => {
                    let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text.into()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    send_close(&mut sink, code, &reason).await;
                    return;
                }
                // The client closed the socket.
                None => return,
            },
            decision = &mut verdict, if !decided => {
                decided = true;
                match decision {
                    Ok(Verdict::Guest) => {}
                    Ok(Verdict::Member(watched)) => watch = Some(watched),
                    Ok(Verdict::Refused(code, reason)) => {
                        send_close(&mut sink, code, reason).await;
                        return;
                    }
                    // Not decided after all (cannot happen: `admit` always decides).
                    Err(_) => {
                        send_close(&mut sink, close::INTERNAL_ERROR, "Internal server error").await;
                        return;
                    }
                }
            },
            end = ended(&mut watch) => {
                let (code, reason) = match end {
                    WatchEnd::StoreFailed(_) => (close::INTERNAL_ERROR, UNAVAILABLE_REASON),
                    _ => (close::FORBIDDEN, FORBIDDEN_REASON),
                };
                debug!(?end, code, "GraphQL socket closed: its token is no longer valid");
                send_close(&mut sink, code, reason).await;
                return;
            },
            () = &mut init_timeout, if !decided => {
                send_close(&mut sink, close::INIT_TIMEOUT, "Connection initialisation timeout").await;
                return;
            },
        }
    }
}

const FORBIDDEN_REASON: &str = "Forbidden";
const UNAVAILABLE_REASON: &str = "Service Unavailable";

/// Until the watched token ends; never for a guest.
async fn ended(watch: &mut Option<Box<TokenWatch>>) -> WatchEnd {
    match watch {
        Some(watch) => watch.ended().await,
        None => std::future::pending().await,
    }
}

async fn send_close(sink: &mut Sink, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, async {
        sink.send(Message::Close(Some(frame))).await?;
        sink.close().await
    })
    .await;
}

/// The `connection_init` of the socket: judges the payload's token as
/// [`BearerAuthLayer::optional`](crate::BearerAuthLayer::optional) judges a header, tells
/// the socket's loop, and gives the connection its [`Caller`]. A refused socket is never
/// acknowledged: the loop closes it.
async fn admit(
    payload: serde_json::Value,
    registry: TokenRegistry,
    verdict: oneshot::Sender<Verdict>,
) -> async_graphql::Result<Data> {
    let mut data = Data::default();
    match judge(&payload, &registry).await {
        Ok(None) => {
            let _ = verdict.send(Verdict::Guest);
        }
        Ok(Some((caller, watch))) => {
            data.insert(caller);
            let _ = verdict.send(Verdict::Member(Box::new(watch)));
        }
        Err((code, reason)) => {
            let _ = verdict.send(Verdict::Refused(code, reason));
            return std::future::pending().await;
        }
    }
    Ok(data)
}

/// The caller of a `connection_init` payload: `None` for a guest; `Err` with the close code
/// and reason of a refusal.
async fn judge(
    payload: &serde_json::Value,
    registry: &TokenRegistry,
) -> Result<Option<(Caller, TokenWatch)>, (u16, &'static str)> {
    let malformed = (close::BAD_REQUEST, BAD_AUTHORIZATION_REASON);
    let headers = authorization(payload).ok_or(malformed)?;
    let token = match bearer_token(&headers) {
        Ok(Some(token)) => token,
        Ok(None) => return Ok(None),
        Err(error) => {
            debug!(%error, "GraphQL socket refused: malformed Authorization");
            return Err(malformed);
        }
    };
    match registry.resolve_watched(token).await {
        Ok(Some(watched)) => Ok(Some(watched)),
        Ok(None) => Err((close::FORBIDDEN, FORBIDDEN_REASON)),
        Err(error) => {
            tracing::warn!(%error, "GraphQL socket refused: the token store failed");
            Err((close::INTERNAL_ERROR, UNAVAILABLE_REASON))
        }
    }
}

const BAD_AUTHORIZATION_REASON: &str = "Bad Request: malformed Authorization";

/// The `Authorization` of a `connection_init` payload (`{"Authorization": "Bearer …"}`,
/// the key in any case), as headers for the crate's parser: each key that names it is one
/// header, so two of them are refused as two headers are. `None` for a payload that is not
/// an object (nor absent), or a value that is not a string (nor null) or not a header value.
fn authorization(payload: &serde_json::Value) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    let fields = match payload {
        serde_json::Value::Null => return Some(headers),
        serde_json::Value::Object(fields) => fields,
        _ => return None,
    };
    for (key, value) in fields {
        if !key.eq_ignore_ascii_case(AUTHORIZATION.as_str()) {
            continue;
        }
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::String(text) => {
                headers.append(AUTHORIZATION, HeaderValue::from_str(text).ok()?);
            }
            _ => return None,
        }
    }
    Some(headers)
}

/// The executor as the socket runs it: each operation passes the transport's checks
/// (nesting, size with fragments written out; no mutation), and at most
/// [`MAX_OPERATIONS_PER_SOCKET`] run at once.
#[derive(Clone)]
struct Guarded<E> {
    inner: E,
    /// Operations of this socket running now.
    operations: Arc<AtomicUsize>,
}

impl<E: Executor> Executor for Guarded<E> {
    fn execute(&self, request: Request) -> impl Future<Output = async_graphql::Response> + Send {
        self.inner.execute(request)
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        if let Err(message) = check(&mut request) {
            return refused(message);
        }
        let Some(slot) = Slot::take(&self.operations) else {
            return refused(TOO_MANY_OPERATIONS_MESSAGE);
        };
        self.inner
            .execute_stream(request, session_data)
            .map(move |response| {
                // The slot is given back when the operation's stream is dropped.
                let _running = &slot;
                response
            })
            .boxed()
    }
}

/// Refuses what the socket does not run: a document too deeply nested or too large once
/// its fragments are written out, a mutation (tokens are issued over POST only).
fn check(request: &mut Request) -> Result<(), &'static str> {
    let operation_name = request.operation_name.clone();
    let Some(document) = limits::admit(request)? else {
        // Unparsable: the executor reports it in its own words.
        return Ok(());
    };
    match limits::selected_operation(document, operation_name.as_deref()) {
        Some(operation) if operation.ty == OperationType::Mutation => {
            Err(MUTATION_OVER_SOCKET_MESSAGE)
        }
        _ => Ok(()),
    }
}

/// One error, as the answer of an operation (`next`, then `complete`).
fn refused(message: &'static str) -> BoxStream<'static, async_graphql::Response> {
    let mut error = super::error(message, category::INPUT).into_server_error(Pos::default());
    error.locations.clear();
    futures_util::stream::once(ready(async_graphql::Response::from_errors(vec![error]))).boxed()
}

/// One running operation of a socket, counted while it lives.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(operations: &Arc<AtomicUsize>) -> Option<Self> {
        operations
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < MAX_OPERATIONS_PER_SOCKET).then_some(running + 1)
            })
            .ok()
            .map(|_| Self(operations.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
