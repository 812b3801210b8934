//! Sign-in: tokens in exchange for a username and password (and, for admins with two-factor
//! authentication, a one-time password), with lockout. [`SignIn`] is the
//! entry point; accounts come from a [`Directory`]; passwords are checked by [`password`]
//! off the async runtime; [`LockoutPolicy`] and [`TotpSecret`] set the guards.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::registry::{IssueRequest, IssuedToken, TokenRegistry};
use crate::store::{SignInStore, StoreError};
use crate::telemetry::events::{EventDetail, SecondFactorRefusal};
use crate::telemetry::metrics::{self, SignInOutcome};
use http::HeaderMap;
use http::header::USER_AGENT;

pub use self::forwarded::ForwardedHeader;
use self::forwarded::forwarded_client;
use crate::token::{ClientDetails, Scopes, SecondFactor, TokenKind, sha256_hex};

mod directory;
mod forwarded;
mod lockout;
pub mod password;
mod totp;

use self::totp::{SKEW_STEPS, STEP_SECONDS};
#[doc(inline)]
pub use self::{
    directory::{
        CustomerAccount, Directory, DirectoryError, DirectoryFuture, MemoryDirectory,
        RemoteAssistance,
    },
    lockout::{LockoutPolicy, MAX_LOCK_DURATION, MIN_LOCK_DURATION},
    password::PasswordError,
    totp::{TotpError, TotpSecret},
};

/// How long a used one-time password stays claimed: the 90 s in which a code is accepted
/// (its step and one either side), plus one step for clocks of instances that differ.
const TOTP_CLAIM_TTL: Duration = Duration::from_secs(STEP_SECONDS * (2 * SKEW_STEPS as u64 + 2));

/// Magento's answer to a wrong password, an unknown user and a locked account alike.
pub const INVALID_CREDENTIALS_MESSAGE: &str = "The account sign-in was incorrect or your account \
     is disabled temporarily. Please wait and try again later.";

/// Magento's answer when an admin with two-factor authentication uses the plain route.
pub const TWO_FACTOR_REQUIRED_MESSAGE: &str =
    "Please use the 2fa provider-specific endpoints to obtain access token.";

/// The longest username or email accepted at sign-in, in bytes (Magento's column width);
/// longer ones are refused with the generic answer before anything is counted or checked.
pub const MAX_USERNAME_LEN: usize = 255;

/// Why a sign-in issued no token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// Wrong password, unknown user or locked account (and, on the two-factor route, a
    /// wrong, expired or already used code, or an admin without a second factor):
    /// deliberately one answer.
    #[error("{}", INVALID_CREDENTIALS_MESSAGE)]
    InvalidCredentials,
    /// The admin must sign in with a second factor.
    #[error("{}", TWO_FACTOR_REQUIRED_MESSAGE)]
    TwoFactorRequired,
    /// The token store failed.
    #[error("the token store failed: {0}")]
    Store(#[from] StoreError),
    /// The account directory failed (including a password check refused with
    /// [`PasswordError::Busy`]).
    #[error("the account directory failed: {0}")]
    Directory(#[from] DirectoryError),
    /// Too many password checks are waiting: the attempt was refused before it was
    /// counted. Try again shortly.
    #[error("too many sign-ins are waiting; try again later")]
    Busy,
}

/// Issues tokens in exchange for credentials checked against a [`Directory`], enforcing
/// the [`LockoutPolicy`]. The REST routes ([`token_routes`](crate::token_routes)) and the
/// GraphQL mutations are thin layers over it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_bearer::{SignIn, TokenKind, TokenRegistry};
/// use tower_bearer::sign_in::{MemoryDirectory, RemoteAssistance, SignInError};
///
/// let directory = MemoryDirectory::new();
/// directory.add_customer("ada@example.com", "s3cret", RemoteAssistance::Denied)?;
/// let service = SignIn::new(TokenRegistry::memory(), directory);
///
/// let issued = service.sign_in(TokenKind::Customer, "ada@example.com", "s3cret").await?;
/// assert_eq!(issued.caller.subject, "ada@example.com");
///
/// let wrong = service.sign_in(TokenKind::Customer, "ada@example.com", "nope").await;
/// assert!(matches!(wrong, Err(SignInError::InvalidCredentials)));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SignIn {
    registry: TokenRegistry,
    directory: Arc<dyn Directory>,
    lockout: LockoutPolicy,
    trusted_proxies: Arc<[IpAddr]>,
    forwarded_header: ForwardedHeader,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("registry", &self.registry)
            .field("lockout", &self.lockout)
            .finish_non_exhaustive()
    }
}

