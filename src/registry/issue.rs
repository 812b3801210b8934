//! What an issue takes ([`IssueRequest`]) and gives ([`IssuedToken`]).

use std::time::Duration;

use crate::token::{
    Caller, ClientDetails, ConfigError, Lifetimes, Scopes, SecondFactor, Token, TokenKind,
};

/// A freshly issued token and the caller it stands for.
#[derive(Debug)]
pub struct IssuedToken {
    /// The secret, to hand to the client once.
    pub token: Token,
    /// What the token resolves to.
    pub caller: Caller,
}

/// What to issue a token for: its kind and subject, and what the token records of how it
/// was obtained. Built with [`IssueRequest::new`] and `with_*`, issued with
/// [`crate::TokenRegistry::issue_request`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::store::StoreError> {
/// use tower_bearer::{TokenKind, TokenRegistry};
/// use tower_bearer::registry::IssueRequest;
/// use tower_bearer::token::SecondFactor;
///
/// let registry = TokenRegistry::memory();
/// let request = IssueRequest::new(TokenKind::Admin, "root").with_second_factor(SecondFactor::Totp);
/// let issued = registry.issue_request(request).await?;
/// assert_eq!(issued.caller.second_factor, Some(SecondFactor::Totp));
/// assert_eq!(issued.caller.acting_admin, None);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssueRequest {
    /// Customer or admin.
    pub kind: TokenKind,
    /// Who the token is issued to.
    pub subject: String,
    /// The admin acting on the subject's behalf, if any (see
    /// [`crate::TokenRegistry::issue_on_behalf`]).
    pub acting_admin: Option<String>,
    /// The second factor proved besides the password, if any.
    pub second_factor: Option<SecondFactor>,
    /// What the token may be used for (none by default).
    pub scopes: Scopes,
    /// Where the token is requested from (nothing by default).
    pub client: ClientDetails,
    /// A name for the token (an integration's), if any.
    pub name: Option<String>,
    /// This token's own lifetime, instead of its kind's (see
    /// [`Lifetimes`](crate::token::Lifetimes)).
    pub lifetime: Option<Duration>,
}

impl IssueRequest {
    /// A token of `kind` for `subject`, with no acting admin and no second factor.
    pub fn new(kind: TokenKind, subject: impl Into<String>) -> Self {
        Self {
            kind,
            subject: subject.into(),
            acting_admin: None,
            second_factor: None,
            scopes: Scopes::default(),
            client: ClientDetails::default(),
            name: None,
            lifetime: None,
        }
    }

    /// Names the token (e.g. an integration's name, shown when tokens are listed).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Gives this token its own lifetime instead of its kind's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::TokenKind;
    /// use tower_bearer::registry::IssueRequest;
    ///
    /// let request = IssueRequest::new(TokenKind::Integration, "integrations")
    ///     .with_name("erp-sync")
    ///     .with_lifetime(Duration::from_secs(86_400))?;
    /// assert!(IssueRequest::new(TokenKind::Integration, "x").with_lifetime(Duration::ZERO).is_err());
    /// # Ok::<(), tower_bearer::token::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::InvalidLifetime`] outside
    /// [`MIN_LIFETIME`](crate::token::MIN_LIFETIME)..=[`MAX_LIFETIME`](crate::token::MAX_LIFETIME).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Result<Self, ConfigError> {
        self.lifetime = Some(Lifetimes::check(self.kind, lifetime)?);
        Ok(self)
    }

    /// Records where the token is requested from.
    ///
    /// ```
    /// use tower_bearer::TokenKind;
    /// use tower_bearer::registry::IssueRequest;
    /// use tower_bearer::token::ClientDetails;
    ///
    /// let client = ClientDetails::new(Some("curl/8.5.0"), "203.0.113.7".parse().ok());
    /// let request = IssueRequest::new(TokenKind::Customer, "ada").with_client(client.clone());
    /// assert_eq!(request.client, client);
    /// ```
    pub fn with_client(mut self, client: ClientDetails) -> Self {
        self.client = client;
        self
    }

    /// Grants the token `scopes` (checked when they were built: see [`Scopes::new`]).
    ///
    /// ```
    /// use tower_bearer::TokenKind;
    /// use tower_bearer::registry::IssueRequest;
    /// use tower_bearer::token::Scopes;
    ///
    /// let scopes = Scopes::new(["Magento_Catalog::products"])?;
    /// let request = IssueRequest::new(TokenKind::Admin, "catalog").with_scopes(scopes.clone());
    /// assert_eq!(request.scopes, scopes);
    /// # Ok::<(), tower_bearer::token::InvalidScope>(())
    /// ```
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Records the admin who obtains the token on the subject's behalf.
    ///
    /// ```
    /// use tower_bearer::TokenKind;
    /// use tower_bearer::registry::IssueRequest;
    ///
    /// let request = IssueRequest::new(TokenKind::Customer, "ada@example.com").with_acting_admin("root");
    /// assert_eq!(request.acting_admin.as_deref(), Some("root"));
    /// ```
    pub fn with_acting_admin(mut self, admin: impl Into<String>) -> Self {
        self.acting_admin = Some(admin.into());
        self
    }

    /// Records the second factor the subject proved at sign-in.
    ///
    /// ```
    /// use tower_bearer::TokenKind;
    /// use tower_bearer::registry::IssueRequest;
    /// use tower_bearer::token::SecondFactor;
    ///
    /// let request = IssueRequest::new(TokenKind::Admin, "root").with_second_factor(SecondFactor::Totp);
    /// assert_eq!(request.second_factor, Some(SecondFactor::Totp));
    /// ```
    pub fn with_second_factor(mut self, factor: SecondFactor) -> Self {
        self.second_factor = Some(factor);
        self
    }
}
