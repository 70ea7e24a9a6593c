//! The cookies' encryption: a compact JWE with `alg=dir`, `enc=A256GCM`,
//! as the Auth0 Next.js SDK v4 writes it (`dist/server/cookies.js`
//! `encrypt` / `decrypt`, on `jose`).
//!
//! ```text
//! CookieKey::from_secret(secret)          HKDF-SHA256(secret, salt "", info "JWE CEK") → 32 bytes
//! key.encrypt(claims_json, exp) ─► "eyJlbmMi….​.iv.ciphertext.tag"
//! key.decrypt(jwe, now)        ─► Ok(claims without exp) | Err(JweError)
//! ```
//!
//! The protected header is `{"enc":"A256GCM","alg":"dir"}` (jose's member
//! order), the encrypted key is empty, the IV is 12 random bytes and the
//! additional authenticated data is the ASCII of the encoded header
//! (RFC 7516 §5.1). The payload is the JWT claims set: the session's JSON
//! with `exp`. Decryption accepts what jose accepts: `exp` checked with the
//! SDK's 15 seconds of clock tolerance, `nbf` likewise.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Salt};
use serde_json::{Map, Value};

/// The protected header jose writes for `setProtectedHeader({ enc, alg })`.
const HEADER_JSON: &str = r#"{"enc":"A256GCM","alg":"dir"}"#;
/// The HKDF `info` of the SDK's content encryption key.
const KEY_INFO: &[u8] = b"JWE CEK";
/// The SDK's `clockTolerance` when it decrypts (seconds).
pub const CLOCK_TOLERANCE_SECS: u64 = 15;
/// AES-GCM's tag length.
const TAG_LEN: usize = 16;

/// Why a cookie value is not a valid JWE for this key. Every variant means
/// "no session" to the routes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JweError {
    /// Not five base64url parts, or a part that does not decode.
    #[error("the value is not a compact JWE")]
    Malformed,
    /// The header is not `alg=dir`, `enc=A256GCM`, or names a feature
    /// (`zip`, `crit`) this reader does not implement.
    #[error("the JWE header is not alg=dir, enc=A256GCM")]
    UnsupportedHeader,
    /// The tag does not verify: tampered, truncated, or another secret.
    #[error("the JWE does not decrypt with this key")]
    Decryption,
    /// The plaintext is not a JSON object.
    #[error("the JWE payload is not a JSON object")]
    Payload,
    /// `exp` is missing, not a number, or past (beyond the tolerance).
    #[error("the JWE has expired")]
    Expired,
    /// `nbf` is in the future (beyond the tolerance).
    #[error("the JWE is not valid yet")]
    NotYetValid,
}

/// The key the SDK derives from its `secret` (`AUTH0_SECRET`).
pub struct CookieKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(<redacted>)")
    }
}

/// ring's HKDF output length marker.
struct KeyLen(usize);

