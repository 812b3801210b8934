//! Token introspection (RFC 7662) with whatever body a resource server sends, as a form or
//! as JSON, sometimes around a live token: the answer is `{"active": …}` (true only for the
//! live token) or a JSON refusal, never a server error.
#![no_main]

use arbitrary::Arbitrary;
use http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;

mod common;
use common::{APP, CONTENT_TYPES, send};

#[derive(Arbitrary, Debug)]
struct Input {
    content_type: u8,
    /// Put the live customer token at this byte of the body (when in range).
    splice_at: Option<u16>,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let app = &*APP;
    let mut body = input.body;
    if let Some(at) = input
        .splice_at
        .map(usize::from)
        .filter(|at| *at <= body.len())
    {
        body.splice(at..at, app.customer_token.bytes());
    }
    let content_type = CONTENT_TYPES[usize::from(input.content_type) % CONTENT_TYPES.len()];
    let mut request = Request::post("/V1/integration/token/introspect")
        .header("authorization", format!("Bearer {}", app.admin_token));
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    let request = request
        .body(axum::body::Body::from(body))
        .expect("a request");
    let (status, answer) = send(request);
    if status == StatusCode::OK {
        let json: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
        let active = json["active"].as_bool().expect("`active` is a boolean");
        if active {
            assert_eq!(json["sub"], "kept@example.com", "{json}");
        } else {
            assert_eq!(
                json.as_object().map(|fields| fields.len()),
                Some(1),
                "{json}"
            );
        }
    }
});
