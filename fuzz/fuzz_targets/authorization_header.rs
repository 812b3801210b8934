//! The `Authorization` header parser: any bytes a client can put in the header. It never
//! panics; what it accepts is a bounded token without spaces, which it accepts again
//! written canonically.
#![no_main]

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_bearer::bearer::{MAX_TOKEN_LEN, bearer_token};

fuzz_target!(|data: &[u8]| {
    // Two headers when the input holds a NUL: the parser must refuse several.
    let mut headers = HeaderMap::new();
    for part in data.splitn(2, |byte| *byte == 0) {
        let Ok(value) = HeaderValue::from_bytes(part) else {
            return; // not a value http lets through
        };
        headers.append(AUTHORIZATION, value);
    }
    let Ok(Some(token)) = bearer_token(&headers) else {
        return;
    };
    assert_eq!(headers.len(), 1, "several Authorization headers accepted");
    assert!(!token.is_empty() && token.len() <= MAX_TOKEN_LEN);
    assert!(!token.bytes().any(|byte| byte == b' ' || byte == b'\t'));

    let mut canonical = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is a value");
    canonical.insert(AUTHORIZATION, value);
    assert_eq!(bearer_token(&canonical), Ok(Some(token)));
});
