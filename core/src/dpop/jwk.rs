//! The public half of a DPoP key as a JSON Web Key (RFC 7517, RFC 7518
//! §6.2) and its JWK SHA-256 thumbprint (RFC 7638).
//!
//! The JWK goes into every proof's header, and its thumbprint is the
//! `dpop_jkt` authorization request parameter and the `cnf.jkt` of the
//! tokens bound to the key. Both are computed once, when the [`PublicJwk`]
//! is made.

use alloc::string::String;
use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::VerifyingKey;
use p256::ecdsa::signature::Verifier as _;
use serde::de::Error as _;
use serde::ser::SerializeStruct as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use super::key::KeyError;
use super::signature::EcdsaSignature;
use super::signer::SignError;

/// Bytes of a P-256 coordinate.
pub(crate) const COORDINATE_LEN: usize = 32;

/// Largest JWK JSON text accepted by [`PublicJwk::from_json`] and
/// [`DpopKey::from_jwk`](super::DpopKey::from_jwk), in bytes.
pub const MAX_JWK_JSON_BYTES: usize = 4096;

/// A P-256 public key as a JWK: `{"kty":"EC","crv":"P-256","x":…,"y":…}`.
///
/// The point is validated (on the curve, not the identity) when the value
/// is made, so every `PublicJwk` is a usable ES256 verification key.
#[derive(Clone)]
pub struct PublicJwk {
    verifying_key: VerifyingKey,
    /// The `x` member (base64url).
    x: String,
    /// The `y` member (base64url).
    y: String,
    /// `{"kty":"EC","crv":"P-256","x":"…","y":"…"}`, in this member order.
    json: String,
    /// base64url(SHA-256(RFC 7638 canonical JWK)).
    thumbprint: String,
}

impl PublicJwk {
    /// The JWK of a validated verification key.
    pub(crate) fn from_verifying_key(verifying_key: VerifyingKey) -> Self {
        let point = verifying_key.to_sec1_point(false);
        // An uncompressed SEC1 point is 0x04 || x || y.
        let bytes = point.as_bytes();
        let (x, y) = bytes
            .get(1..)
            .map_or((&[][..], &[][..]), |xy| xy.split_at(xy.len() / 2));
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));

        let mut json = String::with_capacity(120);
        json.push_str(r#"{"kty":"EC","crv":"P-256","x":""#);
        json.push_str(&x);
        json.push_str(r#"","y":""#);
        json.push_str(&y);
        json.push_str(r#""}"#);

        // RFC 7638 §3.2: the required members only, in lexicographic order,
        // no whitespace.
        let mut canonical = String::with_capacity(120);
        canonical.push_str(r#"{"crv":"P-256","kty":"EC","x":""#);
        canonical.push_str(&x);
        canonical.push_str(r#"","y":""#);
        canonical.push_str(&y);
        canonical.push_str(r#""}"#);
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));

        PublicJwk {
            verifying_key,
            x,
            y,
            json,
            thumbprint,
        }
    }

    /// The JWK of the P-256 point (`x`, `y`), each coordinate 32 big-endian
    /// bytes.
    ///
    /// # Errors
    /// [`KeyError::InvalidPublicKey`] when the point is not on the curve.
    pub fn from_coordinates(x: &[u8; 32], y: &[u8; 32]) -> Result<Self, KeyError> {
        let mut sec1 = [0u8; 1 + 2 * COORDINATE_LEN];
        sec1[0] = 0x04;
        sec1[1..=COORDINATE_LEN].copy_from_slice(x);
        sec1[1 + COORDINATE_LEN..].copy_from_slice(y);
        VerifyingKey::from_sec1_bytes(&sec1)
            .map(Self::from_verifying_key)
            .map_err(|_| KeyError::InvalidPublicKey)
    }

    /// Reads a public JWK, e.g. the one a WebCrypto `exportKey("jwk", …)`
    /// gives for a non-extractable key pair's public key.
    ///
    /// `kty` must be `EC`, `crv` `P-256`, `x` and `y` unpadded base64url of
    /// exactly 32 bytes each; an `alg`, if present, must be `ES256`. Other
    /// members (`kid`, `use`, `key_ops`, `ext`, …) are ignored; a `d`
    /// member is rejected, so a private key is never mistaken for a public
    /// one.
    ///
    /// # Errors
    /// [`KeyError::TooLarge`], [`KeyError::InvalidJwk`] or
    /// [`KeyError::InvalidPublicKey`].
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        if json.len() > MAX_JWK_JSON_BYTES {
            return Err(KeyError::TooLarge {
                limit: MAX_JWK_JSON_BYTES,
            });
        }
        let members: JwkMembers =
            serde_json::from_str(json).map_err(|_| KeyError::InvalidJwk("not a JWK object"))?;
        if members.d.is_some() {
            return Err(KeyError::InvalidJwk("a public JWK must not contain `d`"));
        }
        members.public_key()
    }

    /// The JWK JSON text: exactly
    /// `{"kty":"EC","crv":"P-256","x":"…","y":"…"}`, in this member order,
    /// without whitespace.
    #[must_use]
    pub fn to_json(&self) -> &str {
        &self.json
    }

    /// The RFC 7638 JWK SHA-256 thumbprint, base64url without padding: the
    /// value of the `dpop_jkt` authorization request parameter and of a
    /// bound token's `cnf.jkt`.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The RFC 7638 input whose hash is the [thumbprint](Self::thumbprint):
    /// `{"crv":"P-256","kty":"EC","x":"…","y":"…"}`.
    #[must_use]
    pub fn thumbprint_input(&self) -> String {
        let mut canonical = String::with_capacity(120);
        canonical.push_str(r#"{"crv":"P-256","kty":"EC","x":""#);
        canonical.push_str(self.x());
        canonical.push_str(r#"","y":""#);
        canonical.push_str(self.y());
        canonical.push_str(r#""}"#);
        canonical
    }

    /// The `x` member (base64url).
    #[must_use]
    pub fn x(&self) -> &str {
        &self.x
    }

    /// The `y` member (base64url).
    #[must_use]
    pub fn y(&self) -> &str {
        &self.y
    }

    /// The key as a `p256` verification key.
    #[must_use]
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying_key
    }

    /// Checks an ES256 signature over `message` with this key, e.g. one a
    /// deferred signer handed back, before it is put into a proof.
    ///
    /// # Errors
    /// [`SignError::InvalidSignature`] when it does not verify.
    pub fn verify(&self, message: &[u8], signature: &EcdsaSignature) -> Result<(), SignError> {
        let signature = p256::ecdsa::Signature::from_slice(signature.as_bytes())
            .map_err(|_| SignError::InvalidSignature)?;
        self.verifying_key
            .verify(message, &signature)
            .map_err(|_| SignError::InvalidSignature)
    }
}

impl PartialEq for PublicJwk {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Eq for PublicJwk {}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicJwk")
            .field("crv", &"P-256")
            .field("x", &self.x())
            .field("y", &self.y())
            .field("jkt", &self.thumbprint)
            .finish()
    }
}

impl fmt::Display for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json)
    }
}

