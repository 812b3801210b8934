//! Magento's GraphQL token API on async-graphql (feature `graphql`).
//!
//! - [`TokenMutation`]: `generateCustomerToken`, `generateCustomerTokenAsAdmin` and
//!   `revokeCustomerToken`, with Magento's type names, messages and error categories; merge
//!   it into your schema's mutation root.
//! - [`graphql_router`]: `/graphql` over POST and GET (queries only, as PWA Studio sends
//!   them), behind [`BearerAuthLayer::optional`] with GraphQL-shaped refusals; the
//!   [`Caller`] (or nothing, for a guest) reaches resolvers through the context:
//!   `ctx.data_opt::<Caller>()`, or [`caller`].
//! - [`with_default_limits`]: depth, complexity and nesting limits for a public endpoint;
//!   async-graphql has no depth or complexity limit of its own.
//!
//! One request obtains one token at most: a request that selects `generateCustomerToken` or
//! `generateCustomerTokenAsAdmin` more than once (aliases, fragments) is refused before
//! any of them runs, so aliases cannot turn a request into a password spray.
//!
//! ```
//! use async_graphql::{Context, EmptySubscription, MergedObject, Object, Schema};
//! use axum::Router;
//! use tower_bearer::graphql::{TokenMutation, graphql_router, with_default_limits};
//! use tower_bearer::sign_in::MemoryDirectory;
//! use tower_bearer::{Caller, SignIn, TokenRegistry};
//!
//! #[derive(Default)]
//! struct Query;
//!
//! #[Object]
//! impl Query {
//!     /// Who is asking: the one line that reads the caller in a resolver.
//!     async fn whoami(&self, ctx: &Context<'_>) -> Option<String> {
//!         ctx.data_opt::<Caller>().map(|caller| caller.subject.clone())
//!     }
//! }
//!
//! #[derive(MergedObject, Default)]
//! struct Mutation(TokenMutation);
//!
//! let registry = TokenRegistry::memory();
//! let service = SignIn::new(registry.clone(), MemoryDirectory::new());
//! let schema = with_default_limits(Schema::build(Query, Mutation::default(), EmptySubscription))
//!     .data(service)
//!     .finish();
//! let app: Router = graphql_router(schema, registry);
//! ```

mod limits;

use async_graphql::parser::types::OperationType;
use async_graphql::{Context, ErrorExtensions, Executor, InputObject, Object, SimpleObject};
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Deserialize;

#[doc(inline)]
pub use self::limits::{
    MAX_COMPLEXITY, MAX_DEPTH, MAX_DIRECTIVES, MAX_NESTING, MAX_RECURSIVE_DEPTH, MAX_REQUEST_BYTES,
    with_default_limits,
};

use crate::bearer::ErrorBody;
use crate::magento::{UNAVAILABLE_MESSAGE, is_json};
use crate::sign_in::{INVALID_CREDENTIALS_MESSAGE, SignIn, SignInError};
use crate::{AuthError, BearerAuthLayer, Caller, TokenKind, TokenRegistry};

/// Magento's answer to a guest, or the wrong kind of caller, on a protected field.
pub const NOT_AUTHORIZED_MESSAGE: &str = "The current customer isn't authorized.";
/// The answer of `generateCustomerTokenAsAdmin` for an email no customer has.
pub const UNKNOWN_CUSTOMER_MESSAGE: &str = "Customer email provided does not exist";
/// The answer of `generateCustomerTokenAsAdmin` for a customer who did not allow it.
pub const ASSISTANCE_DENIED_MESSAGE: &str =
    "Allow remote shopping assistance is disabled for this customer.";
/// The answer to a request that selects more than one token-issuing mutation
/// (`generateCustomerToken`, `generateCustomerTokenAsAdmin`, under any alias).
pub const ONE_TOKEN_PER_REQUEST_MESSAGE: &str = "A request can generate one token at most.";

/// Magento's GraphQL error categories (`extensions.category`).
pub mod category {
    /// Bad or missing input.
    pub const INPUT: &str = "graphql-input";
    /// Sign-in failed, or the token is invalid.
    pub const AUTHENTICATION: &str = "graphql-authentication";
    /// The caller may not do this.
    pub const AUTHORIZATION: &str = "graphql-authorization";
    /// A backend failed.
    pub const INTERNAL: &str = "internal";
}

/// A GraphQL error with Magento's `extensions.category`.
pub fn error(message: impl Into<String>, category: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, extensions| {
        extensions.set("category", category);
    })
}

/// The caller behind the request, as [`graphql_router`] passes it to resolvers.
pub fn caller<'a>(ctx: &Context<'a>) -> Option<&'a Caller> {
    ctx.data_opt::<Caller>()
}

fn caller_of_kind<'a>(ctx: &Context<'a>, kind: TokenKind) -> async_graphql::Result<&'a Caller> {
    caller(ctx)
        .filter(|caller| caller.kind == kind)
        .ok_or_else(|| error(NOT_AUTHORIZED_MESSAGE, category::AUTHORIZATION))
}

