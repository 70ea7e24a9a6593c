//! DPoP proofs end to end: golden proofs pinned byte for byte, checked by
//! a verifier that reads only the wire form (no tokenkeeper code), the
//! immediate and the deferred signer shapes, and ring.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokenkeeper::__private::dpop::{ProofBuilder, ProofOutcome, ProofParams, build_proof};
use tokenkeeper::AccessToken;
use tokenkeeper::Method;
use tokenkeeper::UnixTime;
use tokenkeeper::dpop::{
    DpopKey, EcdsaSignature, P256Signer, PublicJwk, SignError, SignOutcome, Signer,
};

/// The fixed test key (P-256, generated once with Node's
/// `crypto.generateKeyPairSync("ec", { namedCurve: "P-256" })`).
const TEST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSmQ9LAZsX7xpkQ+a
JYsHFUrmFP8fBiJlqu8JMlZzAUahRANCAATImjBJYW55ZM1DApQMiut5TYUv7P4+
fF4ytrGzOBd3t1g95yUKngw4N7yn8y1tx91O8HbRxkavv/MzmrY3QksQ
-----END PRIVATE KEY-----
";
/// Its public JWK as Node exports it (member order as Node writes it).
const TEST_KEY_PUBLIC_JWK: &str = r#"{"kty":"EC","x":"yJowSWFueWTNQwKUDIrreU2FL-z-PnxeMraxszgXd7c","y":"WD3nJQqeDDg3vKfzLW3H3U7wdtHGRq-_8zOatjdCSxA","crv":"P-256"}"#;
/// Its RFC 7638 thumbprint, computed with Node's `crypto.createHash`.
const TEST_KEY_JKT: &str = "Q3QhD6Boy72xBaSSDpR3EMpS_mcuixRTEU-qMYoPMq4";

/// jti bytes 0x00..=0x1f, iat 1700000000.
const JTI: [u8; 32] = {
    let mut jti = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        jti[i] = i as u8;
        i += 1;
    }
    jti
};
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const NONCE: &str = "eyJ7S_zG.9-0~nonce";
const ACCESS_TOKEN: &str = "Kz~8qR4wB-mN2pL7vX9cY3dF6hJ1gT5sA0eU";

/// The encoded header of every proof with the test key.
const GOLDEN_HEADER: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4IjoieUpvd1NXRnVlV1ROUXdLVURJcnJlVTJGTC16LVBueGVNcmF4c3pnWGQ3YyIsInkiOiJXRDNuSlFxZUREZzN2S2Z6TFczSDNVN3dkdEhHUnEtXzh6T2F0amRDU3hBIn19";

