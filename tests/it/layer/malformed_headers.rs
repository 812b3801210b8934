//! Row "malformed": `Bearer` credentials that break RFC 6750's grammar are refused with
//! 400 and `invalid_request`, in either mode, even around a live token.

use http::{HeaderValue, StatusCode};
use tower_bearer::bearer::MAX_TOKEN_LEN;
use tower_bearer::{TokenKind, TokenRegistry};

use super::{
    BOTH_MODES, Challenge, INVALID_REQUEST_PREFIX, assert_refused, header, issue, send_both,
};

/// Malformed `Authorization` inputs: each is one or more header values. `token_a` and
/// `token_b` are live tokens, to show that even valid tokens are refused when the header
/// around them is malformed.
fn malformed_inputs(token_a: &str, token_b: &str) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let one = |bytes: &[u8]| vec![bytes.to_vec()];
    let too_long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
    vec![
        ("Bearer with no token", one(b"Bearer")),
        ("Bearer and a trailing space", one(b"Bearer ")),
        ("lower-case bearer with no token", one(b"bearer")),
        ("Bearer and only spaces and a tab", one(b"Bearer  \t")),
        ("a tab as separator", one(b"Bearer\tabc")),
        ("a comma as separator", one(b"Bearer,abc")),
        ("an equals sign as separator", one(b"Bearer=abc")),
        ("a slash as separator", one(b"Bearer/abc")),
        ("two tokens", one(b"Bearer abc def")),
        ("a tab inside the token", one(b"Bearer abc\tdef")),
        ("padding only", one(b"Bearer ====")),
        ("padding in the middle", one(b"Bearer ab=c")),
        ("padding first", one(b"Bearer =abc")),
        ("a quoted token", one(b"Bearer \"abc\"")),
        ("a semicolon", one(b"Bearer abc;")),
        ("a comma inside the token", one(b"Bearer abc,def")),
        ("an at sign", one(b"Bearer a@b")),
        ("a backslash", one(b"Bearer a\\b")),
        ("braces", one(b"Bearer {}")),
        ("a colon", one(b"Bearer a:b")),
        ("a percent escape", one(b"BEARER a%20b")),
        ("a question mark", one(b"Bearer a?b")),
        ("an exclamation mark", one(b"Bearer a!b")),
        ("an asterisk", one(b"Bearer a*b")),
        ("a hash sign", one(b"Bearer a#b")),
        ("brackets", one(b"Bearer a[b]")),
        ("a token longer than the bound", one(too_long.as_bytes())),
        ("a non-ASCII byte in the token", one(b"Bearer abc\xe9")),
        ("UTF-8 in the token", one("Bearer abcé".as_bytes())),
        ("a non-breaking space as separator", one(b"Bearer\xa0abc")),
        (
            "a live token followed by junk",
            one(format!("Bearer {token_a} extra").as_bytes()),
        ),
        (
            "a live token with a semicolon",
            one(format!("Bearer {token_a};").as_bytes()),
        ),
        (
            "two Authorization headers with live tokens",
            vec![
                format!("Bearer {token_a}").into_bytes(),
                format!("Bearer {token_b}").into_bytes(),
            ],
        ),
        (
            "the same live token twice",
            vec![
                format!("Bearer {token_a}").into_bytes(),
                format!("Bearer {token_a}").into_bytes(),
            ],
        ),
        (
            "an empty header then a live token",
            vec![Vec::new(), format!("Bearer {token_a}").into_bytes()],
        ),
        (
            "Basic then a live bearer token",
            vec![
                b"Basic dXNlcjpwYXNz".to_vec(),
                format!("Bearer {token_a}").into_bytes(),
            ],
        ),
    ]
}

#[tokio::test]
async fn malformed_bearer_credentials_are_rejected_with_invalid_request() {
    let registry = TokenRegistry::memory();
    let (token_a, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let (token_b, _) = issue(&registry, TokenKind::Customer, "bob@example.com").await;
    let cases = malformed_inputs(&token_a, &token_b);
    assert!(cases.len() >= 20, "at least 20 malformed inputs");
    for (name, values) in &cases {
        let values: Vec<HeaderValue> = values.iter().map(|bytes| header(bytes)).collect();
        for mode in BOTH_MODES {
            let case = format!("malformed: {name}");
            let outcomes = send_both(mode, mode.layer(&registry), &values, &case).await;
            assert_refused(
                &outcomes,
                StatusCode::BAD_REQUEST,
                Challenge::StartsWith(INVALID_REQUEST_PREFIX),
            );
        }
    }
}

/// RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token` — a tab is not a separator,
/// neither alone nor after a space.
#[tokio::test]
async fn a_tab_after_the_separating_space_is_rejected_with_invalid_request() {
    let registry = TokenRegistry::memory();
    let (token, _) = issue(&registry, TokenKind::Customer, "ada@example.com").await;
    let value = [header(format!("Bearer \t{token}").as_bytes())];
    for mode in BOTH_MODES {
        let outcomes = send_both(mode, mode.layer(&registry), &value, "space then tab").await;
        assert_refused(
            &outcomes,
            StatusCode::BAD_REQUEST,
            Challenge::StartsWith(INVALID_REQUEST_PREFIX),
        );
    }
}

/// Each way of being malformed is named to the client, in the challenge's
/// `error_description` and in the body's message, and never by repeating the input.
#[tokio::test]
async fn the_client_is_told_what_is_malformed() {
    use tower::{ServiceBuilder, ServiceExt};

    let too_long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
    let cases: [(&[&[u8]], &str); 6] = [
        (
            &[b"Bearer a", b"Bearer b"],
            "more than one Authorization header",
        ),
        (&[b"Bearer"], "the Bearer scheme has no token"),
        (&[b"Bearer\tabc"], "the scheme must be followed by a space"),
        (
            &[b"Bearer a@b"],
            "the token has a character not allowed in a bearer token",
        ),
        (&[b"Bearer abc\xe9"], "the header has a non-ASCII byte"),
        (&[too_long.as_bytes()], "the token is too long"),
    ];
    for (values, description) in cases {
        let service = ServiceBuilder::new()
            .layer(tower_bearer::BearerAuthLayer::required(
                TokenRegistry::memory(),
            ))
            .service_fn(|_: http::Request<String>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            });
        let mut request = http::Request::new(String::new());
        for value in values {
            request
                .headers_mut()
                .append(http::header::AUTHORIZATION, header(value));
        }
        let response = service.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let challenge = response.headers()[http::header::WWW_AUTHENTICATE]
            .to_str()
            .expect("ASCII");
        assert!(
            challenge.ends_with(&format!("error_description=\"{description}\"")),
            "{challenge}"
        );
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("a body")
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            body["message"],
            format!("The Authorization header is malformed: {description}.")
        );
    }
}
