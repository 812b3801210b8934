//! The client address that trusted proxies forward, read from the one header they write.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// The header a deployment's trusted proxies write the client's address into. Only that
/// header is read: a proxy passes the other one through as the client sent it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx's `proxy_add_x_forwarded_for`,
    /// most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// The most forwarding hops walked, from the right: the entries a trusted proxy appended are
/// the rightmost, so a longer chain is cut, not refused.
const MAX_HOPS: usize = 32;

/// The client behind `peer`, a trusted proxy: walking `header`'s entries from the right
/// (each proxy appends the address it received from), past the trusted proxies, the first
/// other entry. When that entry is not an address (`unknown`, an obfuscated identifier,
/// garbage), or the chain holds only trusted proxies, the client is unknown and `None` is
/// returned (the caller then records the peer).
pub(super) fn forwarded_client(
    headers: &HeaderMap,
    header: ForwardedHeader,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    // Several header lines are one list, in order.
    let lines: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().ok())
        .collect::<Option<_>>()?;
    let entries = lines.iter().flat_map(|line| line.split(','));
    let nodes: Vec<&str> = entries
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(MAX_HOPS)
        .collect();
    for entry in nodes {
        let node = match header {
            ForwardedHeader::XForwardedFor => Some(entry.trim()),
            ForwardedHeader::Forwarded => for_parameter(entry),
        };
        let address = node.and_then(parse_node).map(|ip| ip.to_canonical());
        match address {
            Some(ip) if trusted.contains(&ip) => continue,
            other => return other,
        }
    }
    None
}

/// The value of the `for` parameter of one `Forwarded` element, unquoted.
fn for_parameter(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// `192.0.2.60`, `192.0.2.60:4711`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const RFC: ForwardedHeader = ForwardedHeader::Forwarded;

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = [ip("10.0.0.2"), ip("10.0.0.3")];
        // A client-sent (spoofable) entry on the left, then the real client, then proxies.
        let sent = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.3")]);
        assert_eq!(
            forwarded_client(&sent, XFF, &trusted),
            Some(ip("203.0.113.7"))
        );
        let sent = headers(&[
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
            ),
            ("forwarded", "for=10.0.0.3"),
        ]);
        assert_eq!(
            forwarded_client(&sent, RFC, &trusted),
            Some(ip("2001:db8::7"))
        );
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let trusted = [ip("10.0.0.2")];
        // A proxy that writes X-Forwarded-For passes a client's Forwarded through.
        let both = headers(&[
            ("forwarded", "for=198.51.100.99"),
            ("x-forwarded-for", "192.0.2.1"),
        ]);
        assert_eq!(
            forwarded_client(&both, XFF, &trusted),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            forwarded_client(&both, RFC, &trusted),
            Some(ip("198.51.100.99"))
        );
        let only_xff = headers(&[("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(forwarded_client(&only_xff, RFC, &trusted), None);
    }

    #[test]
    fn an_unreadable_nearest_entry_means_an_unknown_client_whatever_stands_left_of_it() {
        let trusted = [ip("10.0.0.2")];
        for chain in ["1.2.3.4, unknown", "1.2.3.4, x", "1.2.3.4, "] {
            let sent = headers(&[("x-forwarded-for", chain)]);
            assert_eq!(forwarded_client(&sent, XFF, &trusted), None, "{chain:?}");
        }
        let sent = headers(&[("forwarded", "for=1.2.3.4, for=unknown")]);
        assert_eq!(forwarded_client(&sent, RFC, &trusted), None);
        let sent = headers(&[("forwarded", "for=1.2.3.4, proto=https")]);
        assert_eq!(
            forwarded_client(&sent, RFC, &trusted),
            None,
            "an element without for="
        );
        assert_eq!(forwarded_client(&HeaderMap::new(), XFF, &trusted), None);
    }

    #[test]
    fn a_long_chain_is_walked_from_the_right_and_mapped_addresses_are_canonical() {
        let trusted = [ip("10.0.0.2")];
        let long = format!("{}, 203.0.113.7, 10.0.0.2", vec!["x"; 1000].join(","));
        let sent = headers(&[("x-forwarded-for", &long)]);
        assert_eq!(
            forwarded_client(&sent, XFF, &trusted),
            Some(ip("203.0.113.7"))
        );
        let only_proxies = vec!["10.0.0.2"; MAX_HOPS + 5].join(",");
        let sent = headers(&[("x-forwarded-for", &only_proxies)]);
        assert_eq!(forwarded_client(&sent, XFF, &trusted), None);
        let sent = headers(&[("x-forwarded-for", "::ffff:203.0.113.7, ::ffff:10.0.0.2")]);
        assert_eq!(
            forwarded_client(&sent, XFF, &trusted),
            Some(ip("203.0.113.7"))
        );
    }
}
