//! The DPoP proof builder (RFC 9449 §4).
//!
//! A proof is a compact JWS: `BASE64URL(header) "." BASE64URL(claims) "."
//! BASE64URL(signature)`.
//!
//! - header, fixed per key and encoded once by [`ProofBuilder::new`]:
//!   `{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"…","y":"…"}}`
//! - claims, in this order: `jti` (base64url of caller-supplied random
//!   bytes), `htm` (the method), `htu` (the [normalised](super::htu()) URL),
//!   `iat` (`now` plus a clock skew), then `nonce` when the server gave
//!   one and `ath` (base64url(SHA-256(access token))) on resource requests.
//!
//! The JSON is written member by member (strings escaped as RFC 8259
//! requires), so the same inputs always give the same bytes; with the
//! deterministic [`P256Signer`](super::P256Signer) the whole proof is
//! reproducible.

use alloc::string::String;
use core::fmt;
use core::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::htu::{HtuError, htu};
use super::json::push_string;
use super::jwk::PublicJwk;
use super::nonce::is_valid_nonce;
use super::signature::EcdsaSignature;
use super::signer::{ES256, SignError, SignOutcome, Signer};
use crate::entropy::Entropy;
use crate::http::Method;
use crate::secret::AccessToken;
use crate::time::UnixTime;

/// Fewest `jti` bytes accepted (128 bits, as RFC 9449 §11.1 suggests for
/// an unguessable identifier).
pub const MIN_JTI_BYTES: usize = 16;
/// Most `jti` bytes accepted.
pub const MAX_JTI_BYTES: usize = 64;
/// Bytes [`draw_jti`] draws.
pub const JTI_BYTES: usize = 32;

/// Draws [`JTI_BYTES`] random bytes for a proof's `jti`.
#[must_use]
pub fn draw_jti(entropy: &mut dyn Entropy) -> [u8; JTI_BYTES] {
    let mut jti = [0u8; JTI_BYTES];
    entropy.fill(&mut jti);
    jti
}

/// Why a proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The URL cannot be an `htu`.
    #[error("invalid htu")]
    Htu(#[from] HtuError),
    /// The `jti` bytes are fewer than [`MIN_JTI_BYTES`] or more than
    /// [`MAX_JTI_BYTES`].
    #[error("jti must be {MIN_JTI_BYTES} to {MAX_JTI_BYTES} bytes, got {len}")]
    JtiLength {
        /// The length given.
        len: usize,
    },
    /// The nonce is not RFC 9449 `1*NQCHAR` (see
    /// [`is_valid_nonce`](super::is_valid_nonce)).
    #[error("the DPoP nonce is not valid")]
    InvalidNonce,
    /// The signer's algorithm is not ES256.
    #[error("unsupported signing algorithm (only ES256)")]
    UnsupportedAlgorithm,
    /// The signer failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl From<ProofError> for crate::error::DpopError {
    fn from(error: ProofError) -> Self {
        use crate::error::DpopError;
        match error {
            ProofError::Htu(e) => DpopError::InvalidUrl(e),
            ProofError::JtiLength { len } => DpopError::JtiLength { len },
            ProofError::InvalidNonce => DpopError::InvalidNonce,
            ProofError::UnsupportedAlgorithm => DpopError::UnsupportedAlgorithm,
            ProofError::Sign(e) => DpopError::Signer(e),
        }
    }
}

impl From<ProofError> for crate::error::Error {
    fn from(error: ProofError) -> Self {
        crate::error::Error::Dpop(error.into())
    }
}

/// What goes into one proof.
///
/// Make it with [`ProofParams::new`] and the `with_*` methods.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct ProofParams<'a> {
    /// The request method (`htm`).
    pub method: &'a Method,
    /// The request URL; normalised into `htu`.
    pub url: &'a str,
    /// The current time.
    pub now: UnixTime,
    /// Added to `now` for `iat` (may be negative; saturating), to match a
    /// server whose clock is off.
    pub clock_skew_secs: i64,
    /// The server's latest `DPoP-Nonce` for this origin.
    pub nonce: Option<&'a str>,
    /// The access token the request carries (resource requests): adds
    /// `ath`.
    pub access_token: Option<&'a AccessToken>,
    /// Random bytes for `jti` ([`MIN_JTI_BYTES`]..=[`MAX_JTI_BYTES`];
    /// [`draw_jti`] gives [`JTI_BYTES`]).
    pub jti: &'a [u8],
}

