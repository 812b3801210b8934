//! Who is calling: [`Caller`], injected by the layer, and the [`SecondFactor`] it proved.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{ClientDetails, Scopes, TokenHash, TokenId, TokenKind};

/// The second factor an admin proved when the token was issued, beside the password.
///
/// Serialized in lower case (`"totp"`), as [`Caller::second_factor`] shows it:
///
/// ```
/// use tower_bearer::token::SecondFactor;
///
/// assert_eq!(serde_json::to_value(SecondFactor::Totp).unwrap(), "totp");
/// assert_eq!(SecondFactor::Totp.as_str(), "totp");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SecondFactor {
    /// A time-based one-time password (RFC 6238) from an authenticator app, as Magento's
    /// Google Authenticator provider.
    Totp,
}

impl SecondFactor {
    /// `"totp"`, as used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
        }
    }
}

impl fmt::Display for SecondFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity behind a valid token, put into the request's extensions by
/// [`BearerAuthLayer`](crate::BearerAuthLayer).
///
/// Read it in a handler with the [`Caller`] extractor (feature `axum`), or from
/// `request.extensions().get::<Caller>()` in any tower service. Its JSON form shows the
/// short [`TokenId`] of the token, never the token or its full hash:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_bearer::{TokenKind, TokenRegistry};
///
/// let registry = TokenRegistry::memory();
/// let issued = registry.issue(TokenKind::Customer, "ada@example.com").await.unwrap();
/// let json = serde_json::to_value(&issued.caller).unwrap();
/// assert_eq!(json["kind"], "customer");
/// assert_eq!(json["subject"], "ada@example.com");
/// assert_eq!(json["token_id"].as_str().unwrap().len(), 12);
/// assert_eq!(json["second_factor"], serde_json::Value::Null);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Caller {
    /// Customer or admin.
    pub kind: TokenKind,
    /// Who the token was issued to: the customer's email or the admin's username, as the
    /// [directory](crate) of accounts names them.
    pub subject: String,
    /// When the token was issued.
    pub issued_at: DateTime<Utc>,
    /// When the token stops being valid (absolute, fixed at issue); `None` for a token that
    /// lives until revoked (integration tokens by default). With an idle timeout it may
    /// stop sooner: see [`Caller::idle_expires_at`].
    pub expires_at: Option<DateTime<Utc>>,
    /// When a use of the token was last recorded; `None` before the first. Uses are
    /// recorded at most once per interval (see
    /// [`SessionRules::with_last_used_interval`](crate::registry::SessionRules::with_last_used_interval)),
    /// so this lags the latest use by up to that interval.
    pub last_used_at: Option<DateTime<Utc>>,
    /// How long the token may go unused before it expires (fixed at issue from its kind's
    /// idle timeout); `None`: no idle timeout, only [`Caller::expires_at`].
    #[serde(skip)]
    pub idle_timeout: Option<Duration>,
    /// The name given to the token at issue (an integration's name), if any.
    pub name: Option<String>,
    /// For a customer token issued by an admin on the customer's behalf (Magento's
    /// remote shopping assistance), the admin who did it.
    pub acting_admin: Option<String>,
    /// The second factor proved at sign-in besides the password (`"totp"` for a token from
    /// `POST /V1/tfa/provider/google/authenticate`), `None` for a password-only token.
    pub second_factor: Option<SecondFactor>,
    /// What the token may be used for (empty for customer tokens, and for tokens issued
    /// before scopes existed). Fixed at issue: a token never gains a scope.
    pub scopes: Scopes,
    /// Where the token was issued from (`User-Agent`, IP); shown flattened in JSON as
    /// `user_agent` and `ip`. Empty for tokens issued before it was recorded.
    #[serde(flatten)]
    pub client: ClientDetails,
    /// SHA-256 of the token presented, e.g. to revoke that one token. Serialized as the
    /// short `token_id` only.
    #[serde(rename = "token_id", serialize_with = "serialize_short_id")]
    pub token_hash: TokenHash,
}

