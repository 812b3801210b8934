//! [`ClientDetails`]: where a token was issued from.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

/// The longest `User-Agent` kept with a token, in bytes; a longer one is cut at a character
/// boundary.
pub const MAX_USER_AGENT_LEN: usize = 256;

/// Where a token was issued from: the client's `User-Agent` (bounded) and IP address. Not a
/// secret: it is what a user's list of sessions shows ("Firefox on 203.0.113.7").
///
/// ```
/// use std::net::IpAddr;
/// use tower_bearer::token::ClientDetails;
///
/// let ip: IpAddr = "203.0.113.7".parse()?;
/// let client = ClientDetails::new(Some("Mozilla/5.0 (X11; Linux x86_64)"), Some(ip));
/// assert_eq!(client.user_agent(), Some("Mozilla/5.0 (X11; Linux x86_64)"));
/// assert_eq!(client.ip, Some(ip));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClientDetails {
    /// The `User-Agent` the client sent, at most [`MAX_USER_AGENT_LEN`] bytes of printable
    /// ASCII (what a header can carry); shared, so a caller clones it for free.
    user_agent: Option<Arc<str>>,
    /// The client's address: the connection's, or with trusted proxies the one they
    /// forwarded.
    pub ip: Option<IpAddr>,
}

impl ClientDetails {
    /// Details of a client: its `User-Agent`, kept to [`MAX_USER_AGENT_LEN`] bytes of
    /// printable ASCII and spaces (anything else is dropped), and its address.
    pub fn new(user_agent: Option<&str>, ip: Option<IpAddr>) -> Self {
        let user_agent = user_agent
            .map(|text| {
                text.chars()
                    .filter(|c| *c == ' ' || c.is_ascii_graphic())
                    .take(MAX_USER_AGENT_LEN)
                    .collect::<String>()
            })
            .filter(|text| !text.is_empty())
            .map(Arc::from);
        Self { user_agent, ip }
    }

    /// The `User-Agent` recorded, if any.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// Whether nothing is known of the client.
    pub fn is_empty(&self) -> bool {
        self.user_agent.is_none() && self.ip.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_agent_is_bounded_and_printable() {
        let long = "x".repeat(MAX_USER_AGENT_LEN * 4);
        let client = ClientDetails::new(Some(&long), None);
        assert_eq!(client.user_agent().map(str::len), Some(MAX_USER_AGENT_LEN));
        let odd = ClientDetails::new(Some("a\u{7}b\tc\u{e9}d e"), None);
        assert_eq!(odd.user_agent(), Some("abcd e"));
        assert!(ClientDetails::new(Some("\u{1}"), None).is_empty());
    }
}
