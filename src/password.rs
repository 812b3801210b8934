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

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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
    /// The blocking task running the hash was cancelled or panicked.
    #[error("the password check did not complete: {0}")]
    Task(#[source] tokio::task::JoinError),
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

/// Checks `password` against a PHC string, on tokio's blocking pool so the async runtime
/// keeps serving requests meanwhile.
///
/// # Errors
/// [`PasswordError`] when `phc` is not a readable hash or the blocking task fails.
pub async fn verify_password(phc: &str, password: &str) -> Result<bool, PasswordError> {
    let phc = phc.to_owned();
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || verify_now(&phc, &password))
        .await
        .map_err(PasswordError::Task)?
}

fn verify_now(phc: &str, password: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(PasswordError::Hash)?;
    match argon2()?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(other) => Err(PasswordError::Hash(other)),
    }
}

/// Spends exactly the time of a password check, for a user who does not exist, so that an
/// unknown username cannot be told from a wrong password by timing.
///
/// # Errors
/// [`PasswordError`] when the blocking task fails.
pub async fn burn_dummy_verification(password: &str) -> Result<(), PasswordError> {
    verify_password(DUMMY_HASH, password).await.map(|_| ())
}
