//! `magento::openapi()` against the router it documents: no drift either way, and a
//! well-formed OpenAPI 3.1 document.
//!
//! The routes are found without a list kept by hand: the `.route("…", get(…).post(…))`
//! calls of `src/magento/*.rs` are read at test time, and every path and method of the
//! document is sent to the real `rest::router`, whose fallbacks mark what no route answers.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::{Body, to_bytes};
use http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use tower_bearer::magento::{BEARER_AUTH, openapi, rest};
use tower_bearer::sign_in::MemoryDirectory;
use tower_bearer::{SignIn, TokenRegistry};

/// The bodies of the test's fallbacks: what the router answers when no route matched.
const NO_ROUTE: &str = "openapi test: no route has this path";
const NO_METHOD: &str = "openapi test: the route has no such method";

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A route: its path as written (`/V1/customers/{email}/tokens`) and a lowercase method.
type Operation = (String, String);

fn document() -> Value {
    serde_json::to_value(openapi()).expect("the document serializes")
}

/// The `(path, method)` of every operation of the document.
fn documented(document: &Value) -> BTreeSet<Operation> {
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.as_str()) || method == "head" || method == "options" {
                operations.insert((path.clone(), method.clone()));
            }
        }
    }
    operations
}

/// The router under test, its unmatched requests marked.
fn router() -> Router {
    let sign_in = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new());
    rest::router(sign_in)
        .fallback(|| async { (StatusCode::NOT_FOUND, NO_ROUTE) })
        .method_not_allowed_fallback(|| async { (StatusCode::METHOD_NOT_ALLOWED, NO_METHOD) })
}

/// A path with its `{parameters}` filled in.
fn concrete(path: &str) -> String {
    path.replace("{email}", "someone@example.com")
        .replace("{token_id}", "0123456789abcdef")
}

/// The status `router` answers `method path` with (no token, no body), or `None` when no
/// route answered it.
async fn probe(router: &Router, method: &str, path: &str) -> Option<StatusCode> {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
    let request = Request::builder()
        .method(method)
        .uri(concrete(path))
        .body(Body::empty())
        .expect("a request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    if body == NO_ROUTE.as_bytes() || body == NO_METHOD.as_bytes() {
        None
    } else {
        Some(status)
    }
}

/// The routes the source declares: every `.route(PATH, get(…).post(…))` call of
/// `src/magento/*.rs`, the path a string literal or a `const` of the same file. Any way of
/// adding routes this cannot read fails the test rather than hiding a route.
fn declared() -> BTreeSet<Operation> {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/src/magento");
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .expect("src/magento")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "rs"))
        .collect();
    files.sort();
    let mut operations = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        // Comments (doc examples among them) are not code.
        let code: String = text
            .lines()
            .map(|line| line.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        for unreadable in [".route_service(", ".nest(", ".nest_service(", ".fallback("] {
            assert!(
                !code.contains(unreadable),
                "{}: `{unreadable}` adds routes this test cannot read",
                file.display()
            );
        }
        for (index, _) in code.match_indices(".route(") {
            let arguments = balanced(&code[index + ".route".len()..]);
            let (path, handlers) = arguments
                .split_once(',')
                .unwrap_or_else(|| panic!("{}: a `.route` call without handlers", file.display()));
            let path = path.trim();
            let path = match path.strip_prefix('"') {
                Some(literal) => literal.trim_end_matches('"').to_owned(),
                None => constant(&code, path)
                    .unwrap_or_else(|| panic!("{}: cannot read the path `{path}`", file.display())),
            };
            let methods = methods_of(handlers);
            assert!(
                !methods.is_empty(),
                "{}: cannot read the methods of {path}: {handlers}",
                file.display()
            );
            for method in methods {
                operations.insert((path.clone(), method));
            }
        }
    }
    operations
}

/// The text inside the parentheses `text` opens with.
fn balanced(text: &str) -> &str {
    let mut depth = 0usize;
    for (index, character) in text.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[1..index];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses: {text}")
}

