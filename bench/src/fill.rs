//! Filling a token registry with many live tokens through its public API, many issues in
//! flight at once: `bench-server --tokens` and the Redis memory step use it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tower_bearer::{TokenKind, TokenRegistry};

use crate::Result;

/// Issues in flight at once.
pub const CONCURRENCY: u64 = 256;

/// The subject of the `index`-th filled token with `per_subject` tokens per subject.
pub fn subject(index: u64, per_subject: u64) -> String {
    format!("subject{}@example.com", index / per_subject.max(1))
}

/// Issues `tokens` customer tokens with `registry.issue`, `per_subject` to each subject
/// ([`subject`]), [`CONCURRENCY`] at a time on the current tokio runtime; with `progress`,
/// prints a line to stderr at every tenth and at the end.
///
/// # Errors
/// The first issue that fails, or a task that panicked.
pub async fn issue_many(
    registry: &TokenRegistry,
    tokens: u64,
    per_subject: u64,
    progress: bool,
) -> Result<()> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let step = (tokens / 10).max(1);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY.min(tokens) {
        let registry = registry.clone();
        let next = next.clone();
        let done = done.clone();
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= tokens {
                    return Ok::<(), String>(());
                }
                registry
                    .issue(TokenKind::Customer, subject(index, per_subject))
                    .await
                    .map_err(|error| format!("issuing token {index}: {error}"))?;
                let count = done.fetch_add(1, Ordering::Relaxed) + 1;
                if progress && (count.is_multiple_of(step) || count == tokens) {
                    eprintln!(
                        "{count}/{tokens} tokens issued in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    if progress {
        eprintln!(
            "{tokens} tokens ({} per subject) issued in {:.1} s",
            per_subject.max(1),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_hold_per_subject_tokens() {
        assert_eq!(subject(0, 1), "subject0@example.com");
        assert_eq!(subject(19, 10), "subject1@example.com");
        assert_eq!(subject(5, 0), "subject5@example.com");
    }

    #[test]
    fn fills_a_memory_registry() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let registry = TokenRegistry::memory();
        runtime
            .block_on(issue_many(&registry, 300, 10, false))
            .unwrap();
        let listed = runtime
            .block_on(registry.list(TokenKind::Customer, "subject29@example.com"))
            .unwrap();
        assert_eq!(listed.len(), 10);
    }
}
