//! Magento's GraphQL token API on async-graphql (feature `graphql`).
//!
//! - [`TokenMutation`]: `generateCustomerToken`, `generateCustomerTokenAsAdmin` and
//!   `revokeCustomerToken`, with Magento's type names, messages and error categories; merge
//!   it into your schema's mutation root.
//! - [`graphql_router`]: `/graphql` over POST and GET (queries only, as PWA Studio sends
//!   them), behind [`BearerAuthLayer::optional`] with GraphQL-shaped refusals; the
//!   [`Caller`] (or nothing, for a guest) reaches resolvers through the context:
//!   `ctx.data_opt::<Caller>()`, or [`caller`].
//!
//! ```
//! use async_graphql::{Context, EmptySubscription, MergedObject, Object, Schema};
//! use axum::Router;
//! use tower_bearer::graphql::{TokenMutation, graphql_router};
//! use tower_bearer::{Caller, SignIn, TokenRegistry};
//! use tower_bearer::sign_in::MemoryDirectory;
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
//! let schema = Schema::build(Query, Mutation::default(), EmptySubscription)
//!     .data(service)
//!     .finish();
//! let app: Router = graphql_router(schema, registry);
//! ```

use async_graphql::parser::types::OperationType;
use async_graphql::{Context, ErrorExtensions, Executor, InputObject, Object, SimpleObject};
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

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
#[derive(Clone, Debug, SimpleObject)]
pub struct CustomerToken {
    /// The customer token.
    pub token: Option<String>,
}

/// The input of `generateCustomerTokenAsAdmin`.
#[derive(Clone, Debug, InputObject)]
pub struct GenerateCustomerTokenAsAdminInput {
    /// The email of the customer to act for.
    #[graphql(name = "customer_email")]
    pub customer_email: String,
}

/// The answer of `generateCustomerTokenAsAdmin`.
#[derive(Clone, Debug, SimpleObject)]
pub struct GenerateCustomerTokenAsAdminOutput {
    /// A customer token recording the acting admin.
    #[graphql(name = "customer_token")]
    pub customer_token: String,
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

/// `/graphql` for `executor` (your `Schema`, with a [`SignIn`] in its data):
///
/// - `POST` with a JSON body `{"query", "variables", "operationName"}`;
/// - `GET` with `?query=…&variables=…&operationName=…` for queries (a mutation over GET is
///   refused with 405); a `GET` without `query` serves GraphiQL;
/// - answers are HTTP 200 with `data` and/or `errors`, as Apollo clients expect;
/// - guarded by [`BearerAuthLayer::optional`]: no `Authorization` (or an empty one) is a
///   guest; an invalid token is a 401 with `WWW-Authenticate` and a GraphQL-shaped body;
///   a store outage is a 503 in the same shape.
pub fn graphql_router<E: Executor>(executor: E, registry: TokenRegistry) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get::<E>).post(graphql_post::<E>))
        .layer(BearerAuthLayer::optional(registry).with_error_body(graphql_error_body))
        .with_state(executor)
}

/// The query string of a GraphQL GET request.
#[derive(Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
}

async fn graphql_get<E: Executor>(
    State(executor): State<E>,
    caller: Option<Caller>,
    params: Result<Query<GetParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
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
        match serde_json::from_str::<serde_json::Value>(&variables) {
            Ok(value) => request = request.variables(async_graphql::Variables::from_json(value)),
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "\"variables\" is not valid JSON."),
        }
    }
    if is_mutation(&request) {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Mutations must be sent with POST.",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&executor, caller, request).await
}

async fn graphql_post<E: Executor>(
    State(executor): State<E>,
    caller: Option<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return refuse(rejection.status(), "The request body could not be read."),
    };
    if !is_json(&headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send GraphQL requests as JSON, with \"Content-Type: application/json\".",
        );
    }
    match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) => execute(&executor, caller, request).await,
        Err(_) => refuse(
            StatusCode::BAD_REQUEST,
            "The request body is not a GraphQL request.",
        ),
    }
}

/// Whether the operation the request would run is a mutation (unparsable requests are
/// left for the executor to report).
fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let mut operations = document.operations.iter();
    let operation = match &request.operation_name {
        Some(name) => operations.find(|(op_name, _)| op_name.is_some_and(|n| n.as_str() == name)),
        None => operations.next(),
    };
    operation.is_some_and(|(_, op)| op.node.ty == OperationType::Mutation)
}

async fn execute<E: Executor>(
    executor: &E,
    caller: Option<Caller>,
    mut request: async_graphql::Request,
) -> Response {
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
