//! Lifecycle events: what happens to tokens and sign-ins, as typed [`Event`]s.
//!
//! Every event is emitted twice over:
//!
//! - as a `tracing` event of target `tower_bearer::events` (level `INFO`, `WARN` for
//!   [`AccountLocked`](EventDetail::AccountLocked)), whose field `event` is the event's
//!   [name](EventDetail::name) and whose other fields carry the names of the JSON fields
//!   below;
//! - to the [`EventHook`] installed with
//!   [`TokenRegistry::with_event_hook`](crate::TokenRegistry::with_event_hook), if any.
//!   The hook runs on a thread of its own, fed through a queue of
//!   [`EVENT_QUEUE_CAPACITY`] events: a slow hook never slows a request (when the queue is
//!   full, new events are dropped for the hook, counted and logged, never waited for), and
//!   a hook that panics loses that one event, not the request nor the events after it.
//!
//! No event carries a secret: no token (a token is named by its
//! [`TokenId`]), no password, no one-time code.
//!
//! | `event` | When | Fields beside `at` |
//! |---|---|---|
//! | `token_issued` | a token is issued, by sign-in or by the application | `kind`, `subject`, `token_id`, `acting_admin`, `second_factor`, `scopes`, `client`, `name`, `expires_at` |
//! | `token_revoked` | one live token is revoked | `kind`, `subject`, `token_id`, `reason` (`one`, `by_id`, `others_signed_out`, `limit`), `by` |
//! | `all_tokens_revoked` | every token of a subject is revoked | `kind`, `subject`, `count`, `by` |
//! | `sign_in_succeeded` | credentials (and second factor) accepted | `kind`, `subject`, `token_id`, `second_factor`, `client` |
//! | `sign_in_failed` | wrong username or password | `kind`, `username`, `attempt`, `client` |
//! | `sign_in_locked` | an attempt refused because the account is locked | `kind`, `username`, `client` |
//! | `account_locked` | the failure that locks the account | `kind`, `username`, `failures`, `locked_for_seconds`, `client` |
//! | `second_factor_refused` | password right, second factor refused | `kind`, `username`, `reason` (`not_set_up`, `wrong_code`, `code_reused`), `client` |
//! | `integration_token_created` | an integration token is created through the routes | `token_id`, `name`, `scopes`, `by` |
//! | `integration_token_deleted` | an integration token is deleted through the routes | `token_id`, `by` |
//!
//! `by` is who acted ([`Actor`]: `{"kind": …, "subject": …}`), or `null` when the
//! application itself did (or the limit, for `reason: "limit"`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_bearer::store::StoreError> {
//! use std::sync::mpsc;
//! use tower_bearer::telemetry::events::{Event, EventDetail};
//! use tower_bearer::{TokenKind, TokenRegistry};
//!
//! let (seen, events) = mpsc::channel();
//! let registry = TokenRegistry::memory().with_event_hook(move |event: &Event| {
//!     let _ = seen.send(event.clone());
//! });
//! let issued = registry.issue(TokenKind::Customer, "ada").await?;
//!
//! let event = events.recv().expect("delivered");
//! assert!(matches!(&event.detail, EventDetail::TokenIssued { subject, .. } if subject == "ada"));
//! let line = serde_json::to_string(&event).expect("serializable");
//! assert!(line.contains(r#""event":"token_issued""#));
//! assert!(!line.contains(issued.token.expose()), "never the token");
//! # Ok(()) }
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::token::{Caller, ClientDetails, Scopes, SecondFactor, TokenId, TokenKind};

/// How many events wait for a slow hook before new ones are dropped (for the hook only:
/// the `tracing` events are emitted whatever the queue holds).
pub const EVENT_QUEUE_CAPACITY: usize = 4096;

/// Something that happened to a token or a sign-in, and when.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Event {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened; in JSON its fields sit beside `at`, named by `event`.
    #[serde(flatten)]
    pub detail: EventDetail,
}

/// Who acted: the caller whose request revoked a token or created one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Actor {
    /// The kind of the acting caller's token.
    pub kind: TokenKind,
    /// The acting caller's subject.
    pub subject: String,
}

