//! `/graphql` over HTTP: the [`router`], its GET and POST handlers, and the GraphQL-shaped
//! refusals of the layer in front of it.

use async_graphql::Executor;
use async_graphql::parser::types::OperationType;
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, State};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Deserialize;

use super::{MAX_REQUEST_BYTES, ONE_TOKEN_PER_REQUEST_MESSAGE, category, limits};
use super::{Origin, websocket};
use crate::bearer::ErrorBody;
use crate::magento::{Peer, is_json};
use crate::{AuthError, BearerAuthLayer, Caller, TokenRegistry};

/// The body of the layer's refusals on `/graphql`: GraphQL-shaped,
/// `{"errors":[{"message":…,"extensions":{"category":…}}]}`.
pub fn graphql_error_body(refusal: &AuthError) -> ErrorBody {
    let category = match refusal {
        AuthError::MissingCredentials | AuthError::InvalidToken => category::AUTHENTICATION,
        AuthError::InsufficientScope { .. } | AuthError::MissingScope { .. } => {
            category::AUTHORIZATION
        }
        AuthError::InvalidRequest(_) => category::INPUT,
        AuthError::StoreUnavailable => category::INTERNAL,
    };
    errors_body(&refusal.to_string(), category)
}

fn errors_body(message: &str, category: &str) -> ErrorBody {
    ErrorBody::json(&serde_json::json!({
        "errors": [{ "message": message, "extensions": { "category": category } }]
    }))
}

/// `/graphql` for `executor` (your `Schema`, with a [`SignIn`](crate::SignIn) in its data, best
/// built with [`with_default_limits`](super::with_default_limits)):
///
/// - `POST` with a JSON body `{"query", "variables", "operationName"}`, of at most
///   [`MAX_REQUEST_BYTES`] (else 413); every answer to a `POST` carries
///   `Cache-Control: no-store`, as it may hold a token;
/// - `GET` with `?query=…&variables=…&operationName=…` for queries (a mutation over GET is
///   refused with 405); a `GET` without `query` serves GraphiQL. Its URI is bounded by the
///   http crate (64 KiB; hyper answers a longer one with 414);
/// - a document nested deeper than [`MAX_NESTING`](super::MAX_NESTING) is refused with 400 before it is
///   parsed, and one that comes to more than [`MAX_EXPANDED_NODES`](super::MAX_EXPANDED_NODES) with its
///   fragments written out is refused with 400 before the executor runs, whatever the
///   executor's limits;
/// - a request that selects more than one token-issuing mutation is refused before the
///   executor runs, with one error ([`ONE_TOKEN_PER_REQUEST_MESSAGE`], HTTP 200);
/// - answers are HTTP 200 with `data` and/or `errors`, as Apollo clients expect;
/// - guarded by [`BearerAuthLayer::optional`]: no `Authorization` (or an empty one) is a
///   guest; an invalid token is a 401 with `WWW-Authenticate` and a GraphQL-shaped body;
///   a store outage is a 503 in the same shape.
///
/// Refusals of the transport itself are GraphQL-shaped too:
/// `{"errors":[{"message":…,"extensions":{"category":"graphql-input"}}]}`.
///
/// A WebSocket upgrade of `/graphql` serves subscriptions (and queries) with the
/// `graphql-transport-ws` protocol, past the layer: the token comes in the
/// `connection_init` payload (`{"Authorization": "Bearer …"}`), judged as the layer judges a
/// header, and the socket is closed with 4403 `Forbidden` when its token is refused, or is
/// revoked or expires while the socket is open; with 4500 when the store fails (never
/// admitted, never kept open); with 4400 for a malformed `Authorization`. The
/// [module documentation](super#websocket) lists every close code.
///
/// ```
/// use std::time::Duration;
///
/// use async_graphql::futures_util::{Stream, stream};
/// use async_graphql::{Context, EmptyMutation, Object, Schema, Subscription};
/// use axum::Router;
/// use tower_bearer::TokenRegistry;
/// use tower_bearer::magento::graphql::{self, with_default_limits};
///
/// struct Query;
///
/// #[Object]
/// impl Query {
///     async fn ping(&self) -> bool {
///         true
///     }
/// }
///
/// struct Subscription;
///
/// #[Subscription]
/// impl Subscription {
///     /// The caller's subject, once: read in a subscription as in a query.
///     async fn me(&self, ctx: &Context<'_>) -> impl Stream<Item = Option<String>> + use<> {
///         stream::iter([graphql::caller(ctx).map(|caller| caller.subject.clone())])
///     }
/// }
///
/// let registry = TokenRegistry::memory().with_recheck_every(Duration::from_secs(10));
/// let schema = with_default_limits(Schema::build(Query, EmptyMutation, Subscription)).finish();
/// let app: Router = graphql::router(schema, registry);
/// ```
pub fn router<E: Executor>(executor: E, registry: TokenRegistry) -> Router {
    let sockets = Sockets {
        executor: executor.clone(),
        registry: registry.clone(),
    };
    Router::new()
        .route("/graphql", get(graphql_get::<E>).post(graphql_post::<E>))
        .layer(BearerAuthLayer::optional(registry).with_error_body(graphql_error_body))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        // Outermost, so that the layer's refusals are covered too.
        .layer(middleware::from_fn(no_store_on_post))
        // Before the layer: a WebSocket carries its token in `connection_init`, not in a
        // header (browsers cannot set one), and is judged there.
        .route_layer(middleware::from_fn_with_state(
            sockets,
            upgrade_or_http::<E>,
        ))
        .with_state(executor)
}

