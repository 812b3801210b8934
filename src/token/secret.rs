//! The bearer secret ([`Token`]) and what is kept of it at rest ([`TokenHash`], [`TokenId`]).

use std::fmt;

use sha2::{Digest, Sha256};

/// Number of characters in a token this crate issues (Magento's format).
pub const TOKEN_LEN: usize = 32;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Largest multiple of 36 that fits in a byte: bytes at or above it are redrawn so every
/// character is equally likely.
const UNBIASED_LIMIT: u8 = 252;

/// The operating system's random source failed (e.g. no entropy yet at boot).
#[derive(Debug, thiserror::Error)]
#[error("the OS random source failed: {0}")]
pub struct RandomError(#[source] getrandom::Error);

/// Fills `bytes` from the OS CSPRNG: the one place this crate draws randomness.
pub(crate) fn random_fill(bytes: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(bytes).map_err(RandomError)
}

/// A bearer token: 32 characters of `[0-9a-z]` (about 165 bits) drawn from the OS CSPRNG.
///
/// This is the secret handed to the client. It is never stored, logged or printed:
/// `Debug` and `Display` show `<redacted>`, and the only way to read it is
/// [`Token::expose`], to send it to its owner once.
///
/// ```
/// use tower_bearer::token::Token;
///
/// let token = Token::generate().expect("the OS random source is available");
/// assert_eq!(token.expose().len(), 32);
/// assert_eq!(format!("{token:?}"), "Token(<redacted>)");
/// assert_eq!(token.to_string(), "<redacted>");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Draws a new token from the operating system's CSPRNG.
    ///
    /// # Errors
    /// Fails only when the operating system cannot provide random bytes.
    pub fn generate() -> Result<Self, RandomError> {
        let mut token = String::with_capacity(TOKEN_LEN);
        let mut pool = [0u8; 64];
        while token.len() < TOKEN_LEN {
            random_fill(&mut pool)?;
            for symbol in pool.into_iter().filter_map(symbol_of) {
                if token.len() == TOKEN_LEN {
                    break;
                }
                token.push(symbol);
            }
        }
        Ok(Self(token))
    }

    /// A token of `text`, as a [`TokenFormat`](super::TokenFormat) generated it.
    pub(crate) fn from_text(text: String) -> Self {
        Self(text)
    }

    /// The token text, to be sent to its owner. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of this token: the only form in which it is kept.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    /// Whether `text` has the shape of a token this crate issues (32 of `[0-9a-z]`).
    ///
    /// Anything else cannot be a live token, so it is refused without asking the store.
    pub fn has_issued_shape(text: &str) -> bool {
        // Without early exit (`&`, `|`), so the check runs on whole vectors of bytes.
        text.len() == TOKEN_LEN
            && text.bytes().fold(true, |shaped, b| {
                shaped & (b.is_ascii_digit() | b.is_ascii_lowercase())
            })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// SHA-256 of a token: the key under which a token is stored.
///
/// ```
/// use tower_bearer::token::TokenHash;
///
/// let hash = TokenHash::of("abc");
/// assert_eq!(
///     hash.to_hex(),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// assert_eq!(hash.id().as_str(), "ba7816bf8f01");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes token text.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash whose raw bytes are `bytes` (as a store keeps them); `None` unless exactly
    /// 32 bytes.
    ///
    /// ```
    /// use tower_bearer::token::TokenHash;
    ///
    /// let hash = TokenHash::of("abc");
    /// assert_eq!(TokenHash::from_bytes(hash.as_bytes()), Some(hash));
    /// assert_eq!(TokenHash::from_bytes(b"short"), None);
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Parses the 64 lower-case hex digits produced by [`TokenHash::to_hex`].
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *slot = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(out))
    }

    /// 64 lower-case hex digits, as used in store keys.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        self.push_hex(&mut out);
        out
    }

    /// Appends the 64 hex digits to `out` (building a key without a second allocation).
    pub fn push_hex(&self, out: &mut String) {
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }

    /// The short id of this token (first 12 hex digits of the hash), safe to log.
    pub fn id(&self) -> TokenId {
        let mut id = [0u8; 12];
        for (i, byte) in self.0.iter().take(6).enumerate() {
            id[2 * i] = HEX[usize::from(byte >> 4)];
            id[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        TokenId(id)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", self.id())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The SHA-256 of `text` in hex: how user-supplied names (subjects, usernames) enter store
/// keys, so that none can steer a cluster slot with a `{…}` or make a key long.
#[cfg(any(feature = "redis", feature = "sign-in"))]
pub(crate) fn sha256_hex(text: &str) -> String {
    TokenHash::of(text).to_hex()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// The first 12 hex digits of a token's hash: enough to tell tokens apart in logs, useless
/// to an attacker.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenId([u8; 12]);

impl TokenId {
    /// The id written as `text` (12 lowercase hex digits), or `None`.
    ///
    /// ```
    /// use tower_bearer::token::{TokenHash, TokenId};
    ///
    /// let id = TokenHash::of("abc").id();
    /// assert_eq!(TokenId::parse(id.as_str()), Some(id));
    /// assert_eq!(TokenId::parse("BA7816BF8F01"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        let id: [u8; 12] = text.as_bytes().try_into().ok()?;
        id.iter()
            .all(|digit| hex_value(*digit).is_some())
            .then_some(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Built only from HEX digits, so always ASCII.
        std::str::from_utf8(&self.0).unwrap_or("????????????")
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", self.as_str())
    }
}

impl serde::Serialize for TokenId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The token symbol a random byte stands for, or `None` for the bytes past the largest
/// multiple of 36 (rejected, so every symbol is equally likely).
fn symbol_of(byte: u8) -> Option<char> {
    (byte < UNBIASED_LIMIT).then(|| char::from(ALPHABET[usize::from(byte % 36)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_stands_for_seven_bytes_and_the_last_four_bytes_are_redrawn() {
        let mut counts = [0u32; 36];
        for byte in 0..=u8::MAX {
            match symbol_of(byte) {
                Some(symbol) => {
                    let index = ALPHABET.iter().position(|c| char::from(*c) == symbol);
                    counts[index.unwrap()] += 1;
                }
                None => assert!(byte >= 252, "byte {byte} is redrawn"),
            }
        }
        assert_eq!(counts, [7; 36]);
        assert_eq!(symbol_of(251), Some('z'));
        assert_eq!(symbol_of(252), None);
    }

    #[test]
    fn generated_tokens_have_magentos_shape_and_differ() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert!(Token::has_issued_shape(a.expose()));
        assert!(Token::has_issued_shape(b.expose()));
        assert_ne!(a, b);
    }

    #[test]
    fn generated_tokens_use_the_whole_alphabet() {
        let mut seen = [false; 36];
        for _ in 0..200 {
            for byte in Token::generate().unwrap().expose().bytes() {
                let index = ALPHABET.iter().position(|c| *c == byte).unwrap();
                seen[index] = true;
            }
        }
        assert!(
            seen.iter().all(|s| *s),
            "some characters never appear: {seen:?}"
        );
    }

    #[test]
    fn hash_round_trips_through_hex() {
        let hash = TokenHash::of("some token");
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(TokenHash::from_hex("zz"), None);
        assert_eq!(TokenHash::from_hex(&"G".repeat(64)), None);
    }

    #[test]
    fn shape_check_refuses_other_tokens() {
        assert!(!Token::has_issued_shape("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));
        assert!(!Token::has_issued_shape("abc"));
        assert!(!Token::has_issued_shape(&"a".repeat(33)));
    }

    /// The secret never reaches a log line through `Debug` or `Display`.
    #[test]
    fn a_token_prints_redacted_in_debug_and_display() {
        let token = Token::generate().unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert_eq!(format!("{token:#?}"), "Token(<redacted>)");
        assert_eq!(token.to_string(), "<redacted>");
        assert_eq!(format!("{:?}", Some(&token)), "Some(Token(<redacted>))");
    }

    /// Stores keep the raw 32 bytes of a hash (Redis keys `bearer:t:<32 bytes>`).
    #[test]
    fn a_hash_round_trips_through_its_raw_bytes_and_nothing_else_is_one() {
        let hash = TokenHash::of("some token");
        assert_eq!(TokenHash::from_bytes(hash.as_bytes()), Some(hash));
        assert_eq!(TokenHash::from_bytes(&hash.as_bytes()[..31]), None);
        assert_eq!(TokenHash::from_bytes(&[0; 33]), None);
        assert_eq!(TokenHash::from_bytes(&[]), None);
    }

    /// Subjects and usernames enter store keys as the hex SHA-256 of their text, so two
    /// names never share a key and none can steer a cluster slot.
    #[cfg(any(feature = "redis", feature = "sign-in"))]
    #[test]
    fn a_name_enters_a_key_as_the_hex_sha256_of_its_text() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(sha256_hex("{ada}"), sha256_hex("{grace}"));
    }

    /// A token id is what the session routes take to revoke one token, and what logs show.
    #[test]
    fn a_token_id_parses_back_from_its_text_and_prints_as_itself() {
        let id = TokenHash::of("abc").id();
        assert_eq!(TokenId::parse("ba7816bf8f01"), Some(id));
        assert_eq!(TokenId::parse(id.as_str()), Some(id));
        assert_eq!(TokenId::parse("BA7816BF8F01"), None);
        assert_eq!(TokenId::parse("ba7816bf8f0"), None);
        assert_eq!(TokenId::parse("ba7816bf8f01a"), None);
        assert_eq!(TokenId::parse("ba7816bf8f0g"), None);
        assert_eq!(id.to_string(), "ba7816bf8f01");
        assert_eq!(format!("{id:?}"), "TokenId(ba7816bf8f01)");
        assert_eq!(
            serde_json::to_string(&id).ok().as_deref(),
            Some("\"ba7816bf8f01\"")
        );
    }

    #[test]
    fn debug_of_hash_shows_only_the_short_id() {
        let hash = TokenHash::of("abc");
        assert_eq!(format!("{hash:?}"), "TokenHash(ba7816bf8f01…)");
    }
}
