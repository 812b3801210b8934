//! [`RecentUses`]: which tokens this instance recorded a use of lately, so most resolves
//! stay a plain `GET` and only a due one runs the recording script.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::expiring_hashes::ExpiringHashes;
use crate::token::{Caller, TokenHash};

/// The most tokens remembered; past it a token is not remembered until others fall due (its
/// next resolve runs the script again, which finds the use recorded and writes nothing).
const MAX_REMEMBERED: u64 = 100_000;

/// When a use of each token is next due, as far as this instance knows. Only tokens that
/// resolved are remembered, so unknown tokens cannot fill it.
pub(super) struct RecentUses {
    /// Tokens whose next use is not due yet, each until it is.
    not_due: ExpiringHashes<()>,
}

impl RecentUses {
    pub(super) fn new() -> Self {
        Self {
            not_due: ExpiringHashes::new(MAX_REMEMBERED),
        }
    }

    /// Whether a resolve of `hash` at `now` should record a use (run the script).
    pub(super) fn is_due(&self, hash: &TokenHash, now: Instant) -> bool {
        self.not_due.get_with(hash, now, |()| ()).is_none()
    }

    /// Remembers when a use of `caller` is next due: one recording step after its last
    /// recorded use (`now`, `utc` being the same moment on both clocks).
    pub(super) fn remember(
        &self,
        caller: &Caller,
        every: Duration,
        now: Instant,
        utc: DateTime<Utc>,
    ) {
        let step = caller.use_recording_step(every);
        let last = caller.last_used_at.unwrap_or(utc);
        let elapsed = utc.signed_duration_since(last).to_std().unwrap_or_default();
        let wait = step.saturating_sub(elapsed);
        if let Some(due) = now.checked_add(wait) {
            // Not kept when full: then the next resolve runs the script, as when due.
            self.not_due.insert(caller.token_hash, (), due, now);
        }
    }

    pub(super) fn forget(&self, hashes: impl IntoIterator<Item = TokenHash>) {
        for hash in hashes {
            self.not_due.remove(&hash);
        }
    }
}
