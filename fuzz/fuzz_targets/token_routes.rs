//! The bundled REST routes with whatever a client sends: any route, path segment, content
//! type, body and credentials. No answer is a server error or a panic, and every refusal is
//! JSON with a message.
#![no_main]

use arbitrary::Arbitrary;
use http::{Method, Request};
use libfuzzer_sys::fuzz_target;

mod common;
use common::{APP, CONTENT_TYPES, send};

const ROUTES: [(&str, &str); 12] = [
    ("POST", "/V1/integration/customer/token"),
    ("POST", "/V1/integration/admin/token"),
    ("POST", "/V1/tfa/provider/google/authenticate"),
    ("POST", "/V1/integration/token/revoke"),
    ("POST", "/V1/integration/customer/revoke-customer-token"),
    ("POST", "/V1/customers/{}/tokens/revoke"),
    ("GET", "/V1/customers/{}/tokens"),
    ("DELETE", "/V1/customers/me/tokens/{}"),
    ("POST", "/V1/customers/me/tokens/revoke-others"),
    ("POST", "/V1/integration/tokens"),
    ("DELETE", "/V1/integration/tokens/{}"),
    ("GET", "/V1/customers/me/tokens"),
];

#[derive(Arbitrary, Debug)]
struct Input {
    route: u8,
    path_part: String,
    content_type: u8,
    credentials: u8,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let (method, template) = ROUTES[usize::from(input.route) % ROUTES.len()];
    let path = template.replace("{}", &input.path_part);
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("a method"))
        .uri(path);
    let content_type = CONTENT_TYPES[usize::from(input.content_type) % CONTENT_TYPES.len()];
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    let app = &*APP;
    let credentials = match input.credentials % 4 {
        0 => None,
        1 => Some(app.customer_token.as_str()),
        2 => Some(app.admin_token.as_str()),
        _ => Some("not-a-live-token"),
    };
    if let Some(token) = credentials {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let Ok(request) = request.body(axum::body::Body::from(input.body)) else {
        return; // a path that is no URI never reaches a server
    };
    send(request);
});