impl Serialize for PublicJwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut jwk = serializer.serialize_struct("PublicJwk", 4)?;
        jwk.serialize_field("kty", "EC")?;
        jwk.serialize_field("crv", "P-256")?;
        jwk.serialize_field("x", self.x())?;
        jwk.serialize_field("y", self.y())?;
        jwk.end()
    }
}

impl<'de> Deserialize<'de> for PublicJwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let members = JwkMembers::deserialize(deserializer)?;
        if members.d.is_some() {
            return Err(D::Error::custom("a public JWK must not contain `d`"));
        }
        members.public_key().map_err(D::Error::custom)
    }
}

/// The JWK members this crate reads; unknown members are ignored.
#[derive(Deserialize)]
pub(crate) struct JwkMembers {
    kty: Option<String>,
    crv: Option<String>,
    alg: Option<String>,
    x: Option<String>,
    y: Option<String>,
    /// The private scalar, wiped on drop.
    pub(crate) d: Option<String>,
}

impl Drop for JwkMembers {
    fn drop(&mut self) {
        if let Some(d) = &mut self.d {
            zeroize::Zeroize::zeroize(d);
        }
    }
}

impl JwkMembers {
    /// Validates `kty`, `crv`, `alg`, `x` and `y` and builds the key.
    pub(crate) fn public_key(&self) -> Result<PublicJwk, KeyError> {
        if self.kty.as_deref() != Some("EC") {
            return Err(KeyError::InvalidJwk("`kty` is not `EC`"));
        }
        if self.crv.as_deref() != Some("P-256") {
            return Err(KeyError::InvalidJwk("`crv` is not `P-256`"));
        }
        if self.alg.as_deref().is_some_and(|alg| alg != "ES256") {
            return Err(KeyError::InvalidJwk("`alg` is not `ES256`"));
        }
        let x = decode_coordinate(
            self.x.as_deref(),
            "`x` is missing or not 32 base64url bytes",
        )?;
        let y = decode_coordinate(
            self.y.as_deref(),
            "`y` is missing or not 32 base64url bytes",
        )?;
        PublicJwk::from_coordinates(&x, &y)
    }
}

