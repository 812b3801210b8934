//! Strict parsing of `Authorization: Bearer <token>` (RFC 6750 §2.1, RFC 9110 §11).
//!
//! ```
//! use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
//! use tower_bearer::bearer::{MalformedAuthorization, bearer_token};
//!
//! let mut headers = HeaderMap::new();
//! assert_eq!(bearer_token(&headers), Ok(None));
//!
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  abc.DEF-123=="));
//! assert_eq!(bearer_token(&headers), Ok(Some("abc.DEF-123==")));
//!
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
//! assert_eq!(bearer_token(&headers), Ok(None));
//!
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a b"));
//! assert_eq!(bearer_token(&headers), Err(MalformedAuthorization::InvalidCharacter));
//! ```

use std::fmt;

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The longest token accepted, in bytes. Longer values are refused before any lookup.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why an `Authorization` header is not a well-formed Bearer credential
/// (answered with 400 `invalid_request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedAuthorization {
    /// More than one `Authorization` header.
    MultipleHeaders,
    /// The `Bearer` scheme with no token after it.
    MissingToken,
    /// The scheme is not followed by a space (e.g. a tab).
    BadSeparator,
    /// A character outside RFC 6750's `b64token` (`A-Z a-z 0-9 - . _ ~ + /`, then `=`
    /// padding), such as a space inside the token.
    InvalidCharacter,
    /// A byte outside ASCII.
    NonAscii,
    /// The token is longer than [`MAX_TOKEN_LEN`].
    TooLong,
}

impl MalformedAuthorization {
    /// A short description, safe to send to the client (it never repeats the input).
    pub fn description(self) -> &'static str {
        match self {
            Self::MultipleHeaders => "more than one Authorization header",
            Self::MissingToken => "the Bearer scheme has no token",
            Self::BadSeparator => "the scheme must be followed by a space",
            Self::InvalidCharacter => "the token has a character not allowed in a bearer token",
            Self::NonAscii => "the header has a non-ASCII byte",
            Self::TooLong => "the token is too long",
        }
    }
}

impl fmt::Display for MalformedAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Extracts the bearer token from request headers, without allocating.
///
/// - no `Authorization` header, an empty one (PWA Studio sends `authorization: ''` for
///   guests), or another scheme such as `Basic` → `Ok(None)`: no bearer credentials;
/// - `Bearer`, in any case, then one or more spaces, then a `b64token` of at most
///   [`MAX_TOKEN_LEN`] bytes → `Ok(Some(token))`;
/// - anything else that claims the `Bearer` scheme, or several `Authorization` headers →
///   `Err(_)`.
///
/// Leading and trailing spaces and tabs around the whole value are ignored, as RFC 9110
/// §5.5 requires of field values.
///
/// # Errors
/// [`MalformedAuthorization`] as listed above.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, MalformedAuthorization> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(MalformedAuthorization::MultipleHeaders);
    }
    parse_credentials(value.as_bytes())
}

fn parse_credentials(value: &[u8]) -> Result<Option<&str>, MalformedAuthorization> {
    let value = value.trim_ascii();
    let scheme_len = value.iter().take_while(|b| is_tchar(**b)).count();
    let (scheme, rest) = value.split_at(scheme_len);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // Another scheme (or none): not ours to judge.
        return Ok(None);
    }
    let token = match rest.first() {
        None => return Err(MalformedAuthorization::MissingToken),
        Some(b' ') => trim_spaces(rest),
        Some(byte) if !byte.is_ascii() => return Err(MalformedAuthorization::NonAscii),
        Some(_) => return Err(MalformedAuthorization::BadSeparator),
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(MalformedAuthorization::TooLong);
    }
    validate_b64token(token)?;
    // validate_b64token admits only ASCII, so this cannot fail; stay total anyway.
    std::str::from_utf8(token)
        .map(Some)
        .map_err(|_| MalformedAuthorization::NonAscii)
}

/// Drops the leading spaces of `1*SP` (only spaces: a tab there is malformed).
fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let spaces = bytes.iter().take_while(|b| **b == b' ').count();
    &bytes[spaces..]
}

/// RFC 6750: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn validate_b64token(token: &[u8]) -> Result<(), MalformedAuthorization> {
    let body_len = token.iter().take_while(|b| is_b64token_char(**b)).count();
    let padding = &token[body_len..];
    if body_len == 0 && padding.is_empty() {
        return Err(MalformedAuthorization::MissingToken);
    }
    if body_len == 0 || !padding.iter().all(|b| *b == b'=') {
        return Err(if token.is_ascii() {
            MalformedAuthorization::InvalidCharacter
        } else {
            MalformedAuthorization::NonAscii
        });
    }
    Ok(())
}

