//! How long tokens live: [`Lifetimes`].

use std::time::Duration;

use super::{ConfigError, TokenKind};

/// The shortest lifetime accepted. Anything shorter is almost surely a unit mistake
/// (milliseconds taken for seconds), and would expire before the client can use it.
pub const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// The longest lifetime accepted: one year.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Absolute token lifetimes per kind, counted from issue. Defaults are Magento's:
/// customer 1 hour, admin 4 hours, integration none (until revoked).
///
/// A zero lifetime is refused with a clear error (Magento instead issues tokens that expire
/// at once).
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::TokenKind;
/// use tower_bearer::token::Lifetimes;
///
/// let lifetimes = Lifetimes::default().with_customer(Duration::from_secs(30 * 60))?;
/// assert_eq!(lifetimes.of(TokenKind::Customer), Some(Duration::from_secs(1800)));
/// assert_eq!(lifetimes.of(TokenKind::Admin), Some(Duration::from_secs(4 * 3600)));
/// assert_eq!(lifetimes.of(TokenKind::Integration), None, "until revoked");
///
/// assert!(Lifetimes::default().with_admin(Duration::ZERO).is_err());
/// # Ok::<(), tower_bearer::token::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    customer: Duration,
    admin: Duration,
    integration: Option<Duration>,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            customer: Duration::from_secs(3600),
            admin: Duration::from_secs(4 * 3600),
            integration: None,
        }
    }
}

impl Lifetimes {
    /// Both lifetimes at once.
    ///
    /// # Errors
    /// [`ConfigError::InvalidLifetime`] when either is under [`MIN_LIFETIME`] or over
    /// [`MAX_LIFETIME`].
    pub fn new(customer: Duration, admin: Duration) -> Result<Self, ConfigError> {
        Self::default().with_customer(customer)?.with_admin(admin)
    }

    /// Sets the customer token lifetime.
    ///
    /// # Errors
    /// [`ConfigError::InvalidLifetime`] when it is out of range.
    pub fn with_customer(self, lifetime: Duration) -> Result<Self, ConfigError> {
        self.with(TokenKind::Customer, lifetime)
    }

    /// Sets the admin token lifetime.
    ///
    /// # Errors
    /// [`ConfigError::InvalidLifetime`] when it is out of range.
    pub fn with_admin(self, lifetime: Duration) -> Result<Self, ConfigError> {
        self.with(TokenKind::Admin, lifetime)
    }

    /// Sets the lifetime of one kind.
    ///
    /// # Errors
    /// [`ConfigError::InvalidLifetime`] when it is out of range.
    pub fn with(mut self, kind: TokenKind, lifetime: Duration) -> Result<Self, ConfigError> {
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
            return Err(ConfigError::InvalidLifetime { kind, lifetime });
        }
        match kind {
            TokenKind::Customer => self.customer = lifetime,
            TokenKind::Admin => self.admin = lifetime,
            TokenKind::Integration => self.integration = Some(lifetime),
        }
        Ok(self)
    }

    /// The lifetime of tokens of `kind`; `None` for tokens that live until revoked.
    pub fn of(&self, kind: TokenKind) -> Option<Duration> {
        match kind {
            TokenKind::Customer => Some(self.customer),
            TokenKind::Admin => Some(self.admin),
            TokenKind::Integration => self.integration,
        }
    }

    /// Checks a lifetime for one token (as [`Lifetimes::with`] checks a kind's).
    ///
    /// # Errors
    /// [`ConfigError::InvalidLifetime`] outside [`MIN_LIFETIME`]..=[`MAX_LIFETIME`].
    pub fn check(kind: TokenKind, lifetime: Duration) -> Result<Duration, ConfigError> {
        if (MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
            Ok(lifetime)
        } else {
            Err(ConfigError::InvalidLifetime { kind, lifetime })
        }
    }
}
