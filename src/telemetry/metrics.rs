//! The metrics of tower-bearer, emitted through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`, on by default): the application installs the recorder of
//! its choice (e.g. `metrics-exporter-prometheus`) and they appear there. Without a
//! recorder they cost next to nothing; without the feature, nothing at all.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | [`tower_bearer_requests_total`](REQUESTS) | counter | `outcome` | requests decided by [`BearerAuthLayer`](crate::BearerAuthLayer): `allowed` (a valid token, passed on), `guest` (no credentials, passed on by an optional layer), `missing` (no credentials, refused by a required layer: 401), `malformed` (a malformed `Authorization` header: 400), `invalid` (an unknown, expired, revoked or misshapen token: 401), `wrong_kind` (a valid token of another kind than the layer's: 403), `insufficient_scope` (a valid token without a required scope: 403), `unavailable` (the store failed or timed out: 503) |
//! | [`tower_bearer_store_call_duration_seconds`](STORE_CALL_DURATION) | histogram (seconds) | `store`, `operation` | how long a call of the token store took, from the call to its answer; `store` is `redis` or `memory`; `operation` is one of the [`TokenStore`](crate::store::TokenStore) verbs (`get`, `insert`, `remove`, `remove_subject`, `list`) or of the [`SignInStore`](crate::store::SignInStore) (`record_failure`, `forgive_failure`, `failures`, `clear_failures`, `claim_once`). A resolve answered by the Redis store's local cache is no call |
//! | [`tower_bearer_store_errors_total`](STORE_ERRORS) | counter | `store`, `operation`, `error` | store calls that failed: `error` is `timeout` (no answer within the store's bound) or `backend` (an error answer, a lost connection, an unreadable record). A refusal at a subject's limit is no error |
//! | [`tower_bearer_cache_lookups_total`](CACHE_LOOKUPS) | counter | `result` | lookups in the local cache of a `RedisStore` (when it has one): `hit` (answered from memory), `miss` (asked Redis: not cached, or a use of the token was due to be recorded), `bypass` (asked Redis: the revocation feed is down, so the cache is not trusted) |
//! | [`tower_bearer_sign_ins_total`](SIGN_INS) | counter | `kind`, `outcome` | sign-ins through [`SignIn`](crate::SignIn) by token kind (`customer`, `admin`, `integration`): `succeeded`, `failed` (wrong password or unknown user), `locked` (refused by the lockout, no password checked), `second_factor_required` (an admin with two-factor authentication on the plain route), `second_factor_refused` (no second factor set up, or a wrong, expired or already used code), `busy` (too many password checks waiting), `limit_reached` (the subject holds the most tokens its limit allows), `unavailable` (the store or the directory failed) |
//! | [`tower_bearer_password_checks_waiting`](PASSWORD_CHECKS_WAITING) | gauge | – | Argon2id password checks queued for the hashing threads |
//! | [`tower_bearer_password_checks_running`](PASSWORD_CHECKS_RUNNING) | gauge | – | password checks running on the hashing threads |
//! | [`tower_bearer_tokens_issued_total`](TOKENS_ISSUED) | counter | `kind` | tokens issued by a [`TokenRegistry`](crate::TokenRegistry) |
//! | [`tower_bearer_tokens_revoked_total`](TOKENS_REVOKED) | counter | `kind`, `reason` | live tokens revoked: `one` ([`revoke`](crate::TokenRegistry::revoke), [`revoke_hash`](crate::TokenRegistry::revoke_hash)), `by_id` ([`revoke_by_id`](crate::TokenRegistry::revoke_by_id)), `all` ([`revoke_all`](crate::TokenRegistry::revoke_all), [`revoke_all_but`](crate::TokenRegistry::revoke_all_but)), `limit` (the oldest tokens of a subject revoked by the memory or Redis store to make room under its [limit](crate::store::SubjectLimit)) |
//!
//! Labels are fixed strings (no subject, token or username ever enters one), so every metric
//! has a small, bounded set of series. Call [`describe`] once the recorder is installed to
//! give each its description and unit (an exporter shows them as `# HELP`).
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use tower_bearer::telemetry::metrics::TOKENS_ISSUED;
//! use tower_bearer::{TokenKind, TokenRegistry};
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || {
//!     let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//!     runtime.block_on(async {
//!         let registry = TokenRegistry::memory();
//!         registry.issue(TokenKind::Customer, "ada").await.unwrap();
//!     });
//! });
//! let issued = snapshotter.snapshot().into_vec().into_iter().find_map(|(key, _, _, value)| {
//!     (key.key().name() == TOKENS_ISSUED).then_some(value)
//! });
//! assert_eq!(issued, Some(DebugValue::Counter(1)));
//! # }
//! ```

#[cfg(feature = "metrics")]
use std::time::Instant;

use crate::telemetry::events::RevokeReason;
use crate::token::TokenKind;

/// Counter of the requests [`BearerAuthLayer`](crate::BearerAuthLayer) decided, labelled
/// `outcome` (see the [module](self)'s table).
pub const REQUESTS: &str = "tower_bearer_requests_total";
/// Histogram of the time a token store call took, in seconds, labelled `store` and
/// `operation`.
pub const STORE_CALL_DURATION: &str = "tower_bearer_store_call_duration_seconds";
/// Counter of the store calls that failed, labelled `store`, `operation` and `error`
/// (`timeout`, `backend`).
pub const STORE_ERRORS: &str = "tower_bearer_store_errors_total";
/// Counter of the lookups in a `RedisStore`'s local cache, labelled `result` (`hit`,
/// `miss`, `bypass`).
pub const CACHE_LOOKUPS: &str = "tower_bearer_cache_lookups_total";
/// Counter of sign-ins, labelled `kind` and `outcome`.
pub const SIGN_INS: &str = "tower_bearer_sign_ins_total";
/// Gauge of the password checks waiting for a hashing thread.
pub const PASSWORD_CHECKS_WAITING: &str = "tower_bearer_password_checks_waiting";
/// Gauge of the password checks running on the hashing threads.
pub const PASSWORD_CHECKS_RUNNING: &str = "tower_bearer_password_checks_running";
/// Counter of the tokens issued, labelled `kind`.
pub const TOKENS_ISSUED: &str = "tower_bearer_tokens_issued_total";
/// Counter of the live tokens revoked, labelled `kind` and `reason` (`one`, `by_id`, `all`,
/// `limit`).
pub const TOKENS_REVOKED: &str = "tower_bearer_tokens_revoked_total";

/// Gives every metric of the [table](self) its description and unit in the recorder
/// installed now (the global one, or the local one of
/// [`metrics::with_local_recorder`](https://docs.rs/metrics/latest/metrics/fn.with_local_recorder.html)).
/// Optional: the metrics are recorded either way. Does nothing without the feature
/// `metrics`.
///
/// ```
/// // After installing the recorder, e.g. `PrometheusBuilder::new().install_recorder()`:
/// tower_bearer::telemetry::metrics::describe();
/// ```
pub fn describe() {
    #[cfg(feature = "metrics")]
    emit::describe();
}

/// What the layer did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LayerOutcome {
    Allowed,
    Guest,
    Missing,
    Malformed,
    Invalid,
    WrongKind,
    InsufficientScope,
    Unavailable,
}

