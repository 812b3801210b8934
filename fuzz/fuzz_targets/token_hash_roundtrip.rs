//! Differential: a token the header parser accepts, however it was written (scheme in any
//! case, spaces around), hashes to the hash of the token itself, whose hex form, id and raw
//! bytes all read back to the same hash.
#![no_main]

use arbitrary::Arbitrary;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_bearer::bearer::bearer_token;
use tower_bearer::token::{TokenHash, TokenId};

#[derive(Arbitrary, Debug)]
struct Input {
    token: String,
    scheme_case: u8,
    spaces_before: u8,
    spaces_after: u8,
}

fuzz_target!(|input: Input| {
    let scheme: String = "Bearer"
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if input.scheme_case >> (i % 8) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let between = " ".repeat(usize::from(input.spaces_before % 4) + 1);
    let after = "\t".repeat(usize::from(input.spaces_after % 3));
    let written = format!("{scheme}{between}{}{after}", input.token);
    let Ok(value) = HeaderValue::from_str(&written) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let Ok(Some(token)) = bearer_token(&headers) else {
        return;
    };
    // What was accepted is exactly the token written (spaces and tabs around a field
    // value are not part of it, RFC 9110 §5.5), so it hashes to the same.
    let written = input.token.trim_matches([' ', '\t']);
    assert_eq!(token, written);
    let hash = TokenHash::of(token);
    assert_eq!(hash, TokenHash::of(written));
    assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
    assert_eq!(TokenHash::from_bytes(hash.as_bytes()), Some(hash));
    assert_eq!(TokenId::parse(hash.id().as_str()), Some(hash.id()));
});
