//! [`TokenStore`] on Redis: issue (under the subject's limit), resolve (recording uses),
//! revoke, revoke-all, and the subject index.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::cache::revocation_message;
use super::codec::Record;
use super::connection::RedisConnection;
use super::scripts::{ADMIT, RESOLVE};
use super::{RedisStore, legacy_token_key, millis, timed, timed_from};
use crate::store::{
    Lookup, MAX_TOKENS_PER_SUBJECT, OnLimit, RECORD_NO_USE, Revocations, StoreError, StoreFuture,
    SubjectLimit, TokenStore, bounded,
};
use crate::telemetry::metrics::{self, CacheLookup, Operation, Stopwatch};
use crate::token::{Caller, TokenHash, TokenKind};

/// How long the index of a subject with a token that lives until revoked is kept: a century
/// (its token keys themselves have no expiry).
const NEVER_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// The index score of tokens that live until revoked: this plus their issue instant (Unix
/// ms). Above every real expiry, exact as a double (below 2⁵³), and ordered by issue, so the
/// ceiling drops the oldest of them first.
const NEVER_SCORE_BASE: i64 = 1 << 52;

/// The score below which index entries are dropped: expired longer ago than the instances'
/// clocks may differ ([`RedisStoreOptions::with_clock_skew`](super::RedisStoreOptions::with_clock_skew)).
fn prune_before(clock_skew: Duration) -> i64 {
    let skew = i64::try_from(clock_skew.as_millis()).unwrap_or(i64::MAX);
    Utc::now().timestamp_millis().saturating_sub(skew)
}

/// How many index entries revoke-all reads, deletes and unlists per step: no single
/// command touches more, so none blocks Redis for long, however large the index.
const CHUNK: usize = 500;

impl RedisStore {
    /// The stored records of `hashes`, in order (`None` for a token that is gone), each
    /// under its key or, written before keys were raw bytes, its old one: one pipeline on one
    /// Redis; one `GET` per key, concurrently, on a cluster.
    async fn read_records(
        &self,
        hashes: impl Iterator<Item = &TokenHash>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let keys: Vec<(Vec<u8>, Option<String>)> = hashes
            .map(|hash| (self.token_key(hash), self.legacy_key_to_read(hash)))
            .collect();
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let records: Vec<Option<Vec<u8>>> = if keys.is_empty() {
            Vec::new()
        } else if connection.is_cluster() {
            // The old key (another slot) only when the record is not under the new one: a
            // token is under one or the other, and its node alone decides its answer.
            let reads = keys.iter().map(|(key, legacy)| {
                let mut connection = connection.clone();
                async move {
                    let record: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(key)
                        .query_async(&mut connection)
                        .await?;
                    let Some(legacy) = legacy.as_ref().filter(|_| record.is_none()) else {
                        return Ok(record);
                    };
                    redis::cmd("GET")
                        .arg(legacy)
                        .query_async::<Option<Vec<u8>>>(&mut connection)
                        .await
                }
            });
            bounded(timeout, futures_util::future::try_join_all(reads)).await?
        } else {
            let mut pipe = redis::pipe();
            for (key, legacy) in &keys {
                pipe.cmd("GET").arg(key);
                if let Some(legacy) = legacy {
                    pipe.cmd("GET").arg(legacy);
                }
            }
            let answers: Vec<Option<Vec<u8>>> =
                bounded(timeout, pipe.query_async(&mut connection)).await?;
            let mut answers = answers.into_iter();
            keys.iter()
                .map(|(_, legacy)| {
                    let record = answers.next().flatten();
                    let legacy = legacy.as_ref().and_then(|_| answers.next().flatten());
                    record.or(legacy)
                })
                .collect()
        };
        Ok(records)
    }