impl<'a> ProofParams<'a> {
    /// A proof for `method` `url` at `now` with the random `jti` bytes;
    /// no skew, nonce or access token.
    #[must_use]
    pub fn new(method: &'a Method, url: &'a str, now: UnixTime, jti: &'a [u8]) -> Self {
        ProofParams {
            method,
            url,
            now,
            clock_skew_secs: 0,
            nonce: None,
            access_token: None,
            jti,
        }
    }

    /// Sets the nonce (pass [`NonceCache::get`](super::NonceCache::get)'s
    /// answer straight in).
    #[must_use]
    pub fn with_nonce(mut self, nonce: Option<&'a str>) -> Self {
        self.nonce = nonce;
        self
    }

    /// Binds the proof to `access_token` (`ath`).
    #[must_use]
    pub fn with_access_token(mut self, access_token: &'a AccessToken) -> Self {
        self.access_token = Some(access_token);
        self
    }

    /// Sets the clock skew in seconds added to `now` for `iat`.
    #[must_use]
    pub fn with_clock_skew(mut self, clock_skew_secs: i64) -> Self {
        self.clock_skew_secs = clock_skew_secs;
        self
    }
}

impl fmt::Debug for ProofParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofParams")
            .field("method", self.method)
            .field("url", &self.url)
            .field("now", &self.now)
            .field("clock_skew_secs", &self.clock_skew_secs)
            .field("nonce", &self.nonce)
            .field("access_token", &self.access_token)
            .field("jti", &format_args!("<{} bytes>", self.jti.len()))
            .finish()
    }
}

/// A finished proof: the value of the `DPoP` request header.
///
/// Its `Debug` output is redacted, as [`Headers`](crate::http::Headers)
/// redacts the `DPoP` header: a proof is bound to a token and replayable
/// for a short while.
#[derive(Clone, PartialEq, Eq)]
pub struct DpopProof(String);

impl DpopProof {
    /// The compact JWS.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compact JWS, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for DpopProof {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<DpopProof> for String {
    fn from(proof: DpopProof) -> Self {
        proof.0
    }
}

impl fmt::Debug for DpopProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DpopProof(<redacted {} bytes>)", self.0.len())
    }
}

/// A proof waiting for its signature: the host signs
/// [`signing_input`](Self::signing_input) with ES256 (for WebCrypto:
/// `subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, bytes)`, which
/// returns the 64-byte `r || s` form) and calls [`finish`](Self::finish).
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct UnsignedProof {
    /// `BASE64URL(header) "." BASE64URL(claims)`, with spare capacity for
    /// the signature.
    signing_input: String,
}

/// Characters of an ES256 signature in base64url.
const SIGNATURE_B64_LEN: usize = 86;

impl UnsignedProof {
    /// The JWS signing input, `BASE64URL(header) "." BASE64URL(claims)`:
    /// the bytes to sign (not a digest).
    #[must_use]
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The compact JWS with `signature` (not checked: see
    /// [`finish_verified`](Self::finish_verified)).
    #[must_use]
    pub fn finish(mut self, signature: &EcdsaSignature) -> DpopProof {
        self.signing_input.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_bytes(), &mut self.signing_input);
        DpopProof(self.signing_input)
    }

    /// [`finish`](Self::finish), after checking that `signature` verifies
    /// with `public_jwk` (the key in the header). Catches a host that
    /// signed with another key or sent a DER signature's bytes.
    ///
    /// # Errors
    /// [`SignError::InvalidSignature`].
    pub fn finish_verified(
        self,
        signature: &EcdsaSignature,
        public_jwk: &PublicJwk,
    ) -> Result<DpopProof, SignError> {
        public_jwk.verify(self.signing_input.as_bytes(), signature)?;
        Ok(self.finish(signature))
    }
}

impl fmt::Debug for UnsignedProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UnsignedProof(<redacted {} bytes>)",
            self.signing_input.len()
        )
    }
}

/// What building a proof gave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum ProofOutcome {
    /// The signer answered at once: the proof is ready.
    Ready(DpopProof),
    /// The signer answers later: sign the signing input and
    /// [`finish`](UnsignedProof::finish).
    Deferred(UnsignedProof),
}

/// Builds proofs with one signer. The encoded header, the same for every
/// proof of a key, is computed once here, so a proof costs little beyond
/// its signature.
pub struct ProofBuilder<S> {
    signer: S,
    /// `BASE64URL({"typ":"dpop+jwt","alg":"ES256","jwk":{…}})`
    encoded_header: String,
}