fn service<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a SignIn> {
    ctx.data::<SignIn>().map_err(|_| {
        tracing::error!("the GraphQL schema has no SignIn: add it with .data(service)");
        error(UNAVAILABLE_MESSAGE, category::INTERNAL)
    })
}

fn unavailable(error_text: impl std::fmt::Display) -> async_graphql::Error {
    tracing::warn!(error = %error_text, "GraphQL token mutation failed on a backend");
    error(UNAVAILABLE_MESSAGE, category::INTERNAL)
}

/// Refuses the whole request if it selects more than one token-issuing field. Each issuing
/// resolver asks before it does anything, so no sign-in runs for such a request wherever
/// [`TokenMutation`] is merged, behind [`graphql_router`] or any other transport.
fn refuse_several_issuing_fields(ctx: &Context<'_>) -> async_graphql::Result<()> {
    // `query_env` is public but hidden in async-graphql's docs; its derive macros use it.
    let env = ctx.query_env;
    if limits::issuing_fields(&env.operation.node.selection_set.node, &env.fragments) > 1 {
        return Err(error(ONE_TOKEN_PER_REQUEST_MESSAGE, category::INPUT));
    }
    Ok(())
}

fn require_value(value: &str, name: &str) -> async_graphql::Result<()> {
    if value.is_empty() {
        return Err(error(
            format!("Specify the \"{name}\" value."),
            category::INPUT,
        ));
    }
    Ok(())
}

/// Magento's token mutations. Needs a [`SignIn`] in the schema's data.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenMutation;

/// The answer of `generateCustomerToken`.
#[derive(Clone, SimpleObject)]
pub struct CustomerToken {
    /// The customer token.
    pub token: Option<String>,
}

impl std::fmt::Debug for CustomerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerToken")
            .field("token", &self.token.as_ref().map(|_| Redacted))
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The input of `generateCustomerTokenAsAdmin`.
#[derive(Clone, Debug, InputObject)]
pub struct GenerateCustomerTokenAsAdminInput {
    /// The email of the customer to act for.
    #[graphql(name = "customer_email")]
    pub customer_email: String,
}

/// The answer of `generateCustomerTokenAsAdmin`.
#[derive(Clone, SimpleObject)]
pub struct GenerateCustomerTokenAsAdminOutput {
    /// A customer token recording the acting admin.
    #[graphql(name = "customer_token")]
    pub customer_token: String,
}

impl std::fmt::Debug for GenerateCustomerTokenAsAdminOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateCustomerTokenAsAdminOutput")
            .field("customer_token", &Redacted)
            .finish()
    }
}

/// The answer of `revokeCustomerToken`.
#[derive(Clone, Copy, Debug, SimpleObject)]
pub struct RevokeCustomerTokenOutput {
    /// Always `true` once revoked.
    pub result: bool,
}

#[Object]
impl TokenMutation {
    /// Generate a customer token from an email and password (same lockout as REST).
    async fn generate_customer_token(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<CustomerToken> {
        refuse_several_issuing_fields(ctx)?;
        require_value(&email, "email")?;
        require_value(&password, "password")?;
        match service(ctx)?
            .sign_in(TokenKind::Customer, &email, &password)
            .await
        {
            Ok(issued) => Ok(CustomerToken {
                token: Some(issued.token.expose().to_owned()),
            }),
            Err(SignInError::InvalidCredentials | SignInError::TwoFactorRequired) => {
                Err(error(INVALID_CREDENTIALS_MESSAGE, category::AUTHENTICATION))
            }
            Err(other) => Err(unavailable(other)),
        }
    }

    /// Generate a token for a customer, as an admin (remote shopping assistance). Needs an
    /// admin token; the customer must allow remote shopping assistance.
    async fn generate_customer_token_as_admin(
        &self,
        ctx: &Context<'_>,
        input: GenerateCustomerTokenAsAdminInput,
    ) -> async_graphql::Result<GenerateCustomerTokenAsAdminOutput> {
        refuse_several_issuing_fields(ctx)?;
        let admin = caller_of_kind(ctx, TokenKind::Admin)?;
        require_value(&input.customer_email, "customer_email")?;
        let service = service(ctx)?;
        let customer = service
            .directory()
            .customer(&input.customer_email)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| error(UNKNOWN_CUSTOMER_MESSAGE, category::INPUT))?;
        if !customer.allows_remote_assistance {
            return Err(error(ASSISTANCE_DENIED_MESSAGE, category::AUTHORIZATION));
        }
        let issued = service
            .registry()
            .issue_on_behalf(customer.subject, admin.subject.clone())
            .await
            .map_err(unavailable)?;
        tracing::info!(
            admin = %admin.subject,
            token_id = %issued.caller.token_id(),
            "customer token issued by an admin"
        );
        Ok(GenerateCustomerTokenAsAdminOutput {
            customer_token: issued.token.expose().to_owned(),
        })
    }

