//! Magento's GraphQL token API over HTTP, against real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, NextValidation,
    ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Context, EmptySubscription, MergedObject, Object, Schema, ServerError, ServerResult,
    SimpleObject, ValidationResult, Variables,
};
use axum::Json;
use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_bearer::magento::graphql::{self, TokenMutation, with_default_limits};
use tower_bearer::magento::rest;
use tower_bearer::sign_in::{
    CustomerAccount, Directory, DirectoryFuture, INVALID_CREDENTIALS_MESSAGE, MemoryDirectory,
    RemoteAssistance,
};
use tower_bearer::store::{RedisStore, RedisStoreOptions};
use tower_bearer::{BearerAuthLayer, Customer, SignIn, TokenKind, TokenRegistry};

use crate::support::{RedisServer, TestRedis, serve};

const NOT_AUTHORIZED: &str = "The current customer isn't authorized.";

/// The example protected query: `customer { email }`.
#[derive(Default)]
struct Query;

#[derive(SimpleObject)]
struct CustomerOutput {
    email: String,
}

#[Object]
impl Query {
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<CustomerOutput> {
        match graphql::caller(ctx) {
            Some(caller) if caller.kind == tower_bearer::TokenKind::Customer => {
                Ok(CustomerOutput {
                    email: caller.subject.clone(),
                })
            }
            _ => Err(graphql::error(
                NOT_AUTHORIZED,
                graphql::category::AUTHORIZATION,
            )),
        }
    }
}

#[derive(MergedObject, Default)]
struct Mutation(TokenMutation);

/// The test accounts, counting the password checks made against them.
#[derive(Clone)]
struct CountingDirectory {
    accounts: Arc<MemoryDirectory>,
    password_checks: Arc<AtomicUsize>,
}

impl CountingDirectory {
    fn new() -> Self {
        let accounts = MemoryDirectory::new();
        accounts
            .add_customer(
                "customer@example.com",
                "password",
                RemoteAssistance::Allowed,
            )
            .unwrap();
        accounts
            .add_customer("noassist@example.com", "password", RemoteAssistance::Denied)
            .unwrap();
        accounts.add_admin("admin", "admin123").unwrap();
        Self {
            accounts: Arc::new(accounts),
            password_checks: Arc::default(),
        }
    }

    fn password_checks(&self) -> usize {
        self.password_checks.load(Ordering::SeqCst)
    }
}

impl Directory for CountingDirectory {
    fn verify<'a>(
        &'a self,
        kind: TokenKind,
        username: &'a str,
        password: &'a str,
    ) -> DirectoryFuture<'a, Option<String>> {
        self.password_checks.fetch_add(1, Ordering::SeqCst);
        self.accounts.verify(kind, username, password)
    }

    fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>> {
        self.accounts.customer(email)
    }
}

/// How far async-graphql got with the requests it was given: an extension counting its
/// parse stage (which includes its recursion depth check), its validation (with the
/// complexity and depth counts) and the fields it resolved.
#[derive(Clone, Default)]
struct Stages(Arc<[AtomicUsize; 3]>);

impl Stages {
    const PARSED: usize = 0;
    const VALIDATED: usize = 1;
    const RESOLVED: usize = 2;

    fn reached(&self, stage: usize) {
        self.0[stage].fetch_add(1, Ordering::SeqCst);
    }

    /// `[parsed, validated, resolved]`.
    fn counts(&self) -> [usize; 3] {
        [Self::PARSED, Self::VALIDATED, Self::RESOLVED]
            .map(|stage| self.0[stage].load(Ordering::SeqCst))
    }
}

impl ExtensionFactory for Stages {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Stages {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        self.reached(Self::PARSED);
        next.run(ctx, query, variables).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        self.reached(Self::VALIDATED);
        next.run(ctx).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        self.reached(Self::RESOLVED);
        next.run(ctx, info).await
    }
}

type TestSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema as the example builds it: with the default limits.
fn schema(service: SignIn) -> TestSchema {
    observed_schema(service, &Stages::default())
}

/// [`schema`], with `stages` counting how far async-graphql gets.
fn observed_schema(service: SignIn, stages: &Stages) -> TestSchema {
    with_default_limits(Schema::build(Query, Mutation::default(), EmptySubscription))
        .extension(stages.clone())
        .data(service)
        .finish()
}

