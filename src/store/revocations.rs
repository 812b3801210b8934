//! What a store announces of its revocations, for holders of long-lived connections (a
//! WebSocket, say) that must end when their token is revoked: the [`RevocationFeed`] a
//! store keeps, and the [`Revocations`] each listener reads from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::broadcast;

use crate::token::TokenHash;

/// How many announcements a [`RevocationFeed`] holds for a listener that has not read them
/// yet. A listener that falls further behind is told it missed some
/// ([`Revocation::Missed`]) and checks its token again: memory stays bounded whatever the
/// rate of revocations (a revoke-all of a large subject announces one hash per token).
pub const REVOCATION_FEED_CAPACITY: usize = 1024;

/// What a feed carries.
#[derive(Clone, Copy, Debug)]
enum Event {
    Revoked(TokenHash),
    /// The feed went down or came back: announcements may have been missed.
    Gap,
}

/// The announcements of a store's revocations, in this process: the store
/// [announces](RevocationFeed::announce) each revoked token (one revoked on another instance
/// too, when the store hears of it), and each listener [subscribes](RevocationFeed::subscribe).
///
/// A feed may be down for a while (the Redis store's pub/sub subscription lost): the store
/// [marks it so](RevocationFeed::set_live), listeners are told that they may have missed
/// announcements, and fall back on asking the store until it is back. Cheap to clone: every
/// clone is the same feed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_bearer::store::{Revocation, RevocationFeed};
/// use tower_bearer::token::TokenHash;
///
/// let feed = RevocationFeed::new();
/// let mut listener = feed.subscribe();
/// feed.announce([TokenHash::of("ada's token")]);
/// assert_eq!(listener.next().await, Revocation::Revoked(TokenHash::of("ada's token")));
///
/// feed.set_live(false);
/// assert!(!listener.is_live());
/// assert_eq!(listener.next().await, Revocation::Missed);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RevocationFeed {
    sender: broadcast::Sender<Event>,
    live: Arc<AtomicBool>,
}

impl Default for RevocationFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl RevocationFeed {
    /// A live feed with no listener yet, holding up to [`REVOCATION_FEED_CAPACITY`]
    /// announcements per listener.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(REVOCATION_FEED_CAPACITY);
        Self {
            sender,
            live: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Announces revoked tokens to every listener. Costs nothing much without listeners.
    pub fn announce(&self, hashes: impl IntoIterator<Item = TokenHash>) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        for hash in hashes {
            // An error only says that there is no listener left.
            let _ = self.sender.send(Event::Revoked(hash));
        }
    }

    /// Marks the feed up or down. Every change is announced to listeners as
    /// [`Revocation::Missed`]: while the feed was down, or as it went down, announcements
    /// may have been lost.
    pub fn set_live(&self, live: bool) {
        if self.live.swap(live, Ordering::AcqRel) != live {
            let _ = self.sender.send(Event::Gap);
        }
    }

    /// Whether the feed is up: every revocation is announced on it.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// A listener that hears every announcement made from now on.
    pub fn subscribe(&self) -> Revocations {
        Revocations {
            receiver: self.sender.subscribe(),
            live: self.live.clone(),
        }
    }
}

/// One listener of a [`RevocationFeed`] (see [`TokenStore::revocations`](super::TokenStore::revocations)).
/// It holds a fixed amount of memory, however many revocations it has not read.
#[derive(Debug)]
pub struct Revocations {
    receiver: broadcast::Receiver<Event>,
    live: Arc<AtomicBool>,
}

impl Revocations {
    /// The next announcement: waits until there is one.
    pub async fn next(&mut self) -> Revocation {
        match self.receiver.recv().await {
            Ok(Event::Revoked(hash)) => Revocation::Revoked(hash),
            Ok(Event::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => Revocation::Missed,
            Err(broadcast::error::RecvError::Closed) => Revocation::Closed,
        }
    }

    /// Whether the feed is up now. While it is down, a revocation may go unannounced: ask
    /// the store.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

/// An announcement read from [`Revocations`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// This token was revoked.
    Revoked(TokenHash),
    /// Announcements may have been missed (the listener fell behind, or the feed went down
    /// or came back): a listener must check its token with the store.
    Missed,
    /// The feed is gone (its store was dropped): nothing more will be announced.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listener_that_falls_behind_is_told_it_missed_announcements() {
        let feed = RevocationFeed::new();
        let mut listener = feed.subscribe();
        let hashes: Vec<_> = (0..REVOCATION_FEED_CAPACITY + 1)
            .map(|n| TokenHash::of(&n.to_string()))
            .collect();
        feed.announce(hashes);
        assert_eq!(listener.next().await, Revocation::Missed);
    }

    #[tokio::test]
    async fn a_dropped_feed_closes_its_listeners() {
        let feed = RevocationFeed::new();
        let mut listener = feed.subscribe();
        drop(feed);
        assert_eq!(listener.next().await, Revocation::Closed);
    }

    #[tokio::test]
    async fn coming_back_is_announced_as_a_gap() {
        let feed = RevocationFeed::new();
        feed.set_live(false);
        let mut listener = feed.subscribe();
        feed.set_live(true);
        assert!(listener.is_live());
        assert_eq!(listener.next().await, Revocation::Missed);
    }
}
