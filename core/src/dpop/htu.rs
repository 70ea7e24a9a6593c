//! The `htu` claim: the target URI of a request without query and
//! fragment (RFC 9449 §4.2), and the origin that keys the nonce cache.
//!
//! URLs are parsed with the WHATWG URL Standard (the `url` crate), so the
//! result is what `new URL(x).origin + new URL(x).pathname` gives in a
//! browser or Node, which is what servers compare against:
//!
//! - scheme and host are lower-cased; only `http` and `https` are accepted;
//! - internationalised host names become punycode (`bücher.example` →
//!   `xn--bcher-kva.example`). The `url` crate always carries its IDNA
//!   implementation (UTS #46 with compiled data), `std` or not, so this
//!   holds on `no_std` and WASM as well;
//! - the default port (80 for `http`, 443 for `https`) is dropped, any
//!   other kept;
//! - user name and password are dropped;
//! - the path is kept as the parser normalises it: dot segments resolved,
//!   characters that must be escaped percent-encoded (`/a b` → `/a%20b`),
//!   existing escapes left as they are (`%7e` stays `%7e`), and an empty
//!   path becomes `/`;
//! - query and fragment are removed.

use alloc::string::String;
use core::fmt::Write as _;

use url::Url;

pub use crate::error::HtuError;

fn parse(url: &str) -> Result<Url, HtuError> {
    let parsed = Url::parse(url).map_err(|_| HtuError::Invalid)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(HtuError::UnsupportedScheme);
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(HtuError::Invalid);
    }
    Ok(parsed)
}

fn push_origin(out: &mut String, url: &Url) {
    out.push_str(url.scheme());
    out.push_str("://");
    out.push_str(url.host_str().unwrap_or_default());
    // `port()` is `None` for the scheme's default port.
    if let Some(port) = url.port() {
        // Writing to a `String` cannot fail.
        let _ = write!(out, ":{port}");
    }
}

/// The `htu` of a request to `url`: `scheme://host[:port]/path`, without
/// query and fragment, normalised as the module documentation describes.
///
/// # Errors
/// [`HtuError`] when `url` is not an absolute `http` or `https` URL.
pub fn htu(url: &str) -> Result<String, HtuError> {
    if let Some(canonical) = canonical_htu(url) {
        // Fuzzing holds the fast path to the parser's answers.
        #[cfg(fuzzing)]
        assert_eq!(Ok(String::from(canonical)), htu_parsed(url), "{url}");
        return Ok(String::from(canonical));
    }
    htu_parsed(url)
}

/// `htu` through the full WHATWG parser.
fn htu_parsed(url: &str) -> Result<String, HtuError> {
    let parsed = parse(url)?;
    let mut out = String::with_capacity(url.len() + 1);
    push_origin(&mut out, &parsed);
    out.push_str(parsed.path());
    Ok(out)
}

/// The origin of `url`: `scheme://host[:port]`, normalised like [`htu`].
/// DPoP nonces are kept per origin.
///
/// # Errors
/// [`HtuError`] when `url` is not an absolute `http` or `https` URL.
pub fn origin(url: &str) -> Result<String, HtuError> {
    let parsed = parse(url)?;
    let mut out = String::with_capacity(url.len());
    push_origin(&mut out, &parsed);
    Ok(out)
}

