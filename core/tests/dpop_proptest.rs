//! Property tests of the DPoP parsers and normalisers.

use std::sync::OnceLock;

use proptest::prelude::*;
use tokenkeeper::__private::dpop::{
    NonceCache, ProofBuilder, ProofParams, htu, origin, parse_challenges,
};
use tokenkeeper::AccessToken;
use tokenkeeper::UnixTime;
use tokenkeeper::dpop::{DpopKey, EcdsaSignature, P256Signer, PublicJwk};
use tokenkeeper::{Headers, Method};

/// One builder for all cases (key generation is the slow part).
fn builder() -> &'static ProofBuilder<P256Signer> {
    static BUILDER: OnceLock<ProofBuilder<P256Signer>> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let key = DpopKey::generate(&mut tokenkeeper::SeededEntropy::new(1)).unwrap();
        ProofBuilder::new(P256Signer::new(key)).unwrap()
    })
}

/// URL-ish strings: a scheme, a host (ASCII, Unicode, IPv4, IPv6), maybe
/// userinfo and a port, a path with escapes, dots, spaces and Unicode, and
/// maybe a query and a fragment.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof!["https", "http", "HTTPS", "HtTp"];
    let host = prop_oneof![
        "[a-zA-Z0-9]{1,8}(\\.[a-zA-Z0-9-]{1,8}){0,3}",
        "[a-zäöüß]{1,6}\\.(example|例え|test)",
        "(25[0-5]|[0-9]{1,2})\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        Just(String::from("[::1]")),
        Just(String::from("[2001:DB8::A]")),
        "xn--[a-z0-9]{1,6}",
    ];
    let userinfo = prop_oneof![Just(String::new()), "[a-z]{1,4}(:[a-z]{0,4})?@"];
    let port = prop_oneof![
        Just(String::new()),
        Just(String::from(":80")),
        Just(String::from(":443")),
        (0u32..70000).prop_map(|p| format!(":{p}")),
    ];
    let segment = prop_oneof![
        "[a-zA-Z0-9._~-]{0,6}",
        Just(String::from("..")),
        Just(String::from(".")),
        Just(String::from("%2e%2E")),
        "%[0-9a-fA-F]{2}",
        "[ \"<>`{}|^\\\\äé€]{1,3}",
        "%[g-z]{1,2}",
    ];
    let path = prop::collection::vec(segment, 0..5).prop_map(|s| {
        if s.is_empty() {
            String::new()
        } else {
            format!("/{}", s.join("/"))
        }
    });
    let query = prop_oneof![Just(String::new()), "\\?[a-z=&#?/]{0,8}"];
    let fragment = prop_oneof![Just(String::new()), "#[a-z?#/]{0,6}"];
    (scheme, userinfo, host, port, path, query, fragment).prop_map(
        |(scheme, userinfo, host, port, path, query, fragment)| {
            format!("{scheme}://{userinfo}{host}{port}{path}{query}{fragment}")
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn htu_is_idempotent_and_has_no_query_or_fragment(url in url_like()) {
        if let Ok(normal) = htu(&url) {
            prop_assert!(!normal.contains('?') && !normal.contains('#'), "{normal}");
            prop_assert_eq!(htu(&normal), Ok(normal.clone()));
            let origin = origin(&url).unwrap();
            prop_assert!(normal.starts_with(&origin));
            prop_assert_eq!(&normal[origin.len()..origin.len() + 1], "/");
            prop_assert!(normal.starts_with("http://") || normal.starts_with("https://"));
            prop_assert!(normal.is_ascii(), "{}", normal);
        }
    }

    #[test]
    fn htu_never_panics(input in any::<String>()) {
        if let Ok(normal) = htu(&input) {
            prop_assert_eq!(htu(&normal), Ok(normal.clone()));
            prop_assert!(!normal.contains('?') && !normal.contains('#'));
        }
        let _ = origin(&input);
    }

    #[test]
    fn challenge_parser_never_panics(input in any::<String>()) {
        let _ = parse_challenges(&input);
    }

    #[test]
    fn challenge_parser_never_panics_on_grammar_soup(
        input in "[A-Za-z0-9 ,=\"\\\\\t!#$%&'*+.^_`|~/é\u{1}-]{0,80}"
    ) {
        if let Ok(challenges) = parse_challenges(&input) {
            for challenge in &challenges {
                prop_assert!(!challenge.scheme().is_empty());
                prop_assert_eq!(challenge.scheme(), challenge.scheme().to_ascii_lowercase());
                for (name, _) in challenge.params() {
                    prop_assert_eq!(name, name.to_ascii_lowercase());
                }
            }
        }
    }

    #[test]
    fn well_formed_challenges_round_trip(
        challenges in prop::collection::vec(
            ("[A-Za-z][A-Za-z0-9-]{0,8}", prop::collection::btree_map("[a-z_]{1,8}", "[ -~]{0,12}", 0..4)),
            1..5,
        ),
        sep in prop_oneof![Just(", "), Just(","), Just(" ,  , ")],
    ) {
        let text = challenges
            .iter()
            .map(|(scheme, params)| {
                let params: Vec<String> = params
                    .iter()
                    .map(|(n, v)| format!("{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                    .collect();
                if params.is_empty() { scheme.clone() } else { format!("{scheme} {}", params.join(sep)) }
            })
            .collect::<Vec<_>>()
            .join(sep);
        let parsed = parse_challenges(&text).unwrap();
        prop_assert_eq!(parsed.len(), challenges.len());
        for (got, (scheme, params)) in parsed.iter().zip(&challenges) {
            prop_assert_eq!(got.scheme(), scheme.to_ascii_lowercase());
            let got_params: Vec<(&str, &str)> = got.params().collect();
            let want: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            prop_assert_eq!(got_params, want);
        }
    }

    #[test]
    fn nonce_cache_stays_bounded(
        ops in prop::collection::vec((0usize..12, "[ -~]{0,6}", any::<bool>()), 0..200),
        capacity in 0usize..6,
    ) {
        let mut cache = NonceCache::with_capacity(capacity);
        for (host, nonce, read) in ops {
            let url = format!("https://h{host}.example/x");
            if read {
                let _ = cache.get(&url);
            } else {
                let mut headers = Headers::new();
                headers.append("DPoP-Nonce", nonce.as_str());
                let before = cache.peek(&url).map(String::from);
                let new = cache.learn(&url, &headers);
                let trimmed = nonce.trim_matches([' ', '\t']);
                if new {
                    prop_assert_eq!(cache.peek(&url), Some(trimmed));
                    prop_assert_ne!(before.as_deref(), Some(trimmed));
                }
            }
            prop_assert!(cache.len() <= capacity);
        }
    }

    #[test]
    fn key_and_signature_parsers_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        text in any::<String>(),
    ) {
        let _ = DpopKey::from_pkcs8_der(&bytes);
        let _ = DpopKey::from_pkcs8_pem(&text);
        let _ = DpopKey::from_pkcs8_pem(&format!("-----BEGIN PRIVATE KEY-----\n{text}\n-----END PRIVATE KEY-----\n"));
        let _ = DpopKey::from_jwk(&text);
        let _ = PublicJwk::from_json(&text);
        let _ = EcdsaSignature::from_der(&bytes);
        let _ = EcdsaSignature::from_slice(&bytes);
    }

    #[test]
    fn jwk_members_never_panic(
        kty in prop_oneof![Just(String::from("EC")), "[ -~]{0,4}"],
        crv in prop_oneof![Just(String::from("P-256")), "[ -~]{0,6}"],
        x in "[A-Za-z0-9_=+/-]{0,46}",
        y in "[A-Za-z0-9_=+/-]{0,46}",
        d in prop::option::of("[A-Za-z0-9_=+/-]{0,46}"),
    ) {
        let mut json = serde_json::json!({ "kty": kty, "crv": crv, "x": x, "y": y });
        if let Some(d) = d {
            json["d"] = serde_json::Value::from(d);
        }
        let _ = DpopKey::from_jwk(&json.to_string());
        let _ = PublicJwk::from_json(&json.to_string());
    }

    #[test]
    fn proof_builder_never_panics(
        method in any::<String>(),
        url in prop_oneof![url_like(), any::<String>()],
        nonce in prop::option::of(any::<String>()),
        token in any::<String>(),
        now in any::<u64>(),
        skew in any::<i64>(),
        jti in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let builder = builder();
        let method = Method::new(&method);
        let token = AccessToken::new(token);
        let params = ProofParams::new(&method, &url, UnixTime::from_secs(now), &jti)
            .with_nonce(nonce.as_deref())
            .with_clock_skew(skew)
            .with_access_token(&token);
        if let Ok(unsigned) = builder.unsigned(&params) {
            let (_, claims) = unsigned.signing_input().split_once('.').unwrap();
            use base64::Engine as _;
            let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap();
            let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
            prop_assert_eq!(claims["htm"].as_str(), Some(method.as_str()));
        }
    }
}