impl Actor {
    /// An actor of `kind` named `subject`.
    pub fn new(kind: TokenKind, subject: impl Into<String>) -> Self {
        Self {
            kind,
            subject: subject.into(),
        }
    }

    /// The caller behind a request.
    pub fn of(caller: &Caller) -> Self {
        Self::new(caller.kind, caller.subject.clone())
    }
}

/// Why one token was revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevokeReason {
    /// Revoked by its text or hash (sign-out, Magento's revoke routes).
    One,
    /// Revoked by its [`TokenId`], from a list of sessions.
    ById,
    /// Its owner signed out everywhere else.
    OthersSignedOut,
    /// A newer token of its subject took its place under the
    /// [limit](crate::registry::SessionRules::with_limit).
    Limit,
}

impl RevokeReason {
    /// The reason as in JSON: `"one"`, `"by_id"`, `"others_signed_out"`, `"limit"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::One => "one",
            Self::ById => "by_id",
            Self::OthersSignedOut => "others_signed_out",
            Self::Limit => "limit",
        }
    }
}

/// Why a second factor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecondFactorRefusal {
    /// The account has no second factor set up.
    NotSetUp,
    /// The code is wrong or out of its time window.
    WrongCode,
    /// The code was already used.
    CodeReused,
}

impl SecondFactorRefusal {
    /// The reason as in JSON: `"not_set_up"`, `"wrong_code"`, `"code_reused"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotSetUp => "not_set_up",
            Self::WrongCode => "wrong_code",
            Self::CodeReused => "code_reused",
        }
    }
}

/// What happened; see the [module](self) for the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventDetail {
    /// A token was issued.
    #[non_exhaustive]
    TokenIssued {
        /// Its kind.
        kind: TokenKind,
        /// Whom it names.
        subject: String,
        /// Its id.
        token_id: TokenId,
        /// The admin who obtained it on the customer's behalf.
        acting_admin: Option<String>,
        /// The second factor proved beside the password.
        second_factor: Option<SecondFactor>,
        /// What it is allowed.
        scopes: Scopes,
        /// Where it was issued from.
        client: ClientDetails,
        /// The name given to it (integration tokens).
        name: Option<String>,
        /// When it expires.
        expires_at: Option<DateTime<Utc>>,
    },
    /// One live token was revoked.
    #[non_exhaustive]
    TokenRevoked {
        /// Its kind.
        kind: TokenKind,
        /// Whom it named.
        subject: String,
        /// Its id.
        token_id: TokenId,
        /// Why.
        reason: RevokeReason,
        /// Who revoked it; `None` for the application (or the limit).
        by: Option<Actor>,
    },
    /// Every token of a subject was revoked.
    #[non_exhaustive]
    AllTokensRevoked {
        /// Their kind.
        kind: TokenKind,
        /// Whom they named.
        subject: String,
        /// How many live tokens were revoked.
        count: u64,
        /// Who revoked them; `None` for the application.
        by: Option<Actor>,
    },
    /// A sign-in succeeded: a token was issued for credentials.
    #[non_exhaustive]
    SignInSucceeded {
        /// The kind of account.
        kind: TokenKind,
        /// The account's subject.
        subject: String,
        /// The id of the token issued.
        token_id: TokenId,
        /// The second factor proved beside the password.
        second_factor: Option<SecondFactor>,
        /// Where the sign-in came from.
        client: ClientDetails,
    },
    /// A sign-in was refused for a wrong username or password.
    #[non_exhaustive]
    SignInFailed {
        /// The kind of account.
        kind: TokenKind,
        /// The username as sent (at most
        /// [`MAX_USERNAME_LEN`](crate::sign_in::MAX_USERNAME_LEN) bytes of it).
        username: String,
        /// The failures counted against the account in its window, this one included.
        attempt: u64,
        /// Where the sign-in came from.
        client: ClientDetails,
    },
    /// A sign-in was refused because the account is locked.
    #[non_exhaustive]
    SignInLocked {
        /// The kind of account.
        kind: TokenKind,
        /// The username as sent.
        username: String,
        /// Where the sign-in came from.
        client: ClientDetails,
    },
    /// A failed sign-in locked the account.
    #[non_exhaustive]
    AccountLocked {
        /// The kind of account.
        kind: TokenKind,
        /// The username as sent.
        username: String,
        /// The failures that locked it.
        failures: u64,
        /// How long it stays locked, in seconds.
        locked_for_seconds: u64,
        /// Where the last failure came from.
        client: ClientDetails,
    },
    /// The password was right but the second factor was refused.
    #[non_exhaustive]
    SecondFactorRefused {
        /// The kind of account.
        kind: TokenKind,
        /// The username as sent.
        username: String,
        /// Why.
        reason: SecondFactorRefusal,
        /// Where the sign-in came from.
        client: ClientDetails,
    },
    /// An integration token was created through the integration routes.
    #[non_exhaustive]
    IntegrationTokenCreated {
        /// Its id.
        token_id: TokenId,
        /// Its name.
        name: Option<String>,
        /// What it is allowed.
        scopes: Scopes,
        /// The admin who created it.
        by: Option<Actor>,
    },
    /// An integration token was deleted through the integration routes.
    #[non_exhaustive]
    IntegrationTokenDeleted {
        /// Its id.
        token_id: TokenId,
        /// The admin who deleted it.
        by: Option<Actor>,
    },
}

