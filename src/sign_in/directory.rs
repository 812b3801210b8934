//! Who may sign in: the [`Directory`] trait and the embedded [`MemoryDirectory`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{PoisonError, RwLock};

use super::password::{DummyHash, PasswordError, hash_password, verify_password};
use super::totp::TotpSecret;
use crate::token::{Scopes, TokenKind};

/// The future a [`Directory`] returns.
pub type DirectoryFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, DirectoryError>> + Send + 'a>>;

/// The directory could not answer (e.g. its database is down). The token routes answer 503.
#[derive(Debug, thiserror::Error)]
#[error("the account directory failed: {0}")]
pub struct DirectoryError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl From<PasswordError> for DirectoryError {
    fn from(error: PasswordError) -> Self {
        Self(Box::new(error))
    }
}

/// What the token routes need to know of a customer account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerAccount {
    /// The subject tokens are issued to (the email as the directory records it).
    pub subject: String,
    /// Whether the customer lets admins sign in on their behalf (Magento's
    /// `allow_remote_shopping_assistance`).
    pub allows_remote_assistance: bool,
}

/// The accounts that may obtain tokens. Implement it against your user database; use
/// [`hash_password`] / [`verify_password`] (Argon2id, off the async runtime) for passwords,
/// and a [`DummyHash`] for usernames that have no account.
///
/// Return the subject as your database stores it, never as the client typed it: if
/// `ADA@example.com` and `ada@example.com` sign in to one account, both must get tokens of
/// one subject, or a revoke-all for one spelling would leave the other's tokens alive.
///
/// Tokens are not tied to the password or the account they were issued for: they live
/// until they expire or are revoked. When a password changes, an account is removed or
/// locked, or a customer withdraws remote-assistance consent, end the subject's tokens
/// yourself with one call: `registry.revoke_all(TokenKind::Customer, &subject).await?`
/// ([`TokenRegistry::revoke_all`](crate::TokenRegistry::revoke_all)).
///
/// ```
/// use tower_bearer::TokenKind;
/// use tower_bearer::sign_in::{CustomerAccount, Directory, DirectoryFuture};
/// use tower_bearer::sign_in::password::{DummyHash, verify_password};
///
/// struct Users {
///     // e.g. a database pool, and a dummy with the parameters of the stored hashes
///     dummy: DummyHash,
/// }
///
/// impl Users {
///     /// The account's email as stored, and its password hash, found case-insensitively.
///     async fn account(&self, email: &str) -> Option<(String, String)> { None }
/// }
///
/// impl Directory for Users {
///     fn verify<'a>(
///         &'a self,
///         kind: TokenKind,
///         username: &'a str,
///         password: &'a str,
///     ) -> DirectoryFuture<'a, Option<String>> {
///         Box::pin(async move {
///             let found = match kind {
///                 TokenKind::Customer => self.account(username).await,
///                 _ => None,
///             };
///             let Some((stored_email, phc)) = found else {
///                 // Spend the same time as for a wrong password: no user enumeration.
///                 self.dummy.verify(password).await?;
///                 return Ok(None);
///             };
///             // The stored spelling is the subject, whatever case the client typed.
///             Ok(verify_password(&phc, password).await?.then_some(stored_email))
///         })
///     }
///
///     fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>> {
///         Box::pin(async move { Ok(None) })
///     }
/// }
/// ```
pub trait Directory: Send + Sync + 'static {
    /// Checks a username and password for tokens of `kind`. Returns the subject to issue
    /// the token to, or `None` for a wrong password or an unknown user, which must take the
    /// same time (verify against a dummy hash).
    ///
    /// Return an error only when no password was judged (the database is down, the check
    /// was refused as busy): sign-in takes such an attempt back from the lockout count, so
    /// an error that followed a password check would hand out a free guess.
    fn verify<'a>(
        &'a self,
        kind: TokenKind,
        username: &'a str,
        password: &'a str,
    ) -> DirectoryFuture<'a, Option<String>>;

    /// Looks a customer up by email.
    fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>>;

    /// The form of `username` under which failed sign-ins are counted for the lockout. It
    /// must map every spelling your directory takes for one account to one string, or each
    /// spelling would get attempts of its own: if your database trims, Unicode-normalises or
    /// compares accent-insensitively, do the same here. Default: lower-cased.
    fn lockout_name(&self, _kind: TokenKind, username: &str) -> String {
        username.to_lowercase()
    }

    /// The TOTP secret of an admin (by the subject [`Directory::verify`] returned) who must
    /// sign in with a second factor: such an admin obtains tokens only from
    /// `POST /V1/tfa/provider/google/authenticate`, and the plain admin token route refuses
    /// them. `None` for an admin without two-factor authentication. Default: `None` for all.
    fn admin_totp_secret<'a>(
        &'a self,
        _subject: &'a str,
    ) -> DirectoryFuture<'a, Option<TotpSecret>> {
        Box::pin(async { Ok(None) })
    }

    /// The scopes an admin's tokens hold (by the subject [`Directory::verify`] returned):
    /// the admin's role, as Magento's ACL resources (`Magento_Catalog::products`). Default:
    /// [`Scopes::all`], the wildcard [`ALL_SCOPES`](crate::token::ALL_SCOPES), as Magento's
    /// Administrators role; return fewer for narrower roles. Customer tokens hold no scope.
    fn admin_scopes<'a>(&'a self, _subject: &'a str) -> DirectoryFuture<'a, Scopes> {
        Box::pin(async { Ok(Scopes::all()) })
    }
}