/// (method, url, nonce, with access token, expected compact JWS)
const GOLDEN: &[(&str, &str, Option<&str>, bool, &str)] = &[
    (
        "POST",
        "https://as.example/token",
        None,
        false,
        concat!(
            "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4IjoieUpvd1NXRnVlV1ROUXdLVURJcnJlVTJGTC16LVBueGVNcmF4c3pnWGQ3YyIsInkiOiJXRDNuSlFxZUREZzN2S2Z6TFczSDNVN3dkdEhHUnEtXzh6T2F0amRDU3hBIn19.",
            "eyJqdGkiOiJBQUVDQXdRRkJnY0lDUW9MREEwT0R4QVJFaE1VRlJZWEdCa2FHeHdkSGg4IiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vYXMuZXhhbXBsZS90b2tlbiIsImlhdCI6MTcwMDAwMDAwMH0.",
            "eL7TsDDX6U1Dr5fgFkIMnacEdsofAIn-6EKaiwj86r1zT63TGBUuu4vXlYMsRd2cFxUTTpOAQlKTceYhb1nkLQ"
        ),
    ),
    (
        "POST",
        "https://as.example/token",
        Some(NONCE),
        false,
        concat!(
            "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4IjoieUpvd1NXRnVlV1ROUXdLVURJcnJlVTJGTC16LVBueGVNcmF4c3pnWGQ3YyIsInkiOiJXRDNuSlFxZUREZzN2S2Z6TFczSDNVN3dkdEhHUnEtXzh6T2F0amRDU3hBIn19.",
            "eyJqdGkiOiJBQUVDQXdRRkJnY0lDUW9MREEwT0R4QVJFaE1VRlJZWEdCa2FHeHdkSGg4IiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vYXMuZXhhbXBsZS90b2tlbiIsImlhdCI6MTcwMDAwMDAwMCwibm9uY2UiOiJleUo3U196Ry45LTB-bm9uY2UifQ.",
            "fYJaSJVG8ebp_8WnxiKsEkQQtT_QZWxmePEGNzmjGoC1qFRu-AHHbeBbBKRCGvDgCONK9aEwLakV8oMiQvmg9g"
        ),
    ),
    (
        "GET",
        "https://rs.example/api/orders?page=2",
        None,
        true,
        concat!(
            "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4IjoieUpvd1NXRnVlV1ROUXdLVURJcnJlVTJGTC16LVBueGVNcmF4c3pnWGQ3YyIsInkiOiJXRDNuSlFxZUREZzN2S2Z6TFczSDNVN3dkdEhHUnEtXzh6T2F0amRDU3hBIn19.",
            "eyJqdGkiOiJBQUVDQXdRRkJnY0lDUW9MREEwT0R4QVJFaE1VRlJZWEdCa2FHeHdkSGg4IiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9ycy5leGFtcGxlL2FwaS9vcmRlcnMiLCJpYXQiOjE3MDAwMDAwMDAsImF0aCI6IkYya20yMVM3NXRYN3JvS0JqcV9wUldPTHlBQnprWGZGNzIxdmowVHNSNVkifQ.",
            "BOabJKOkZbd4iTAXqBBDPFRZYIXWK_lEuYESeEtcQ9r0EoYQx8UX4mrO1s4BSeNyzcUnV5YQgZOGq5qeUo7Wlw"
        ),
    ),
    (
        "GET",
        "https://rs.example/api/orders?page=2",
        Some(NONCE),
        true,
        concat!(
            "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4IjoieUpvd1NXRnVlV1ROUXdLVURJcnJlVTJGTC16LVBueGVNcmF4c3pnWGQ3YyIsInkiOiJXRDNuSlFxZUREZzN2S2Z6TFczSDNVN3dkdEhHUnEtXzh6T2F0amRDU3hBIn19.",
            "eyJqdGkiOiJBQUVDQXdRRkJnY0lDUW9MREEwT0R4QVJFaE1VRlJZWEdCa2FHeHdkSGg4IiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9ycy5leGFtcGxlL2FwaS9vcmRlcnMiLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoiZXlKN1NfekcuOS0wfm5vbmNlIiwiYXRoIjoiRjJrbTIxUzc1dFg3cm9LQmpxX3BSV09MeUFCemtYZkY3MjF2ajBUc1I1WSJ9.",
            "7l7GcG4EtQHUV0AGwcrtPKCOb5j4uDB2V3Pjfv3rO9J8in1wQLb1HjGNFn-lwpx6FizcBTE1Hq58jqGlntmyOQ"
        ),
    ),
];

fn test_key() -> DpopKey {
    DpopKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap()
}

fn params<'a>(
    method: &'a Method,
    url: &'a str,
    nonce: Option<&'a str>,
    token: Option<&'a AccessToken>,
) -> ProofParams<'a> {
    let params = ProofParams::new(method, url, NOW, &JTI).with_nonce(nonce);
    match token {
        Some(token) => params.with_access_token(token),
        None => params,
    }
}

/// A DPoP proof verifier that reads only the compact JWS: split, decode,
/// take the key from the `jwk` header, verify the ES256 signature over
/// `header.payload`. Returns (header, claims).
fn verify_wire(proof: &str) -> (Value, Value) {
    let parts: Vec<&str> = proof.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS has three parts");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwk = &header["jwk"];
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert!(jwk.get("d").is_none(), "no private key in the header");
    let mut sec1 = vec![0x04];
    sec1.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    sec1.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::from_sec1_bytes(&sec1).expect("header jwk is a P-256 point");
    let signature =
        Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).expect("64-byte r || s");
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    key.verify(signing_input.as_bytes(), &signature)
        .expect("signature verifies");
    (header, claims)
}

fn ready(outcome: ProofOutcome) -> String {
    match outcome {
        ProofOutcome::Ready(proof) => proof.into_string(),
        other => panic!("expected a ready proof, got {other:?}"),
    }
}