/// Decodes a JWK coordinate or private scalar: unpadded, canonical
/// base64url of exactly 32 bytes (RFC 7518 §6.2.1.2 requires the full
/// length, leading zeros included).
pub(crate) fn decode_coordinate(
    value: Option<&str>,
    error: &'static str,
) -> Result<[u8; COORDINATE_LEN], KeyError> {
    let value = value.ok_or(KeyError::InvalidJwk(error))?;
    // 32 bytes are 43 base64url characters; checking first also keeps
    // `decode_slice` from writing past the buffer.
    if value.len() != 43 {
        return Err(KeyError::InvalidJwk(error));
    }
    let mut out = [0u8; COORDINATE_LEN];
    match URL_SAFE_NO_PAD.decode_slice(value, &mut out) {
        Ok(COORDINATE_LEN) => Ok(out),
        _ => {
            zeroize::Zeroize::zeroize(&mut out);
            Err(KeyError::InvalidJwk(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 9449 §4.1 (Figure 3) / §6.1: the example proof key and its
    // thumbprint (the `cnf.jkt` of the example access token).
    const RFC_X: &str = "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs";
    const RFC_Y: &str = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA";
    const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    fn rfc_jwk() -> PublicJwk {
        PublicJwk::from_json(&alloc::format!(
            r#"{{"kty":"EC","x":"{RFC_X}","y":"{RFC_Y}","crv":"P-256"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn rfc_9449_thumbprint() {
        let jwk = rfc_jwk();
        assert_eq!(jwk.thumbprint(), RFC_JKT);
        assert_eq!(jwk.x(), RFC_X);
        assert_eq!(jwk.y(), RFC_Y);
    }

    #[test]
    fn thumbprint_is_hash_of_canonical_json() {
        let jwk = rfc_jwk();
        let canonical =
            alloc::format!(r#"{{"crv":"P-256","kty":"EC","x":"{RFC_X}","y":"{RFC_Y}"}}"#);
        assert_eq!(jwk.thumbprint_input(), canonical);
        assert_eq!(
            jwk.thumbprint(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
        );
    }

    #[test]
    fn serialises_in_fixed_member_order() {
        let jwk = rfc_jwk();
        let expected =
            alloc::format!(r#"{{"kty":"EC","crv":"P-256","x":"{RFC_X}","y":"{RFC_Y}"}}"#);
        assert_eq!(jwk.to_json(), expected);
        assert_eq!(serde_json::to_string(&jwk).unwrap(), expected);
        let back: PublicJwk = serde_json::from_str(&expected).unwrap();
        assert_eq!(back, jwk);
    }

    #[test]
    fn webcrypto_export_is_accepted() {
        let json = alloc::format!(
            r#"{{"key_ops":["verify"],"ext":true,"kty":"EC","x":"{RFC_X}","y":"{RFC_Y}","crv":"P-256","alg":"ES256"}}"#
        );
        assert_eq!(PublicJwk::from_json(&json).unwrap(), rfc_jwk());
    }

    #[test]
    fn rejects_bad_jwks() {
        let mut off_curve = URL_SAFE_NO_PAD.decode(RFC_Y).unwrap();
        off_curve[31] ^= 1;
        let off_curve = URL_SAFE_NO_PAD.encode(off_curve);
        let cases = [
            alloc::format!(r#"{{"kty":"RSA","crv":"P-256","x":"{RFC_X}","y":"{RFC_Y}"}}"#),
            alloc::format!(r#"{{"kty":"EC","crv":"P-384","x":"{RFC_X}","y":"{RFC_Y}"}}"#),
            alloc::format!(r#"{{"kty":"EC","crv":"P-256","x":"{RFC_X}"}}"#),
            alloc::format!(
                r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{RFC_Y}"}}"#,
                &RFC_X[..40]
            ),
            alloc::format!(r#"{{"kty":"EC","crv":"P-256","x":"{RFC_X}","y":"{RFC_Y}="}}"#),
            alloc::format!(r#"{{"kty":"EC","crv":"P-256","x":"{RFC_X}","y":"{off_curve}"}}"#),
            alloc::format!(
                r#"{{"kty":"EC","crv":"P-256","alg":"ES384","x":"{RFC_X}","y":"{RFC_Y}"}}"#
            ),
            alloc::format!(r#"{{"kty":"EC","crv":"P-256","x":"{RFC_X}","y":"{RFC_Y}","d":"x"}}"#),
            alloc::format!(r#"{{"kty":"EC","crv":"P-256","x":7,"y":"{RFC_Y}"}}"#),
            String::from("[]"),
            String::from("not json"),
            " ".repeat(MAX_JWK_JSON_BYTES + 1),
        ];
        for case in &cases {
            assert!(PublicJwk::from_json(case).is_err(), "{case}");
        }
        // Non-canonical base64url: the last character's unused low bits set.
        let mut x = String::from(RFC_X);
        x.pop();
        x.push('t'); // 's' = 44 -> 't' = 45 differs only in the unused bit
        let json = alloc::format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{RFC_Y}"}}"#);
        assert!(PublicJwk::from_json(&json).is_err());
    }
}
