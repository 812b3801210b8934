//! Password hashing with Argon2id (OWASP parameters), verified off the async runtime.
//!
//! For [`Directory`](crate::Directory) implementations: store [`hash_password`]'s PHC string,
//! check with [`verify_password`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::PasswordError> {
//! use tower_bearer::password::{hash_password, verify_password};
//!
//! let phc = hash_password("correct horse")?;
//! assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//! assert!(verify_password(&phc, "correct horse").await?);
//! assert!(!verify_password(&phc, "wrong").await?);
//! # Ok(()) }
//! ```

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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
pub enum PasswordError {
    /// The stored hash is not a PHC string Argon2 can read, or hashing failed.
    #[error("password hash error: {0}")]
    Hash(argon2::password_hash::Error),
    /// The OS random source failed while drawing a salt.
    #[error("the OS random source failed: {0}")]
    Random(#[source] getrandom::Error),
    /// Too many password checks are already waiting: try again shortly.
    #[error("too many password checks are waiting; try again later")]
    Busy,
    /// The thread running the check stopped before answering.
    #[error("the password check did not complete")]
    Interrupted,
}

fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|error| PasswordError::Hash(error.into()))?;
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
    getrandom::fill(&mut salt).map_err(PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(PasswordError::Hash)?;
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
    crate::hashing_pool::run(move || verify_now(&phc, &password)).await
}

fn verify_now(phc: &str, password: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(PasswordError::Hash)?;
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return Err(PasswordError::Hash(
            argon2::password_hash::Error::PhcStringField,
        ));
    };
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(PasswordError::Hash)?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).map_err(|e| PasswordError::Hash(e.into()))?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(PasswordError::Hash)?;
    let mut salt_buffer = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_buffer)
        .map_err(PasswordError::Hash)?;
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
        .map_err(|error| PasswordError::Hash(error.into()))?;
    let computed = Output::new(&computed).map_err(PasswordError::Hash)?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

thread_local! {
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Spends exactly the time of a password check, for a user who does not exist, so that an
/// unknown username cannot be told from a wrong password by timing.
///
/// # Errors
/// [`PasswordError`] when the check cannot run (see [`verify_password`]).
pub async fn burn_dummy_verification(password: &str) -> Result<(), PasswordError> {
    verify_password(DUMMY_HASH, password).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

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