#[test]
fn the_verifier_accepts_the_rfc_9449_example_proof() {
    // RFC 9449 §4.1, Figure 3 (made with another implementation).
    let rfc = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
    let (header, claims) = verify_wire(rfc);
    assert_eq!(claims["htu"], "https://server.example.com/token");
    // And its key's thumbprint is the RFC's `jkt`.
    let jwk = PublicJwk::from_json(&header["jwk"].to_string()).unwrap();
    assert_eq!(
        jwk.thumbprint(),
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
}

#[test]
fn golden_proofs() {
    let key = test_key();
    assert_eq!(key.thumbprint(), TEST_KEY_JKT);
    let builder = ProofBuilder::new(P256Signer::new(key)).unwrap();
    assert_eq!(builder.encoded_header(), GOLDEN_HEADER);
    let token = AccessToken::new(ACCESS_TOKEN);
    for (method, url, nonce, with_token, expected) in GOLDEN {
        let method = Method::new(method);
        let params = params(&method, url, *nonce, with_token.then_some(&token));
        let proof = ready(builder.build(&params).unwrap());

        let (header, claims) = verify_wire(&proof);
        assert_eq!(
            header["jwk"],
            serde_json::from_str::<Value>(TEST_KEY_PUBLIC_JWK).unwrap()
        );
        assert_eq!(claims["jti"], URL_SAFE_NO_PAD.encode(JTI));
        assert_eq!(claims["htm"], method.as_str());
        assert_eq!(claims["iat"], 1_700_000_000);
        let expected_htu = url.split('?').next().unwrap();
        assert_eq!(claims["htu"], expected_htu);
        match nonce {
            Some(nonce) => assert_eq!(claims["nonce"], *nonce),
            None => assert!(claims.get("nonce").is_none()),
        }
        if *with_token {
            assert_eq!(
                claims["ath"],
                URL_SAFE_NO_PAD.encode(Sha256::digest(ACCESS_TOKEN.as_bytes()))
            );
        } else {
            assert!(claims.get("ath").is_none());
        }
        // RFC 6979: the same inputs give the same bytes.
        assert_eq!(proof, *expected, "golden proof changed");
    }
}

/// A signer that answers later, as a non-extractable WebCrypto key or a KMS
/// does: it holds only the public key.
struct DeferredSigner {
    public: PublicJwk,
}

impl Signer for DeferredSigner {
    fn algorithm(&self) -> &'static str {
        "ES256"
    }

    fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    fn sign(&self, _signing_input: &[u8]) -> Result<SignOutcome, SignError> {
        Ok(SignOutcome::Deferred)
    }
}

#[test]
fn immediate_signer_shape() {
    let signer = P256Signer::new(test_key());
    let method = Method::POST;
    let proof = ready(
        build_proof(
            &signer,
            &params(&method, "https://as.example/token", None, None),
        )
        .unwrap(),
    );
    verify_wire(&proof);
}

#[test]
fn deferred_signer_shape() {
    let deferred = DeferredSigner {
        public: PublicJwk::from_json(TEST_KEY_PUBLIC_JWK).unwrap(),
    };
    let builder = ProofBuilder::new(&deferred).unwrap();
    let token = AccessToken::new(ACCESS_TOKEN);
    let method = Method::GET;
    let params = params(
        &method,
        "https://rs.example/api/orders?page=2",
        Some(NONCE),
        Some(&token),
    );

    let ProofOutcome::Deferred(unsigned) = builder.build(&params).unwrap() else {
        panic!("a deferred signer defers");
    };
    // The host signs the signing input outside tokenkeeper (here: p256
    // directly, standing in for WebCrypto / a KMS) ...
    let external_key = SigningKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap();
    let external: Signature = external_key.sign(unsigned.signing_input().as_bytes());
    let signature = EcdsaSignature::from_slice(&external.to_bytes()).unwrap();
    // ... and hands the signature back.
    let proof = unsigned
        .clone()
        .finish_verified(&signature, deferred.public_jwk())
        .unwrap()
        .into_string();
    verify_wire(&proof);
    // Deterministic ECDSA: the same bytes as the immediate signer's.
    assert_eq!(proof, GOLDEN[3].4);
    assert_eq!(unsigned.finish(&signature).as_str(), proof);

    // A KMS answering in DER works too.
    let der = external.to_der();
    assert_eq!(EcdsaSignature::from_der(der.as_bytes()).unwrap(), signature);
}

#[cfg(feature = "ring")]
#[test]
fn ring_signer_proofs_verify() {
    let key = test_key();
    let ring = tokenkeeper::dpop::RingSigner::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
    let builder = ProofBuilder::new(ring).unwrap();
    assert_eq!(builder.encoded_header(), GOLDEN_HEADER);
    let method = Method::POST;
    let a = ready(
        builder
            .build(&params(&method, "https://as.example/token", None, None))
            .unwrap(),
    );
    let b = ready(
        builder
            .build(&params(&method, "https://as.example/token", None, None))
            .unwrap(),
    );
    verify_wire(&a);
    verify_wire(&b);
    // Randomized signatures: same header and claims, different signature.
    assert_eq!(
        a.rsplit_once('.').unwrap().0,
        GOLDEN[0].4.rsplit_once('.').unwrap().0
    );
    assert_ne!(a, b);
}
