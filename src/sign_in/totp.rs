//! Time-based one-time passwords for the admin second factor: [`TotpSecret`].
//!
//! RFC 6238 as Google Authenticator implements it: HMAC-SHA-1, 6 digits, 30-second steps,
//! and one step of clock skew either way. The HMAC and the constant-time comparison of
//! codes come from the `totp-rs` crate.

use std::fmt;

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::token::{RandomError, random_fill};

/// Digits of a code.
const DIGITS: u8 = 6;
/// Seconds of a step.
pub(crate) const STEP_SECONDS: u64 = 30;
/// Steps of skew accepted either side of the current one.
pub(crate) const SKEW_STEPS: u16 = 1;
/// Bytes drawn by [`TotpSecret::generate`] (160 bits, RFC 4226's recommendation).
const GENERATED_BYTES: usize = 20;
/// The shortest secret accepted (128 bits, RFC 4226's minimum).
const MIN_BYTES: usize = 16;

/// A TOTP shared secret: the raw bytes an authenticator app and the server both hold.
///
/// It is a secret like a password: `Debug` shows `TotpSecret(<redacted>)`, and its text
/// leaves it only through [`TotpSecret::to_base32`] and [`TotpSecret::otpauth_uri`], to
/// store it or to hand it to its owner's authenticator app once.
///
/// ```
/// use tower_bearer::sign_in::TotpSecret;
///
/// let secret = TotpSecret::generate()?;
/// assert_eq!(secret.to_base32().len(), 32); // 20 bytes
/// assert_eq!(format!("{secret:?}"), "TotpSecret(<redacted>)");
///
/// let uri = secret.otpauth_uri("Shop", "admin")?;
/// assert!(uri.starts_with("otpauth://totp/Shop:admin?secret="));
///
/// // The code an authenticator app shows now is accepted now, at the current step.
/// let now = 1_700_000_000;
/// let code = secret.code_at(now);
/// assert_eq!(secret.verify(&code, now), Some(now / 30));
/// # Ok::<(), tower_bearer::sign_in::TotpError>(())
/// ```
#[derive(Clone)]
pub struct TotpSecret {
    bytes: Vec<u8>,
}

