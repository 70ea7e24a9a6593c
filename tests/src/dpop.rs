//! A minimal DPoP (RFC 9449) proof builder on P-256 / ES256, for tests that
//! need to talk DPoP to the harness without going through tokenkeeper.

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};

use crate::util::{b64url, b64url_sha256, now_secs, random_bytes, random_token};

/// An ES256 key pair for DPoP proofs or `private_key_jwt` assertions.
#[derive(Clone)]
pub struct DpopKey {
    key: SigningKey,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A fresh random P-256 key.
    ///
    /// # Panics
    /// Never in practice (retries the negligible chance of an invalid scalar).
    pub fn generate() -> Self {
        loop {
            if let Ok(key) = SigningKey::from_slice(&random_bytes(32)) {
                return Self { key };
            }
        }
    }

    /// Loads a PKCS#8 PEM private key (e.g. [`crate::PKJWT_PRIVATE_PEM_PATH`]).
    ///
    /// # Panics
    /// If the file cannot be read or is not a P-256 PKCS#8 key.
    pub fn from_pkcs8_pem_file(path: &str) -> Self {
        let pem = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let key = SigningKey::from_pkcs8_pem(&pem)
            .unwrap_or_else(|e| panic!("{path} is not a P-256 PKCS#8 key: {e}"));
        Self { key }
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y` only).
    pub fn public_jwk(&self) -> Value {
        let point = self.key.verifying_key().to_sec1_point(false);
        let x = point.x().expect("uncompressed point has x");
        let y = point.y().expect("uncompressed point has y");
        json!({ "kty": "EC", "crv": "P-256", "x": b64url(x), "y": b64url(y) })
    }

    /// RFC 7638 JWK SHA-256 thumbprint, i.e. the `cnf.jkt` of bound tokens.
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_jwk();
        // required members in lexicographic order, no whitespace
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default()
        );
        b64url_sha256(canonical)
    }

    /// Signs a compact JWS (ES256) with the given header and claims.
    pub fn sign_jws(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string()),
            b64url(claims.to_string())
        );
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64url(signature.to_bytes()))
    }

    /// A DPoP proof for `htm` `htu`, optionally with a server `nonce` and
    /// bound to `access_token` (`ath`). `iat` is now, `jti` random.
    pub fn proof(
        &self,
        htm: &str,
        htu: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> String {
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk() });
        let mut claims = json!({
            "jti": random_token(16),
            "htm": htm,
            "htu": htu,
            "iat": now_secs(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(b64url_sha256(token));
        }
        self.sign_jws(&header, &claims)
    }
}