impl SignIn {
    /// A service issuing from `registry` to the accounts of `directory`, with Magento's
    /// default lockout (6 failures, 1800 s).
    pub fn new(registry: TokenRegistry, directory: impl Directory) -> Self {
        Self::from_shared(registry, Arc::new(directory))
    }

    /// Like [`SignIn::new`], with a directory the app shares elsewhere.
    pub fn from_shared(registry: TokenRegistry, directory: Arc<dyn Directory>) -> Self {
        Self {
            registry,
            directory,
            lockout: LockoutPolicy::default(),
            trusted_proxies: Arc::new([]),
            forwarded_header: ForwardedHeader::default(),
        }
    }

    /// Replaces the lockout policy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{SignIn, TokenRegistry};
    /// use tower_bearer::sign_in::{LockoutPolicy, MemoryDirectory};
    ///
    /// let service = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new())
    ///     .with_lockout(LockoutPolicy::new(3, Duration::from_secs(900))?);
    /// # Ok::<(), tower_bearer::token::ConfigError>(())
    /// ```
    pub fn with_lockout(mut self, lockout: LockoutPolicy) -> Self {
        self.lockout = lockout;
        self
    }

    /// The addresses of the reverse proxies in front of the app, whose forwarding header
    /// (`X-Forwarded-For` unless [`SignIn::with_forwarded_header`] says otherwise) says which
    /// client they forward for. None by default: then the connection's address is recorded
    /// and forwarding headers are ignored. IPv4-mapped IPv6 addresses match their IPv4 form.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use tower_bearer::{SignIn, TokenRegistry};
    /// use tower_bearer::sign_in::MemoryDirectory;
    ///
    /// let proxy: IpAddr = "10.0.0.2".parse()?;
    /// let sign_in = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new())
    ///     .with_trusted_proxies([proxy]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        self.trusted_proxies = proxies.into_iter().map(|ip| ip.to_canonical()).collect();
        self
    }

    /// The header the trusted proxies write the client's address into (default
    /// `X-Forwarded-For`). Only that one is read: a proxy passes the other one through as the
    /// client sent it.
    ///
    /// ```
    /// use tower_bearer::{SignIn, TokenRegistry};
    /// use tower_bearer::sign_in::{ForwardedHeader, MemoryDirectory};
    ///
    /// let sign_in = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new())
    ///     .with_trusted_proxies(["10.0.0.2".parse()?])
    ///     .with_forwarded_header(ForwardedHeader::Forwarded);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.forwarded_header = header;
        self
    }

    /// The registry tokens are issued from.
    pub fn registry(&self) -> &TokenRegistry {
        &self.registry
    }

    /// The account directory.
    pub fn directory(&self) -> &dyn Directory {
        &*self.directory
    }

    /// The lockout policy.
    pub fn lockout(&self) -> &LockoutPolicy {
        &self.lockout
    }

    /// How many failed sign-ins are counted against `username` for tokens of `kind` in
    /// the current lockout window (the lockout applies once it passes
    /// [`LockoutPolicy::max_failures`]), e.g. for an admin's view of an account.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_bearer::{SignIn, TokenKind, TokenRegistry};
    /// use tower_bearer::sign_in::MemoryDirectory;
    ///
    /// let sign_in = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new());
    /// sign_in.sign_in(TokenKind::Customer, "ada@example.com", "guess").await.unwrap_err();
    /// assert_eq!(sign_in.failed_attempts(TokenKind::Customer, "ADA@example.com").await?, 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`StoreError`] when the store fails.
    pub async fn failed_attempts(
        &self,
        kind: TokenKind,
        username: &str,
    ) -> Result<u64, StoreError> {
        let key = LockoutPolicy::key(kind, &self.directory.lockout_name(kind, username));
        self.guards()?.failures(key).await
    }

    /// What a token for `subject` records: an admin's scopes come from the directory.
    async fn request_for(
        &self,
        kind: TokenKind,
        subject: String,
        client: ClientDetails,
    ) -> Result<IssueRequest, SignInError> {
        let scopes = match kind {
            TokenKind::Admin => self.directory.admin_scopes(&subject).await?,
            _ => Scopes::default(),
        };
        Ok(IssueRequest::new(kind, subject)
            .with_scopes(scopes)
            .with_client(client))
    }

    /// Where a request comes from, for the token it obtains: its `User-Agent`, and the
    /// address of `peer` (the connection's other end) or, when `peer` is one of the
    /// [trusted proxies](SignIn::with_trusted_proxies), the client address they forwarded in
    /// [their header](SignIn::with_forwarded_header): walking it from the right, the first
    /// entry that is not a trusted proxy (the peer when that entry is not an address).
    /// Forwarding headers from anyone else are ignored, so a client cannot choose the
    /// address recorded.
    pub fn client_details(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> ClientDetails {
        let user_agent = headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok());
        let ip = match peer.map(|peer| peer.to_canonical()) {
            Some(peer) if self.trusted_proxies.contains(&peer) => {
                forwarded_client(headers, self.forwarded_header, &self.trusted_proxies)
                    .or(Some(peer))
            }
            other => other,
        };
        ClientDetails::new(user_agent, ip)
    }

    /// Where the lockout counters and one-time claims live: beside the registry's tokens.
    fn guards(&self) -> Result<&dyn SignInStore, StoreError> {
        self.registry.sign_in_store().ok_or_else(|| {
            StoreError::Backend(
                "the registry's store keeps no sign-in state (TokenRegistry::tokens_only): \
                 build it with TokenRegistry::new over a store that implements SignInStore"
                    .into(),
            )
        })
    }

    /// Checks `username` and `password` and issues a token of `kind`.
    ///
    /// Every attempt counts as a failure before the password is checked, and a success
    /// clears the count: so however many attempts run in parallel, at most
    /// [`LockoutPolicy::max_failures`] passwords are checked per lock window, and a locked
    /// account costs an attacker no password hashing at all.
    ///
    /// # Errors
    /// [`SignInError::InvalidCredentials`] for a wrong password, an unknown user or a
    /// locked account; [`SignInError::TwoFactorRequired`] for an admin with 2FA;
    /// [`SignInError::Store`] / [`SignInError::Directory`] when a backend fails;
    /// [`SignInError::Busy`] when too many password checks are waiting.
    pub async fn sign_in(
        &self,
        kind: TokenKind,
        username: &str,
        password: &str,
    ) -> Result<IssuedToken, SignInError> {
        self.sign_in_from(ClientDetails::default(), kind, username, password)
            .await
    }

    /// [`SignIn::sign_in`] for a request from `client`, which the token records (see
    /// [`SignIn::client_details`] to read it off a request).
    ///
    /// # Errors
    /// As [`SignIn::sign_in`].
    pub async fn sign_in_from(
        &self,
        client: ClientDetails,
        kind: TokenKind,
        username: &str,
        password: &str,
    ) -> Result<IssuedToken, SignInError> {
        let signed_in = self
            .password_sign_in(client, kind, username, password)
            .await;
        counted(kind, signed_in)
    }

    /// [`SignIn::sign_in_from`], its outcome not yet counted.
    async fn password_sign_in(
        &self,
        client: ClientDetails,
        kind: TokenKind,
        username: &str,
        password: &str,
    ) -> Result<IssuedToken, SignInError> {
        let (subject, attempt) = self
            .check_password(kind, username, password, &client)
            .await?;
        if kind == TokenKind::Admin && self.directory.admin_totp_secret(&subject).await?.is_some() {
            // The attempt stays counted: the plain route must not reset the counter that
            // guards the second factor.
            self.locked_by(kind, username, attempt, &client);
            return Err(SignInError::TwoFactorRequired);
        }
        self.clear_failures(kind, username).await?;
        let request = self.request_for(kind, subject, client).await?;
        self.issue_signed_in(request).await
    }

    /// Issues the token of a sign-in whose credentials were accepted, and says so.
    async fn issue_signed_in(&self, request: IssueRequest) -> Result<IssuedToken, SignInError> {
        let issued = self.registry.issue_request(request).await?;
        let caller = &issued.caller;
        self.registry.emit(EventDetail::SignInSucceeded {
            kind: caller.kind,
            subject: caller.subject.clone(),
            token_id: caller.token_id(),
            second_factor: caller.second_factor,
            client: caller.client.clone(),
        });
        Ok(issued)
    }

    /// A refused second factor: the attempt stays counted, and may lock the account.
    fn second_factor_refused(
        &self,
        username: &str,
        attempt: u64,
        reason: SecondFactorRefusal,
        client: &ClientDetails,
    ) -> SignInError {
        tracing::info!(reason = reason.as_str(), "two-factor sign-in refused");
        metrics::sign_in(TokenKind::Admin, SignInOutcome::SecondFactorRefused);
        self.registry.emit(EventDetail::SecondFactorRefused {
            kind: TokenKind::Admin,
            username: username.to_owned(),
            reason,
            client: client.clone(),
        });
        self.locked_by(TokenKind::Admin, username, attempt, client);
        SignInError::InvalidCredentials
    }

    /// Announces the lock when `attempt`, a failed one, is the one that locks the account.
    fn locked_by(&self, kind: TokenKind, username: &str, attempt: u64, client: &ClientDetails) {
        if attempt == self.lockout.max_failures() {
            self.registry.emit(EventDetail::AccountLocked {
                kind,
                username: username.to_owned(),
                failures: attempt,
                locked_for_seconds: self.lockout.lock_duration().as_secs(),
                client: client.clone(),
            });
        }
    }

    /// Checks an admin's `username`, `password` and one-time password `otp` (6 digits from
    /// their authenticator app, see [`TotpSecret`]) and issues an admin
    /// token recording [`SecondFactor::Totp`]: Magento's
    /// `POST /V1/tfa/provider/google/authenticate`.
    ///
    /// The attempt counts toward the same lockout as [`SignIn::sign_in`] and is
    /// cleared only once the code is accepted. A code is accepted at most once: it is
    /// claimed in the registry's store (shared by every instance) for the 2 minutes it could
    /// otherwise be used again, and a code of an older step is refused once a newer one was
    /// used.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::{SystemTime, UNIX_EPOCH};
    /// use tower_bearer::{SignIn, TokenRegistry};
    /// use tower_bearer::sign_in::{MemoryDirectory, SignInError, TotpSecret};
    /// use tower_bearer::token::SecondFactor;
    ///
    /// let secret = TotpSecret::generate()?;
    /// let directory = MemoryDirectory::new();
    /// directory.add_admin_with_totp("root", "t0ps3cret", secret.clone())?;
    /// let service = SignIn::new(TokenRegistry::memory(), directory);
    ///
    /// let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    /// let code = secret.code_at(now); // what the authenticator app shows
    /// let issued = service.sign_in_with_totp("root", "t0ps3cret", &code).await?;
    /// assert_eq!(issued.caller.second_factor, Some(SecondFactor::Totp));
    ///
    /// let replay = service.sign_in_with_totp("root", "t0ps3cret", &code).await;
    /// assert!(matches!(replay, Err(SignInError::InvalidCredentials)));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SignInError::InvalidCredentials`] for a wrong password, an unknown user, a locked
    /// account, an admin without two-factor authentication, or a wrong, expired or already
    /// used code; [`SignInError::Store`] / [`SignInError::Directory`] when a backend fails.
    pub async fn sign_in_with_totp(
        &self,
        username: &str,
        password: &str,
        otp: &str,
    ) -> Result<IssuedToken, SignInError> {
        self.sign_in_with_totp_from(ClientDetails::default(), username, password, otp)
            .await
    }

    /// [`SignIn::sign_in_with_totp`] for a request from `client`, which the token records.
    ///
    /// # Errors
    /// As [`SignIn::sign_in_with_totp`].
    pub async fn sign_in_with_totp_from(
        &self,
        client: ClientDetails,
        username: &str,
        password: &str,
        otp: &str,
    ) -> Result<IssuedToken, SignInError> {
        let signed_in = self.totp_sign_in(client, username, password, otp).await;
        counted(TokenKind::Admin, signed_in)
    }

    /// [`SignIn::sign_in_with_totp_from`], its outcome not yet counted.
    async fn totp_sign_in(
        &self,
        client: ClientDetails,
        username: &str,
        password: &str,
        otp: &str,
    ) -> Result<IssuedToken, SignInError> {
        let kind = TokenKind::Admin;
        let (subject, attempt) = self
            .check_password(kind, username, password, &client)
            .await?;
        let Some(secret) = self.directory.admin_totp_secret(&subject).await? else {
            let refusal = SecondFactorRefusal::NotSetUp;
            return Err(self.second_factor_refused(username, attempt, refusal, &client));
        };
        let Some(step) = unix_now().and_then(|now| secret.verify(otp, now)) else {
            let refusal = SecondFactorRefusal::WrongCode;
            return Err(self.second_factor_refused(username, attempt, refusal, &client));
        };
        if !self.claim_totp_step(&subject, step).await? {
            let refusal = SecondFactorRefusal::CodeReused;
            return Err(self.second_factor_refused(username, attempt, refusal, &client));
        }
        self.clear_failures(kind, username).await?;
        let request = self
            .request_for(kind, subject, client)
            .await?
            .with_second_factor(SecondFactor::Totp);
        self.issue_signed_in(request).await
    }

    /// Claims the code of `step` for `subject`: `false` when it was used already. After a
    /// successful claim, the older steps still inside the skew window are claimed too, so
    /// their codes are refused from now on (best effort: a code of an older step racing
    /// this one may still win).
    async fn claim_totp_step(&self, subject: &str, step: u64) -> Result<bool, StoreError> {
        let store = self.guards()?;
        let subject_key = sha256_hex(&subject.to_lowercase());
        let key = |step: u64| format!("totp:{subject_key}:{step}");
        if !store.claim_once(key(step), TOTP_CLAIM_TTL).await? {
            return Ok(false);
        }
        let oldest = step.saturating_sub(2 * u64::from(SKEW_STEPS));
        for older in oldest..step {
            store.claim_once(key(older), TOTP_CLAIM_TTL).await?;
        }
        Ok(true)
    }

    /// The lockout-guarded password check: the subject on success, and the failures counted
    /// against the account with this attempt. The counter is left counting this attempt;
    /// call [`SignIn::clear_failures`] once the whole sign-in has succeeded.
    ///
    /// Only attempts whose password is checked are counted: one the password-check queue
    /// has no room for is refused before it counts, and one whose check could not run (the
    /// queue filled meanwhile, or the directory failed) is taken back. A flood of made-up
    /// usernames therefore neither locks out anybody nor creates more counters than the
    /// hashing threads can check passwords.
    pub(crate) async fn check_password(
        &self,
        kind: TokenKind,
        username: &str,
        password: &str,
        client: &ClientDetails,
    ) -> Result<(String, u64), SignInError> {
        if username.len() > MAX_USERNAME_LEN {
            // No account has such a name: refuse without touching the store, so made-up
            // names cannot fill it with counters.
            self.registry.emit(EventDetail::SignInFailed {
                kind,
                username: truncated(username, MAX_USERNAME_LEN).to_owned(),
                attempt: 0,
                client: client.clone(),
            });
            metrics::sign_in(kind, SignInOutcome::Failed);
            return Err(SignInError::InvalidCredentials);
        }
        if !password::pool::has_room() {
            tracing::info!(kind = %kind, "sign-in refused: too many password checks waiting");
            return Err(SignInError::Busy);
        }
        let key = LockoutPolicy::key(kind, &self.directory.lockout_name(kind, username));
        let store = self.guards()?;
        let attempt = store
            .record_failure(key.clone(), self.lockout.lock_duration())
            .await?;
        if attempt > self.lockout.max_failures() {
            self.registry.emit(EventDetail::SignInLocked {
                kind,
                username: username.to_owned(),
                client: client.clone(),
            });
            metrics::sign_in(kind, SignInOutcome::Locked);
            return Err(SignInError::InvalidCredentials);
        }
        match self.directory.verify(kind, username, password).await {
            Ok(Some(subject)) => Ok((subject, attempt)),
            Ok(None) => {
                metrics::sign_in(kind, SignInOutcome::Failed);
                self.registry.emit(EventDetail::SignInFailed {
                    kind,
                    username: username.to_owned(),
                    attempt,
                    client: client.clone(),
                });
                self.locked_by(kind, username, attempt, client);
                Err(SignInError::InvalidCredentials)
            }
            Err(error) => {
                // No password was judged: this attempt must not count toward a lockout.
                if let Err(forgive_error) = store.forgive_failure(key).await {
                    tracing::warn!(%forgive_error, "a failed attempt could not be taken back");
                }
                Err(SignInError::from(error))
            }
        }
    }

    /// Clears the failure count of `username` after a successful sign-in.
    pub(crate) async fn clear_failures(
        &self,
        kind: TokenKind,
        username: &str,
    ) -> Result<(), StoreError> {
        let key = LockoutPolicy::key(kind, &self.directory.lockout_name(kind, username));
        self.guards()?.clear_failures(key).await
    }
}