impl KeyType for KeyLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl CookieKey {
    /// HKDF-SHA256(`secret`, salt `""`, info `"JWE CEK"`, 32 bytes), as
    /// `@panva/hkdf` computes it for the SDK.
    #[must_use]
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut bytes = [0u8; 32];
        let prk = Salt::new(HKDF_SHA256, b"").extract(secret);
        // Both calls fail only for an output longer than 255 × 32 bytes.
        if let Ok(okm) = prk.expand(&[KEY_INFO], KeyLen(bytes.len())) {
            let _ = okm.fill(&mut bytes);
        }
        // ring refuses only a key of the wrong length; this one is 32 bytes,
        // AES-256's length, whatever the secret.
        #[allow(clippy::expect_used)]
        let key =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("a 32-byte AES-256 key"));
        bytes.fill(0);
        CookieKey { key }
    }

    /// Encrypts `claims` (a JSON object) with `exp` set to `expires_at`
    /// (seconds since the epoch), replacing any `exp` it had.
    ///
    /// # Errors
    /// [`JweError::Payload`] when the random source fails (no IV).
    pub fn encrypt(
        &self,
        mut claims: Map<String, Value>,
        expires_at: u64,
    ) -> Result<String, JweError> {
        claims.insert("exp".into(), Value::from(expires_at));
        let plaintext = serde_json::to_vec(&claims).map_err(|_| JweError::Payload)?;
        self.encrypt_bytes(plaintext)
    }

    /// Encrypts an already serialised claims set (a JSON object that holds
    /// its own `exp`).
    ///
    /// # Errors
    /// [`JweError::Payload`] when the random source fails.
    pub fn encrypt_bytes(&self, mut plaintext: Vec<u8>) -> Result<String, JweError> {
        let mut iv = [0u8; NONCE_LEN];
        getrandom::fill(&mut iv).map_err(|_| JweError::Payload)?;
        let header = URL_SAFE_NO_PAD.encode(HEADER_JSON);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(header.as_bytes()),
                &mut plaintext,
            )
            .map_err(|_| JweError::Payload)?;
        let mut out = String::with_capacity(header.len() + plaintext.len() * 4 / 3 + 48);
        out.push_str(&header);
        out.push_str("..");
        URL_SAFE_NO_PAD.encode_string(iv, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&plaintext, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
        Ok(out)
    }

    /// Decrypts `jwe` and checks its `exp` (and `nbf`) at `now` (seconds):
    /// the claims, without `exp`, `nbf` and `iat`.
    ///
    /// # Errors
    /// See [`JweError`].
    pub fn decrypt(&self, jwe: &str, now: u64) -> Result<Map<String, Value>, JweError> {
        let plaintext = self.decrypt_bytes(jwe)?;
        let mut claims: Map<String, Value> =
            serde_json::from_slice(&plaintext).map_err(|_| JweError::Payload)?;
        let exp = claims.remove("exp");
        match exp.as_ref().and_then(Value::as_f64) {
            Some(exp) if exp > now.saturating_sub(CLOCK_TOLERANCE_SECS) as f64 => {}
            _ => return Err(JweError::Expired),
        }
        if let Some(nbf) = claims.remove("nbf") {
            match nbf.as_f64() {
                Some(nbf) if nbf <= (now + CLOCK_TOLERANCE_SECS) as f64 => {}
                _ => return Err(JweError::NotYetValid),
            }
        }
        claims.remove("iat");
        Ok(claims)
    }

    /// Decrypts `jwe` without looking at its claims.
    ///
    /// # Errors
    /// [`JweError::Malformed`], [`JweError::UnsupportedHeader`],
    /// [`JweError::Decryption`].
    pub fn decrypt_bytes(&self, jwe: &str) -> Result<Vec<u8>, JweError> {
        let mut parts = jwe.split('.');
        let (Some(header), Some(key), Some(iv), Some(ciphertext), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(JweError::Malformed);
        };
        if !key.is_empty() {
            return Err(JweError::UnsupportedHeader);
        }
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JweError::Malformed)
        };
        check_header(&decode(header)?)?;
        let iv: [u8; NONCE_LEN] = decode(iv)?.try_into().map_err(|_| JweError::Malformed)?;
        let tag = decode(tag)?;
        if tag.len() != TAG_LEN {
            return Err(JweError::Malformed);
        }
        let mut data = decode(ciphertext)?;
        data.extend_from_slice(&tag);
        let plaintext_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(header.as_bytes()),
                &mut data,
            )
            .map_err(|_| JweError::Decryption)?
            .len();
        data.truncate(plaintext_len);
        Ok(data)
    }
}

/// `alg=dir`, `enc=A256GCM`, and nothing that changes how to decrypt.
fn check_header(header: &[u8]) -> Result<(), JweError> {
    let header: Map<String, Value> =
        serde_json::from_slice(header).map_err(|_| JweError::Malformed)?;
    let is = |name: &str, want: &str| header.get(name).and_then(Value::as_str) == Some(want);
    if !is("alg", "dir")
        || !is("enc", "A256GCM")
        || header.contains_key("zip")
        || header.contains_key("crit")
    {
        return Err(JweError::UnsupportedHeader);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let key = CookieKey::from_secret(b"a-secret-of-at-least-32-characters-long");
        let mut claims = Map::new();
        claims.insert("user".into(), serde_json::json!({"sub": "alice"}));
        let jwe = key.encrypt(claims.clone(), 1_000).unwrap();
        assert!(
            jwe.starts_with("eyJlbmMiOiJBMjU2R0NNIiwiYWxnIjoiZGlyIn0.."),
            "{jwe}"
        );
        assert_eq!(key.decrypt(&jwe, 900).unwrap(), claims);
        assert_eq!(
            key.decrypt(&jwe, 1_014).unwrap(),
            claims,
            "within the tolerance"
        );
        assert_eq!(key.decrypt(&jwe, 1_015), Err(JweError::Expired));
        let other = CookieKey::from_secret(b"another-secret-of-at-least-32-characters");
        assert_eq!(other.decrypt(&jwe, 900), Err(JweError::Decryption));
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let key = CookieKey::from_secret(b"s");
        let good = key.encrypt(Map::new(), 10).unwrap();
        let mut flipped = good.clone().into_bytes();
        let at = flipped.len() - 30;
        flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            "",
            "....",
            "a.b.c.d.e",
            &good[..good.len() - 5],
            &flipped,
            &good.replacen("..", ".AAAA.", 1),
            &format!("{good}.x"),
        ] {
            assert!(key.decrypt(bad, 1).is_err(), "{bad}");
        }
    }
}