/// A schema without any limit: `TokenMutation` merged by someone who set none.
fn schema_without_limits(service: SignIn) -> TestSchema {
    Schema::build(Query, Mutation::default(), EmptySubscription)
        .data(service)
        .finish()
}

/// One app as in Magento: GraphQL and the REST token and demo routes side by side.
fn app(registry: TokenRegistry) -> Router {
    app_with(registry, CountingDirectory::new(), &Stages::default())
}

fn app_with(registry: TokenRegistry, directory: CountingDirectory, stages: &Stages) -> Router {
    let service = SignIn::new(registry.clone(), directory);
    let schema = observed_schema(service.clone(), stages);
    let rest_me = Router::new()
        .route(
            "/V1/customers/me",
            get(|Customer(caller): Customer| async move { Json(caller) }),
        )
        .route_layer(BearerAuthLayer::required(registry.clone()));
    graphql::router(schema, registry)
        .merge(rest::router(service))
        .merge(rest_me)
}

struct Server {
    base: String,
    http: reqwest::Client,
    directory: CountingDirectory,
    stages: Stages,
    redis: TestRedis,
}

async fn start() -> Server {
    let redis = TestRedis::start();
    let directory = CountingDirectory::new();
    let stages = Stages::default();
    let base = serve(app_with(redis.registry().await, directory.clone(), &stages)).await;
    Server {
        base,
        http: reqwest::Client::new(),
        directory,
        stages,
        redis,
    }
}