/// Which store a call went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum StoreName {
    Redis,
    Memory,
}

/// Which verb of a store was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    // Timed by the Redis store only: the memory store's resolves are not timed.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Get,
    Insert,
    Remove,
    RemoveSubject,
    List,
    RecordFailure,
    ForgiveFailure,
    Failures,
    ClearFailures,
    ClaimOnce,
}

/// How a store call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum StoreFailure {
    Timeout,
    Backend,
}

/// What a lookup in the Redis store's local cache found.
#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheLookup {
    Hit,
    Miss,
    Bypass,
}

/// How a sign-in ended.
#[cfg(feature = "sign-in")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignInOutcome {
    Succeeded,
    Failed,
    Locked,
    SecondFactorRequired,
    SecondFactorRefused,
    Busy,
    LimitReached,
    Unavailable,
}

/// Why live tokens were revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Revocation {
    One,
    ById,
    All,
    Limit,
}

impl From<RevokeReason> for Revocation {
    fn from(reason: RevokeReason) -> Self {
        match reason {
            RevokeReason::ById => Self::ById,
            RevokeReason::OthersSignedOut => Self::All,
            RevokeReason::Limit => Self::Limit,
            _ => Self::One,
        }
    }
}

/// The start of a store call, for its duration: an [`Instant`] with the feature `metrics`,
/// nothing without it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stopwatch {
    #[cfg(feature = "metrics")]
    started: Instant,
}