impl Caller {
    /// The caller behind the token whose hash is `token_hash`, issued to `subject` at
    /// `issued_at` until `expires_at`, with no acting admin and no second factor: for
    /// custom stores and tests.
    ///
    /// ```
    /// use chrono::{Duration, Utc};
    /// use tower_bearer::{Caller, TokenKind};
    /// use tower_bearer::token::{SecondFactor, TokenHash};
    ///
    /// let now = Utc::now();
    /// let caller = Caller::new(TokenKind::Admin, "root", TokenHash::of("t"), now, Some(now + Duration::hours(4)))
    ///     .with_second_factor(SecondFactor::Totp);
    /// assert!(!caller.is_expired_at(now));
    /// ```
    pub fn new(
        kind: TokenKind,
        subject: impl Into<String>,
        token_hash: TokenHash,
        issued_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            kind,
            subject: subject.into(),
            issued_at,
            expires_at,
            last_used_at: None,
            idle_timeout: None,
            name: None,
            acting_admin: None,
            second_factor: None,
            scopes: Scopes::default(),
            client: ClientDetails::default(),
            token_hash,
        }
    }

    /// The same caller, issued from `client`.
    pub fn with_client(mut self, client: ClientDetails) -> Self {
        self.client = client;
        self
    }

    /// The same caller, named `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The same caller, holding `scopes`.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Whether the token grants `scope`: it holds it, or the wildcard
    /// [`ALL_SCOPES`](super::ALL_SCOPES).
    ///
    /// ```
    /// use chrono::{Duration, Utc};
    /// use tower_bearer::{Caller, TokenKind};
    /// use tower_bearer::token::{Scopes, TokenHash};
    ///
    /// let now = Utc::now();
    /// let caller = Caller::new(TokenKind::Admin, "catalog", TokenHash::of("t"), now, Some(now + Duration::hours(4)))
    ///     .with_scopes(Scopes::new(["Magento_Catalog::products"])?);
    /// assert!(caller.has_scope("Magento_Catalog::products"));
    /// assert!(!caller.has_scope("Magento_Sales::sales"));
    /// # Ok::<(), tower_bearer::token::InvalidScope>(())
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.grants(scope)
    }

    /// The same caller, recording `admin` as the admin who obtained the token.
    pub fn with_acting_admin(mut self, admin: impl Into<String>) -> Self {
        self.acting_admin = Some(admin.into());
        self
    }

    /// The same caller, recording the second factor proved at sign-in.
    pub fn with_second_factor(mut self, factor: SecondFactor) -> Self {
        self.second_factor = Some(factor);
        self
    }

    /// The short id of the token, safe to log.
    pub fn token_id(&self) -> TokenId {
        self.token_hash.id()
    }

    /// The same caller, expiring once unused for `idle` (never past
    /// [`Caller::expires_at`]).
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// The same caller, with a use recorded at `at`.
    pub fn with_last_used_at(mut self, at: DateTime<Utc>) -> Self {
        self.last_used_at = Some(at);
        self
    }

    /// When the token expires unless it is used before: its idle timeout after its last
    /// recorded use (or its issue), never later than [`Caller::expires_at`]. `None` without
    /// an idle timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use chrono::{TimeDelta, Utc};
    /// use tower_bearer::{Caller, TokenKind};
    /// use tower_bearer::token::TokenHash;
    ///
    /// let now = Utc::now();
    /// let caller = Caller::new(TokenKind::Customer, "ada", TokenHash::of("t"), now, Some(now + TimeDelta::hours(1)))
    ///     .with_idle_timeout(Duration::from_secs(600));
    /// assert_eq!(caller.idle_expires_at(), Some(now + TimeDelta::minutes(10)));
    /// assert!(caller.is_expired_at(now + TimeDelta::minutes(10)));
    /// let used = caller.with_last_used_at(now + TimeDelta::minutes(9));
    /// assert!(!used.is_expired_at(now + TimeDelta::minutes(10)));
    /// ```
    pub fn idle_expires_at(&self) -> Option<DateTime<Utc>> {
        let idle = TimeDelta::from_std(self.idle_timeout?).unwrap_or(TimeDelta::MAX);
        let last_active = self.last_used_at.unwrap_or(self.issued_at);
        let idle_end = last_active.checked_add_signed(idle)?;
        Some(
            self.expires_at
                .map_or(idle_end, |absolute| absolute.min(idle_end)),
        )
    }

    /// Whether the token has expired at `now`: past its absolute expiry, or unused for its
    /// idle timeout.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at
            .into_iter()
            .chain(self.idle_expires_at())
            .any(|deadline| deadline <= now)
    }

    /// How often a use of this token is recorded at most: `every`, or a quarter of its idle
    /// timeout when that is shorter (so a token in use never idles out between two
    /// recorded uses).
    pub fn use_recording_step(&self, every: Duration) -> Duration {
        self.idle_timeout.map_or(every, |idle| every.min(idle / 4))
    }

    /// Whether a use at `now` is to be recorded: none was yet, or the last one is at least
    /// [`Caller::use_recording_step`] old. Never for `every` =
    /// [`RECORD_NO_USE`](crate::store::RECORD_NO_USE) (`Duration::MAX`): a read only.
    ///
    /// ```
    /// use std::time::Duration;
    /// use chrono::{TimeDelta, Utc};
    /// use tower_bearer::{Caller, TokenKind};
    /// use tower_bearer::store::RECORD_NO_USE;
    /// use tower_bearer::token::TokenHash;
    ///
    /// let now = Utc::now();
    /// let caller = Caller::new(TokenKind::Customer, "ada", TokenHash::of("t"), now, None)
    ///     .with_idle_timeout(Duration::from_secs(600))
    ///     .with_last_used_at(now);
    /// let every = Duration::from_secs(60);
    /// assert!(!caller.use_is_due(now + TimeDelta::seconds(59), every));
    /// assert!(caller.use_is_due(now + TimeDelta::seconds(60), every));
    /// assert!(!caller.use_is_due(now + TimeDelta::days(1), RECORD_NO_USE));
    /// ```
    pub fn use_is_due(&self, now: DateTime<Utc>, every: Duration) -> bool {
        let since_last_use = self.last_used_at.map(|last| {
            now.signed_duration_since(last)
                .to_std()
                .unwrap_or(Duration::ZERO)
        });
        self.use_is_due_after(since_last_use, every)
    }

    /// [`Caller::use_is_due`] given how long ago the last use was recorded (`None`: never),
    /// measured on whichever clock the store keeps.
    pub(crate) fn use_is_due_after(
        &self,
        since_last_use: Option<Duration>,
        every: Duration,
    ) -> bool {
        every != Duration::MAX
            && since_last_use.is_none_or(|elapsed| elapsed >= self.use_recording_step(every))
    }
}