    /// Revoke all of the calling customer's tokens.
    async fn revoke_customer_token(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<RevokeCustomerTokenOutput> {
        let customer = caller_of_kind(ctx, TokenKind::Customer)?;
        service(ctx)?
            .registry()
            .revoke_all(TokenKind::Customer, &customer.subject)
            .await
            .map_err(unavailable)?;
        Ok(RevokeCustomerTokenOutput { result: true })
    }
}

/// The body of the layer's refusals on `/graphql`: GraphQL-shaped,
/// `{"errors":[{"message":…,"extensions":{"category":…}}]}`.
pub fn graphql_error_body(refusal: &AuthError) -> ErrorBody {
    let category = match refusal {
        AuthError::MissingCredentials | AuthError::InvalidToken => category::AUTHENTICATION,
        AuthError::InsufficientScope { .. } => category::AUTHORIZATION,
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

/// `/graphql` for `executor` (your `Schema`, with a [`SignIn`] in its data, best
/// built with [`with_default_limits`]):
///
/// - `POST` with a JSON body `{"query", "variables", "operationName"}`, of at most
///   [`MAX_REQUEST_BYTES`] (else 413); every answer to a `POST` carries
///   `Cache-Control: no-store`, as it may hold a token;
/// - `GET` with `?query=…&variables=…&operationName=…` for queries (a mutation over GET is
///   refused with 405); a `GET` without `query` serves GraphiQL. Its URI is bounded by the
///   http crate (64 KiB; hyper answers a longer one with 414);
/// - a document nested deeper than [`MAX_NESTING`] is refused with 400 before it is
///   parsed, whatever the executor's limits;
/// - a request that selects more than one token-issuing mutation is refused before the
///   executor runs, with one error ([`ONE_TOKEN_PER_REQUEST_MESSAGE`], HTTP 200);
/// - answers are HTTP 200 with `data` and/or `errors`, as Apollo clients expect;
/// - guarded by [`BearerAuthLayer::optional`]: no `Authorization` (or an empty one) is a
///   guest; an invalid token is a 401 with `WWW-Authenticate` and a GraphQL-shaped body;
///   a store outage is a 503 in the same shape.
///
/// Refusals of the transport itself are GraphQL-shaped too:
/// `{"errors":[{"message":…,"extensions":{"category":"graphql-input"}}]}`.
pub fn graphql_router<E: Executor>(executor: E, registry: TokenRegistry) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get::<E>).post(graphql_post::<E>))
        .layer(BearerAuthLayer::optional(registry).with_error_body(graphql_error_body))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        // Outermost, so that the layer's refusals are covered too.
        .layer(middleware::from_fn(no_store_on_post))
        .with_state(executor)
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
    if limits::exceeds_max_nesting(&query) {
        return refuse(StatusCode::BAD_REQUEST, limits::TOO_DEEPLY_NESTED_MESSAGE);
    }
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
    if limits::exceeds_max_nesting(&request.query) {
        return refuse(StatusCode::BAD_REQUEST, limits::TOO_DEEPLY_NESTED_MESSAGE);
    }
    execute(&executor, caller, request, Transport::Post).await
}

/// Parses the request (once: the executor reuses the document), refuses what the
/// transport does not allow, and runs the rest. The caller has checked the nesting: the
/// parser must never see a document nested deeper than [`MAX_NESTING`].
async fn execute<E: Executor>(
    executor: &E,
    caller: Option<Caller>,
    mut request: async_graphql::Request,
    transport: Transport,
) -> Response {
    let operation_name = request.operation_name.clone();
    // An unparsable document is left for the executor to report, in its own words.
    let (is_mutation, issuing_fields) = match request.parsed_query() {
        Ok(document) => limits::selected_operation(document, operation_name.as_deref()).map_or(
            (false, 0),
            |operation| {
                (
                    operation.ty == OperationType::Mutation,
                    limits::issuing_fields(&operation.selection_set.node, &document.fragments),
                )
            },
        ),
        Err(_) => (false, 0),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_the_token_answers_hides_the_token() {
        let token = "k3v9m2q8x7w1z5t4r6y0u2i8o3p1a5s7";
        let answers = [
            format!(
                "{:?}",
                CustomerToken {
                    token: Some(token.to_owned())
                }
            ),
            format!(
                "{:?}",
                GenerateCustomerTokenAsAdminOutput {
                    customer_token: token.to_owned()
                }
            ),
        ];
        for debug in answers {
            assert!(!debug.contains(token), "{debug}");
            assert!(debug.contains("<redacted>"), "{debug}");
        }
        assert_eq!(
            format!("{:?}", CustomerToken { token: None }),
            "CustomerToken { token: None }"
        );
    }
}
