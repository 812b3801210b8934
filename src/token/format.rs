//! [`TokenFormat`]: what the text of a new token looks like.

use std::fmt;
use std::sync::Arc;

use super::{ConfigError, RandomError, Token, random_fill};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters of a prefixed token: 30 of 62, about 178 bits.
const RANDOM_CHARS: usize = 30;
/// The CRC32 of the random part, in base 62 (62⁶ > 2³²).
const CHECKSUM_CHARS: usize = 6;
/// The prefix of integration tokens by default: `tbi_…` ("tower-bearer integration").
pub const INTEGRATION_PREFIX: &str = "tbi";

/// The longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 16;

/// The text of the tokens a registry issues for one kind.
///
/// - [`TokenFormat::Magento`] (the default for customers and admins): 32 characters of
///   `[0-9a-z]`, as Magento issues them, for clients that rely on that shape.
/// - [`TokenFormat::prefixed`]: `<prefix>_` then 30 random characters of `[0-9A-Za-z]`
///   (about 178 bits) and a 6-character checksum (CRC32 of the random part, base 62), as
///   GitHub's `ghp_…` tokens. Secret scanners find a leaked token by its prefix, and the layer
///   refuses a mistyped or made-up one (401 `invalid_token`) without asking the store.
///
/// ```
/// use tower_bearer::token::TokenFormat;
///
/// let format = TokenFormat::prefixed("shop")?;
/// let token = format.generate()?;
/// assert!(token.expose().starts_with("shop_"));
/// assert_eq!(token.expose().len(), "shop_".len() + 36);
/// assert!(format.accepts(token.expose()));
///
/// // One character changed: the checksum no longer matches.
/// let mut typo = token.expose().to_owned();
/// let last = typo.pop().unwrap();
/// typo.push(if last == 'a' { 'b' } else { 'a' });
/// assert!(!format.accepts(&typo));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub enum TokenFormat {
    /// Magento's: 32 characters of `[0-9a-z]` from the OS CSPRNG (about 165 bits).
    #[default]
    Magento,
    /// `<prefix>_`, 30 random base-62 characters and a 6-character CRC32 checksum.
    Prefixed(Prefix),
}

/// The prefix of a [`TokenFormat::Prefixed`] token, checked: 1 to [`MAX_PREFIX_LEN`]
/// characters of `[a-z0-9]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Prefix(Arc<str>);

impl Prefix {
    /// The prefix, without the `_` that follows it in a token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Debug for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Magento => f.write_str("Magento"),
            Self::Prefixed(prefix) => f.debug_tuple("Prefixed").field(prefix).finish(),
        }
    }
}

