//! [`SessionRules`]: how tokens behave between issue and expiry, per kind: an idle timeout,
//! a limit on how many one subject holds, and how often a use is recorded.

use std::time::Duration;

use crate::store::SubjectLimit;
use crate::token::{ConfigError, MAX_LIFETIME, MIN_LIFETIME, TokenKind};

/// How often a use of a token is recorded by default (its `last_used_at`).
pub const DEFAULT_LAST_USED_INTERVAL: Duration = Duration::from_secs(60);

/// What a [`TokenRegistry`](crate::TokenRegistry) applies to its tokens between issue and
/// expiry. Everything is off by default but the recording of uses (once a minute per token):
/// Magento's absolute lifetimes, no limit.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::TokenKind;
/// use tower_bearer::registry::SessionRules;
/// use tower_bearer::store::{OnLimit, SubjectLimit};
///
/// let rules = SessionRules::default()
///     .with_idle_timeout(TokenKind::Customer, Duration::from_secs(30 * 60))?
///     .with_limit(TokenKind::Admin, SubjectLimit::new(3, OnLimit::Refuse));
/// assert_eq!(rules.idle_timeout(TokenKind::Customer), Some(Duration::from_secs(1800)));
/// assert_eq!(rules.idle_timeout(TokenKind::Admin), None);
/// assert_eq!(rules.limit(TokenKind::Admin).map(|limit| limit.max()), Some(3));
/// assert!(SessionRules::default().with_last_used_interval(Duration::ZERO).is_err());
/// # Ok::<(), tower_bearer::token::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRules {
    kinds: Vec<(TokenKind, KindRules)>,
    last_used_interval: Duration,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct KindRules {
    idle_timeout: Option<Duration>,
    limit: Option<SubjectLimit>,
}

impl Default for SessionRules {
    fn default() -> Self {
        Self {
            kinds: Vec::new(),
            last_used_interval: DEFAULT_LAST_USED_INTERVAL,
        }
    }
}

impl SessionRules {
    /// Tokens of `kind` issued from now on expire once unused for `idle` (each recorded
    /// use restarts the count), and never later than their lifetime.
    ///
    /// # Errors
    /// [`ConfigError::InvalidInterval`] outside 1 second..=365 days.
    pub fn with_idle_timeout(
        mut self,
        kind: TokenKind,
        idle: Duration,
    ) -> Result<Self, ConfigError> {
        check(&format!("{kind} idle timeout"), idle)?;
        self.rules_mut(kind).idle_timeout = Some(idle);
        Ok(self)
    }

    /// At most `limit.max()` live tokens of `kind` per subject; past it, the oldest are
    /// revoked or the new one is refused, as `limit` says.
    pub fn with_limit(mut self, kind: TokenKind, limit: SubjectLimit) -> Self {
        self.rules_mut(kind).limit = Some(limit);
        self
    }

    /// Records a use of a token at most once per `every` (default 60 s; a token with a
    /// shorter idle timeout, at most once per quarter of it). Never a write per request.
    ///
    /// # Errors
    /// [`ConfigError::InvalidInterval`] outside 1 second..=365 days.
    pub fn with_last_used_interval(mut self, every: Duration) -> Result<Self, ConfigError> {
        check("last-used interval", every)?;
        self.last_used_interval = every;
        Ok(self)
    }

    /// The idle timeout of `kind`'s tokens, if any.
    pub fn idle_timeout(&self, kind: TokenKind) -> Option<Duration> {
        self.rules(kind).idle_timeout
    }

    /// The limit on `kind`'s tokens per subject, if any.
    pub fn limit(&self, kind: TokenKind) -> Option<SubjectLimit> {
        self.rules(kind).limit
    }

    /// How often a use is recorded at most.
    pub fn last_used_interval(&self) -> Duration {
        self.last_used_interval
    }

    fn rules(&self, kind: TokenKind) -> KindRules {
        self.kinds
            .iter()
            .find(|(of, _)| *of == kind)
            .map(|(_, rules)| *rules)
            .unwrap_or_default()
    }

    fn rules_mut(&mut self, kind: TokenKind) -> &mut KindRules {
        let at = match self.kinds.iter().position(|(of, _)| *of == kind) {
            Some(at) => at,
            None => {
                self.kinds.push((kind, KindRules::default()));
                self.kinds.len() - 1
            }
        };
        &mut self.kinds[at].1
    }
}

fn check(what: &str, value: Duration) -> Result<(), ConfigError> {
    if (MIN_LIFETIME..=MAX_LIFETIME).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::InvalidInterval {
            what: what.to_owned(),
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{MAX_LIFETIME, MIN_LIFETIME};

    #[test]
    fn idle_timeouts_and_intervals_are_bounded_like_lifetimes() {
        let kind = TokenKind::Customer;
        for valid in [MIN_LIFETIME, Duration::from_secs(1800), MAX_LIFETIME] {
            assert!(
                SessionRules::default()
                    .with_idle_timeout(kind, valid)
                    .is_ok()
            );
            assert!(
                SessionRules::default()
                    .with_last_used_interval(valid)
                    .is_ok()
            );
        }
        for invalid in [Duration::ZERO, Duration::from_millis(999), MAX_LIFETIME * 2] {
            assert!(
                SessionRules::default()
                    .with_idle_timeout(kind, invalid)
                    .is_err()
            );
            assert!(
                SessionRules::default()
                    .with_last_used_interval(invalid)
                    .is_err()
            );
        }
    }
}