/// Whether a customer lets admins obtain tokens on their behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteAssistance {
    /// Admins may issue tokens for this customer (`generateCustomerTokenAsAdmin`).
    Allowed,
    /// They may not.
    Denied,
}

struct Account {
    subject: String,
    password_hash: String,
    remote_assistance: RemoteAssistance,
    totp: Option<TotpSecret>,
    scopes: Scopes,
}

/// The embedded directory: accounts in memory, passwords kept only as Argon2id PHC strings.
/// Usernames and emails are matched case-insensitively.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_bearer::TokenKind;
/// use tower_bearer::sign_in::{Directory, MemoryDirectory, RemoteAssistance};
///
/// let directory = MemoryDirectory::new();
/// directory.add_customer("ada@example.com", "s3cret", RemoteAssistance::Allowed)?;
/// directory.add_admin("root", "t0ps3cret")?;
///
/// let subject = directory.verify(TokenKind::Customer, "ADA@example.com", "s3cret").await?;
/// assert_eq!(subject.as_deref(), Some("ada@example.com"));
/// assert_eq!(directory.verify(TokenKind::Customer, "ada@example.com", "nope").await?, None);
/// assert_eq!(directory.verify(TokenKind::Admin, "ada@example.com", "s3cret").await?, None);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct MemoryDirectory {
    accounts: RwLock<HashMap<(TokenKind, String), Account>>,
    dummy: DummyHash,
}

impl std::fmt::Debug for MemoryDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let accounts = self.accounts.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryDirectory")
            .field("accounts", &accounts.len())
            .finish_non_exhaustive()
    }
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a customer. The password is hashed at once (Argon2id) and never
    /// kept in clear.
    ///
    /// # Errors
    /// [`PasswordError`] when hashing fails.
    pub fn add_customer(
        &self,
        email: &str,
        password: &str,
        remote_assistance: RemoteAssistance,
    ) -> Result<(), PasswordError> {
        self.add(
            TokenKind::Customer,
            email,
            password,
            remote_assistance,
            None,
        )
    }

    /// Adds (or replaces) an admin.
    ///
    /// # Errors
    /// [`PasswordError`] when hashing fails.
    pub fn add_admin(&self, username: &str, password: &str) -> Result<(), PasswordError> {
        self.add(
            TokenKind::Admin,
            username,
            password,
            RemoteAssistance::Denied,
            None,
        )
    }

    /// Adds (or replaces) an admin whose tokens hold only `scopes` (a narrower role than
    /// [`MemoryDirectory::add_admin`]'s, whose admins hold the wildcard
    /// [`ALL_SCOPES`](crate::token::ALL_SCOPES)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_bearer::sign_in::{Directory, MemoryDirectory};
    /// use tower_bearer::token::Scopes;
    ///
    /// let directory = MemoryDirectory::new();
    /// directory.add_admin_with_scopes("catalog", "admin123", Scopes::new(["Magento_Catalog::products"])?)?;
    /// directory.add_admin("root", "t0ps3cret")?;
    /// assert!(!directory.admin_scopes("catalog").await?.grants("Magento_Sales::sales"));
    /// assert!(directory.admin_scopes("root").await?.grants("Magento_Sales::sales"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PasswordError`] when hashing fails.
    pub fn add_admin_with_scopes(
        &self,
        username: &str,
        password: &str,
        scopes: Scopes,
    ) -> Result<(), PasswordError> {
        self.add_account(
            TokenKind::Admin,
            username,
            password,
            RemoteAssistance::Denied,
            None,
            scopes,
        )
    }

    /// Adds (or replaces) an admin with two-factor authentication: they obtain tokens only
    /// with a password and a current code of `secret` (`POST
    /// /V1/tfa/provider/google/authenticate`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_bearer::sign_in::{Directory, MemoryDirectory, TotpSecret};
    ///
    /// let directory = MemoryDirectory::new();
    /// let secret = TotpSecret::generate()?;
    /// let uri = secret.otpauth_uri("Shop", "root")?; // for the admin's authenticator app
    /// assert!(uri.starts_with("otpauth://totp/"));
    /// directory.add_admin_with_totp("root", "t0ps3cret", secret)?;
    /// directory.add_admin("plain", "t0ps3cret")?;
    ///
    /// assert!(directory.admin_totp_secret("root").await?.is_some());
    /// assert!(directory.admin_totp_secret("plain").await?.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PasswordError`] when hashing fails.
    pub fn add_admin_with_totp(
        &self,
        username: &str,
        password: &str,
        secret: TotpSecret,
    ) -> Result<(), PasswordError> {
        self.add(
            TokenKind::Admin,
            username,
            password,
            RemoteAssistance::Denied,
            Some(secret),
        )
    }

    /// Replaces the [`DummyHash`] checked for unknown usernames (default: one with this
    /// crate's parameters, which [`MemoryDirectory`] hashes its passwords with).
    ///
    /// ```
    /// use tower_bearer::sign_in::MemoryDirectory;
    /// use tower_bearer::sign_in::password::DummyHash;
    ///
    /// let directory = MemoryDirectory::new().with_dummy(DummyHash::default());
    /// ```
    pub fn with_dummy(mut self, dummy: DummyHash) -> Self {
        self.dummy = dummy;
        self
    }

    fn add(
        &self,
        kind: TokenKind,
        username: &str,
        password: &str,
        remote_assistance: RemoteAssistance,
        totp: Option<TotpSecret>,
    ) -> Result<(), PasswordError> {
        let scopes = match kind {
            TokenKind::Admin => Scopes::all(),
            _ => Scopes::default(),
        };
        self.add_account(kind, username, password, remote_assistance, totp, scopes)
    }

    fn add_account(
        &self,
        kind: TokenKind,
        username: &str,
        password: &str,
        remote_assistance: RemoteAssistance,
        totp: Option<TotpSecret>,
        scopes: Scopes,
    ) -> Result<(), PasswordError> {
        let account = Account {
            subject: username.to_owned(),
            password_hash: hash_password(password)?,
            remote_assistance,
            totp,
            scopes,
        };
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((kind, username.to_lowercase()), account);
        Ok(())
    }

    fn lookup<T>(
        &self,
        kind: TokenKind,
        username: &str,
        read: impl FnOnce(&Account) -> T,
    ) -> Option<T> {
        let accounts = self.accounts.read().unwrap_or_else(PoisonError::into_inner);
        accounts.get(&(kind, username.to_lowercase())).map(read)
    }
}