    /// Revokes the tokens whose index entries are `members` (raw hashes, or the hex hashes
    /// of a 0.1 index), announces the revocation, then unlists them from `index_key` with
    /// `unlist` (`ZREM`, `SREM`). Tokens first, index last: if a deletion (or, with
    /// `acknowledged` and replica acknowledgements on, its replication) fails, the entries
    /// stay listed, and a retry finds them and waits again. Returns the hashes of the live
    /// tokens deleted.
    async fn revoke_listed(
        &self,
        index_key: &str,
        unlist: &str,
        members: Vec<Vec<u8>>,
        acknowledged: bool,
    ) -> Result<Vec<TokenHash>, StoreError> {
        let hashes: Vec<TokenHash> = members
            .iter()
            .filter_map(|member| {
                TokenHash::from_bytes(member).or_else(|| {
                    std::str::from_utf8(member)
                        .ok()
                        .and_then(TokenHash::from_hex)
                })
            })
            .collect();
        let mut connection = self.revoking();
        let timeout = self.revoking_bound();
        let wait = self.wait_for_replicas().filter(|_| acknowledged);
        // The announcement goes after the deletions, so an instance that hears it and asks
        // Redis again cannot find (and cache) a token still there.
        let mut publish = redis::cmd("PUBLISH");
        publish
            .arg(self.options.revocation_channel())
            .arg(revocation_message(&hashes));
        let deleted: Vec<u64> = if hashes.is_empty() {
            Vec::new() // only unreadable entries: nothing to delete or announce
        } else if connection.is_cluster() {
            // One key per DEL: tokens are spread over many cluster slots.
            // The old key (see `legacy_token_key`, another slot) only when the new one held
            // nothing: a token is under one or the other.
            let deletes = hashes.iter().map(|hash| {
                let mut connection = connection.clone();
                let key = self.token_key(hash);
                let legacy = self.legacy_token_key(hash);
                async move {
                    let deleted: u64 = redis::cmd("DEL")
                        .arg(key)
                        .query_async(&mut connection)
                        .await?;
                    if deleted > 0 {
                        return Ok(deleted);
                    }
                    redis::cmd("DEL")
                        .arg(legacy)
                        .query_async::<u64>(&mut connection)
                        .await
                }
            });
            let deleted = bounded(timeout, futures_util::future::try_join_all(deletes)).await?;
            bounded(timeout, publish.query_async::<()>(&mut connection)).await?;
            if acknowledged {
                self.replicated(&mut connection).await?;
            }
            deleted
        } else {
            // One round trip: the deletions, the announcement and the wait for replicas.
            let mut pipe = redis::pipe();
            for hash in &hashes {
                // One DEL of both keys (the old one, see `legacy_token_key`): one count each.
                pipe.cmd("DEL")
                    .arg(self.token_key(hash))
                    .arg(self.legacy_token_key(hash));
            }
            pipe.add_command(publish).ignore();
            if let Some(wait) = &wait {
                pipe.add_command(wait.clone());
            }
            let mut answers: Vec<u64> = bounded(timeout, pipe.query_async(&mut connection)).await?;
            if wait.is_some() {
                self.check_replicas(answers.pop().unwrap_or(0))?;
            }
            answers
        };
        // Evicted only now, after the deletions: a resolve racing them on this instance
        // cannot re-cache what it read before them.
        self.evict_locally(hashes.iter().copied());
        let mut unlisting = redis::cmd(unlist);
        unlisting.arg(index_key).arg(&members);
        bounded(timeout, unlisting.query_async::<()>(&mut connection)).await?;
        // One DEL per hash, in order: 1 where a record was there to delete.
        Ok(hashes
            .into_iter()
            .zip(deleted)
            .filter_map(|(hash, count)| (count > 0).then_some(hash))
            .collect())
    }
}

/// What an issue lists in the subject's index, and under which limit.
struct Admission {
    index_key: String,
    member: TokenHash,
    /// The token's expiry (Unix ms), or past [`NEVER_SCORE_BASE`] for one that lives until
    /// revoked.
    score: i64,
    index_ttl: u64,
    limit: SubjectLimit,
}

/// A record still to write in the admission's own script (one Redis only).
struct Unwritten<'a> {
    key: &'a [u8],
    bytes: &'a [u8],
    ttl: Option<Duration>,
}