impl Stopwatch {
    /// Starts now.
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            started: Instant::now(),
        }
    }

    /// Started at `started` (an instant the caller took anyway).
    #[cfg(feature = "redis")]
    pub(crate) fn started_at(started: std::time::Instant) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = started;
        Self {
            #[cfg(feature = "metrics")]
            started,
        }
    }
}

/// The layer decided a request.
#[inline]
pub(crate) fn layer(outcome: LayerOutcome) {
    #[cfg(feature = "metrics")]
    emit::count(emit::requests(outcome), 1);
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}

/// A call of `store`'s `operation` started at `stopwatch` has answered, or failed with
/// `failure`.
#[inline]
pub(crate) fn store_call(
    store: StoreName,
    operation: Operation,
    stopwatch: Stopwatch,
    failure: Option<StoreFailure>,
) {
    #[cfg(feature = "metrics")]
    {
        let seconds = stopwatch.started.elapsed().as_secs_f64();
        emit::record(emit::store_call(store, operation), seconds);
        if let Some(failure) = failure {
            emit::count(emit::store_error(store, operation, failure), 1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (store, operation, stopwatch, failure);
}

/// A lookup in the Redis store's local cache.
#[cfg(feature = "redis")]
#[inline]
pub(crate) fn cache_lookup(result: CacheLookup) {
    #[cfg(feature = "metrics")]
    emit::count(emit::cache_lookup(result), 1);
    #[cfg(not(feature = "metrics"))]
    let _ = result;
}

/// A sign-in for a token of `kind` ended.
#[cfg(feature = "sign-in")]
#[inline]
pub(crate) fn sign_in(kind: TokenKind, outcome: SignInOutcome) {
    #[cfg(feature = "metrics")]
    emit::count(emit::sign_in(kind, outcome), 1);
    #[cfg(not(feature = "metrics"))]
    let _ = (kind, outcome);
}

/// The password checks now `waiting` for a hashing thread and `running` on one.
#[cfg(feature = "sign-in")]
#[inline]
pub(crate) fn password_checks(waiting: usize, running: usize) {
    #[cfg(feature = "metrics")]
    {
        // Exact below 2^53: a count of waiting checks is far below.
        #[allow(clippy::cast_precision_loss)]
        let (waiting, running) = (waiting as f64, running as f64);
        emit::set(emit::password_checks_waiting(), waiting);
        emit::set(emit::password_checks_running(), running);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (waiting, running);
}

/// A token of `kind` was issued.
#[inline]
pub(crate) fn token_issued(kind: TokenKind) {
    #[cfg(feature = "metrics")]
    emit::count(emit::token_issued(kind), 1);
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// `count` live tokens of `kind` were revoked, for `reason`.
#[inline]
pub(crate) fn tokens_revoked(kind: TokenKind, reason: Revocation, count: u64) {
    #[cfg(feature = "metrics")]
    if count > 0 {
        emit::count(emit::token_revoked(kind, reason), count);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (kind, reason, count);
}

/// The keys of every series, built at compile time (name, labels and hash), so recording
/// one allocates nothing and hashes nothing: the recorder is handed a `&'static Key`.
#[cfg(feature = "metrics")]
mod emit {
    use metrics::{Key, Label, Level, Metadata, Unit};

    use super::*;

    static METADATA: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    pub(super) fn count(key: &'static Key, by: u64) {
        metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA)).increment(by);
    }

    pub(super) fn record(key: &'static Key, value: f64) {
        metrics::with_recorder(|recorder| recorder.register_histogram(key, &METADATA))
            .record(value);
    }

    #[cfg(feature = "sign-in")]
    pub(super) fn set(key: &'static Key, value: f64) {
        metrics::with_recorder(|recorder| recorder.register_gauge(key, &METADATA)).set(value);
    }

    pub(super) fn describe() {
        metrics::with_recorder(|recorder| {
            let counters = [
                (
                    REQUESTS,
                    "Requests decided by the bearer layer, by outcome.",
                ),
                (
                    STORE_ERRORS,
                    "Token store calls that failed, by store, operation and error.",
                ),
                (
                    CACHE_LOOKUPS,
                    "Lookups in the Redis store's local token cache, by result.",
                ),
                (SIGN_INS, "Sign-ins by token kind and outcome."),
                (TOKENS_ISSUED, "Tokens issued, by kind."),
                (TOKENS_REVOKED, "Live tokens revoked, by kind and reason."),
            ];
            for (name, description) in counters {
                recorder.describe_counter(name.into(), None, description.into());
            }
            recorder.describe_histogram(
                STORE_CALL_DURATION.into(),
                Some(Unit::Seconds),
                "Duration of token store calls, by store and operation.".into(),
            );
            recorder.describe_gauge(
                PASSWORD_CHECKS_WAITING.into(),
                None,
                "Password checks waiting for a hashing thread.".into(),
            );
            recorder.describe_gauge(
                PASSWORD_CHECKS_RUNNING.into(),
                None,
                "Password checks running on the hashing threads.".into(),
            );
        });
    }

    /// `&'static Key` of `name` with these labels, built at compile time.
    macro_rules! key {
        ($name:expr $(, $label:literal => $value:literal)* $(,)?) => {{
            static LABELS: &[Label] = &[$(Label::from_static_parts($label, $value)),*];
            static KEY: Key = Key::from_static_parts($name, LABELS);
            &KEY
        }};
    }

    /// One key per token kind, in the order of [`kind_index`].
    macro_rules! per_kind {
        ($name:expr $(, $label:literal => $value:literal)*) => {
            [
                key!($name, "kind" => "customer" $(, $label => $value)*),
                key!($name, "kind" => "admin" $(, $label => $value)*),
                key!($name, "kind" => "integration" $(, $label => $value)*),
            ]
        };
    }

    /// One key per store operation, in the order of [`operation_index`].
    macro_rules! per_operation {
        ($name:expr $(, $label:literal => $value:literal)*) => {
            [
                key!($name $(, $label => $value)*, "operation" => "get"),
                key!($name $(, $label => $value)*, "operation" => "insert"),
                key!($name $(, $label => $value)*, "operation" => "remove"),
                key!($name $(, $label => $value)*, "operation" => "remove_subject"),
                key!($name $(, $label => $value)*, "operation" => "list"),
                key!($name $(, $label => $value)*, "operation" => "record_failure"),
                key!($name $(, $label => $value)*, "operation" => "forgive_failure"),
                key!($name $(, $label => $value)*, "operation" => "failures"),
                key!($name $(, $label => $value)*, "operation" => "clear_failures"),
                key!($name $(, $label => $value)*, "operation" => "claim_once"),
            ]
        };
    }

    fn kind_index(kind: TokenKind) -> usize {
        match kind {
            TokenKind::Customer => 0,
            TokenKind::Admin => 1,
            TokenKind::Integration => 2,
        }
    }

    fn operation_index(operation: Operation) -> usize {
        match operation {
            Operation::Get => 0,
            Operation::Insert => 1,
            Operation::Remove => 2,
            Operation::RemoveSubject => 3,
            Operation::List => 4,
            Operation::RecordFailure => 5,
            Operation::ForgiveFailure => 6,
            Operation::Failures => 7,
            Operation::ClearFailures => 8,
            Operation::ClaimOnce => 9,
        }
    }

    pub(super) fn requests(outcome: LayerOutcome) -> &'static Key {
        match outcome {
            LayerOutcome::Allowed => key!(REQUESTS, "outcome" => "allowed"),
            LayerOutcome::Guest => key!(REQUESTS, "outcome" => "guest"),
            LayerOutcome::Missing => key!(REQUESTS, "outcome" => "missing"),
            LayerOutcome::Malformed => key!(REQUESTS, "outcome" => "malformed"),
            LayerOutcome::Invalid => key!(REQUESTS, "outcome" => "invalid"),
            LayerOutcome::WrongKind => key!(REQUESTS, "outcome" => "wrong_kind"),
            LayerOutcome::InsufficientScope => key!(REQUESTS, "outcome" => "insufficient_scope"),
            LayerOutcome::Unavailable => key!(REQUESTS, "outcome" => "unavailable"),
        }
    }

    pub(super) fn store_call(store: StoreName, operation: Operation) -> &'static Key {
        static REDIS: [&Key; 10] = per_operation!(STORE_CALL_DURATION, "store" => "redis");
        static MEMORY: [&Key; 10] = per_operation!(STORE_CALL_DURATION, "store" => "memory");
        let keys = match store {
            StoreName::Redis => &REDIS,
            StoreName::Memory => &MEMORY,
        };
        keys[operation_index(operation)]
    }

    pub(super) fn store_error(
        store: StoreName,
        operation: Operation,
        failure: StoreFailure,
    ) -> &'static Key {
        static REDIS_TIMEOUT: [&Key; 10] =
            per_operation!(STORE_ERRORS, "store" => "redis", "error" => "timeout");
        static REDIS_BACKEND: [&Key; 10] =
            per_operation!(STORE_ERRORS, "store" => "redis", "error" => "backend");
        static MEMORY_TIMEOUT: [&Key; 10] =
            per_operation!(STORE_ERRORS, "store" => "memory", "error" => "timeout");
        static MEMORY_BACKEND: [&Key; 10] =
            per_operation!(STORE_ERRORS, "store" => "memory", "error" => "backend");
        let keys = match (store, failure) {
            (StoreName::Redis, StoreFailure::Timeout) => &REDIS_TIMEOUT,
            (StoreName::Redis, StoreFailure::Backend) => &REDIS_BACKEND,
            (StoreName::Memory, StoreFailure::Timeout) => &MEMORY_TIMEOUT,
            (StoreName::Memory, StoreFailure::Backend) => &MEMORY_BACKEND,
        };
        keys[operation_index(operation)]
    }

    #[cfg(feature = "redis")]
    pub(super) fn cache_lookup(result: CacheLookup) -> &'static Key {
        match result {
            CacheLookup::Hit => key!(CACHE_LOOKUPS, "result" => "hit"),
            CacheLookup::Miss => key!(CACHE_LOOKUPS, "result" => "miss"),
            CacheLookup::Bypass => key!(CACHE_LOOKUPS, "result" => "bypass"),
        }
    }

    #[cfg(feature = "sign-in")]
    pub(super) fn sign_in(kind: TokenKind, outcome: SignInOutcome) -> &'static Key {
        static SUCCEEDED: [&Key; 3] = per_kind!(SIGN_INS, "outcome" => "succeeded");
        static FAILED: [&Key; 3] = per_kind!(SIGN_INS, "outcome" => "failed");
        static LOCKED: [&Key; 3] = per_kind!(SIGN_INS, "outcome" => "locked");
        static SECOND_FACTOR_REQUIRED: [&Key; 3] =
            per_kind!(SIGN_INS, "outcome" => "second_factor_required");
        static SECOND_FACTOR_REFUSED: [&Key; 3] =
            per_kind!(SIGN_INS, "outcome" => "second_factor_refused");
        static BUSY: [&Key; 3] = per_kind!(SIGN_INS, "outcome" => "busy");
        static LIMIT_REACHED: [&Key; 3] = per_kind!(SIGN_INS, "outcome" => "limit_reached");
        static UNAVAILABLE: [&Key; 3] = per_kind!(SIGN_INS, "outcome" => "unavailable");
        let keys = match outcome {
            SignInOutcome::Succeeded => &SUCCEEDED,
            SignInOutcome::Failed => &FAILED,
            SignInOutcome::Locked => &LOCKED,
            SignInOutcome::SecondFactorRequired => &SECOND_FACTOR_REQUIRED,
            SignInOutcome::SecondFactorRefused => &SECOND_FACTOR_REFUSED,
            SignInOutcome::Busy => &BUSY,
            SignInOutcome::LimitReached => &LIMIT_REACHED,
            SignInOutcome::Unavailable => &UNAVAILABLE,
        };
        keys[kind_index(kind)]
    }

    #[cfg(feature = "sign-in")]
    pub(super) fn password_checks_waiting() -> &'static Key {
        key!(PASSWORD_CHECKS_WAITING)
    }

    #[cfg(feature = "sign-in")]
    pub(super) fn password_checks_running() -> &'static Key {
        key!(PASSWORD_CHECKS_RUNNING)
    }

    pub(super) fn token_issued(kind: TokenKind) -> &'static Key {
        static KEYS: [&Key; 3] = per_kind!(TOKENS_ISSUED);
        KEYS[kind_index(kind)]
    }

    pub(super) fn token_revoked(kind: TokenKind, reason: Revocation) -> &'static Key {
        static ONE: [&Key; 3] = per_kind!(TOKENS_REVOKED, "reason" => "one");
        static BY_ID: [&Key; 3] = per_kind!(TOKENS_REVOKED, "reason" => "by_id");
        static ALL: [&Key; 3] = per_kind!(TOKENS_REVOKED, "reason" => "all");
        static LIMIT: [&Key; 3] = per_kind!(TOKENS_REVOKED, "reason" => "limit");
        let keys = match reason {
            Revocation::One => &ONE,
            Revocation::ById => &BY_ID,
            Revocation::All => &ALL,
            Revocation::Limit => &LIMIT,
        };
        keys[kind_index(kind)]
    }
}