impl<S: Signer> ProofBuilder<S> {
    /// A builder for `signer`.
    ///
    /// # Errors
    /// [`ProofError::UnsupportedAlgorithm`] unless the signer is ES256.
    pub fn new(signer: S) -> Result<Self, ProofError> {
        let encoded_header = encode_header(&signer)?;
        Ok(ProofBuilder {
            signer,
            encoded_header,
        })
    }

    /// The signer.
    #[must_use]
    pub fn signer(&self) -> &S {
        &self.signer
    }

    /// The signer's public key.
    #[must_use]
    pub fn public_jwk(&self) -> &PublicJwk {
        self.signer.public_jwk()
    }

    /// The encoded protected header, `BASE64URL(header)`.
    #[must_use]
    pub fn encoded_header(&self) -> &str {
        &self.encoded_header
    }

    /// The proof for `params`, not signed (the signer is not called): for
    /// hosts that sign outside Rust.
    ///
    /// # Errors
    /// [`ProofError`] for an unusable URL, `jti` or nonce.
    pub fn unsigned(&self, params: &ProofParams<'_>) -> Result<UnsignedProof, ProofError> {
        unsigned_proof(&self.encoded_header, params)
    }

    /// The proof for `params`, signed if the signer answers at once.
    ///
    /// # Errors
    /// [`ProofError`] for an unusable URL, `jti` or nonce, or when the
    /// signer fails.
    pub fn build(&self, params: &ProofParams<'_>) -> Result<ProofOutcome, ProofError> {
        sign(&self.signer, self.unsigned(params)?)
    }
}

impl<S: fmt::Debug> fmt::Debug for ProofBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofBuilder")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// Builds one proof with `signer` without a [`ProofBuilder`] (the header
/// is encoded anew each time).
///
/// # Errors
/// As [`ProofBuilder::new`] and [`ProofBuilder::build`].
pub fn build_proof<S: Signer + ?Sized>(
    signer: &S,
    params: &ProofParams<'_>,
) -> Result<ProofOutcome, ProofError> {
    let header = encode_header(signer)?;
    sign(signer, unsigned_proof(&header, params)?)
}