/// The value of `const NAME: &str = "…";` in `code`.
fn constant(code: &str, name: &str) -> Option<String> {
    let declaration = format!("const {name}: &str = \"");
    let start = code.find(&declaration)? + declaration.len();
    let end = code[start..].find('"')?;
    Some(code[start..start + end].to_owned())
}

/// The methods of a method router's expression: `get(a).post(b)` is GET and POST. `any`
/// or `on` fail the test: what they answer cannot be read here.
fn methods_of(handlers: &str) -> BTreeSet<String> {
    let mut methods = BTreeSet::new();
    let words =
        handlers.split(|character: char| !(character.is_alphanumeric() || character == '_'));
    let mut rest = handlers;
    for word in words {
        if word.is_empty() {
            continue;
        }
        let Some(at) = rest.find(word) else { continue };
        rest = &rest[at + word.len()..];
        let called = rest.trim_start().starts_with('(');
        if !called {
            continue;
        }
        assert!(
            word != "any" && word != "on" && word != "any_service" && word != "on_service",
            "`{word}(…)` answers methods this test cannot read: {handlers}"
        );
        if METHODS.contains(&word) || word == "head" || word == "options" {
            methods.insert(word.to_owned());
        }
    }
    methods
}

#[test]
fn every_declared_route_is_documented_and_every_documented_route_declared() {
    let declared = declared();
    let documented = documented(&document());
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let undeclared: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty(),
        "routes the router declares but the document lacks: {undocumented:?}"
    );
    assert!(
        undeclared.is_empty(),
        "operations the document has but no `.route` declares: {undeclared:?}"
    );
    // The reading of the source found something: the bundled routes are many.
    assert!(declared.len() >= 18, "{declared:?}");
}

#[tokio::test]
async fn the_router_answers_every_documented_method_and_no_other() {
    let router = router();
    let document = document();
    let documented = documented(&document);
    let paths: BTreeSet<&String> = documented.iter().map(|(path, _)| path).collect();
    for path in paths {
        for method in METHODS {
            let answered = probe(&router, method, path).await;
            let operation = (path.clone(), method.to_owned());
            match (documented.contains(&operation), answered) {
                (true, None) => {
                    panic!("{method} {path} is documented; the router does not answer it")
                }
                (false, Some(status)) => {
                    panic!("the router answers {method} {path} ({status}); the document lacks it")
                }
                (true, Some(status)) => {
                    // Without a token and a body, the answer is one of the documented ones.
                    let operation = &document["paths"][path][method];
                    assert!(
                        operation["responses"].get(status.as_str()).is_some(),
                        "{method} {path} answered {status}, which it does not document"
                    );
                    // Documented as taking a token exactly when it refuses a request without.
                    let secured = operation.get("security").is_some();
                    assert_eq!(
                        status == StatusCode::UNAUTHORIZED,
                        secured,
                        "{method} {path} answered {status} without a token; security: {secured}"
                    );
                }
                (false, None) => {}
            }
        }
    }
}