/// Counts how a sign-in for a token of `kind` ended in the [metrics](crate::telemetry::metrics).
fn counted(
    kind: TokenKind,
    signed_in: Result<IssuedToken, SignInError>,
) -> Result<IssuedToken, SignInError> {
    if let Some(outcome) = outcome_of(&signed_in) {
        metrics::sign_in(kind, outcome);
    }
    signed_in
}

/// The outcome a sign-in is counted as; `None` for its refusals with
/// [`SignInError::InvalidCredentials`], which answer alike whatever the cause (a wrong
/// password, a lockout, a wrong code) and were counted where they were decided.
fn outcome_of(signed_in: &Result<IssuedToken, SignInError>) -> Option<SignInOutcome> {
    Some(match signed_in {
        Ok(_) => SignInOutcome::Succeeded,
        Err(SignInError::InvalidCredentials) => return None,
        Err(SignInError::TwoFactorRequired) => SignInOutcome::SecondFactorRequired,
        Err(SignInError::Busy) => SignInOutcome::Busy,
        Err(SignInError::Directory(DirectoryError(error)))
            if matches!(error.downcast_ref(), Some(PasswordError::Busy)) =>
        {
            SignInOutcome::Busy
        }
        Err(SignInError::Store(StoreError::LimitReached { .. })) => SignInOutcome::LimitReached,
        Err(SignInError::Store(_) | SignInError::Directory(_)) => SignInOutcome::Unavailable,
    })
}

