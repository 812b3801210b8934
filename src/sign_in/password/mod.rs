//! Password hashing with Argon2id (OWASP parameters), verified off the async runtime.
//!
//! For [`Directory`](super::Directory) implementations: store [`hash_password`]'s PHC string,
//! check with [`verify_password`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::sign_in::PasswordError> {
//! use tower_bearer::sign_in::password::{hash_password, verify_password};
//!
//! let phc = hash_password("correct horse")?;
//! assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//! assert!(verify_password(&phc, "correct horse").await?);
//! assert!(!verify_password(&phc, "wrong").await?);
//! # Ok(()) }
//! ```

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::token::{RandomError, random_fill};

pub(crate) mod pool;

/// Argon2id memory cost in KiB (OWASP: 19 MiB).
pub const MEMORY_KIB: u32 = 19_456;
/// Argon2id passes (OWASP: 2).
pub const ITERATIONS: u32 = 2;
/// Argon2id lanes (OWASP: 1).
pub const PARALLELISM: u32 = 1;

/// An Argon2id hash, with the parameters above, of 32 random bytes nobody kept: verifying
/// against it costs what a real check costs and never succeeds.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$agBBziBhCmveGevGSrneOw$rckybIqBhLpR4LnEXmTkamfVRcVo32NPn4su6FRlWyc";

/// Hashing or verifying a password failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The stored hash is not a PHC string Argon2 can read, or hashing failed.
    #[error("password hash error: {0}")]
    Hash(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The OS random source failed while drawing a salt.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Too many password checks are already waiting: try again shortly.
    #[error("too many password checks are waiting; try again later")]
    Busy,
    /// The thread running the check stopped before answering.
    #[error("the password check did not complete")]
    Interrupted,
}

impl From<pool::Refused> for PasswordError {
    fn from(refused: pool::Refused) -> Self {
        match refused {
            pool::Refused::Busy => Self::Busy,
            pool::Refused::Interrupted => Self::Interrupted,
        }
    }
}

fn hash_failed(error: argon2::password_hash::Error) -> PasswordError {
    PasswordError::Hash(Box::new(error))
}

fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|error| hash_failed(error.into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with Argon2id and a fresh random salt; returns the PHC string.
///
/// This takes tens of milliseconds of CPU: call it at set-up or inside
/// `tokio::task::spawn_blocking`, not on the async runtime.
///
/// # Errors
/// [`PasswordError`] when the OS random source fails.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    random_fill(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(hash_failed)?;
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(hash_failed)?;
    Ok(hash.to_string())
}

/// Checks `password` against a PHC string, off the async runtime: on the process's password
/// hashing threads, one per core at a lower OS priority, so a burst of logins can neither
/// take more than their share of the CPU from request handling nor more than 19 MiB of
/// memory per core.
///
/// # Errors
/// [`PasswordError`] when `phc` is not a readable hash, or [`PasswordError::Busy`] when more
/// than 64 checks per core are already waiting.
pub async fn verify_password(phc: &str, password: &str) -> Result<bool, PasswordError> {
    let phc = phc.to_owned();
    let password = password.to_owned();
    pool::run(move || verify_now(&phc, &password)).await?
}

fn verify_now(phc: &str, password: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(hash_failed)?;
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return Err(hash_failed(argon2::password_hash::Error::PhcStringField));
    };
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(hash_failed)?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).map_err(|e| hash_failed(e.into()))?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(hash_failed)?;
    #[cfg(test)]
    checked::record(salt.as_str());
    let mut salt_buffer = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buffer).map_err(hash_failed)?;
    let mut computed = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    // Each hashing thread keeps its 19 MiB of Argon2 memory from one check to the next,
    // instead of allocating (and faulting in) fresh pages for every login.
    MEMORY
        .with(|memory| {
            let mut memory = memory.borrow_mut();
            memory.resize(params.block_count(), Block::default());
            argon2.hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut computed,
                &mut memory[..],
            )
        })
        .map_err(|error| hash_failed(error.into()))?;
    let computed = Output::new(&computed).map_err(hash_failed)?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

thread_local! {
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Spends exactly the time of a password check with this crate's parameters, for a user
/// who does not exist, so that an unknown username cannot be told from a wrong password by
/// timing. If your stored hashes use other parameters, use a [`DummyHash::like`] one of
/// them instead.
///
/// # Errors
/// [`PasswordError`] when the check cannot run (see [`verify_password`]).
pub async fn burn_dummy_verification(password: &str) -> Result<(), PasswordError> {
    DummyHash::default().verify(password).await
}

/// A hash no password matches, to check against when a username has no account, so that
/// an unknown username costs exactly what a wrong password costs (no user enumeration by
/// timing).
///
/// The cost of a check depends on the hash's algorithm and parameters, so the dummy must
/// have those of the hashes your directory stores: [`DummyHash::default`] has this crate's
/// (those of [`hash_password`]); [`DummyHash::like`] copies them from one of your hashes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::sign_in::PasswordError> {
/// use tower_bearer::sign_in::password::{DummyHash, hash_password};
///
/// // At start-up, from any hash your user table holds (here, one made with other costs):
/// let stored = "$argon2id$v=19$m=8192,t=3,p=1$MDEyMzQ1Njc4OWFiY2RlZg$0UMoqvNbyyVaV+6+qjXgHCkf1QCfhbwQTHsd7IUAJdI";
/// let dummy = DummyHash::like(stored)?;
/// assert!(format!("{dummy:?}").contains("m=8192,t=3,p=1"));
///
/// // For a username with no account:
/// dummy.verify("whatever was typed").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DummyHash {
    phc: std::sync::Arc<str>,
}