impl RedisStore {
    /// Runs `scripts/admit.lua`: lists the token under the limit in one atomic step (and,
    /// on one Redis, writes its record in the same step). `None`: refused, nothing kept;
    /// else the members to revoke to stay within the limit.
    async fn admit(
        &self,
        admission: &Admission,
        record: Option<Unwritten<'_>>,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let refuse = admission.limit.on_limit() == OnLimit::Refuse;
        let prune = prune_before(self.options.clock_skew);
        let fill = |command: &mut redis::Cmd| {
            match &record {
                Some(record) => command.arg(2).arg(record.key),
                None => command.arg(1),
            };
            command
                .arg(&admission.index_key)
                .arg(admission.member.as_bytes())
                .arg(admission.score)
                .arg(admission.index_ttl)
                .arg(prune)
                .arg(admission.limit.max())
                .arg(if refuse { "1" } else { "0" });
            if let Some(record) = &record {
                command.arg(record.bytes).arg(record.ttl.map_or(0, millis));
            }
        };
        let mut connection = self.connection.clone();
        bounded(self.options.timeout, ADMIT.run(&mut connection, fill)).await
    }

    /// The issue proper (see [`TokenStore::insert`]); on any error the caller takes the
    /// record back.
    async fn insert_listed(
        &self,
        caller: &Caller,
        ttl: Option<Duration>,
        limit: SubjectLimit,
        token_key: &[u8],
    ) -> Result<Vec<TokenHash>, StoreError> {
        let record = Record::encode(caller)?;
        // The record lives its lifetime, or its idle timeout when that is shorter (each
        // recorded use extends it: scripts/resolve.lua).
        let record_ttl = match (ttl, caller.idle_timeout) {
            (Some(lifetime), Some(idle)) => Some(lifetime.min(idle)),
            (lifetime, idle) => lifetime.or(idle),
        };
        let admission = Admission {
            index_key: self.index_key(caller.kind, &caller.subject),
            member: caller.token_hash,
            score: caller.expires_at.map_or(
                NEVER_SCORE_BASE + caller.issued_at.timestamp_millis(),
                |at| at.timestamp_millis(),
            ),
            index_ttl: ttl.map_or(NEVER_MS, millis),
            limit,
        };
        // Token first, index second (see TokenStore::insert). On one Redis both are one
        // script, one round trip; on a cluster the two keys live in different slots, so the
        // record is written (and acknowledged) before the index is touched.
        let mut written = false;
        if self.connection.is_cluster() {
            let mut set = redis::cmd("SET");
            set.arg(token_key).arg(&record);
            if let Some(ttl) = record_ttl {
                set.arg("PX").arg(millis(ttl));
            }
            self.query::<()>(&set).await?;
            written = true;
        }
        let unwritten = |written: bool| {
            (!written).then_some(Unwritten {
                key: token_key,
                bytes: &record,
                ttl: record_ttl,
            })
        };
        let mut verdict = self.admit(&admission, unwritten(written)).await?;
        written |= verdict.is_some();
        if verdict.as_ref().is_none_or(|victims| !victims.is_empty()) {
            // Past the limit. Entries of tokens that idled out (their records expire before
            // their index entries) or vanished may be what fills it: drop them, look again.
            self.list(caller.kind, caller.subject.clone()).await?;
            verdict = self.admit(&admission, unwritten(written)).await?;
        }
        match verdict {
            None => Err(StoreError::LimitReached { limit: limit.max() }),
            Some(victims) if victims.is_empty() => Ok(Vec::new()),
            Some(victims) => {
                // Evictions are not held to replica acknowledgements: issuing never waits on
                // replicas, and an eviction lost in a failover only leaves one token more.
                self.revoke_listed(&admission.index_key, "ZREM", victims, false)
                    .await
            }
        }
    }
}

/// One read of a resolve: the use-recording script when a use is due (at `utc`), else a
/// plain `GET`.
#[derive(Clone, Copy)]
struct ResolveRead {
    utc: Option<chrono::DateTime<Utc>>,
    record_use_every: Duration,
}

impl ResolveRead {
    /// Reads `key`; the script also reads `also` (the old key, same node) when `key` holds
    /// nothing.
    async fn run(
        self,
        connection: &mut RedisConnection,
        key: &[u8],
        also: Option<&str>,
    ) -> redis::RedisResult<Option<Vec<u8>>> {
        let Some(utc) = self.utc else {
            return redis::cmd("GET").arg(key).query_async(connection).await;
        };
        let fill = |command: &mut redis::Cmd| {
            command.arg(1 + usize::from(also.is_some())).arg(key);
            if let Some(also) = also {
                command.arg(also);
            }
            command
                .arg(utc.timestamp_millis())
                .arg(millis(self.record_use_every));
        };
        RESOLVE.run(connection, fill).await
    }
}