#[tokio::test]
async fn the_probe_tells_unknown_routes_and_methods_apart() {
    let router = router();
    assert_eq!(probe(&router, "get", "/V1/no/such/route").await, None);
    assert_eq!(
        probe(&router, "get", "/V1/integration/customer/token").await,
        None
    );
    assert_eq!(
        probe(&router, "put", "/V1/integration/tokens/{token_id}").await,
        None,
        "a method a route behind the Bearer layer lacks"
    );
    assert_eq!(
        probe(&router, "post", "/V1/integration/customer/token").await,
        Some(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        probe(&router, "get", "/V1/integration/tokens").await,
        Some(StatusCode::UNAUTHORIZED)
    );
}

#[test]
fn the_source_reader_reads_routes_as_written() {
    assert_eq!(
        methods_of(" get(list).post(create)"),
        BTreeSet::from(["get".to_owned(), "post".to_owned()])
    );
    assert_eq!(
        methods_of("\n            post(customer_end_others),\n        "),
        BTreeSet::from(["post".to_owned()])
    );
    assert_eq!(balanced("(\"/a\", get(f))\n.route"), "\"/a\", get(f)");
    assert_eq!(
        constant("const ROUTE: &str = \"/V1/x\";", "ROUTE").as_deref(),
        Some("/V1/x")
    );
}

/// Every `"$ref"` of `value`, with where it is.
fn references(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                if name == "$ref"
                    && let Value::String(reference) = field
                {
                    found.push((at.to_owned(), reference.clone()));
                }
                references(field, &format!("{at}/{name}"), found);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                references(item, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_with_every_reference_resolved() {
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["info"]["title"].is_string());
    assert!(document["info"]["version"].is_string());

    let mut found = Vec::new();
    references(&document, "", &mut found);
    assert!(!found.is_empty());
    for (at, reference) in found {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: {reference} is not a local reference"));
        assert!(
            document.pointer(pointer).is_some(),
            "{at}: {reference} does not resolve"
        );
    }

    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes[BEARER_AUTH]["type"], "http");
    assert_eq!(schemes[BEARER_AUTH]["scheme"], "bearer");
}

#[test]
fn every_operation_documents_its_answers_parameters_and_security() {
    let document = document();
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let mut operation_ids = BTreeMap::new();
    for (path, method) in documented(&document) {
        let operation = &document["paths"][&path][&method];
        let name = format!("{method} {path}");
        let id = operation["operationId"].as_str().expect("an operationId");
        assert!(
            operation_ids.insert(id.to_owned(), name.clone()).is_none(),
            "{name}: operationId {id} is not unique"
        );
        assert!(
            operation["tags"]
                .as_array()
                .is_some_and(|tags| !tags.is_empty()),
            "{name}"
        );

        let responses = operation["responses"].as_object().expect("responses");
        assert!(responses.contains_key("200"), "{name}: no 200");
        for (status, response) in responses {
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{name} {status}: no description"
            );
            if status != "200" {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorMessage",
                    "{name} {status}: refusals are {{\"message\": …}}"
                );
            }
        }
        // Every route may find its backend down.
        assert!(responses.contains_key("503"), "{name}: no 503");
        assert!(
            responses["503"]["headers"].get("Retry-After").is_some(),
            "{name}: 503 without Retry-After"
        );
        // A body read is limited (413) and typed (415).
        if let Some(body) = operation.get("requestBody") {
            for (media_type, content) in body["content"].as_object().expect("content") {
                assert!(
                    content["schema"]["$ref"].is_string(),
                    "{name} {media_type}: a body is one of the schemas (never `null`)"
                );
            }
            for status in ["400", "413", "415"] {
                assert!(responses.contains_key(status), "{name}: no {status}");
            }
        }
        // The routes that take a token: the layer's and the extractors' refusals.
        if let Some(security) = operation.get("security") {
            let requirements = security.as_array().expect("security requirements");
            assert!(!requirements.is_empty(), "{name}");
            for requirement in requirements {
                for scheme in requirement.as_object().expect("a requirement").keys() {
                    assert!(schemes.contains_key(scheme), "{name}: no scheme {scheme}");
                }
            }
            for status in ["400", "401", "403", "503"] {
                assert!(responses.contains_key(status), "{name}: no {status}");
            }
        }

        // Path parameters: declared exactly as the path names them, and required.
        let named: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let declared: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| {
                assert_eq!(parameter["required"], true, "{name}: {parameter}");
                parameter["name"].as_str().expect("a parameter name")
            })
            .collect();
        assert_eq!(named, declared, "{name}: path parameters");
    }
}

#[test]
fn only_the_token_issuing_routes_are_open() {
    let document = document();
    let open: BTreeSet<String> = documented(&document)
        .into_iter()
        .filter(|(path, method)| document["paths"][path][method].get("security").is_none())
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        open,
        BTreeSet::from([
            "/V1/integration/admin/token".to_owned(),
            "/V1/integration/customer/token".to_owned(),
            "/V1/tfa/provider/google/authenticate".to_owned(),
        ])
    );
}