impl EventDetail {
    /// The event's name: the `event` field of its JSON and of its `tracing` event.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TokenIssued { .. } => "token_issued",
            Self::TokenRevoked { .. } => "token_revoked",
            Self::AllTokensRevoked { .. } => "all_tokens_revoked",
            Self::SignInSucceeded { .. } => "sign_in_succeeded",
            Self::SignInFailed { .. } => "sign_in_failed",
            Self::SignInLocked { .. } => "sign_in_locked",
            Self::AccountLocked { .. } => "account_locked",
            Self::SecondFactorRefused { .. } => "second_factor_refused",
            Self::IntegrationTokenCreated { .. } => "integration_token_created",
            Self::IntegrationTokenDeleted { .. } => "integration_token_deleted",
        }
    }
}

/// Receives every [`Event`], on a thread of its own (see the [module](self)). Any
/// `Fn(&Event) + Send + Sync + 'static` closure is one.
pub trait EventHook: Send + Sync + 'static {
    /// Called once per event, in the order they were emitted.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync + 'static> EventHook for F {
    fn on_event(&self, event: &Event) {
        self(event);
    }
}

/// Where events go: always `tracing`; to the hook's thread when one is installed.
#[derive(Clone, Default)]
pub(crate) struct Events {
    hook: Option<Arc<HookQueue>>,
}

