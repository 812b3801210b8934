//! The floor of a sign-in: raw Argon2id verifications per second on one core, with the
//! library's parameters (m=19456 KiB, t=2, p=1, version 0x13), measured by the `argon2`
//! crate itself on a thread of this process pinned to the server CPU.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Serialize;

use crate::Result;
use crate::config::SERVER_CPU;
use crate::stats::round_to;

/// The library's Argon2id memory cost, in KiB.
pub const MEMORY_KIB: u32 = 19_456;
/// The library's Argon2id iterations.
pub const ITERATIONS: u32 = 2;
/// The library's Argon2id parallelism.
pub const PARALLELISM: u32 = 1;

/// The `argon2` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Argon2Floor {
    /// The parameters, as a PHC prefix (`$argon2id$v=19$m=19456,t=2,p=1`).
    pub parameters: String,
    /// The CPU the verifying thread was pinned to (`None` when pinning failed).
    pub cpu: Option<usize>,
    /// Verifications done.
    pub verifications: u64,
    /// Seconds they took.
    pub seconds: f64,
    /// Verifications per second on one core.
    pub verifications_per_sec: f64,
    /// Sign-in tokens/s with 1 connection, from the issuance step of the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in_tokens_per_sec: Option<f64>,
    /// `sign_in_tokens_per_sec / verifications_per_sec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_sign_in_vs_raw: Option<f64>,
}

impl Argon2Floor {
    /// Adds the sign-in figure of the issuance step and its ratio to the raw one.
    pub fn with_sign_in(mut self, tokens_per_sec: f64) -> Self {
        self.sign_in_tokens_per_sec = Some(tokens_per_sec);
        self.ratio_sign_in_vs_raw = Some(round_to(tokens_per_sec / self.verifications_per_sec, 3));
        self
    }
}

/// Hashes one password, then verifies it in a loop for `seconds` on a new thread pinned to
/// the server CPU (at normal priority, unlike the library's hashing threads at nice 10).
///
/// # Errors
/// When hashing fails, a verification does not match, or the thread panics.
pub fn measure(seconds: f64) -> Result<Argon2Floor> {
    let limit = Duration::from_secs_f64(seconds.max(0.1));
    let thread = std::thread::spawn(move || -> Result<(Option<usize>, u64, f64), String> {
        let cpu = pin_to(SERVER_CPU).then_some(SERVER_CPU);
        let params =
            Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(|e| e.to_string())?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::from_b64("YmVuY2hzYWx0YmVuY2hzYWx0").map_err(|e| e.to_string())?;
        let phc = argon2
            .hash_password(b"password", &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        let parsed = PasswordHash::new(&phc).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut verifications = 0u64;
        while started.elapsed() < limit {
            argon2
                .verify_password(b"password", &parsed)
                .map_err(|e| format!("verification failed: {e}"))?;
            verifications += 1;
        }
        Ok((cpu, verifications, started.elapsed().as_secs_f64()))
    });
    let (cpu, verifications, elapsed) = thread
        .join()
        .map_err(|_| "the Argon2id thread panicked")??;
    Ok(Argon2Floor {
        parameters: format!("$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}"),
        cpu,
        verifications,
        seconds: round_to(elapsed, 3),
        verifications_per_sec: round_to(verifications as f64 / elapsed, 2),
        sign_in_tokens_per_sec: None,
        ratio_sign_in_vs_raw: None,
    })
}

/// Pins the calling thread to `cpu`; whether that worked.
fn pin_to(cpu: usize) -> bool {
    // SAFETY: the set is a zeroed cpu_set_t we own, filled by the libc macros; pid 0 is the
    // calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_of_sign_in_to_raw() {
        let floor = Argon2Floor {
            parameters: String::new(),
            cpu: Some(0),
            verifications: 120,
            seconds: 3.0,
            verifications_per_sec: 40.0,
            sign_in_tokens_per_sec: None,
            ratio_sign_in_vs_raw: None,
        }
        .with_sign_in(30.0);
        assert_eq!(floor.ratio_sign_in_vs_raw, Some(0.75));
    }
}