/// The properties the document gives schema `name`.
fn properties(document: &Value, name: &str) -> BTreeSet<String> {
    document["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} has properties"))
        .keys()
        .cloned()
        .collect()
}

/// The properties the document says schema `name` always has.
fn required(document: &Value, name: &str) -> BTreeSet<String> {
    document["components"]["schemas"][name]["required"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The fields of a JSON object.
fn fields(object: &Value) -> BTreeSet<String> {
    object
        .as_object()
        .unwrap_or_else(|| panic!("an object: {object}"))
        .keys()
        .cloned()
        .collect()
}

/// Sends `method path` with `token` and a JSON or form `body`; returns the status and body.
async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some((content_type, body)) => {
            request = request.header("content-type", content_type);
            Body::from(body)
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).expect("a request"))
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The bodies the routes build by hand carry exactly the fields their schemas document:
/// a field added to, or dropped from, a body without its schema fails here.
#[tokio::test]
async fn the_routes_answer_bodies_with_the_documented_fields() {
    let directory = MemoryDirectory::new();
    directory
        .add_customer(
            "ada@example.com",
            "password",
            tower_bearer::sign_in::RemoteAssistance::Denied,
        )
        .expect("hash a password");
    directory
        .add_admin("root", "admin123")
        .expect("hash a password");
    let router = rest::router(SignIn::new(TokenRegistry::memory(), directory));
    let document = document();
    let json = "application/json";
    let sign_in = |kind: &'static str, username: &'static str, password: &'static str| {
        let router = router.clone();
        async move {
            let body = serde_json::json!({ "username": username, "password": password });
            let path = format!("/V1/integration/{kind}/token");
            let (status, token) = call(
                &router,
                Method::POST,
                &path,
                None,
                Some((json, body.to_string())),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            token.as_str().expect("a token").to_owned()
        }
    };
    let customer = sign_in("customer", "ada@example.com", "password").await;
    let admin = sign_in("admin", "root", "admin123").await;

    let (status, sessions) = call(
        &router,
        Method::GET,
        "/V1/customers/me/tokens",
        Some(&customer),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let session = &sessions.as_array().expect("a list")[0];
    assert_eq!(fields(session), properties(&document, "Session"));
    // Every field is sent, `null` when empty: every one is required.
    for schema in [
        "Session",
        "NewIntegrationToken",
        "IntegrationToken",
        "ErrorMessage",
    ] {
        assert_eq!(
            required(&document, schema),
            properties(&document, schema),
            "{schema}"
        );
    }

    let body = serde_json::json!({ "name": "erp", "scopes": ["introspect"], "lifetime": 3600 });
    let (status, created) = call(
        &router,
        Method::POST,
        "/V1/integration/tokens",
        Some(&admin),
        Some((json, body.to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        fields(&created),
        properties(&document, "NewIntegrationToken")
    );
    let (status, listed) = call(
        &router,
        Method::GET,
        "/V1/integration/tokens",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed = &listed.as_array().expect("a list")[0];
    assert_eq!(fields(listed), properties(&document, "IntegrationToken"));

    // Every field of an active answer is documented, and an inactive one has `active` alone.
    let introspect = "/V1/integration/token/introspect";
    let form = "application/x-www-form-urlencoded";
    let body = Some((form, format!("token={customer}")));
    let (status, active) = call(&router, Method::POST, introspect, Some(&admin), body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(active["active"], true);
    let documented = properties(&document, "Introspection");
    assert!(fields(&active).is_subset(&documented), "{active}");
    let body = Some((form, "token=unknown".to_owned()));
    let (_, inactive) = call(&router, Method::POST, introspect, Some(&admin), body).await;
    assert_eq!(fields(&inactive), BTreeSet::from(["active".to_owned()]));

    let (status, refused) = call(&router, Method::GET, "/V1/customers/me/tokens", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(fields(&refused), properties(&document, "ErrorMessage"));
}
