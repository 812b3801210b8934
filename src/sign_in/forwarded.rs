//! The client address that trusted proxies forward (`Forwarded`, RFC 7239; else
//! `X-Forwarded-For`).

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// The most forwarding hops read: a longer chain is refused rather than walked.
const MAX_HOPS: usize = 32;

/// The nearest forwarded address that is not one of `trusted`, read right to left (each
/// proxy appends the address it received from). `None` when the headers name no such
/// address, or name more than [`MAX_HOPS`].
pub(super) fn forwarded_client(headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let chain = forwarded_for(headers).or_else(|| x_forwarded_for(headers))?;
    if chain.len() > MAX_HOPS {
        return None;
    }
    chain.into_iter().rev().find(|ip| !trusted.contains(ip))
}

/// The `for=` addresses of every `Forwarded` header, in order; `None` without the header
/// or with an element that is not an address (an obfuscated identifier, `unknown`).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("forwarded") {
        for element in value.to_str().ok()?.split(',') {
            let Some(node) = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then_some(value.trim())
            }) else {
                continue;
            };
            chain.push(parse_node(node.trim_matches('"'))?);
        }
        if chain.len() > MAX_HOPS {
            break;
        }
    }
    (!chain.is_empty()).then_some(chain)
}

/// The addresses of every `X-Forwarded-For` header, in order; `None` without the header or
/// with an entry that is not an address.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for entry in value.to_str().ok()?.split(',') {
            chain.push(parse_node(entry.trim())?);
        }
        if chain.len() > MAX_HOPS {
            break;
        }
    }
    (!chain.is_empty()).then_some(chain)
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

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = [ip("10.0.0.2"), ip("10.0.0.3")];
        // A client-sent (spoofable) entry on the left, then the real client, then proxies.
        let sent = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.3")]);
        assert_eq!(forwarded_client(&sent, &trusted), Some(ip("203.0.113.7")));
        let sent = headers(&[
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
            ),
            ("forwarded", "for=10.0.0.3"),
        ]);
        assert_eq!(forwarded_client(&sent, &trusted), Some(ip("2001:db8::7")));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_garbage_gives_nothing() {
        let trusted = [ip("10.0.0.2")];
        let both = headers(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "192.0.2.1"),
        ]);
        assert_eq!(forwarded_client(&both, &trusted), Some(ip("198.51.100.1")));
        for garbage in ["unknown", "not an ip", ""] {
            let sent = headers(&[("x-forwarded-for", garbage)]);
            assert_eq!(forwarded_client(&sent, &trusted), None, "{garbage:?}");
        }
        let long = vec!["192.0.2.1"; MAX_HOPS + 1].join(",");
        assert_eq!(
            forwarded_client(&headers(&[("x-forwarded-for", &long)]), &trusted),
            None
        );
        assert_eq!(forwarded_client(&HeaderMap::new(), &trusted), None);
    }
}