struct HookQueue {
    sender: SyncSender<Event>,
    dropped: AtomicU64,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl Events {
    /// Events delivered to `hook` on a thread of its own, which ends when the last handle
    /// to this queue is dropped.
    pub(crate) fn with_hook(hook: impl EventHook) -> Self {
        let (sender, receiver) = sync_channel::<Event>(EVENT_QUEUE_CAPACITY);
        let spawned = std::thread::Builder::new()
            .name("tower-bearer-events".into())
            .spawn(move || {
                for event in receiver {
                    if catch_unwind(AssertUnwindSafe(|| hook.on_event(&event))).is_err() {
                        tracing::error!(
                            target: "tower_bearer::events",
                            event = event.detail.name(),
                            "the event hook panicked; the event is lost"
                        );
                    }
                }
            });
        match spawned {
            Ok(_) => Self {
                hook: Some(Arc::new(HookQueue {
                    sender,
                    dropped: AtomicU64::new(0),
                })),
            },
            Err(error) => {
                tracing::error!(%error, "the event hook's thread could not start: no hook");
                Self::default()
            }
        }
    }

    /// Emits `detail` now: as a `tracing` event, and queued for the hook.
    pub(crate) fn emit(&self, detail: EventDetail) {
        trace(&detail);
        let Some(queue) = &self.hook else { return };
        let event = Event {
            at: Utc::now(),
            detail,
        };
        match queue.sender.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                let dropped = queue.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Once per power of two: a stuck hook must not flood the log in its turn.
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        target: "tower_bearer::events",
                        event = event.detail.name(),
                        dropped,
                        "the event hook is behind: events dropped for it"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The `tracing` side of an event: one `tracing` event per lifecycle event, with the same
/// field names as its JSON.
fn trace(detail: &EventDetail) {
    const TARGET: &str = "tower_bearer::events";
    let event = detail.name();
    match detail {
        EventDetail::TokenIssued {
            kind,
            subject,
            token_id,
            acting_admin,
            second_factor,
            scopes,
            client,
            name,
            expires_at,
        } => tracing::info!(
            target: TARGET,
            event,
            kind = kind.as_str(),
            subject,
            %token_id,
            acting_admin = acting_admin.as_deref(),
            second_factor = second_factor.map(SecondFactor::as_str),
            %scopes,
            client_ip = client.ip.map(tracing::field::display),
            user_agent = client.user_agent(),
            name = name.as_deref(),
            expires_at = expires_at.map(tracing::field::display),
        ),
        EventDetail::TokenRevoked {
            kind,
            subject,
            token_id,
            reason,
            by,
        } => tracing::info!(
            target: TARGET,
            event,
            kind = kind.as_str(),
            subject,
            %token_id,
            reason = reason.as_str(),
            by_kind = by.as_ref().map(|by| by.kind.as_str()),
            by_subject = by.as_ref().map(|by| by.subject.as_str()),
        ),
        EventDetail::AllTokensRevoked {
            kind,
            subject,
            count,
            by,
        } => tracing::info!(
            target: TARGET,
            event,
            kind = kind.as_str(),
            subject,
            count,
            by_kind = by.as_ref().map(|by| by.kind.as_str()),
            by_subject = by.as_ref().map(|by| by.subject.as_str()),
        ),
        EventDetail::SignInSucceeded {
            kind,
            subject,
            token_id,
            second_factor,
            client,
        } => tracing::info!(
            target: TARGET,
            event,
            kind = kind.as_str(),
            subject,
            %token_id,
            second_factor = second_factor.map(SecondFactor::as_str),
            client_ip = client.ip.map(tracing::field::display),
            user_agent = client.user_agent(),
        ),
        EventDetail::SignInFailed {
            kind,
            username,
            attempt,
            client,
        } => tracing::info!(
            target: TARGET,
            event,
            kind = kind.as_str(),
            username,
            attempt,
            client_ip = client.ip.map(tracing::field::display),
            user_agent = client.user_agent(),
        ),
        EventDetail::SignInLocked {
            kind,
            username,
            client,
        } => tracing::info!(
            target: TARGET,
            event,
            kind = kind.as_str(),
            username,
            client_ip = client.ip.map(tracing::field::display),
            user_agent = client.user_agent(),
        ),
        EventDetail::AccountLocked {
            kind,
            username,
            failures,
            locked_for_seconds,
            client,
        } => tracing::warn!(
            target: TARGET,
            event,
            kind = kind.as_str(),
            username,
            failures,
            locked_for_seconds,
            client_ip = client.ip.map(tracing::field::display),
            user_agent = client.user_agent(),
        ),
        EventDetail::SecondFactorRefused {
            kind,
            username,
            reason,
            client,
        } => tracing::info!(
            target: TARGET,
            event,
            kind = kind.as_str(),
            username,
            reason = reason.as_str(),
            client_ip = client.ip.map(tracing::field::display),
            user_agent = client.user_agent(),
        ),
        EventDetail::IntegrationTokenCreated {
            token_id,
            name,
            scopes,
            by,
        } => tracing::info!(
            target: TARGET,
            event,
            %token_id,
            name = name.as_deref(),
            %scopes,
            by_kind = by.as_ref().map(|by| by.kind.as_str()),
            by_subject = by.as_ref().map(|by| by.subject.as_str()),
        ),
        EventDetail::IntegrationTokenDeleted { token_id, by } => tracing::info!(
            target: TARGET,
            event,
            %token_id,
            by_kind = by.as_ref().map(|by| by.kind.as_str()),
            by_subject = by.as_ref().map(|by| by.subject.as_str()),
        ),
    }
}
