//! [`DpopKey`]: an ES256 (P-256) key pair for DPoP proofs, with PKCS#8 and
//! JWK import and export.
//!
//! Keys are generated from caller-supplied [`Entropy`] (the core never
//! draws randomness itself), never printed (`Debug` shows the thumbprint
//! only) and wiped from memory when dropped. Every export of the private
//! key comes wrapped in [`Zeroizing`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use zeroize::{Zeroize as _, Zeroizing};

use super::jwk::{COORDINATE_LEN, JwkMembers, MAX_JWK_JSON_BYTES, PublicJwk, decode_coordinate};
use crate::entropy::Entropy;

/// How many 32-byte draws [`DpopKey::generate`] tries before it gives up.
///
/// A draw fails only when it is zero or not below the P-256 group order,
/// which for a working source happens with probability about 2⁻³²; eight
/// failures in a row mean the source is broken (all zeros, all ones).
pub const GENERATE_ATTEMPTS: u32 = 8;

/// Largest PKCS#8 input accepted, DER or PEM, in bytes.
pub const MAX_PKCS8_BYTES: usize = 4096;

/// Why a key could not be made, read or written. No variant carries key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The entropy source gave no valid P-256 scalar in
    /// [`GENERATE_ATTEMPTS`] draws.
    #[error("the entropy source gave no valid P-256 private key in {attempts} attempts")]
    Entropy {
        /// Draws tried.
        attempts: u32,
    },
    /// The input is not a PKCS#8 P-256 private key (or its PEM form).
    #[error("not a PKCS#8 P-256 private key")]
    Pkcs8,
    /// Encoding the key as PKCS#8 failed.
    #[error("the key could not be encoded as PKCS#8")]
    Encoding,
    /// The JWK is not a P-256 EC key of the expected shape; the reason
    /// names the member.
    #[error("invalid JWK: {0}")]
    InvalidJwk(&'static str),
    /// The public key in a private JWK is not the one its `d` gives.
    #[error("the JWK's x/y do not belong to its private key d")]
    JwkMismatch,
    /// The point is not a valid P-256 public key.
    #[error("not a valid P-256 public key")]
    InvalidPublicKey,
    /// The input is larger than accepted.
    #[error("key input exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// An ES256 (ECDSA P-256 with SHA-256) private key for DPoP proofs.
///
/// Cloning copies the private key; every copy is wiped when dropped.
#[derive(Clone)]
pub struct DpopKey {
    signing_key: SigningKey,
    public: PublicJwk,
}

impl DpopKey {
    fn from_signing_key(signing_key: SigningKey) -> Self {
        let public = PublicJwk::from_verifying_key(*signing_key.verifying_key());
        DpopKey {
            signing_key,
            public,
        }
    }

    /// A new key from 32 bytes of `entropy`, drawing again (up to
    /// [`GENERATE_ATTEMPTS`] times in all) while the bytes are not a valid
    /// private scalar.
    ///
    /// # Errors
    /// [`KeyError::Entropy`] when the source is evidently broken.
    pub fn generate(entropy: &mut dyn Entropy) -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; COORDINATE_LEN]);
        for _ in 0..GENERATE_ATTEMPTS {
            entropy.fill(bytes.as_mut_slice());
            if let Ok(signing_key) = SigningKey::from_slice(bytes.as_slice()) {
                return Ok(Self::from_signing_key(signing_key));
            }
        }
        Err(KeyError::Entropy {
            attempts: GENERATE_ATTEMPTS,
        })
    }

    /// Reads a PKCS#8 (RFC 5208 / RFC 5915) DER private key.
    ///
    /// # Errors
    /// [`KeyError::Pkcs8`] or [`KeyError::TooLarge`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if der.len() > MAX_PKCS8_BYTES {
            return Err(KeyError::TooLarge {
                limit: MAX_PKCS8_BYTES,
            });
        }
        SigningKey::from_pkcs8_der(der)
            .map(Self::from_signing_key)
            .map_err(|_| KeyError::Pkcs8)
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    /// [`KeyError::Pkcs8`] or [`KeyError::TooLarge`].
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        if pem.len() > MAX_PKCS8_BYTES {
            return Err(KeyError::TooLarge {
                limit: MAX_PKCS8_BYTES,
            });
        }
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self::from_signing_key)
            .map_err(|_| KeyError::Pkcs8)
    }

    /// The key as PKCS#8 DER (with the public key included, as `ring` and
    /// WebCrypto's `importKey("pkcs8", …)` expect).
    ///
    /// # Errors
    /// [`KeyError::Encoding`] (not expected for a valid key).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let document = self
            .signing_key
            .to_pkcs8_der()
            .map_err(|_| KeyError::Encoding)?;
        Ok(Zeroizing::new(document.as_bytes().to_vec()))
    }

    /// The key as PKCS#8 PEM with `\n` line endings.
    ///
    /// # Errors
    /// [`KeyError::Encoding`] (not expected for a valid key).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.signing_key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| KeyError::Encoding)
    }

    /// Reads a private JWK: `kty` `EC`, `crv` `P-256`, and `x`, `y`, `d`,
    /// each unpadded base64url of exactly 32 bytes. `x` and `y` must be the
    /// public key of `d`. An `alg`, if present, must be `ES256`; other
    /// members are ignored.
    ///
    /// The parsed `d` is wiped; a copy `serde_json` may have made while
    /// unescaping a `d` written with JSON escapes is not.
    ///
    /// # Errors
    /// [`KeyError::InvalidJwk`], [`KeyError::JwkMismatch`],
    /// [`KeyError::InvalidPublicKey`] or [`KeyError::TooLarge`].
    pub fn from_jwk(json: &str) -> Result<Self, KeyError> {
        if json.len() > MAX_JWK_JSON_BYTES {
            return Err(KeyError::TooLarge {
                limit: MAX_JWK_JSON_BYTES,
            });
        }
        let members: JwkMembers =
            serde_json::from_str(json).map_err(|_| KeyError::InvalidJwk("not a JWK object"))?;
        let public = members.public_key()?;
        let d = Zeroizing::new(decode_coordinate(
            members.d.as_deref(),
            "`d` is missing or not 32 base64url bytes",
        )?);
        let signing_key = SigningKey::from_slice(d.as_slice())
            .map_err(|_| KeyError::InvalidJwk("`d` is not a valid P-256 private key"))?;
        let key = Self::from_signing_key(signing_key);
        if key.public != public {
            return Err(KeyError::JwkMismatch);
        }
        Ok(key)
    }

    /// The private key as a JWK:
    /// `{"kty":"EC","crv":"P-256","x":"…","y":"…","d":"…"}`.
    #[must_use]
    pub fn to_jwk(&self) -> Zeroizing<String> {
        let mut d = self.signing_key.to_bytes();
        let mut json = Zeroizing::new(String::with_capacity(180));
        json.push_str(r#"{"kty":"EC","crv":"P-256","x":""#);
        json.push_str(self.public.x());
        json.push_str(r#"","y":""#);
        json.push_str(self.public.y());
        json.push_str(r#"","d":""#);
        URL_SAFE_NO_PAD.encode_string(d.as_slice(), &mut json);
        json.push_str(r#""}"#);
        d.zeroize();
        json
    }

    /// The public key as a JWK (what goes into every proof's header).
    #[must_use]
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// The RFC 7638 JWK SHA-256 thumbprint, for `dpop_jkt`.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        self.public.thumbprint()
    }

    /// The `p256` signing key.
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }
}

impl PartialEq for DpopKey {
    /// Keys are equal when their public keys are (a public key has exactly
    /// one private key); no secret-dependent comparison is made.
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
    }
}

