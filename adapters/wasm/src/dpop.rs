//! DPoP with a non-extractable Web Crypto key.
//!
//! [`WebCryptoKey::generate`] makes an ECDSA P-256 key pair with
//! `extractable: false` through `crypto.subtle.generateKey`: the private key
//! stays inside the browser's (or Node's) crypto implementation and never
//! enters Rust or JavaScript memory; only the public JWK is exported. The
//! `CryptoKey` objects can be kept in IndexedDB (they are structured-
//! cloneable, still non-extractable) and brought back with
//! [`WebCryptoKey::from_keys`].
//!
//! The core builds every proof and asks for the signature (its deferred
//! signer path): [`Builder::dpop`](crate::Builder::dpop) enables DPoP in the
//! manager with a signer that holds only the public JWK and always answers
//! `SignOutcome::Deferred`. The handle then signs each signing input with
//! `crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, …)`,
//! which yields the raw 64-byte `r || s` ES256 wants, and hands it back
//! (`TokenManager::handle_signature` for token requests,
//! `PendingAuthorization::finish` for API requests).

use core::fmt;

use js_sys::Uint8Array;
use tokenkeeper::dpop::{EcdsaSignature, PublicJwk, SignError, SignOutcome, Signer};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, CryptoKeyPair, EcKeyGenParams, EcdsaParams};

use crate::Error;
use crate::js::{crypto, message};

/// An ECDSA P-256 key pair in Web Crypto, for DPoP proofs (ES256).
#[derive(Clone)]
pub struct WebCryptoKey {
    private_key: CryptoKey,
    public_key: CryptoKey,
    jwk: PublicJwk,
}

impl fmt::Debug for WebCryptoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebCryptoKey")
            .field("jkt", &self.jwk.thumbprint())
            .field("extractable", &self.private_key.extractable())
            .finish_non_exhaustive()
    }
}

fn failed(what: &str) -> impl Fn(JsValue) -> Error + '_ {
    move |e| Error::Crypto(format!("{what}: {}", message(&e)))
}

fn subtle() -> Result<web_sys::SubtleCrypto, Error> {
    let subtle = crypto()?.subtle();
    if subtle.is_object() {
        Ok(subtle)
    } else {
        Err(Error::Crypto(String::from(
            "crypto.subtle is missing (not a secure context?)",
        )))
    }
}

impl WebCryptoKey {
    /// Generates a new key pair: ECDSA on P-256, the private key
    /// non-extractable (`extractable: false`), usages `sign` and `verify`.
    ///
    /// # Errors
    /// [`Error::Crypto`] when Web Crypto is missing or fails.
    pub async fn generate() -> Result<Self, Error> {
        let params = EcKeyGenParams::new("ECDSA", "P-256");
        let usages = js_sys::Array::of2(&JsValue::from_str("sign"), &JsValue::from_str("verify"));
        let promise = subtle()?
            .generate_key_with_object(&params, false, &usages)
            .map_err(failed("generateKey"))?;
        let pair: CryptoKeyPair = JsFuture::from(promise)
            .await
            .map_err(failed("generateKey"))?
            .unchecked_into();
        Self::from_keys(pair.get_private_key(), pair.get_public_key()).await
    }

    /// A key pair made elsewhere (say, read back from IndexedDB): an ECDSA
    /// P-256 private key with the `sign` usage and its public key, whose JWK
    /// is exported here.
    ///
    /// # Errors
    /// [`Error::Crypto`] when the keys are not such a pair's, or the public
    /// key cannot be exported.
    pub async fn from_keys(private_key: CryptoKey, public_key: CryptoKey) -> Result<Self, Error> {
        check_key(&private_key, "private", "sign")?;
        check_key(&public_key, "public", "verify")?;
        let promise = subtle()?
            .export_key("jwk", &public_key)
            .map_err(failed("exportKey"))?;
        let exported = JsFuture::from(promise).await.map_err(failed("exportKey"))?;
        let json = js_sys::JSON::stringify(&exported)
            .map_err(failed("JSON.stringify"))?
            .as_string()
            .unwrap_or_default();
        let jwk = PublicJwk::from_json(&json)
            .map_err(|e| Error::Crypto(format!("the exported public key: {e}")))?;
        Ok(WebCryptoKey {
            private_key,
            public_key,
            jwk,
        })
    }