impl Default for DummyHash {
    /// A dummy with this crate's Argon2id parameters.
    fn default() -> Self {
        Self {
            phc: DUMMY_HASH.into(),
        }
    }
}

impl std::fmt::Debug for DummyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The PHC string up to its salt: algorithm, version and parameters.
        let parameters = self
            .phc
            .splitn(5, '$')
            .take(4)
            .collect::<Vec<_>>()
            .join("$");
        f.debug_tuple("DummyHash").field(&parameters).finish()
    }
}

impl DummyHash {
    /// A dummy with the algorithm, version, parameters and output length of `phc` (a PHC
    /// string of one of your stored hashes): a hash of 32 random bytes nobody keeps, with a
    /// fresh salt. Computing it costs one password hash: do it once, at start-up.
    ///
    /// # Errors
    /// [`PasswordError`] when `phc` is not an Argon2 PHC string, or the OS random source
    /// fails.
    pub fn like(phc: &str) -> Result<Self, PasswordError> {
        let parsed = PasswordHash::new(phc).map_err(hash_failed)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(hash_failed)?;
        let version = match parsed.version {
            Some(version) => Version::try_from(version).map_err(|e| hash_failed(e.into()))?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(hash_failed)?;
        let mut secret = [0u8; 32];
        let mut salt = [0u8; 16];
        random_fill(&mut secret)?;
        random_fill(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(hash_failed)?;
        let hash = Argon2::new(algorithm, version, params)
            .hash_password(&secret, &salt)
            .map_err(hash_failed)?;
        Ok(Self {
            phc: hash.to_string().into(),
        })
    }

    #[cfg(test)]
    pub(crate) fn phc_for_tests(&self) -> String {
        self.phc.to_string()
    }

    /// Checks `password` against the dummy, as [`verify_password`] checks a real hash, and
    /// throws the (always negative) answer away.
    ///
    /// # Errors
    /// [`PasswordError`] when the check cannot run (see [`verify_password`]).
    pub async fn verify(&self, password: &str) -> Result<(), PasswordError> {
        verify_password(&self.phc, password).await.map(|_| ())
    }
}

/// Which hashes were checked, by salt: lets tests see that a check really ran (e.g. the
/// dummy verification of an unknown user), whatever other tests check meanwhile.
#[cfg(test)]
pub(crate) mod checked {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError};

    static BY_SALT: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

    pub(crate) fn record(salt: &str) {
        let mut counts = BY_SALT.lock().unwrap_or_else(PoisonError::into_inner);
        *counts
            .get_or_insert_with(HashMap::new)
            .entry(salt.to_owned())
            .or_default() += 1;
    }

    /// How many checks ran against the PHC string `phc`.
    pub(crate) fn count(phc: &str) -> u64 {
        let salt = phc.split('$').nth(4).unwrap_or_default();
        let counts = BY_SALT.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .as_ref()
            .and_then(|counts| counts.get(salt))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dummy_like_a_hash_has_its_parameters_and_matches_nothing() {
        let params = Params::new(8 * 1024, 3, 1, Some(24)).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        let dummy = DummyHash::like(&stored).unwrap();
        assert!(dummy.phc.starts_with("$argon2id$v=19$m=8192,t=3,p=1$"));
        assert_ne!(&*dummy.phc, stored.as_str(), "a fresh salt and secret");
        assert!(!verify_now(&dummy.phc, "s3cret").unwrap());
        assert!(dummy.verify("s3cret").await.is_ok());
        assert!(DummyHash::like("not a phc string").is_err());
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash_password("correct horse").unwrap();
        assert!(verify_now(&phc, "correct horse").unwrap());
        assert!(!verify_now(&phc, "correct horse ").unwrap());
        assert!(!verify_now(&phc, "").unwrap());
    }

    #[test]
    fn hashes_of_other_parameters_still_verify() {
        // A user database may hold hashes made with older or stronger parameters.
        let params = Params::new(8 * 1024, 3, 1, Some(24)).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        assert!(verify_now(&phc, "s3cret").unwrap());
        assert!(!verify_now(&phc, "s3cre").unwrap());
        // Memory reused between checks of different sizes gives the same answers.
        assert!(verify_now(DUMMY_HASH, "x").map(|ok| !ok).unwrap());
        assert!(verify_now(&phc, "s3cret").unwrap());
    }

    #[test]
    fn an_unreadable_hash_is_an_error_not_a_mismatch() {
        assert!(verify_now("not a phc string", "x").is_err());
        assert!(verify_now("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ", "x").is_err());
    }
}