impl TokenStore for RedisStore {
    fn insert(
        &self,
        caller: Caller,
        ttl: Option<Duration>,
        limit: SubjectLimit,
    ) -> StoreFuture<Vec<TokenHash>> {
        let store = self.clone();
        timed(Operation::Insert, async move {
            let token_key = store.token_key(&caller.token_hash);
            let issued = store.insert_listed(&caller, ttl, limit, &token_key).await;
            if issued.is_err() {
                // Refused or failed: the token is never handed out, so take its record back
                // (best effort; if it was listed, the entry of a vanished token is dropped at
                // the next listing).
                let mut undo = redis::cmd("DEL");
                undo.arg(&token_key);
                let _ = store.query::<()>(&undo).await;
            }
            issued
        })
    }

    fn get(&self, hash: TokenHash, record_use_every: Duration) -> StoreFuture<Option<Caller>> {
        self.lookup(hash, record_use_every).into_future()
    }

    fn lookup(&self, hash: TokenHash, record_use_every: Duration) -> Lookup<Option<Caller>> {
        let now = Instant::now();
        // Most resolves: no use due, so the cache may answer, or a plain GET. Once per
        // recording step, the script reads and records in the same round trip. A read only
        // (`RECORD_NO_USE`) never runs the script.
        let read_only = record_use_every == RECORD_NO_USE;
        let cached = self.cache.as_ref().and_then(|cache| cache.get(&hash));
        let due = !read_only
            && match &cached {
                // The cached record carries the latest use this instance saw recorded: no
                // second lookup on the hot path.
                Some(caller) => caller.use_is_due(Utc::now(), record_use_every),
                None => self.recent_uses.is_due(&hash, now),
            };
        if let Some(caller) = cached {
            // A cached record may lack a use another instance recorded since, and so look
            // idled out when it is not. A resolve never sees that (its use falls due a quarter of
            // the idle timeout after the last one, long before); a read only asks Redis.
            let fresh = !(read_only && caller.is_expired_at(Utc::now()));
            if !due && fresh {
                metrics::cache_lookup(CacheLookup::Hit);
                return Lookup::Done(Ok(Some(caller)));
            }
            // Held, but Redis is asked all the same.
            metrics::cache_lookup(CacheLookup::Miss);
        }
        let mut connection = self.connection.clone();
        let timeout = self.options.timeout;
        let key = self.token_key(&hash);
        // The old key is read after the new one (see `with_legacy_keys`); on one Redis the
        // use-recording script reads both in its one call.
        let legacy_prefix = self
            .options
            .legacy_keys
            .then(|| Arc::clone(&self.legacy_prefix));
        let both_in_script = !connection.is_cluster();
        let cache = self.cache.clone();
        let recent_uses = Arc::clone(&self.recent_uses);
        let epoch = cache.as_ref().map_or(0, |cache| cache.epoch());
        Lookup::Pending(timed_from(
            Stopwatch::started_at(now),
            Operation::Get,
            async move {
                // The wall clock is read only when a use is due (it is recorded).
                let utc = due.then(Utc::now);
                // With a use due on one Redis, the script is handed the old key too and reads
                // it itself: an unknown token costs one call, not two.
                let in_script = match (&legacy_prefix, utc) {
                    (Some(prefix), Some(_)) if both_in_script => {
                        Some(legacy_token_key(prefix, &hash))
                    }
                    _ => None,
                };
                // Otherwise a record written before keys were raw bytes is read under its old
                // key after the new one, within the same bound.
                let bytes: Option<Vec<u8>> = bounded(timeout, async {
                    let looked_at_both = in_script.is_some();
                    let read = ResolveRead {
                        utc,
                        record_use_every,
                    };
                    match read
                        .run(&mut connection, &key, in_script.as_deref())
                        .await?
                    {
                        Some(bytes) => Ok(Some(bytes)),
                        None if looked_at_both => Ok(None),
                        // Built only now: most resolves never need it.
                        None => match legacy_prefix.as_deref() {
                            Some(prefix) => {
                                let legacy_key = legacy_token_key(prefix, &hash);
                                read.run(&mut connection, legacy_key.as_bytes(), None).await
                            }
                            None => Ok(None),
                        },
                    }
                })
                .await?;
                let caller = bytes
                    .map(|bytes| Record::decode(hash, &bytes))
                    .transpose()?;
                if let Some(caller) = &caller {
                    if let Some(utc) = utc {
                        recent_uses.remember(caller, record_use_every, now, utc);
                    }
                    // Only positive answers are cached: unknown tokens cannot fill the cache.
                    if let Some(cache) = &cache {
                        cache.insert(caller.clone(), epoch);
                    }
                }
                Ok(caller)
            },
        ))
    }