impl Eq for DpopKey {}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &"ES256")
            .field("jkt", &self.public.thumbprint())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use alloc::format;
    use alloc::string::ToString;

    /// A test key (generated once with Node's `crypto.generateKeyPairSync`).
    const PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSmQ9LAZsX7xpkQ+a
JYsHFUrmFP8fBiJlqu8JMlZzAUahRANCAATImjBJYW55ZM1DApQMiut5TYUv7P4+
fF4ytrGzOBd3t1g95yUKngw4N7yn8y1tx91O8HbRxkavv/MzmrY3QksQ
-----END PRIVATE KEY-----
";
    /// The same key as Node's `KeyObject.export({ format: "jwk" })` gives it.
    const JWK: &str = r#"{"kty":"EC","x":"yJowSWFueWTNQwKUDIrreU2FL-z-PnxeMraxszgXd7c","y":"WD3nJQqeDDg3vKfzLW3H3U7wdtHGRq-_8zOatjdCSxA","crv":"P-256","d":"SmQ9LAZsX7xpkQ-aJYsHFUrmFP8fBiJlqu8JMlZzAUY"}"#;
    const D: &str = "SmQ9LAZsX7xpkQ-aJYsHFUrmFP8fBiJlqu8JMlZzAUY";

    #[test]
    fn pem_der_jwk_round_trips() {
        let key = DpopKey::from_pkcs8_pem(PEM).unwrap();
        assert_eq!(&*key.to_pkcs8_pem().unwrap(), PEM);
        let der = key.to_pkcs8_der().unwrap();
        assert_eq!(DpopKey::from_pkcs8_der(&der).unwrap(), key);

        let from_jwk = DpopKey::from_jwk(JWK).unwrap();
        assert_eq!(from_jwk, key);
        let exported = key.to_jwk();
        assert_eq!(
            &*exported,
            r#"{"kty":"EC","crv":"P-256","x":"yJowSWFueWTNQwKUDIrreU2FL-z-PnxeMraxszgXd7c","y":"WD3nJQqeDDg3vKfzLW3H3U7wdtHGRq-_8zOatjdCSxA","d":"SmQ9LAZsX7xpkQ-aJYsHFUrmFP8fBiJlqu8JMlZzAUY"}"#
        );
        assert_eq!(DpopKey::from_jwk(&exported).unwrap(), key);
        // Thumbprint pinned from Node: sha256 of the canonical JWK.
        assert_eq!(
            key.thumbprint(),
            "Q3QhD6Boy72xBaSSDpR3EMpS_mcuixRTEU-qMYoPMq4"
        );
    }

    #[test]
    fn generate_is_deterministic_in_its_entropy() {
        let a = DpopKey::generate(&mut SeededEntropy::new(1)).unwrap();
        let b = DpopKey::generate(&mut SeededEntropy::new(1)).unwrap();
        let c = DpopKey::generate(&mut SeededEntropy::new(2)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let again = DpopKey::from_pkcs8_der(&a.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn generate_retries_invalid_scalars_and_gives_up_on_broken_sources() {
        // First draw all 0xff (>= group order), then a valid one.
        let mut draws = 0u32;
        let mut source = |dest: &mut [u8]| {
            draws += 1;
            dest.fill(if draws == 1 { 0xff } else { 0x11 });
        };
        let key = DpopKey::generate(&mut source).unwrap();
        let expected = SigningKey::from_slice(&[0x11; 32]).unwrap();
        assert_eq!(key.signing_key().to_bytes(), expected.to_bytes());

        let mut zeros = |dest: &mut [u8]| dest.fill(0);
        assert_eq!(
            DpopKey::generate(&mut zeros),
            Err(KeyError::Entropy {
                attempts: GENERATE_ATTEMPTS
            })
        );
    }

    #[test]
    fn debug_is_redacted() {
        let key = DpopKey::from_pkcs8_pem(PEM).unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("Q3QhD6Boy72xBaSSDpR3EMpS_mcuixRTEU-qMYoPMq4"));
        assert!(printed.contains("<redacted>"));
        assert!(!printed.contains(D), "{printed}");
        // Not even in another encoding.
        let d_hex: String = URL_SAFE_NO_PAD
            .decode(D)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!printed.to_lowercase().contains(&d_hex), "{printed}");
        let printed_der = format!("{:?}", key.to_pkcs8_der().unwrap());
        assert!(printed_der.len() > 10);
    }

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(DpopKey::from_pkcs8_der(b"nope"), Err(KeyError::Pkcs8));
        assert_eq!(DpopKey::from_pkcs8_pem("nope"), Err(KeyError::Pkcs8));
        assert!(matches!(
            DpopKey::from_pkcs8_der(&[0u8; MAX_PKCS8_BYTES + 1]),
            Err(KeyError::TooLarge { .. })
        ));
        // A P-384 PKCS#8 key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384).
        let p384 = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDB+ClcPG/l+DlnXV6Qc
O8JcL4qog/TusRqVQpElD3wgtmsB8Oep7eGkDZxsONmNkqOhZANiAATVCKhD5GMR
+a6pMUAVAOL6P9Y54/d1MqfiKSrv0K3qgIVrB6DWkBTokVS5CQn01xZgZqp4Nh1N
f0gCTBc320ar4CvykPtWOfHPksd9yS+RqUo8FDvOMVtx2Kcj7NB9GfI=
-----END PRIVATE KEY-----";
        assert_eq!(DpopKey::from_pkcs8_pem(p384), Err(KeyError::Pkcs8));

        // x/y of another key.
        let other = DpopKey::generate(&mut SeededEntropy::new(9)).unwrap();
        let mismatched = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}","d":"{D}"}}"#,
            other.public_jwk().x(),
            other.public_jwk().y()
        );
        assert_eq!(DpopKey::from_jwk(&mismatched), Err(KeyError::JwkMismatch));
        // No d, short d, zero d.
        let public_only = DpopKey::from_pkcs8_pem(PEM)
            .unwrap()
            .public_jwk()
            .to_json()
            .to_string();
        assert!(matches!(
            DpopKey::from_jwk(&public_only),
            Err(KeyError::InvalidJwk(_))
        ));
        let zero_d = JWK.replace(D, &URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert!(matches!(
            DpopKey::from_jwk(&zero_d),
            Err(KeyError::InvalidJwk(_))
        ));
        let short_d = JWK.replace(D, &D[..42]);
        assert!(matches!(
            DpopKey::from_jwk(&short_d),
            Err(KeyError::InvalidJwk(_))
        ));
    }
}