impl Server {
    async fn post(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn get(&self, token: Option<&str>, params: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}/graphql", self.base))
            .query(params);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn customer_token(&self) -> String {
        let (status, body) = self
            .post(
                None,
                GENERATE,
                json!({"email": "customer@example.com", "password": "password"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["generateCustomerToken"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {body}"))
            .to_owned()
    }

    async fn admin_token(&self) -> String {
        let response = self
            .http
            .post(format!("{}/V1/integration/admin/token", self.base))
            .json(&json!({"username": "admin", "password": "admin123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A POST of `{"query": query}`, as it is.
    async fn post_query(&self, query: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap()
    }

    /// Whether the store holds a failure counter for the test customer.
    async fn customer_has_failures(&self) -> bool {
        let key = format!("{}lock:customer:customer@example.com", self.redis.prefix);
        redis::cmd("EXISTS")
            .arg(key)
            .query_async::<bool>(&mut self.redis.inspector().await)
            .await
            .unwrap()
    }

    /// How many token records the store holds.
    async fn stored_tokens(&self) -> usize {
        redis::cmd("KEYS")
            .arg(format!("{}t:*", self.redis.prefix))
            .query_async::<Vec<Vec<u8>>>(&mut self.redis.inspector().await)
            .await
            .unwrap()
            .len()
    }

    async fn rest_me(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/V1/customers/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

const GENERATE: &str = "mutation Sign($email: String!, $password: String!) { \
     generateCustomerToken(email: $email, password: $password) { token } }";
const AS_ADMIN: &str = "mutation AsAdmin($email: String!) { \
     generateCustomerTokenAsAdmin(input: {customer_email: $email}) { customer_token } }";
const REVOKE: &str = "mutation { revokeCustomerToken { result } }";
const CUSTOMER: &str = "query Me { customer { email } }";

/// The single error of a GraphQL answer: (message, category).
fn only_error(body: &Value) -> (&str, &str) {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    (
        errors[0]["message"].as_str().unwrap(),
        errors[0]["extensions"]["category"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn generate_customer_token_issues_a_token_that_resolves_the_customer() {
    let server = start().await;
    let token = server.customer_token().await;
    assert_eq!(token.len(), 32);
    let (status, body) = server.post(Some(&token), CUSTOMER, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["customer"]["email"], "customer@example.com",
        "{body}"
    );
    assert_eq!(
        server.rest_me(&token).await.status(),
        StatusCode::OK,
        "works on REST too"
    );
}

#[tokio::test]
async fn wrong_credentials_are_a_graphql_authentication_error_with_http_200() {
    let server = start().await;
    for (email, password) in [
        ("customer@example.com", "wrong"),
        ("nobody@example.com", "password"),
    ] {
        let (status, body) = server
            .post(
                None,
                GENERATE,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "Apollo reads graphQLErrors only on 2xx"
        );
        assert_eq!(
            only_error(&body),
            (INVALID_CREDENTIALS_MESSAGE, "graphql-authentication")
        );
        assert_eq!(body["data"]["generateCustomerToken"], Value::Null);
    }
}

#[tokio::test]
async fn empty_email_or_password_is_a_graphql_input_error() {
    let server = start().await;
    let (_, body) = server
        .post(None, GENERATE, json!({"email": "", "password": "password"}))
        .await;
    assert_eq!(
        only_error(&body),
        ("Specify the \"email\" value.", "graphql-input")
    );
    let (_, body) = server
        .post(
            None,
            GENERATE,
            json!({"email": "customer@example.com", "password": ""}),
        )
        .await;
    assert_eq!(
        only_error(&body),
        ("Specify the \"password\" value.", "graphql-input")
    );
}

#[tokio::test]
async fn graphql_failures_count_toward_the_shared_lockout() {
    let server = start().await;
    for _ in 0..6 {
        server
            .post(
                None,
                GENERATE,
                json!({"email": "customer@example.com", "password": "bad"}),
            )
            .await;
    }
    let (_, body) = server
        .post(
            None,
            GENERATE,
            json!({"email": "customer@example.com", "password": "password"}),
        )
        .await;
    assert_eq!(
        only_error(&body).0,
        INVALID_CREDENTIALS_MESSAGE,
        "locked over GraphQL"
    );
    let rest = server
        .http
        .post(format!("{}/V1/integration/customer/token", server.base))
        .json(&json!({"username": "customer@example.com", "password": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::UNAUTHORIZED, "and over REST");
}

#[tokio::test]
async fn an_admin_token_generates_a_customer_token_that_records_the_admin() {
    let server = start().await;
    let admin = server.admin_token().await;
    let (status, body) = server
        .post(
            Some(&admin),
            AS_ADMIN,
            json!({"email": "customer@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["data"]["generateCustomerTokenAsAdmin"]["customer_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {body}"));

    let me = server.rest_me(token).await;
    assert_eq!(me.status(), StatusCode::OK);
    let caller: Value = me.json().await.unwrap();
    assert_eq!(caller["subject"], "customer@example.com");
    assert_eq!(caller["kind"], "customer");
    assert_eq!(caller["acting_admin"], "admin");
    let lifetime = chrono::DateTime::parse_from_rfc3339(caller["expires_at"].as_str().unwrap())
        .unwrap()
        - chrono::DateTime::parse_from_rfc3339(caller["issued_at"].as_str().unwrap()).unwrap();
    assert_eq!(lifetime, chrono::Duration::hours(1), "a customer lifetime");
}

#[tokio::test]
async fn generate_customer_token_as_admin_refuses_everyone_but_admins() {
    let server = start().await;
    let customer = server.customer_token().await;
    for token in [None, Some(customer.as_str())] {
        let (status, body) = server
            .post(token, AS_ADMIN, json!({"email": "customer@example.com"}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
    }
}

#[tokio::test]
async fn generate_customer_token_as_admin_needs_an_existing_customer_who_allows_it() {
    let server = start().await;
    let admin = server.admin_token().await;
    let (_, body) = server
        .post(
            Some(&admin),
            AS_ADMIN,
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(
        only_error(&body),
        ("Customer email provided does not exist", "graphql-input")
    );
    let (_, body) = server
        .post(
            Some(&admin),
            AS_ADMIN,
            json!({"email": "noassist@example.com"}),
        )
        .await;
    assert_eq!(
        only_error(&body),
        (graphql::ASSISTANCE_DENIED_MESSAGE, "graphql-authorization")
    );
    let (_, body) = server
        .post(Some(&admin), AS_ADMIN, json!({"email": ""}))
        .await;
    assert_eq!(
        only_error(&body),
        ("Specify the \"customer_email\" value.", "graphql-input")
    );
}

#[tokio::test]
async fn revoke_customer_token_kills_rest_access_too() {
    let server = start().await;
    let token = server.customer_token().await;
    let other = server.customer_token().await;
    let (status, body) = server.post(Some(&token), REVOKE, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["revokeCustomerToken"]["result"], true,
        "{body}"
    );
    assert_eq!(
        server.rest_me(&token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.rest_me(&other).await.status(),
        StatusCode::UNAUTHORIZED,
        "all the customer's tokens are revoked"
    );
}

#[tokio::test]
async fn revoke_customer_token_refuses_guests_and_admins() {
    let server = start().await;
    let admin = server.admin_token().await;
    for token in [None, Some(admin.as_str())] {
        let (_, body) = server.post(token, REVOKE, json!({})).await;
        assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
    }
}

#[tokio::test]
async fn the_protected_query_refuses_a_guest_with_graphql_authorization() {
    let server = start().await;
    let (status, body) = server.post(None, CUSTOMER, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
}

#[tokio::test]
async fn queries_work_over_get_with_variables_and_operation_name() {
    let server = start().await;
    let token = server.customer_token().await;
    let response = server
        .get(
            Some(&token),
            &[
                (
                    "query",
                    "query Other { __typename } \
                     query Me($show: Boolean!) { customer @include(if: $show) { email } }",
                ),
                ("operationName", "Me"),
                ("variables", r#"{"show": true}"#),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["customer"]["email"], "customer@example.com",
        "{body}"
    );
}

#[tokio::test]
async fn a_mutation_sent_by_get_is_refused() {
    let server = start().await;
    let response = server
        .get(
            None,
            &[
                ("query", GENERATE),
                (
                    "variables",
                    r#"{"email":"customer@example.com","password":"password"}"#,
                ),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn get_without_a_query_serves_graphiql() {
    let server = start().await;
    let response = server.get(None, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

#[tokio::test]
async fn an_empty_authorization_header_is_a_guest() {
    let server = start().await;
    let response = server
        .http
        .post(format!("{}/graphql", server.base))
        .header("authorization", "")
        .json(&json!({ "query": CUSTOMER }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
}

#[tokio::test]
async fn an_invalid_token_is_a_401_with_a_challenge_and_a_graphql_body() {
    let server = start().await;
    let token = server.customer_token().await;
    server.post(Some(&token), REVOKE, json!({})).await;
    for bad in [token.as_str(), "0123456789abcdefghijklmnopqrstuv"] {
        let response = server
            .http
            .post(format!("{}/graphql", server.base))
            .bearer_auth(bad)
            .json(&json!({ "query": CUSTOMER }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(only_error(&body).1, "graphql-authentication");
    }
}

#[tokio::test]
async fn a_store_outage_is_a_503_in_graphql_shape() {
    let mut redis = RedisServer::start();
    let store = RedisStore::connect_with(
        &redis.url(),
        RedisStoreOptions::default().with_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let registry = TokenRegistry::new(store);
    let issued = registry
        .issue(tower_bearer::TokenKind::Customer, "customer@example.com")
        .await
        .unwrap();
    let base = serve(app(registry)).await;
    redis.stop();

    let response = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(issued.token.expose())
        .json(&json!({ "query": CUSTOMER }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn introspection_shows_magentos_names() {
    let server = start().await;
    let (_, body) = server
        .post(
            None,
            r#"{
                mutation: __schema { mutationType { fields { name } } }
                input: __type(name: "GenerateCustomerTokenAsAdminInput") { inputFields { name } }
                output: __type(name: "GenerateCustomerTokenAsAdminOutput") { fields { name } }
                token: __type(name: "CustomerToken") { fields { name } }
                revoke: __type(name: "RevokeCustomerTokenOutput") { fields { name } }
            }"#,
            json!({}),
        )
        .await;
    let names = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {body}"))
            .iter()
            .map(|field| field["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let mutations = names(&body["data"]["mutation"]["mutationType"]["fields"]);
    for name in [
        "generateCustomerToken",
        "generateCustomerTokenAsAdmin",
        "revokeCustomerToken",
    ] {
        assert!(
            mutations.contains(&name.to_owned()),
            "{name} missing from {mutations:?}"
        );
    }
    assert_eq!(
        names(&body["data"]["input"]["inputFields"]),
        ["customer_email"]
    );
    assert_eq!(names(&body["data"]["output"]["fields"]), ["customer_token"]);
    assert_eq!(names(&body["data"]["token"]["fields"]), ["token"]);
    assert_eq!(names(&body["data"]["revoke"]["fields"]), ["result"]);
}

/// The request of the finding: a sign-in whose password is a list nested `levels` deep.
fn deeply_nested_mutation(levels: usize) -> String {
    format!(
        r#"mutation{{generateCustomerToken(email:"x",password:{}"p"{}){{token}}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// `{customer(x:[[[…1…]]]){email}}`, nested `levels` deep: a query, as GET carries it.
fn deeply_nested_query(levels: usize) -> String {
    format!(
        "{{customer(x:{}1{}){{email}}}}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// Asserts a GraphQL-shaped refusal of the transport with `status`.
async fn assert_refused(response: reqwest::Response, status: StatusCode) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(only_error(&body).1, "graphql-input", "{body}");
}

/// Nesting depths around those where parsing used to overflow a 2 MiB stack: from ~400
/// levels in a debug build (up to ~700, where pest's own stack guard fails the parse
/// first) and from ~1,600 in a release build; 3,000 is the request of the finding.
const OVERFLOWING_DEPTHS: [usize; 12] = [
    65, 200, 400, 450, 500, 550, 600, 700, 1_000, 1_600, 2_000, 3_000,
];

// Multi-threaded: the server runs on this runtime's worker threads, where the parser's stack
// overflow used to happen; it would abort the whole test binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_document_is_refused_before_parsing_and_the_server_keeps_answering() {
    let server = start().await;

    for levels in OVERFLOWING_DEPTHS {
        let mutation = deeply_nested_mutation(levels);
        assert_refused(server.post_query(&mutation).await, StatusCode::BAD_REQUEST).await;
        let query = deeply_nested_query(levels);
        assert_refused(
            server.get(None, &[("query", &query)]).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }

    // Far deeper, and too large to be read at all. (No GET: the http crate, in client and
    // server alike, takes no URI over 64 KiB.)
    assert_refused(
        server.post_query(&deeply_nested_mutation(100_000)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    let token = server.customer_token().await;
    let response = server
        .get(Some(&token), &[("query", "{customer{email}}")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["customer"]["email"], "customer@example.com",
        "{body}"
    );
    assert_eq!(server.directory.password_checks(), 1, "only the sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limits_refuse_a_deeply_nested_document_behind_any_transport() {
    let redis = TestRedis::start();
    let directory = CountingDirectory::new();
    let schema = schema(SignIn::new(redis.registry().await, directory.clone()));
    for levels in OVERFLOWING_DEPTHS.into_iter().chain([100_000]) {
        let response = tokio::spawn({
            let schema = schema.clone();
            async move { schema.execute(deeply_nested_mutation(levels)).await }
        })
        .await
        .unwrap();
        let body = serde_json::to_value(&response).unwrap();
        assert_eq!(only_error(&body).1, "graphql-input", "{body}");
    }
    assert_eq!(directory.password_checks(), 0);
}

/// The refusal of a document too large once its fragments are written out.
const TOO_LARGE_WHEN_EXPANDED: &str =
    "The query is too large with its fragments written out: it was not run.";

/// Fragments `F0`…`F{levels - 1}` on `Query` that each spread the next one `fan_out` times,
/// down to `F{levels} { customer { email } }`: `...F0` writes out to `fan_out`^`levels`
/// customers.
fn fanning_out(levels: usize, fan_out: usize) -> String {
    let fragments: String = (0..levels)
        .map(|level| {
            let spreads = vec![format!("...F{}", level + 1); fan_out].join(" ");
            format!("fragment F{level} on Query{{{spreads}}}")
        })
        .collect();
    format!("{fragments}fragment F{levels} on Query{{customer{{email}}}}")
}

/// (levels, fan-out) of the documents of the finding, cheapest first: 4^10 took some 4 s of
/// CPU to refuse in a debug build, the 604-byte 4^12 some 52 s; 8^20 would not end.
const FANNING_OUT: [(usize, usize); 3] = [(10, 4), (12, 4), (20, 8)];

/// The documents of the finding: fragments fanning out under the operation asked for, and
/// under another operation of the document, which async-graphql checks all the same.
fn fragment_bombs() -> Vec<(String, Option<&'static str>)> {
    FANNING_OUT
        .into_iter()
        .flat_map(|(levels, fan_out)| {
            let fragments = fanning_out(levels, fan_out);
            [
                (format!("query{{...F0}}{fragments}"), None),
                (
                    format!("query Small{{customer{{email}}}} query Bomb{{...F0}}{fragments}"),
                    Some("Small"),
                ),
            ]
        })
        .collect()
}

/// Asserts the single error of `body` is the refusal of a document too large once written
/// out.
fn assert_too_large_when_expanded(body: &Value) {
    assert_eq!(
        body["errors"][0]["message"], TOO_LARGE_WHEN_EXPANDED,
        "{body}"
    );
    assert_eq!(only_error(body), (TOO_LARGE_WHEN_EXPANDED, "graphql-input"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_spreading_fragments_are_refused_before_the_executor_and_the_server_keeps_answering()
 {
    let server = start().await;
    let token = server.customer_token().await;
    let before = server.stages.counts();
    assert_eq!(fanning_out(12, 4).len() + "query{...F0}".len(), 604);

    for (query, operation_name) in fragment_bombs() {
        let response = server
            .http
            .post(format!("{}/graphql", server.base))
            .json(&json!({ "query": query, "operationName": operation_name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_too_large_when_expanded(&response.json().await.unwrap());

        let mut params = vec![("query", query.as_str())];
        params.extend(operation_name.map(|name| ("operationName", name)));
        let response = server.get(None, &params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_too_large_when_expanded(&response.json().await.unwrap());

        assert_eq!(
            server.stages.counts(),
            before,
            "nothing parsed, validated or resolved by async-graphql"
        );
    }

    let response = server
        .get(
            Some(&token),
            &[("query", "{...Me} fragment Me on Query{customer{email}}")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["customer"]["email"], "customer@example.com",
        "{body}"
    );
}

#[tokio::test]
async fn the_default_limits_refuse_fragments_spreading_fragments_before_async_graphql_checks_them()
{
    let redis = TestRedis::start();
    let stages = Stages::default();
    let schema = observed_schema(
        SignIn::new(redis.registry().await, CountingDirectory::new()),
        &stages,
    );
    let cycle = "{...A} fragment A on Query{customer{email} ...A}".to_owned();
    for (query, operation_name) in fragment_bombs().into_iter().chain([(cycle, None)]) {
        let mut request = async_graphql::Request::new(query);
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        let response = schema.execute(request).await;
        assert_eq!(
            stages.counts(),
            [0, 0, 0],
            "[parsed, validated, resolved]: refused before async-graphql's parse stage"
        );
        assert_too_large_when_expanded(&serde_json::to_value(response).unwrap());
    }

    let body = serde_json::to_value(
        schema
            .execute("{...Me} fragment Me on Query{customer{email}}")
            .await,
    )
    .unwrap();
    assert_eq!(only_error(&body), (NOT_AUTHORIZED, "graphql-authorization"));
    assert_eq!(stages.counts(), [1, 1, 1], "a small document still runs");
}

/// A mutation signing in `count` times under aliases: `a0: generateCustomerToken(…) …`.
fn aliased_sign_ins(count: usize) -> String {
    let fields: String = (0..count)
        .map(|n| format!("a{n}:generateCustomerToken(email:$e,password:$p){{token}}"))
        .collect();
    format!("mutation($e:String!,$p:String!){{{fields}}}")
}

#[tokio::test]
async fn a_request_with_several_token_mutations_is_one_error_and_checks_no_password() {
    let server = start().await;
    let admin = server.admin_token().await;
    let checks_before = server.directory.password_checks();
    let tokens_before = server.stored_tokens().await;
    let right = json!({"e": "customer@example.com", "p": "password"});
    let wrong = json!({"e": "customer@example.com", "p": "guess"});
    let through_fragments = "mutation($e:String!,$p:String!){ ...SignIn \
         ... on Mutation { generateCustomerToken(email:$e,password:$p){token} } } \
         fragment SignIn on Mutation { again: generateCustomerToken(email:$e,password:$p){token} }";
    let mixed = "mutation($e:String!,$p:String!){ generateCustomerToken(email:$e,password:$p){token} \
         generateCustomerTokenAsAdmin(input:{customer_email:$e}){customer_token} }";
    let thousand = aliased_sign_ins(1_000);
    assert!(thousand.len() < graphql::MAX_REQUEST_BYTES);
    for (query, variables) in [
        (aliased_sign_ins(2).as_str(), &right),
        (through_fragments, &right),
        (mixed, &right),
        (thousand.as_str(), &wrong),
    ] {
        let (status, body) = server.post(Some(&admin), query, variables.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            only_error(&body),
            (graphql::ONE_TOKEN_PER_REQUEST_MESSAGE, "graphql-input")
        );
        assert!(body["data"].is_null(), "{body}");
    }
    assert_eq!(server.directory.password_checks(), checks_before);
    assert!(!server.customer_has_failures().await, "no attempt counted");
    assert_eq!(
        server.stored_tokens().await,
        tokens_before,
        "no token issued"
    );

    let token = server.customer_token().await;
    assert_eq!(server.rest_me(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn aliased_sign_ins_check_no_password_even_in_a_schema_without_limits() {
    let redis = TestRedis::start();
    let directory = CountingDirectory::new();
    let schema = schema_without_limits(SignIn::new(redis.registry().await, directory.clone()));
    let request = async_graphql::Request::new(aliased_sign_ins(1_000)).variables(
        async_graphql::Variables::from_json(json!({"e": "customer@example.com", "p": "guess"})),
    );
    let response = schema.execute(request).await;
    assert_eq!(response.errors.len(), 1_000, "each field refuses");
    assert!(
        response
            .errors
            .iter()
            .all(|error| error.message == graphql::ONE_TOKEN_PER_REQUEST_MESSAGE)
    );
    assert_eq!(directory.password_checks(), 0);
}

/// Thousands of aliases are refused: by the complexity limit when they fit
/// [`graphql::MAX_EXPANDED_NODES`] (2,000 sign-ins come to 8,000 nodes: each field, its two
/// arguments and `token`), before validation when they do not.
#[tokio::test]
async fn the_default_limits_refuse_thousands_of_aliases() {
    let redis = TestRedis::start();
    let directory = CountingDirectory::new();
    let schema = schema(SignIn::new(redis.registry().await, directory.clone()));
    let customers = |count: usize| {
        format!(
            "{{{}}}",
            (0..count)
                .map(|n| format!("a{n}:customer{{email}} "))
                .collect::<String>()
        )
    };
    for (query, refusal) in [
        (aliased_sign_ins(2_000), "Query is too complex."),
        (customers(2_000), "Query is too complex."),
        (aliased_sign_ins(20_000), TOO_LARGE_WHEN_EXPANDED),
        (customers(20_000), TOO_LARGE_WHEN_EXPANDED),
    ] {
        let request = async_graphql::Request::new(query).variables(
            async_graphql::Variables::from_json(json!({"e": "customer@example.com", "p": "guess"})),
        );
        let response = schema.execute(request).await;
        assert_eq!(response.errors.len(), 1);
        assert_eq!(response.errors[0].message, refusal);
    }
    assert_eq!(directory.password_checks(), 0);
}

/// The introspection query of GraphiQL (graphql-js `getIntrospectionQuery` with every option
/// async-graphql answers).
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}
fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}
fragment TypeRef on __Type {
  kind
  name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name } } } } } } } } }
  }
}
"#;

#[tokio::test]
async fn graphiqls_introspection_query_fits_the_default_limits() {
    let redis = TestRedis::start();
    let schema = schema(SignIn::new(
        redis.registry().await,
        CountingDirectory::new(),
    ));
    let body = serde_json::to_value(schema.execute(INTROSPECTION).await).unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    assert!(body["data"]["__schema"]["types"].is_array(), "{body}");
}

#[tokio::test]
async fn every_answer_to_a_post_is_marked_no_store_while_get_queries_stay_cacheable() {
    let server = start().await;
    let no_store = |response: &reqwest::Response| {
        response
            .headers()
            .get("cache-control")
            .is_some_and(|value| value == "no-store")
    };

    let issued = server
        .http
        .post(format!("{}/graphql", server.base))
        .json(&json!({
            "query": GENERATE,
            "variables": {"email": "customer@example.com", "password": "password"},
        }))
        .send()
        .await
        .unwrap();
    assert!(no_store(&issued), "the answer carries a token");
    let token = issued.json::<Value>().await.unwrap()["data"]["generateCustomerToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let refused = server
        .http
        .post(format!("{}/graphql", server.base))
        .bearer_auth("0123456789abcdefghijklmnopqrstuv")
        .json(&json!({ "query": CUSTOMER }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(no_store(&refused), "the layer's refusals too");
    let not_json = server
        .http
        .post(format!("{}/graphql", server.base))
        .body(r#"{"query":"{customer{email}}"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(no_store(&not_json), "the transport's refusals too");

    let query = server
        .get(Some(&token), &[("query", "{customer{email}}")])
        .await;
    assert_eq!(query.status(), StatusCode::OK);
    assert!(!no_store(&query), "GET answers stay cacheable");
}