/// RFC 9110's `tchar`: a byte of the scheme.
const TCHAR: u8 = 1;
/// RFC 6750's `b64token`, padding aside: a byte of the token.
const B64TOKEN: u8 = 2;

/// The classes of every byte, so the parser looks each byte up once instead of testing it
/// against a list of characters.
static CLASSES: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut index = 0;
    while index < table.len() {
        let byte = index as u8;
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+') {
            table[index] = TCHAR | B64TOKEN;
        } else if byte == b'/' {
            table[index] = B64TOKEN;
        } else if matches!(
            byte,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'^' | b'`' | b'|'
        ) {
            table[index] = TCHAR;
        }
        index += 1;
    }
    table
}

fn is_b64token_char(byte: u8) -> bool {
    CLASSES[usize::from(byte)] & B64TOKEN != 0
}

fn is_tchar(byte: u8) -> bool {
    CLASSES[usize::from(byte)] & TCHAR != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use MalformedAuthorization::*;

    fn parse(value: &[u8]) -> Result<Option<&str>, MalformedAuthorization> {
        parse_credentials(value)
    }

    #[test]
    fn the_byte_classes_are_the_rfc_character_sets() {
        // RFC 9110 §5.6.2 tchar; RFC 6750 §2.1 b64token (padding aside).
        let tchar_symbols = b"!#$%&'*+-.^_`|~";
        let b64token_symbols = b"-._~+/";
        for byte in 0..=u8::MAX {
            let alphanumeric = byte.is_ascii_alphanumeric();
            assert_eq!(
                is_tchar(byte),
                alphanumeric || tchar_symbols.contains(&byte),
                "tchar {byte}"
            );
            assert_eq!(
                is_b64token_char(byte),
                alphanumeric || b64token_symbols.contains(&byte),
                "b64token {byte}"
            );
        }
    }

    #[test]
    fn accepts_well_formed_bearer_credentials() {
        assert_eq!(parse(b"Bearer abc"), Ok(Some("abc")));
        assert_eq!(parse(b"bearer abc"), Ok(Some("abc")));
        assert_eq!(parse(b"BEARER abc"), Ok(Some("abc")));
        assert_eq!(parse(b"Bearer    abc"), Ok(Some("abc")));
        assert_eq!(
            parse(b"Bearer a-b.c_d~e+f/g=="),
            Ok(Some("a-b.c_d~e+f/g=="))
        );
        assert_eq!(parse(b"  Bearer abc \t"), Ok(Some("abc")));
        let longest = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN));
        assert!(parse(longest.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn other_schemes_and_empty_values_are_no_bearer_credentials() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"   "), Ok(None));
        assert_eq!(parse(b"Basic dXNlcjpwYXNz"), Ok(None));
        assert_eq!(parse(b"Bearerx abc"), Ok(None));
        assert_eq!(parse(b"Digest username=\"a\""), Ok(None));
        assert_eq!(parse(b"abcdef0123456789"), Ok(None));
    }

    #[test]
    fn refuses_malformed_bearer_credentials() {
        assert_eq!(parse(b"Bearer"), Err(MissingToken));
        assert_eq!(parse(b"Bearer "), Err(MissingToken));
        assert_eq!(parse(b"Bearer\tabc"), Err(BadSeparator));
        assert_eq!(parse(b"Bearer \tabc"), Err(InvalidCharacter));
        assert_eq!(parse(b"Bearer,abc"), Err(BadSeparator));
        assert_eq!(parse(b"Bearer abc def"), Err(InvalidCharacter));
        assert_eq!(parse(b"Bearer abc\tdef"), Err(InvalidCharacter));
        assert_eq!(parse(b"Bearer ===="), Err(InvalidCharacter));
        assert_eq!(parse(b"Bearer ab=c"), Err(InvalidCharacter));
        assert_eq!(parse(b"Bearer \"abc\""), Err(InvalidCharacter));
        assert_eq!(parse(b"Bearer abc;"), Err(InvalidCharacter));
        assert_eq!(parse("Bearer abcé".as_bytes()), Err(NonAscii));
        assert_eq!(parse(b"Bearer\xa0abc"), Err(NonAscii));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(parse(long.as_bytes()), Err(TooLong));
    }

    #[test]
    fn several_authorization_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, "Bearer abc".parse().unwrap());
        headers.append(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), Err(MultipleHeaders));
    }
}