/// The first `max` bytes of `text` at most, cut at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Seconds since the Unix epoch; `None` for a clock set before it (then no code matches).
fn unix_now() -> Option<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a sign-in service was built with is what it reports, and its `Debug` shows
    /// its settings, never an account's password.
    #[test]
    fn a_sign_in_reports_its_lockout_and_debug_shows_no_password() {
        let policy = LockoutPolicy::new(3, Duration::from_secs(900)).expect("a valid policy");
        let directory = MemoryDirectory::new();
        directory
            .add_customer("ada@example.com", "s3cret-pw", RemoteAssistance::Denied)
            .expect("a valid account");
        let sign_in = SignIn::new(TokenRegistry::memory(), directory).with_lockout(policy);
        assert_eq!(sign_in.lockout(), &policy);

        let shown = format!("{sign_in:?}");
        assert!(
            shown.starts_with("SignIn { registry: TokenRegistry {"),
            "{shown}"
        );
        assert!(shown.contains(&format!("lockout: {policy:?}")), "{shown}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }

    /// A password check refused because the hashing threads are saturated counts as
    /// `busy`, not as the directory being down: the two call for different alerts.
    #[test]
    fn a_saturated_password_check_counts_as_busy_and_a_failed_directory_as_unavailable() {
        let outcome = |error: SignInError| outcome_of(&Err(error));
        let busy_check = DirectoryError::from(PasswordError::Busy);
        assert_eq!(
            outcome(SignInError::Directory(busy_check)),
            Some(SignInOutcome::Busy)
        );
        let down = DirectoryError("connection refused".into());
        assert_eq!(
            outcome(SignInError::Directory(down)),
            Some(SignInOutcome::Unavailable)
        );
        assert_eq!(outcome(SignInError::Busy), Some(SignInOutcome::Busy));
        assert_eq!(
            outcome(SignInError::Store(StoreError::Backend("down".into()))),
            Some(SignInOutcome::Unavailable)
        );
        assert_eq!(outcome(SignInError::InvalidCredentials), None);
    }

    /// Using the code of a step claims it and the two steps before it (the codes a clock
    /// one step behind would still accept), and nothing older or newer.
    #[tokio::test]
    async fn a_used_code_claims_its_step_and_the_two_before_it() {
        let sign_in = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new());
        assert_eq!(sign_in.claim_totp_step("Root", 100).await.ok(), Some(true));
        assert_eq!(sign_in.claim_totp_step("root", 100).await.ok(), Some(false));

        let store = sign_in.guards().expect("the memory store keeps claims");
        let subject_key = sha256_hex("root");
        let mut free = Vec::new();
        for step in 96..=101 {
            let key = format!("totp:{subject_key}:{step}");
            if store.claim_once(key, TOTP_CLAIM_TTL).await.ok() == Some(true) {
                free.push(step);
            }
        }
        assert_eq!(free, [96, 97, 101]);
    }

    #[test]
    fn a_truncated_name_is_cut_at_a_character_boundary() {
        assert_eq!(truncated("ada", 255), "ada");
        assert_eq!(truncated("ada@example.com", 3), "ada");
        // 'é' is two bytes: a cut inside it falls back to before it.
        assert_eq!(truncated("adé", 3), "ad");
        assert_eq!(truncated("adé", 4), "adé");
        assert_eq!(truncated("", 0), "");
    }

    /// A name of `MAX_USERNAME_LEN` bytes is an attempt like any other (counted toward the
    /// lockout); one byte more is refused before anything is counted.
    #[tokio::test]
    async fn a_username_of_the_longest_length_is_counted_and_one_longer_is_not() {
        let sign_in = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new());
        let longest = "a".repeat(MAX_USERNAME_LEN);
        let too_long = "a".repeat(MAX_USERNAME_LEN + 1);
        for name in [&longest, &too_long] {
            let refused = sign_in.sign_in(TokenKind::Customer, name, "guess").await;
            assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
        }
        let counted = |name: String| {
            let sign_in = sign_in.clone();
            async move {
                sign_in
                    .failed_attempts(TokenKind::Customer, &name)
                    .await
                    .ok()
            }
        };
        assert_eq!(counted(longest).await, Some(1));
        assert_eq!(counted(too_long).await, Some(0));
    }
}
