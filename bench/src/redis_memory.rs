//! Redis's memory per live token: `used_memory` (`INFO memory`) of a fresh redis-server
//! before and after issuing N tokens through `TokenRegistry::redis(url)` in this process,
//! once with one token per subject and once with ten.

use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tower_bearer::{TokenKind, TokenRegistry};

use crate::Result;
use crate::config::SERVER_CPU;
use crate::fill::{issue_many, subject};
use crate::redis_server::RedisServer;
use crate::stats::round_to;

/// The target: at most this many bytes of Redis memory per live token.
pub const TARGET_BYTES_PER_TOKEN: f64 = 350.0;

/// The tokens-per-subject of the two figures.
pub const PER_SUBJECT: [u64; 2] = [1, 10];

/// The key prefix of the default `RedisStoreOptions`.
const PREFIX: &str = "bearer:";

/// One figure: an element of `redis_memory.results` in `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RedisMemoryResult {
    /// Tokens issued.
    pub tokens: u64,
    /// Tokens per subject.
    pub tokens_per_subject: u64,
    /// Subjects (`tokens / tokens_per_subject`).
    pub subjects: u64,
    /// `used_memory` before the first issue (the registry connected), in bytes.
    pub used_memory_before: u64,
    /// `used_memory` after the last, in bytes.
    pub used_memory_after: u64,
    /// `(after - before) / tokens`.
    pub bytes_per_token: f64,
    /// Whether `bytes_per_token` ≤ [`TARGET_BYTES_PER_TOKEN`].
    pub meets_target: bool,
    /// For information: `MEMORY USAGE` of one token's key.
    pub token_key_memory_usage: Option<u64>,
    /// For information: `MEMORY USAGE` of one subject's index key.
    pub subject_index_memory_usage: Option<u64>,
    /// For information: `DBSIZE` after the issues.
    pub dbsize: u64,
    /// Seconds the issues took.
    pub fill_seconds: f64,
}

/// The `redis_memory` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RedisMemory {
    /// The target, in bytes per live token.
    pub target_bytes_per_token: f64,
    /// One figure per tokens-per-subject.
    pub results: Vec<RedisMemoryResult>,
}

/// Measures both figures of [`PER_SUBJECT`] with `tokens` tokens each, each on a fresh
/// redis-server pinned to the server CPU; prints each (`started`: the run's start).
///
/// # Errors
/// When redis-server, the registry or an issue fails.
pub fn measure(tokens: u64, started: Instant) -> Result<RedisMemory> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for per_subject in PER_SUBJECT {
        let redis = RedisServer::start(Some(SERVER_CPU))?;
        let result = runtime.block_on(one(&redis, tokens, per_subject))?;
        println!(
            "[{:>4.0} s] redis memory: {} tokens, {} per subject: {:.1} bytes/token (target ≤ {TARGET_BYTES_PER_TOKEN:.0}); MEMORY USAGE token key {} B, index key {} B; DBSIZE {}; filled in {:.1} s",
            started.elapsed().as_secs_f64(),
            result.tokens,
            per_subject,
            result.bytes_per_token,
            result
                .token_key_memory_usage
                .map_or("?".to_owned(), |b| b.to_string()),
            result
                .subject_index_memory_usage
                .map_or("?".to_owned(), |b| b.to_string()),
            result.dbsize,
            result.fill_seconds,
        );
        results.push(result);
    }
    Ok(RedisMemory {
        target_bytes_per_token: TARGET_BYTES_PER_TOKEN,
        results,
    })
}

async fn one(redis: &RedisServer, tokens: u64, per_subject: u64) -> Result<RedisMemoryResult> {
    let registry = TokenRegistry::redis(&redis.url()).await?;
    let before = redis.used_memory()?;
    let filling = Instant::now();
    issue_many(&registry, tokens, per_subject, false).await?;
    let fill_seconds = filling.elapsed().as_secs_f64();
    let after = redis.used_memory()?;
    let dbsize = redis.dbsize()?;
    // One more token, of a subject of its own, to name a token key; read after `after`.
    let probe = registry
        .issue(TokenKind::Customer, "probe@example.com")
        .await?;
    // The store's key: the prefix, `t:` and the 32 raw bytes of the hash.
    let mut token_key = format!("{PREFIX}t:").into_bytes();
    token_key.extend_from_slice(probe.caller.token_hash.as_bytes());
    let mut connection = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    let token_key_memory_usage: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&token_key)
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut connection)
        .await?;
    let index_key = format!(
        "{PREFIX}index:{}:{}",
        TokenKind::Customer,
        hex(&Sha256::digest(subject(0, per_subject).as_bytes()))
    );
    let bytes_per_token = (after as f64 - before as f64) / tokens.max(1) as f64;
    Ok(RedisMemoryResult {
        tokens,
        tokens_per_subject: per_subject,
        subjects: tokens.div_ceil(per_subject.max(1)),
        used_memory_before: before,
        used_memory_after: after,
        bytes_per_token: round_to(bytes_per_token, 1),
        meets_target: bytes_per_token <= TARGET_BYTES_PER_TOKEN,
        token_key_memory_usage,
        subject_index_memory_usage: redis.memory_usage(&index_key)?,
        dbsize,
        fill_seconds: round_to(fill_seconds, 2),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