impl Directory for MemoryDirectory {
    fn verify<'a>(
        &'a self,
        kind: TokenKind,
        username: &'a str,
        password: &'a str,
    ) -> DirectoryFuture<'a, Option<String>> {
        let found = self.lookup(kind, username, |account| {
            (account.subject.clone(), account.password_hash.clone())
        });
        Box::pin(async move {
            let Some((subject, phc)) = found else {
                self.dummy.verify(password).await?;
                return Ok(None);
            };
            Ok(verify_password(&phc, password).await?.then_some(subject))
        })
    }

    fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>> {
        let found = self.lookup(TokenKind::Customer, email, |account| CustomerAccount {
            subject: account.subject.clone(),
            allows_remote_assistance: account.remote_assistance == RemoteAssistance::Allowed,
        });
        Box::pin(async move { Ok(found) })
    }

    fn admin_scopes<'a>(&'a self, subject: &'a str) -> DirectoryFuture<'a, Scopes> {
        let found = self.lookup(TokenKind::Admin, subject, |account| account.scopes.clone());
        Box::pin(async move { Ok(found.unwrap_or_default()) })
    }

    fn admin_totp_secret<'a>(
        &'a self,
        subject: &'a str,
    ) -> DirectoryFuture<'a, Option<TotpSecret>> {
        let found = self
            .lookup(TokenKind::Admin, subject, |account| account.totp.clone())
            .flatten();
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign_in::password::checked;

    #[tokio::test]
    async fn an_unknown_username_costs_one_full_password_check() {
        let dummy = DummyHash::like(&hash_password("anything").unwrap()).unwrap();
        let directory = MemoryDirectory::new().with_dummy(dummy.clone());
        directory
            .add_customer("ada@example.com", "s3cret", RemoteAssistance::Denied)
            .unwrap();

        let answer = directory.verify(TokenKind::Customer, "bob@example.com", "s3cret");
        assert_eq!(answer.await.unwrap(), None);
        assert_eq!(
            checked::count(&format!("{dummy:?}")),
            0,
            "Debug shows no salt"
        );
        assert_eq!(checked::count(&dummy.phc_for_tests()), 1);

        // A known user with a wrong password checks the real hash, not the dummy.
        let answer = directory.verify(TokenKind::Customer, "ada@example.com", "nope");
        assert_eq!(answer.await.unwrap(), None);
        assert_eq!(checked::count(&dummy.phc_for_tests()), 1);
    }
}