/// The `htu` of a URL already in canonical form, as a prefix of it, or
/// `None` when the full parser is needed. Most request URLs are canonical
/// (lower-case ASCII host, no default port, a plain path), and skipping the
/// parser makes a proof noticeably cheaper. Anything unusual — upper case,
/// IDN or punycode, a last host label starting with a digit (IPv4 in any
/// notation, or invalid), dot segments, characters the parser would
/// escape, userinfo — goes to the parser.
fn canonical_htu(url: &str) -> Option<&str> {
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, "443")
    } else if let Some(rest) = url.strip_prefix("http://") {
        (rest, "80")
    } else {
        return None;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_more) = rest.split_at(authority_end);
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-'])
        && !host.ends_with('.')
        && !host.contains("..")
        && !host.contains("xn--")
        // A last label that is a number — decimal, octal `0…` or hex `0x…`
        // (WHATWG "ends in a number") — makes the host an IPv4 address to
        // normalise (`1.2.3.0x7f` is `1.2.3.127`) or an invalid one
        // (`a.0x7f`). Only a last label starting with a letter is surely a
        // name; anything starting with a digit goes to the parser.
        && host
            .rsplit('.')
            .next()
            .and_then(|label| label.bytes().next())
            .is_some_and(|b| b.is_ascii_lowercase());
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && !p.starts_with('0')
            && p != default_port
            && p.parse::<u16>().is_ok()
    });
    if !host_ok || !port_ok || !path_and_more.starts_with('/') {
        return None;
    }
    let path_end = path_and_more
        .find(['?', '#'])
        .unwrap_or(path_and_more.len());
    let path = &path_and_more[..path_end];
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b))
        && !path.contains("/.")
        && !path.contains("%2e")
        && !path.contains("%2E");
    path_ok.then(|| &url[..url.len() - rest.len() + authority_end + path_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_fast_path_agrees_with_the_parser() {
        let mut fast = 0;
        for (input, expected) in VECTORS {
            if let Some(prefix) = canonical_htu(input) {
                fast += 1;
                assert_eq!(prefix, *expected, "{input}");
                assert_eq!(htu_parsed(input).unwrap(), *expected, "{input}");
            }
        }
        assert!(fast >= 5, "the fast path should serve the plain vectors");
        for odd in [
            "https://as.example:0443/x",
            "https://as.example:443/x",
            "https://as.example/a/%2e%2e/b",
            "https://as.example/a/./b",
            "https://xn--bcher-kva.example/x",
            "https://as.example.com.1/x",
            "https://as.example",
            "https://as..example/x",
            "https://as.example:99999/x",
        ] {
            assert_eq!(canonical_htu(odd), None, "{odd}");
        }
    }

    use proptest::prelude::*;

    /// A label the WHATWG host parser reads as a number when it is the last
    /// one (decimal, octal `0…`, hex `0x…` — `0x` alone is 0 — each also
    /// overflowing), or one that only starts like a number.
    fn numeric_label() -> impl Strategy<Value = alloc::string::String> {
        prop_oneof![
            "[0-9]{1,3}",
            "[0-9]{4,14}",
            "0[0-7]{1,13}",
            "0[xX][0-9a-fA-F]{0,12}",
            "[0-9][a-z0-9]{0,4}",
            "0x[g-z][a-z0-9]{0,3}",
        ]
    }

    /// Hosts mixing numeric and plain labels, sometimes with a trailing
    /// dot (or two).
    fn numeric_host() -> impl Strategy<Value = alloc::string::String> {
        (
            proptest::collection::vec(prop_oneof![numeric_label(), "[a-z][a-z0-9-]{0,6}"], 1..6),
            numeric_label(),
            prop_oneof![Just(""), Just("."), Just("..")],
        )
            .prop_map(|(labels, last, dots)| {
                let mut host = labels.join(".");
                host.push('.');
                host.push_str(&last);
                host.push_str(dots);
                host
            })
    }

    proptest::proptest! {
        /// `htu` agrees with the WHATWG parser (the `url` crate) on hosts
        /// that are, or look like, IPv4 addresses in any notation: the fast
        /// path must not take them as names.
        #[test]
        fn numeric_hosts_agree_with_the_parser(
            scheme in prop_oneof![Just("http"), Just("https")],
            host in numeric_host(),
            port in proptest::option::of(1u16..),
            path in "(/[a-z0-9]{0,4}){0,3}",
        ) {
            let port = port.map(|p| alloc::format!(":{p}")).unwrap_or_default();
            let url = alloc::format!("{scheme}://{host}{port}{path}");
            if let Some(fast) = canonical_htu(&url) {
                prop_assert_eq!(Ok(alloc::string::String::from(fast)), htu_parsed(&url), "fast path");
            }
            prop_assert_eq!(htu(&url), htu_parsed(&url));
        }

        #[test]
        fn fast_path_equals_the_parser(
            url in "https?://[a-z0-9.-]{1,12}(:[0-9]{1,5})?(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,8}){0,4}([?#][a-z=&]{0,6})?"
        ) {
            if let Some(fast) = canonical_htu(&url) {
                proptest::prop_assert_eq!(Ok(alloc::string::String::from(fast)), htu_parsed(&url));
            }
        }
    }

    /// Each pair is checked against Node's `new URL(x).origin + pathname`
    /// in `tests/dpop_node.rs` as well.
    pub(crate) const VECTORS: &[(&str, &str)] = &[
        ("https://as.example/token", "https://as.example/token"),
        ("https://as.example:443/token", "https://as.example/token"),
        (
            "https://as.example:8443/token",
            "https://as.example:8443/token",
        ),
        ("http://as.example:80/token", "http://as.example/token"),
        ("http://as.example:443/token", "http://as.example:443/token"),
        ("https://as.example:80/", "https://as.example:80/"),
        ("HTTPS://AS.Example/Token", "https://as.example/Token"),
        (
            "https://bücher.example/x",
            "https://xn--bcher-kva.example/x",
        ),
        (
            "https://BÜCHER.example/x",
            "https://xn--bcher-kva.example/x",
        ),
        (
            "https://as.example/token?a=1&b=2",
            "https://as.example/token",
        ),
        ("https://as.example/token#frag", "https://as.example/token"),
        ("https://as.example/token?q#f", "https://as.example/token"),
        ("https://as.example/a%20b", "https://as.example/a%20b"),
        ("https://as.example/a b", "https://as.example/a%20b"),
        (
            "https://as.example/%7e/%7E/~",
            "https://as.example/%7e/%7E/~",
        ),
        ("https://as.example/ä", "https://as.example/%C3%A4"),
        ("https://as.example", "https://as.example/"),
        ("https://as.example?x", "https://as.example/"),
        ("https://as.example/a/../b/./c", "https://as.example/b/c"),
        ("https://as.example//double", "https://as.example//double"),
        ("https://user:pw@as.example/x", "https://as.example/x"),
        ("https://127.0.0.1:8080/x", "https://127.0.0.1:8080/x"),
        ("http://[::1]:3000/x", "http://[::1]:3000/x"),
        ("http://[0:0::1]/", "http://[::1]/"),
        ("https://as.example.:443/", "https://as.example./"),
        ("  https://as.example/x\t", "https://as.example/x"),
        (
            "https://as.example/a\"b<c>",
            "https://as.example/a%22b%3Cc%3E",
        ),
        ("https:as.example/x", "https://as.example/x"),
        ("https://0x7f.1/", "https://127.0.0.1/"),
        ("https://1.2.3.0x7f/x", "https://1.2.3.127/x"),
        ("https://1.2.3.0177/x", "https://1.2.3.127/x"),
        ("https://2130706433/x", "https://127.0.0.1/x"),
        ("https://0x/x", "https://0.0.0.0/x"),
        ("https://1.2.3.4./x", "https://1.2.3.4/x"),
        ("https:///x", "https://x/"),
        ("https://as.example:0/", "https://as.example:0/"),
    ];

    #[test]
    fn vectors() {
        for (input, expected) in VECTORS {
            assert_eq!(htu(input).as_deref(), Ok(*expected), "{input}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://AS.example:443/t?x").unwrap(),
            "https://as.example"
        );
        assert_eq!(
            origin("http://as.example:8080/").unwrap(),
            "http://as.example:8080"
        );
        assert_eq!(
            origin("https://as.example:65535").unwrap(),
            "https://as.example:65535"
        );
        assert_eq!(
            origin("https://as.example:1/").unwrap(),
            "https://as.example:1"
        );
        assert_eq!(
            origin("https://as.example:0/").unwrap(),
            "https://as.example:0"
        );
    }

    #[test]
    fn invalid_inputs_are_errors() {
        for input in [
            "",
            "as.example/token",
            "/token",
            "https://",
            "https://as.example:99999/",
            "https://as.example:-1/",
            "https://exa mple/",
            "https://[::1/",
            "https://xn--/",
            "http://%00/",
            "https://a.0x7f/x",
            "https://as.example.0x/x",
            "https://as.example.1/x",
            "https://1.2.3.4.5/x",
            "https://1.2.3.256/x",
            "https://4294967296/x",
        ] {
            assert_eq!(htu(input), Err(HtuError::Invalid), "{input:?}");
            assert!(origin(input).is_err(), "{input:?}");
        }
        for input in [
            "ftp://as.example/x",
            "mailto:a@b",
            "file:///etc/passwd",
            "data:,x",
        ] {
            assert_eq!(htu(input), Err(HtuError::UnsupportedScheme), "{input:?}");
        }
    }
}