fn encode_header<S: Signer + ?Sized>(signer: &S) -> Result<String, ProofError> {
    if signer.algorithm() != ES256 {
        return Err(ProofError::UnsupportedAlgorithm);
    }
    let jwk = signer.public_jwk().to_json();
    let mut header = String::with_capacity(40 + jwk.len());
    header.push_str(r#"{"typ":"dpop+jwt","alg":"ES256","jwk":"#);
    header.push_str(jwk);
    header.push('}');
    Ok(URL_SAFE_NO_PAD.encode(header))
}

fn sign<S: Signer + ?Sized>(
    signer: &S,
    unsigned: UnsignedProof,
) -> Result<ProofOutcome, ProofError> {
    Ok(match signer.sign(unsigned.signing_input.as_bytes())? {
        SignOutcome::Signature(signature) => ProofOutcome::Ready(unsigned.finish(&signature)),
        SignOutcome::Deferred => ProofOutcome::Deferred(unsigned),
    })
}

fn unsigned_proof(
    encoded_header: &str,
    params: &ProofParams<'_>,
) -> Result<UnsignedProof, ProofError> {
    if !(MIN_JTI_BYTES..=MAX_JTI_BYTES).contains(&params.jti.len()) {
        return Err(ProofError::JtiLength {
            len: params.jti.len(),
        });
    }
    if params.nonce.is_some_and(|nonce| !is_valid_nonce(nonce)) {
        return Err(ProofError::InvalidNonce);
    }
    let htu = htu(params.url)?;
    let iat = params
        .now
        .as_secs()
        .saturating_add_signed(params.clock_skew_secs);

    let mut claims = String::with_capacity(
        160 + htu.len() + params.method.as_str().len() + params.nonce.map_or(0, str::len),
    );
    claims.push_str(r#"{"jti":""#);
    URL_SAFE_NO_PAD.encode_string(params.jti, &mut claims);
    claims.push_str(r#"","htm":"#);
    push_string(&mut claims, params.method.as_str());
    claims.push_str(r#","htu":"#);
    push_string(&mut claims, &htu);
    // Writing to a `String` cannot fail.
    let _ = write!(claims, r#","iat":{iat}"#);
    if let Some(nonce) = params.nonce {
        claims.push_str(r#","nonce":"#);
        push_string(&mut claims, nonce);
    }
    if let Some(token) = params.access_token {
        claims.push_str(r#","ath":""#);
        URL_SAFE_NO_PAD.encode_string(Sha256::digest(token.secret().as_bytes()), &mut claims);
        claims.push('"');
    }
    claims.push('}');

    let claims_b64_len = claims.len().div_ceil(3) * 4;
    let mut signing_input =
        String::with_capacity(encoded_header.len() + claims_b64_len + 2 + SIGNATURE_B64_LEN);
    signing_input.push_str(encoded_header);
    signing_input.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.as_bytes(), &mut signing_input);
    Ok(UnsignedProof { signing_input })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpop::{DpopKey, P256Signer};
    use crate::entropy::SeededEntropy;
    use alloc::format;

    fn builder() -> ProofBuilder<P256Signer> {
        let key = DpopKey::generate(&mut SeededEntropy::new(11)).unwrap();
        ProofBuilder::new(P256Signer::new(key)).unwrap()
    }

    fn claims_of(unsigned: &UnsignedProof) -> String {
        let (_, claims) = unsigned.signing_input().split_once('.').unwrap();
        String::from_utf8(URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap()
    }

    const JTI: [u8; 16] = [0xfb; 16];

    #[test]
    fn header_is_exact() {
        let b = builder();
        let header =
            String::from_utf8(URL_SAFE_NO_PAD.decode(b.encoded_header()).unwrap()).unwrap();
        assert_eq!(
            header,
            format!(
                r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}}}"#,
                b.public_jwk().x(),
                b.public_jwk().y()
            )
        );
    }

    #[test]
    fn claims_order_and_optional_members() {
        let b = builder();
        let token = AccessToken::new("at-123");
        let params = ProofParams::new(
            &Method::GET,
            "https://rs.example/api?q=1",
            UnixTime::from_secs(100),
            &JTI,
        )
        .with_nonce(Some("n0nce"))
        .with_access_token(&token)
        .with_clock_skew(-30);
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(b"at-123"));
        assert_eq!(
            claims_of(&b.unsigned(&params).unwrap()),
            format!(
                r#"{{"jti":"-_v7-_v7-_v7-_v7-_v7-w","htm":"GET","htu":"https://rs.example/api","iat":70,"nonce":"n0nce","ath":"{ath}"}}"#
            )
        );
        let plain = ProofParams::new(
            &Method::POST,
            "https://as.example/token",
            UnixTime::from_secs(5),
            &JTI,
        );
        assert_eq!(
            claims_of(&b.unsigned(&plain).unwrap()),
            r#"{"jti":"-_v7-_v7-_v7-_v7-_v7-w","htm":"POST","htu":"https://as.example/token","iat":5}"#
        );
    }

    #[test]
    fn iat_skew_saturates() {
        let b = builder();
        let iat = |now: u64, skew: i64| {
            let params = ProofParams::new(
                &Method::GET,
                "https://a.example/",
                UnixTime::from_secs(now),
                &JTI,
            )
            .with_clock_skew(skew);
            let claims = claims_of(&b.unsigned(&params).unwrap());
            let value: serde_json::Value = serde_json::from_str(&claims).unwrap();
            value["iat"].as_u64().unwrap()
        };
        assert_eq!(iat(1000, 0), 1000);
        assert_eq!(iat(1000, 60), 1060);
        assert_eq!(iat(1000, -60), 940);
        assert_eq!(iat(10, -60), 0);
        assert_eq!(iat(10, i64::MIN), 0);
        assert_eq!(iat(u64::MAX - 1, 60), u64::MAX);
        assert_eq!(iat(u64::MAX, i64::MAX), u64::MAX);
    }

    #[test]
    fn method_and_htu_are_json_escaped() {
        let b = builder();
        let odd = Method::new("we\"ird\\\n");
        let params = ProofParams::new(&odd, "https://a.example/", UnixTime::EPOCH, &JTI);
        let claims = claims_of(&b.unsigned(&params).unwrap());
        let value: serde_json::Value = serde_json::from_str(&claims).unwrap();
        assert_eq!(value["htm"], "WE\"IRD\\\n");
        // WHATWG hosts may contain `"` (it is not a forbidden code point).
        let params = ProofParams::new(&Method::GET, "https://a\"b.example/", UnixTime::EPOCH, &JTI);
        let claims = claims_of(&b.unsigned(&params).unwrap());
        let value: serde_json::Value = serde_json::from_str(&claims).unwrap();
        assert_eq!(value["htu"], "https://a\"b.example/");
    }

    #[test]
    fn bad_params_are_errors() {
        let b = builder();
        let now = UnixTime::EPOCH;
        let url = "https://a.example/";
        for len in [0, 15, 65] {
            let jti = alloc::vec![1u8; len];
            assert_eq!(
                b.build(&ProofParams::new(&Method::GET, url, now, &jti)),
                Err(ProofError::JtiLength { len })
            );
        }
        for len in [16, 32, 64] {
            let jti = alloc::vec![1u8; len];
            assert!(
                b.build(&ProofParams::new(&Method::GET, url, now, &jti))
                    .is_ok()
            );
        }
        for nonce in ["", "a b", "a\"b"] {
            let params = ProofParams::new(&Method::GET, url, now, &JTI).with_nonce(Some(nonce));
            assert_eq!(b.build(&params), Err(ProofError::InvalidNonce));
        }
        for bad in ["", "nope", "ftp://a.example/"] {
            assert!(matches!(
                b.build(&ProofParams::new(&Method::GET, bad, now, &JTI)),
                Err(ProofError::Htu(_))
            ));
        }
    }

    struct Es384(P256Signer);

    impl Signer for Es384 {
        fn algorithm(&self) -> &'static str {
            "ES384"
        }
        fn public_jwk(&self) -> &PublicJwk {
            self.0.public_jwk()
        }
        fn sign(&self, _: &[u8]) -> Result<SignOutcome, SignError> {
            Err(SignError::Failed("unused"))
        }
    }

    struct Failing(P256Signer);

    impl Signer for Failing {
        fn algorithm(&self) -> &'static str {
            ES256
        }
        fn public_jwk(&self) -> &PublicJwk {
            self.0.public_jwk()
        }
        fn sign(&self, _: &[u8]) -> Result<SignOutcome, SignError> {
            Err(SignError::Failed("hsm offline"))
        }
    }

    #[test]
    fn signer_errors_propagate() {
        let signer = builder().signer().clone();
        assert!(matches!(
            ProofBuilder::new(Es384(signer.clone())),
            Err(ProofError::UnsupportedAlgorithm)
        ));
        let failing = ProofBuilder::new(Failing(signer)).unwrap();
        let params = ProofParams::new(&Method::GET, "https://a.example/", UnixTime::EPOCH, &JTI);
        assert_eq!(
            failing.build(&params),
            Err(ProofError::Sign(SignError::Failed("hsm offline")))
        );
    }

    #[test]
    fn builder_and_free_function_agree_and_by_reference_works() {
        let b = builder();
        let params = ProofParams::new(
            &Method::GET,
            "https://a.example/x",
            UnixTime::from_secs(9),
            &JTI,
        );
        let a = b.build(&params).unwrap();
        let c = build_proof(b.signer(), &params).unwrap();
        assert_eq!(a, c);
        let by_ref = ProofBuilder::new(b.signer()).unwrap();
        assert_eq!(by_ref.build(&params).unwrap(), a);
        let dyn_signer: alloc::boxed::Box<dyn Signer> = alloc::boxed::Box::new(b.signer().clone());
        assert_eq!(build_proof(&*dyn_signer, &params).unwrap(), a);
    }

    #[test]
    fn finish_verified_catches_wrong_signatures() {
        let b = builder();
        let params = ProofParams::new(&Method::GET, "https://a.example/", UnixTime::EPOCH, &JTI);
        let unsigned = b.unsigned(&params).unwrap();
        let good = b
            .signer()
            .sign_now(unsigned.signing_input().as_bytes())
            .unwrap();
        let other = b.signer().sign_now(b"something else").unwrap();
        assert_eq!(
            unsigned.clone().finish_verified(&other, b.public_jwk()),
            Err(SignError::InvalidSignature)
        );
        let proof = unsigned
            .clone()
            .finish_verified(&good, b.public_jwk())
            .unwrap();
        assert_eq!(proof, unsigned.finish(&good));
    }

    #[test]
    fn debug_output_is_redacted() {
        let b = builder();
        let token = AccessToken::new("secret-access-token");
        let params = ProofParams::new(&Method::GET, "https://a.example/", UnixTime::EPOCH, &JTI)
            .with_access_token(&token);
        let unsigned = b.unsigned(&params).unwrap();
        let ProofOutcome::Ready(proof) = b.build(&params).unwrap() else {
            panic!("immediate signer");
        };
        let printed = format!("{params:?} {unsigned:?} {proof:?} {b:?}");
        assert!(!printed.contains("secret-access-token"), "{printed}");
        assert!(!printed.contains(b.encoded_header()), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn draw_jti_uses_the_entropy() {
        let a = draw_jti(&mut SeededEntropy::new(1));
        let b = draw_jti(&mut SeededEntropy::new(1));
        let c = draw_jti(&mut SeededEntropy::new(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), JTI_BYTES);
    }
}