/// A TOTP secret could not be made or used.
///
/// ```
/// use tower_bearer::sign_in::{TotpError, TotpSecret};
///
/// assert!(matches!(TotpSecret::from_base32("AAAA"), Err(TotpError::TooShort { bits: 16 })));
/// assert!(matches!(TotpSecret::from_base32("0000"), Err(TotpError::InvalidBase32)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// The text is not RFC 4648 base32.
    #[error("the TOTP secret is not valid base32")]
    InvalidBase32,
    /// The secret has fewer than 16 bytes (128 bits, RFC 4226's minimum).
    #[error("the TOTP secret has {bits} bits; at least 128 are required")]
    TooShort {
        /// The length of the secret that was given, in bits.
        bits: usize,
    },
    /// The issuer or account name of an `otpauth://` URI is empty or contains a colon.
    #[error("the issuer and account name of an otpauth URI must be non-empty and have no ':'")]
    InvalidLabel,
    /// The OS random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl TotpSecret {
    /// Draws a new 20-byte secret from the operating system's CSPRNG.
    ///
    /// ```
    /// use tower_bearer::sign_in::TotpSecret;
    ///
    /// let first = TotpSecret::generate()?;
    /// let second = TotpSecret::generate()?;
    /// assert_ne!(first.to_base32(), second.to_base32());
    /// # Ok::<(), tower_bearer::sign_in::TotpError>(())
    /// ```
    ///
    /// # Errors
    /// [`TotpError::Random`] when the operating system cannot provide random bytes.
    pub fn generate() -> Result<Self, TotpError> {
        let mut bytes = vec![0u8; GENERATED_BYTES];
        random_fill(&mut bytes)?;
        Ok(Self { bytes })
    }

    /// Reads a secret from raw bytes (at least 16).
    ///
    /// ```
    /// use tower_bearer::sign_in::TotpSecret;
    ///
    /// let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec())?;
    /// assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    /// assert!(TotpSecret::from_bytes(b"short".to_vec()).is_err());
    /// # Ok::<(), tower_bearer::sign_in::TotpError>(())
    /// ```
    ///
    /// # Errors
    /// [`TotpError::TooShort`] for fewer than 16 bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, TotpError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_BYTES {
            return Err(TotpError::TooShort {
                bits: bytes.len().saturating_mul(8),
            });
        }
        Ok(Self { bytes })
    }

    /// Reads a base32 secret (RFC 4648), as authenticator apps show it: letters of either
    /// case, spaces between groups and trailing `=` padding are accepted.
    ///
    /// ```
    /// use tower_bearer::sign_in::TotpSecret;
    ///
    /// let secret = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq")?;
    /// assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    /// assert!(TotpSecret::from_base32("not base32!").is_err());
    /// # Ok::<(), tower_bearer::sign_in::TotpError>(())
    /// ```
    ///
    /// # Errors
    /// [`TotpError::InvalidBase32`] for text that is not base32, [`TotpError::TooShort`]
    /// for a secret of fewer than 16 bytes.
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let normalized: String = text
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let normalized = normalized.trim_end_matches('=');
        if normalized.is_empty() {
            return Err(TotpError::InvalidBase32);
        }
        let secret = Secret::try_from_base32(normalized).map_err(|_| TotpError::InvalidBase32)?;
        Self::from_bytes(secret.as_bytes())
    }

    /// The secret as unpadded upper-case base32: the form to store it in, or to type into
    /// an authenticator app. Handle with care.
    pub fn to_base32(&self) -> String {
        Secret::from(self.bytes.as_slice()).to_base32()
    }

    /// The `otpauth://totp/<issuer>:<account>?secret=…&issuer=<issuer>` URI of Google's Key
    /// URI format, to put into a QR code or hand to an authenticator app. It contains the
    /// secret: handle with care.
    ///
    /// ```
    /// use tower_bearer::sign_in::TotpSecret;
    ///
    /// let secret = TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")?;
    /// assert_eq!(
    ///     secret.otpauth_uri("My Shop", "admin@example.com")?,
    ///     "otpauth://totp/My%20Shop:admin%40example.com\
    ///      ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=My%20Shop"
    /// );
    /// assert!(secret.otpauth_uri("Shop", "a:b").is_err());
    /// # Ok::<(), tower_bearer::sign_in::TotpError>(())
    /// ```
    ///
    /// # Errors
    /// [`TotpError::InvalidLabel`] when the issuer or account is empty or contains `:`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        if issuer.is_empty() || account.is_empty() {
            return Err(TotpError::InvalidLabel);
        }
        self.builder()
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .and_then(|totp| totp.to_url())
            .map_err(|_| TotpError::InvalidLabel)
    }

    /// Checks `code` at `unix_time` (seconds): it must be exactly 6 ASCII digits and match
    /// the step of `unix_time`, the one before or the one after. Returns the matched step
    /// (`unix time / 30`), with which the caller makes sure a code is accepted only once
    /// (RFC 6238 §5.2); `None` when the code does not match.
    ///
    /// ```
    /// use tower_bearer::sign_in::TotpSecret;
    ///
    /// let secret = TotpSecret::generate()?;
    /// let now = 1_700_000_010; // step 56_666_667
    /// let code = secret.code_at(now);
    /// assert_eq!(secret.verify(&code, now + 30), Some(56_666_667), "one step late");
    /// assert_eq!(secret.verify(&code, now + 60), None, "two steps late");
    /// assert_eq!(secret.verify(&format!(" {code}"), now), None, "exactly 6 digits");
    /// # Ok::<(), tower_bearer::sign_in::TotpError>(())
    /// ```
    pub fn verify(&self, code: &str, unix_time: u64) -> Option<u64> {
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Compares in constant time (totp-rs compares codes with `constant_time_eq`).
        self.totp()?.check(code, unix_time)
    }

    /// The 6-digit code an authenticator app shows at `unix_time` (seconds). The server
    /// only needs [`TotpSecret::verify`]; this is for tests and tools.
    ///
    /// ```
    /// use tower_bearer::sign_in::TotpSecret;
    ///
    /// // RFC 6238, appendix B (SHA-1), the last 6 of its 8 digits.
    /// let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec())?;
    /// assert_eq!(secret.code_at(59), "287082");
    /// # Ok::<(), tower_bearer::sign_in::TotpError>(())
    /// ```
    pub fn code_at(&self, unix_time: u64) -> String {
        // Construction guarantees a valid secret, so `totp()` is always `Some`.
        self.totp()
            .map(|totp| totp.generate(unix_time).to_string())
            .unwrap_or_default()
    }

    fn builder(&self) -> Builder {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.bytes.as_slice())
    }

    fn totp(&self) -> Option<Totp> {
        self.builder().build().ok()
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 128 bits is the least accepted, to the byte.
    #[test]
    fn a_secret_of_16_bytes_is_accepted_and_one_of_15_is_not() {
        assert!(TotpSecret::from_bytes(vec![7u8; MIN_BYTES]).is_ok());
        assert!(matches!(
            TotpSecret::from_bytes(vec![7u8; MIN_BYTES - 1]),
            Err(TotpError::TooShort { bits: 120 })
        ));
    }

    /// Debug output names the type and nothing of the secret.
    #[test]
    fn debug_shows_the_secret_redacted() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let shown = secret
            .map(|secret| format!("{secret:?}"))
            .unwrap_or_default();
        assert_eq!(shown, "TotpSecret(<redacted>)");
    }

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    #[test]
    fn rfc_6238_sha1_vectors_give_their_last_six_digits() {
        let secret = rfc_secret();
        for (time, eight_digits) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let code = &eight_digits[2..];
            assert_eq!(secret.code_at(time), code, "T = {time}");
            assert_eq!(secret.verify(code, time), Some(time / 30), "T = {time}");
        }
    }

    #[test]
    fn codes_of_the_steps_either_side_are_accepted_and_no_further() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let step = now / 30;
        assert_eq!(
            secret.verify(&secret.code_at(now - 30), now),
            Some(step - 1)
        );
        assert_eq!(
            secret.verify(&secret.code_at(now + 30), now),
            Some(step + 1)
        );
        assert_eq!(secret.verify(&secret.code_at(now - 60), now), None);
        assert_eq!(secret.verify(&secret.code_at(now + 60), now), None);
    }

    #[test]
    fn only_exactly_six_ascii_digits_are_checked() {
        let secret = rfc_secret();
        for code in [
            "",
            "28708",
            "2870820",
            "94287082",
            "+87082",
            " 87082",
            "287082 ",
            "28708a",
            "٢٨٧٠٨٢",
        ] {
            assert_eq!(secret.verify(code, 59), None, "{code:?}");
        }
        assert_eq!(secret.verify("287083", 59), None);
    }

    #[test]
    fn base32_round_trips_and_tolerates_case_spaces_and_padding() {
        let secret = rfc_secret();
        let text = secret.to_base32();
        assert_eq!(text, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        for variant in [
            text.clone(),
            text.to_lowercase(),
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ".to_owned(),
            format!("{text}===="),
        ] {
            let parsed = TotpSecret::from_base32(&variant).unwrap();
            assert_eq!(parsed.to_base32(), text, "{variant:?}");
        }
        for bad in ["", "   ", "GEZDGNBVGY3TQOJ1", "not base32!"] {
            assert!(TotpSecret::from_base32(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            TotpSecret::from_base32("GEZDGNBVGY3TQOJQ"),
            Err(TotpError::TooShort { bits: 80 })
        ));
    }

    #[test]
    fn generated_secrets_have_160_bits_and_differ() {
        let first = TotpSecret::generate().unwrap();
        let second = TotpSecret::generate().unwrap();
        assert_eq!(first.bytes.len(), 20);
        assert_ne!(first.bytes, second.bytes);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = rfc_secret();
        let debug = format!("{secret:?} {:?}", Some(secret.clone()));
        assert!(
            !debug.contains("GEZD") && !debug.contains("1234"),
            "{debug}"
        );
    }

    #[test]
    fn otpauth_uri_follows_the_key_uri_format() {
        let secret = rfc_secret();
        assert_eq!(
            secret.otpauth_uri("tower-bearer", "admin2fa").unwrap(),
            "otpauth://totp/tower-bearer:admin2fa?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=tower-bearer"
        );
        for (issuer, account) in [("", "a"), ("i", ""), ("i:x", "a"), ("i", "a:b")] {
            assert!(secret.otpauth_uri(issuer, account).is_err());
        }
    }
}