    /// The public key as a JWK (what goes into every proof's header).
    #[must_use]
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    /// The RFC 7638 thumbprint of the public key: the `dpop_jkt`
    /// authorization parameter, and the `cnf.jkt` of bound tokens.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        self.jwk.thumbprint()
    }

    /// The private `CryptoKey` (to keep it in IndexedDB; its bytes cannot be
    /// read when it is non-extractable).
    #[must_use]
    pub fn private_key(&self) -> &CryptoKey {
        &self.private_key
    }

    /// The public `CryptoKey`.
    #[must_use]
    pub fn public_key(&self) -> &CryptoKey {
        &self.public_key
    }

    /// Whether the private key's bytes could be exported (`false` for keys
    /// from [`WebCryptoKey::generate`]).
    #[must_use]
    pub fn is_extractable(&self) -> bool {
        self.private_key.extractable()
    }

    /// Signs `signing_input` (the bytes themselves, not a digest) with
    /// ECDSA P-256 and SHA-256: the raw 64-byte `r || s` signature.
    ///
    /// # Errors
    /// [`Error::Crypto`] when Web Crypto fails or returns another length.
    pub async fn sign(&self, signing_input: &[u8]) -> Result<EcdsaSignature, Error> {
        let params = EcdsaParams::new_with_str("ECDSA", "SHA-256");
        let promise = subtle()?
            .sign_with_object_and_u8_array(&params, &self.private_key, signing_input)
            .map_err(failed("sign"))?;
        let buffer = JsFuture::from(promise).await.map_err(failed("sign"))?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        EcdsaSignature::from_slice(&bytes).map_err(|_| {
            Error::Crypto(format!(
                "sign gave {} bytes, not the 64 of r || s",
                bytes.len()
            ))
        })
    }

    /// The core-side signer of this key: the public JWK only, answering
    /// [`SignOutcome::Deferred`] to every request.
    pub(crate) fn deferred_signer(&self) -> DeferredSigner {
        DeferredSigner(self.jwk.clone())
    }
}

/// Checks a key's type, algorithm (ECDSA on P-256) and one usage.
fn check_key(key: &CryptoKey, kind: &str, usage: &str) -> Result<(), Error> {
    let wrong = |what: String| Error::Crypto(format!("the {kind} key: {what}"));
    if key.type_() != kind {
        return Err(wrong(format!("its type is {}", key.type_())));
    }
    let algorithm = key.algorithm().map_err(failed("algorithm"))?;
    let member = |name: &str| {
        js_sys::Reflect::get(&algorithm, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    if member("name") != "ECDSA" || member("namedCurve") != "P-256" {
        return Err(wrong(format!(
            "{} {} is not ECDSA P-256",
            member("name"),
            member("namedCurve")
        )));
    }
    if !key.usages().includes(&JsValue::from_str(usage), 0) {
        return Err(wrong(format!("it lacks the {usage} usage")));
    }
    Ok(())
}

/// The signer the core is given for a [`WebCryptoKey`]: it knows the public
/// key and defers every signature to the host.
#[derive(Debug, Clone)]
pub(crate) struct DeferredSigner(PublicJwk);

impl Signer for DeferredSigner {
    fn algorithm(&self) -> &'static str {
        tokenkeeper::dpop::ES256
    }

    fn public_jwk(&self) -> &PublicJwk {
        &self.0
    }

    fn sign(&self, _signing_input: &[u8]) -> Result<SignOutcome, SignError> {
        Ok(SignOutcome::Deferred)
    }
}