    fn remove(&self, hash: TokenHash) -> StoreFuture<Option<Caller>> {
        let store = self.clone();
        timed(Operation::Remove, async move {
            let mut connection = store.revoking();
            let timeout = store.revoking_bound();
            let key = store.token_key(&hash);
            // The old key too (see `legacy_token_key`): a token issued before keys were raw
            // bytes is revoked all the same.
            let legacy = store.legacy_token_key(&hash);
            let mut publish = redis::cmd("PUBLISH");
            publish
                .arg(store.options.revocation_channel())
                .arg(revocation_message(&[hash]));
            // Deleted, announced (after the deletion, so an instance that hears it cannot
            // find the token again) and, with replica acknowledgements, waited for: all on
            // one connection, so the `WAIT` covers the deletion, even on the retry of a
            // revoke that answered NotReplicated (the token is gone then, the wait is not).
            let bytes: Option<Vec<u8>> = if connection.is_cluster() {
                // The token's slots and the channel's: separate commands.
                let (bytes, legacy_bytes): (Option<Vec<u8>>, Option<Vec<u8>>) =
                    bounded(timeout, async {
                        let bytes: Option<Vec<u8>> = redis::cmd("GETDEL")
                            .arg(&key)
                            .query_async(&mut connection)
                            .await?;
                        if bytes.is_some() {
                            // A token is under one key or the other: the old key's node
                            // (another slot) need not be up to revoke it.
                            return Ok((bytes, None));
                        }
                        let legacy_bytes = redis::cmd("GETDEL")
                            .arg(&legacy)
                            .query_async(&mut connection)
                            .await?;
                        Ok::<_, redis::RedisError>((bytes, legacy_bytes))
                    })
                    .await?;
                bounded(timeout, publish.query_async::<()>(&mut connection)).await?;
                store.replicated(&mut connection).await?;
                bytes.or(legacy_bytes)
            } else {
                let mut pipe = redis::pipe();
                pipe.cmd("GETDEL").arg(&key).cmd("GETDEL").arg(&legacy);
                pipe.add_command(publish).ignore();
                match store.wait_for_replicas() {
                    Some(wait) => {
                        pipe.add_command(wait);
                        let (bytes, legacy_bytes, acknowledged): (
                            Option<Vec<u8>>,
                            Option<Vec<u8>>,
                            u64,
                        ) = bounded(timeout, pipe.query_async(&mut connection)).await?;
                        store.check_replicas(acknowledged)?;
                        bytes.or(legacy_bytes)
                    }
                    None => {
                        let (bytes, legacy_bytes): (Option<Vec<u8>>, Option<Vec<u8>>) =
                            bounded(timeout, pipe.query_async(&mut connection)).await?;
                        bytes.or(legacy_bytes)
                    }
                }
            };
            let Some(bytes) = bytes else {
                return Ok(None);
            };
            store.evict_locally([hash]);
            let caller = Record::decode(hash, &bytes)?;
            // The token is gone and announced; its index entry goes last (were this to
            // fail, the entry of a vanished token is dropped at the next listing).
            let mut unindex = redis::cmd("ZREM");
            unindex
                .arg(store.index_key(caller.kind, &caller.subject))
                .arg(hash.as_bytes());
            bounded(timeout, unindex.query_async::<()>(&mut connection)).await?;
            Ok(Some(caller))
        })
    }