fn serialize_short_id<S: serde::Serializer>(
    hash: &TokenHash,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    hash.id().serialize(serializer)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn caller() -> Caller {
        let now = Utc::now();
        Caller::new(
            TokenKind::Customer,
            "ada",
            TokenHash::of("ada's token"),
            now,
            Some(now + TimeDelta::hours(1)),
        )
    }

    #[test]
    fn the_second_factor_is_named_totp_in_text_and_json() {
        assert_eq!(SecondFactor::Totp.as_str(), "totp");
        assert_eq!(SecondFactor::Totp.to_string(), "totp");
    }

    #[test]
    fn a_caller_has_exactly_the_scopes_it_was_given() {
        let scoped = caller().with_scopes(Scopes::new(["Magento_Catalog::products"]).unwrap());
        assert!(scoped.has_scope("Magento_Catalog::products"));
        assert!(!scoped.has_scope("Magento_Sales::sales"));
    }

    #[test]
    fn a_use_is_recorded_once_per_step_and_the_step_is_at_most_a_quarter_of_the_idle_timeout() {
        let minute = Duration::from_secs(60);
        assert_eq!(caller().use_recording_step(minute), minute);
        let idle = caller().with_idle_timeout(Duration::from_secs(120));
        assert_eq!(idle.use_recording_step(minute), Duration::from_secs(30));

        let now = Utc::now();
        assert!(caller().use_is_due(now, minute), "never used: due");
        let used = caller().with_last_used_at(now - TimeDelta::seconds(10));
        assert!(!used.use_is_due(now, minute), "used 10 s ago, step 60 s");
        assert!(
            used.use_is_due(now, Duration::from_secs(10)),
            "a whole step ago"
        );
        let idle_used = idle.with_last_used_at(now - TimeDelta::seconds(31));
        assert!(
            idle_used.use_is_due(now, minute),
            "past a quarter of the idle timeout"
        );
        assert!(
            !caller().use_is_due(now, Duration::MAX),
            "a read only records nothing"
        );
    }
}