impl TokenFormat {
    /// Prefixed tokens: `<prefix>_…` with a checksum.
    ///
    /// # Errors
    /// [`ConfigError::InvalidTokenPrefix`] unless `prefix` is 1 to [`MAX_PREFIX_LEN`]
    /// characters of `[a-z0-9]`.
    pub fn prefixed(prefix: &str) -> Result<Self, ConfigError> {
        let valid = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_LEN
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(ConfigError::InvalidTokenPrefix {
                prefix: prefix.chars().take(MAX_PREFIX_LEN + 1).collect(),
            });
        }
        Ok(Self::Prefixed(Prefix(prefix.into())))
    }

    /// The default format of integration tokens: prefixed with [`INTEGRATION_PREFIX`].
    pub fn integration() -> Self {
        Self::Prefixed(Prefix(INTEGRATION_PREFIX.into()))
    }

    /// A new token of this format, from the OS CSPRNG.
    ///
    /// # Errors
    /// [`RandomError`] when the operating system cannot provide random bytes.
    pub fn generate(&self) -> Result<Token, RandomError> {
        match self {
            Self::Magento => Token::generate(),
            Self::Prefixed(prefix) => {
                let mut text = String::with_capacity(prefix.0.len() + 1 + 36);
                text.push_str(&prefix.0);
                text.push('_');
                let random_start = text.len();
                let mut pool = [0u8; 64];
                while text.len() < random_start + RANDOM_CHARS {
                    random_fill(&mut pool)?;
                    // 248 = 4 × 62: bytes above are redrawn so every character is equally likely.
                    for byte in pool.into_iter().filter(|byte| *byte < 248) {
                        if text.len() == random_start + RANDOM_CHARS {
                            break;
                        }
                        text.push(char::from(BASE62[usize::from(byte % 62)]));
                    }
                }
                let checksum = checksum(&text.as_bytes()[random_start..]);
                text.push_str(&checksum);
                Ok(Token::from_text(text))
            }
        }
    }

    /// Whether `text` is a well-formed token of this format: its shape, and for a prefixed
    /// token its checksum. Nothing is asked of any store.
    pub fn accepts(&self, text: &str) -> bool {
        match self {
            Self::Magento => Token::has_issued_shape(text),
            Self::Prefixed(prefix) => {
                let Some(rest) = text
                    .strip_prefix(&*prefix.0)
                    .and_then(|rest| rest.strip_prefix('_'))
                else {
                    return false;
                };
                let bytes = rest.as_bytes();
                bytes.len() == RANDOM_CHARS + CHECKSUM_CHARS
                    && bytes.iter().all(u8::is_ascii_alphanumeric)
                    && checksum(&bytes[..RANDOM_CHARS]).as_bytes() == &bytes[RANDOM_CHARS..]
            }
        }
    }
}

/// CRC32 (IEEE) of `random`, as 6 base-62 digits, most significant first.
fn checksum(random: &[u8]) -> String {
    let mut value = u64::from(crc32fast::hash(random));
    let mut digits = [b'0'; CHECKSUM_CHARS];
    for digit in digits.iter_mut().rev() {
        // `value % 62` < 62, so the index is in range and the cast cannot truncate.
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&d| char::from(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_tokens_have_their_shape_differ_and_pass_their_own_check() {
        let format = TokenFormat::prefixed("tbi").unwrap();
        let a = format.generate().unwrap();
        let b = format.generate().unwrap();
        assert_ne!(a, b);
        for token in [&a, &b] {
            let text = token.expose();
            assert_eq!(text.len(), 4 + 36, "{text}");
            assert!(text.starts_with("tbi_"));
            assert!(format.accepts(text));
            assert!(!TokenFormat::Magento.accepts(text));
            assert!(!TokenFormat::prefixed("other").unwrap().accepts(text));
        }
    }

    #[test]
    fn every_single_character_change_fails_the_check() {
        let format = TokenFormat::prefixed("tbi").unwrap();
        let token = format.generate().unwrap();
        let text = token.expose();
        for position in 4..text.len() {
            for replacement in ['0', 'Z', 'z'] {
                let mut changed: Vec<char> = text.chars().collect();
                if changed[position] == replacement {
                    continue;
                }
                changed[position] = replacement;
                let changed: String = changed.into_iter().collect();
                assert!(!format.accepts(&changed), "{changed}");
            }
        }
        assert!(!format.accepts(&text[..text.len() - 1]), "shortened");
        assert!(!format.accepts(&format!("{text}0")), "lengthened");
    }

    #[test]
    fn the_checksum_is_crc32_in_six_base62_digits() {
        // The CRC32 check value: CRC32("123456789") = 0xCBF43926 = 3421780262.
        assert_eq!(checksum(b"123456789"), "3jZRME");
        assert_eq!(checksum(b""), "000000");
    }

    #[test]
    fn prefixes_are_checked() {
        for bad in ["", "Shop", "shop_", "a-b", &"x".repeat(MAX_PREFIX_LEN + 1)] {
            assert!(TokenFormat::prefixed(bad).is_err(), "{bad:?}");
        }
        assert!(TokenFormat::prefixed(&"x".repeat(MAX_PREFIX_LEN)).is_ok());
    }
}