    fn remove_subject(&self, kind: TokenKind, subject: String) -> StoreFuture<u64> {
        let store = self.clone();
        timed(Operation::RemoveSubject, async move {
            let index_key = store.index_key(kind, &subject);
            let legacy_key = store.legacy_index_key(kind, &subject);
            let mut revoked = 0;
            // One read of the whole index (at most about MAX_TOKENS_PER_SUBJECT entries of
            // 32 bytes: a bounded command) is the snapshot to revoke: every token issued
            // before this call is in it (an issue lists its token before it returns); one a
            // racing issue lists afterwards was issued after this revoke-all and is left to
            // the next one. The snapshot is then deleted and unlisted in chunks.
            let members: Vec<Vec<u8>> = store
                .query(
                    redis::cmd("ZRANGE")
                        .arg(&index_key)
                        .arg(0)
                        .arg(2 * MAX_TOKENS_PER_SUBJECT),
                )
                .await?;
            for chunk in members.chunks(CHUNK) {
                revoked += store
                    .revoke_listed(&index_key, "ZREM", chunk.to_vec(), true)
                    .await?
                    .len() as u64;
            }
            // A 0.1 index (a set of hex hashes, never pruned): read at random in chunks
            // until it is empty, so even a huge one never blocks Redis.
            loop {
                let members: Vec<Vec<u8>> = store
                    .query(redis::cmd("SRANDMEMBER").arg(&legacy_key).arg(CHUNK))
                    .await?;
                if members.is_empty() {
                    break;
                }
                revoked += store
                    .revoke_listed(&legacy_key, "SREM", members, true)
                    .await?
                    .len() as u64;
            }
            Ok(revoked)
        })
    }

    fn list(&self, kind: TokenKind, subject: String) -> StoreFuture<Vec<Caller>> {
        let store = self.clone();
        timed(Operation::List, async move {
            let index_key = store.index_key(kind, &subject);
            let now = Utc::now().timestamp_millis();
            // Live entries only (expiry after now, `+inf` for tokens that never expire).
            let members: Vec<Vec<u8>> = store
                .query(
                    redis::cmd("ZRANGE")
                        .arg(&index_key)
                        .arg(format!("({now}"))
                        .arg("+inf")
                        .arg("BYSCORE")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(MAX_TOKENS_PER_SUBJECT),
                )
                .await?;
            let mut callers = Vec::with_capacity(members.len());
            let mut gone: Vec<&[u8]> = Vec::new();
            for chunk in members.chunks(CHUNK) {
                let hashes: Vec<Option<TokenHash>> = chunk
                    .iter()
                    .map(|member| TokenHash::from_bytes(member))
                    .collect();
                let records = store.read_records(hashes.iter().flatten()).await?;
                let mut records = records.into_iter();
                for (member, hash) in chunk.iter().zip(&hashes) {
                    let record = match hash {
                        Some(_) => records.next().flatten(),
                        None => None,
                    };
                    match (hash, record) {
                        (Some(hash), Some(bytes)) => callers.push(Record::decode(*hash, &bytes)?),
                        _ => gone.push(member),
                    }
                }
            }
            // Housekeeping, on the index's one slot: entries of expired or vanished tokens.
            let mut pipe = redis::pipe();
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&index_key)
                .arg("-inf")
                .arg(prune_before(store.options.clock_skew))
                .ignore();
            if !gone.is_empty() {
                pipe.cmd("ZREM").arg(&index_key).arg(&gone).ignore();
            }
            let mut connection = store.connection.clone();
            bounded(
                store.options.timeout,
                pipe.query_async::<()>(&mut connection),
            )
            .await?;
            Ok(callers)
        })
    }

    /// With the local cache on ([`RedisStoreOptions::with_cache`](super::RedisStoreOptions::with_cache)):
    /// the revocations of every instance, heard on the revocation channel, live while the
    /// channel is subscribed. Without it, `None`.
    fn revocations(&self) -> Option<Revocations> {
        self.cache.as_ref().map(|cache| cache.revocations())
    }
}