/// What the WebSocket side of `/graphql` needs.
#[derive(Clone)]
struct Sockets<E> {
    executor: E,
    registry: TokenRegistry,
}

/// Serves a WebSocket upgrade of `/graphql` itself, past the HTTP layer; hands anything
/// else on.
async fn upgrade_or_http<E: Executor>(
    State(sockets): State<Sockets<E>>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let asks_upgrade = request
        .headers()
        .get_all(UPGRADE)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !asks_upgrade {
        return next.run(request).await;
    }
    let (mut parts, _body) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => websocket::serve(upgrade, sockets.executor, sockets.registry),
        Err(rejection) => refuse(rejection.status(), &rejection.body_text()),
    }
}

/// Marks every answer to a POST uncacheable: mutations, which return tokens, only come by
/// POST. Answers to GET stay cacheable, for the queries PWA Studio sends by GET.
async fn no_store_on_post(request: axum::extract::Request, next: Next) -> Response {
    let is_post = request.method() == Method::POST;
    let mut response = next.run(request).await;
    if is_post {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The query string of a GraphQL GET request.
#[derive(Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
}

/// How a request came: a mutation may only come by POST.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Get,
    Post,
}

async fn graphql_get<E: Executor>(
    State(executor): State<E>,
    caller: Option<Caller>,
    params: Result<Query<GetParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // No size check of our own: the http crate takes no URI over 64 KiB, so hyper answers
    // a longer one with 414 before it gets here.
    let Ok(Query(params)) = params else {
        return refuse(StatusCode::BAD_REQUEST, "The query string is malformed.");
    };
    let Some(query) = params.query.filter(|query| !query.is_empty()) else {
        let page = async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .finish();
        return Html(page).into_response();
    };
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables.filter(|v| !v.is_empty()) {
        // serde_json refuses JSON nested deeper than 128 levels, so no recursion below
        // goes deeper either.
        match serde_json::from_str::<serde_json::Value>(&variables) {
            Ok(value) => request = request.variables(async_graphql::Variables::from_json(value)),
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "\"variables\" is not valid JSON."),
        }
    }
    execute(&executor, caller, request, Transport::Get).await
}

async fn graphql_post<E: Executor>(
    State(executor): State<E>,
    caller: Option<Caller>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The request body is larger than {MAX_REQUEST_BYTES} bytes."),
            );
        }
        Err(rejection) => return refuse(rejection.status(), "The request body could not be read."),
    };
    if !is_json(&headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send GraphQL requests as JSON, with \"Content-Type: application/json\".",
        );
    }
    // The query is a JSON string, so this parse does not recurse into it; `variables` are
    // bounded by serde_json's nesting limit (128).
    let Ok(request) = serde_json::from_slice::<async_graphql::Request>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The request body is not a GraphQL request.",
        );
    };
    // Where the request comes from, for the token a mutation may issue.
    let request = request.data(Origin::new(peer, &headers));
    execute(&executor, caller, request, Transport::Post).await
}

/// Parses the request (once: the executor reuses the document), refuses what the
/// transport does not allow, and runs the rest.
async fn execute<E: Executor>(
    executor: &E,
    caller: Option<Caller>,
    mut request: async_graphql::Request,
    transport: Transport,
) -> Response {
    let operation_name = request.operation_name.clone();
    // Whatever the executor's own limits: its checks would walk the fragments written out.
    let document = match limits::admit(&mut request) {
        Ok(document) => document,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    // An unparsable document is left for the executor to report, in its own words.
    let (is_mutation, issuing_fields) = document
        .and_then(|document| {
            let operation = limits::selected_operation(document, operation_name.as_deref())?;
            Some((
                operation.ty == OperationType::Mutation,
                limits::issuing_fields(&operation.selection_set.node, &document.fragments),
            ))
        })
        .unwrap_or((false, 0));
    if is_mutation && transport == Transport::Get {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Mutations must be sent with POST.",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if issuing_fields > 1 {
        // One error for the request, as a GraphQL error (HTTP 200); the resolvers would
        // refuse too, but with one error per field.
        return refuse(StatusCode::OK, ONE_TOKEN_PER_REQUEST_MESSAGE);
    }
    if let Some(caller) = caller {
        request = request.data(caller);
    }
    let response = executor.execute(request).await;
    match serde_json::to_vec(&response) {
        Ok(bytes) => (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            bytes,
        )
            .into_response(),
        Err(_) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The response could not be encoded.",
        ),
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = errors_body(message, category::INPUT);
    let mut response = (status, body.bytes().clone()).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, body.content_type().clone());
    response
}
