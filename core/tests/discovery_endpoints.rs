//! Discovery's endpoint rules as properties (issue 12, defect 6): an
//! `https` issuer's metadata never yields a plain `http` endpoint outside
//! loopback, and the RFC 8414 well-known URL never keeps the issuer's
//! terminating slash.

use proptest::prelude::*;
use tokenkeeper::HttpResponse;
use tokenkeeper::Limits;
use tokenkeeper::discovery::{AuthorizationServerMetadata, DiscoveryKind, discovery_url};

const ISSUER: &str = "https://as.example";

const MEMBERS: [&str; 6] = [
    "token_endpoint",
    "authorization_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
];

/// A host, and whether it is loopback (the oracle, written apart from the
/// code under test).
fn host() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c)| (format!("127.{a}.{b}.{c}"), true)),
        (1u8..=255, any::<u8>(), any::<u8>(), any::<u8>())
            .prop_filter("not 127/8", |(a, ..)| *a != 127)
            .prop_map(|(a, b, c, d)| (format!("{a}.{b}.{c}.{d}"), false)),
        Just(("[::1]".to_owned(), true)),
        Just(("[0:0:0:0:0:0:0:1]".to_owned(), true)),
        Just(("[::2]".to_owned(), false)),
        Just(("[::ffff:127.0.0.1]".to_owned(), false)),
        Just(("localhost".to_owned(), true)),
        Just(("LocalHost".to_owned(), true)),
        Just(("localhost.as.example".to_owned(), false)),
        Just(("127.0.0.1.nip.io".to_owned(), false)),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,8}){0,3}".prop_map(|h| {
            let loopback = h == "localhost";
            (h, loopback)
        }),
    ]
}

fn endpoint() -> impl Strategy<Value = (String, bool)> {
    (
        prop_oneof![Just("http"), Just("https")],
        host(),
        proptest::option::of(1u16..),
        "(/[a-z0-9]{0,6}){0,3}",
    )
        .prop_map(|(scheme, (host, loopback), port, path)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let allowed = scheme == "https" || loopback;
            (format!("{scheme}://{host}{port}{path}"), allowed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn https_issuers_get_no_cleartext_endpoints(
        member in proptest::sample::select(&MEMBERS[..]),
        (url, allowed) in endpoint(),
    ) {
        let mut doc = serde_json::json!({
            "issuer": ISSUER,
            "token_endpoint": "https://as.example/token",
        });
        doc[member] = serde_json::Value::String(url.clone());
        let response = HttpResponse::new(200, doc.to_string());
        match AuthorizationServerMetadata::parse(&response, ISSUER, &Limits::default()) {
            Ok(metadata) => {
                prop_assert!(allowed, "{member} {url} was accepted");
                let endpoints = metadata.endpoints();
                let kept = [
                    Some(&endpoints.token_endpoint),
                    endpoints.authorization_endpoint.as_ref(),
                    endpoints.revocation_endpoint.as_ref(),
                    endpoints.jwks_uri.as_ref(),
                    endpoints.userinfo_endpoint.as_ref(),
                    endpoints.end_session_endpoint.as_ref(),
                ];
                prop_assert!(kept.contains(&Some(&url)), "{url} kept as given");
            }
            Err(e) => {
                prop_assert!(!allowed, "{member} {url} refused: {e:?}");
                prop_assert_eq!(e.code(), "metadata_insecure_endpoint");
            }
        }
    }

    #[test]
    fn rfc8414_urls_never_keep_the_terminating_slash(
        path in "(/[a-z0-9]{1,6}){0,3}",
        port in proptest::option::of(1u16..),
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let bare = format!("https://as.example{port}{path}");
        let slashed = format!("{bare}/");
        let expected = format!("https://as.example{port}/.well-known/oauth-authorization-server{path}");
        prop_assert_eq!(discovery_url(&bare, DiscoveryKind::OAuth2).unwrap(), expected.clone());
        prop_assert_eq!(discovery_url(&slashed, DiscoveryKind::OAuth2).unwrap(), expected);
    }
}
