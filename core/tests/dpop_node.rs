//! Cross-checks against Node's own implementations (WebCrypto, the WHATWG
//! URL parser, `KeyObject` JWK export). These are the only independent
//! checks of our signatures, `htu` and key exports: a missing `node` fails
//! them (it is never a silent pass).

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tokenkeeper::__private::dpop::{
    ProofBuilder, ProofOutcome, ProofParams, draw_jti, htu, origin,
};
use tokenkeeper::AccessToken;
use tokenkeeper::Method;
use tokenkeeper::SeededEntropy;
use tokenkeeper::UnixTime;
use tokenkeeper::dpop::{DpopKey, P256Signer};

const TEST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSmQ9LAZsX7xpkQ+a
JYsHFUrmFP8fBiJlqu8JMlZzAUahRANCAATImjBJYW55ZM1DApQMiut5TYUv7P4+
fF4ytrGzOBd3t1g95yUKngw4N7yn8y1tx91O8HbRxkavv/MzmrY3QksQ
-----END PRIVATE KEY-----
";

/// Runs `script` (CommonJS) in Node with `input` as JSON on stdin and
/// returns its stdout parsed as JSON. Panics (fails the test) when Node is
/// not installed.
fn node(script: &str, input: &Value) -> Value {
    if let Err(error) = Command::new("node").arg("--version").output() {
        panic!(
            "`node` (20 or later) is required for the Node cross-checks and could not be run: {error}"
        );
    }
    let mut child = Command::new("node")
        .arg("-e")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("node prints JSON")
}

/// Verifies each proof with WebCrypto: import the header's `jwk`, then
/// `subtle.verify` ECDSA P-256 SHA-256 over `header.payload` with the raw
/// `r || s` signature.
const VERIFY_SCRIPT: &str = r#"
const { webcrypto } = require('node:crypto');
const proofs = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
(async () => {
  const results = [];
  for (const proof of proofs) {
    const [h, p, s] = proof.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    const key = await webcrypto.subtle.importKey(
      'jwk', header.jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    const ok = await webcrypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-256' }, key,
      Buffer.from(s, 'base64url'), Buffer.from(h + '.' + p, 'ascii'));
    results.push({ ok, typ: header.typ, alg: header.alg, htu: claims.htu });
  }
  process.stdout.write(JSON.stringify(results));
})().catch((e) => { console.error(e); process.exit(1); });
"#;

fn ready(outcome: ProofOutcome) -> String {
    match outcome {
        ProofOutcome::Ready(proof) => proof.into_string(),
        other => panic!("expected a ready proof, got {other:?}"),
    }
}

#[test]
fn webcrypto_verifies_our_proofs() {
    let mut entropy = SeededEntropy::new(42);
    let mut keys = vec![DpopKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap()];
    for _ in 0..3 {
        keys.push(DpopKey::generate(&mut entropy).unwrap());
    }
    let token = AccessToken::new("access-token-for-node");
    let mut proofs = Vec::new();
    for key in &keys {
        let builder = ProofBuilder::new(P256Signer::new(key.clone())).unwrap();
        for (i, url) in [
            "https://as.example/token",
            "https://bücher.example:8443/a b?q#f",
        ]
        .iter()
        .enumerate()
        {
            let jti = draw_jti(&mut entropy);
            let params =
                ProofParams::new(&Method::POST, url, UnixTime::from_secs(1_700_000_000), &jti)
                    .with_nonce(Some("n-1"));
            let params = if i == 1 {
                params.with_access_token(&token)
            } else {
                params
            };
            proofs.push(ready(builder.build(&params).unwrap()));
        }
        #[cfg(feature = "ring")]
        {
            let ring = tokenkeeper::dpop::RingSigner::from_key(key).unwrap();
            let builder = ProofBuilder::new(ring).unwrap();
            let jti = draw_jti(&mut entropy);
            let params = ProofParams::new(
                &Method::GET,
                "https://rs.example/",
                UnixTime::from_secs(1),
                &jti,
            );
            proofs.push(ready(builder.build(&params).unwrap()));
        }
    }
    let results = node(VERIFY_SCRIPT, &json!(proofs));
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), proofs.len());
    for (proof, result) in proofs.iter().zip(results) {
        assert_eq!(result["ok"], true, "WebCrypto rejected {proof}");
        assert_eq!(result["typ"], "dpop+jwt");
        assert_eq!(result["alg"], "ES256");
    }
    assert_eq!(
        results[1]["htu"],
        "https://xn--bcher-kva.example:8443/a%20b"
    );

    // A tampered proof must fail, or the check above proves nothing.
    let mut tampered = proofs[0].clone();
    tampered.replace_range(tampered.len() - 2.., "AA");
    let results = node(VERIFY_SCRIPT, &json!([tampered]));
    assert_eq!(results[0]["ok"], false);
}

/// URLs whose `htu` and origin must match Node's WHATWG parser.
const URLS: &[&str] = &[
    "https://as.example/token",
    "https://as.example:443/token",
    "https://as.example:8443/token",
    "http://as.example:80/token",
    "http://as.example:443/token",
    "https://as.example:80/",
    "HTTPS://AS.Example/Token",
    "https://bücher.example/x",
    "https://BÜCHER.example/x",
    "https://münchen.例え.jp/パス",
    "https://as.example/token?a=1&b=2",
    "https://as.example/token#frag",
    "https://as.example/a%20b",
    "https://as.example/a b",
    "https://as.example/%7e/%7E/~",
    "https://as.example/ä",
    "https://as.example",
    "https://as.example?x",
    "https://as.example/a/../b/./c",
    "https://as.example/a/%2e%2E/b",
    "https://as.example//double",
    "https://user:pw@as.example/x",
    "https://127.0.0.1:8080/x",
    "http://[::1]:3000/x",
    "http://[0:0::1]/",
    "https://as.example.:443/",
    "  https://as.example/x\t",
    "https://as.example/a\"b<c>`{}|^",
    "https://as.example/a\\b",
    "https:as.example/x",
    "https:///x",
    "https://0x7f.1/",
    "https://as.example:0/",
    "https://as.example/;p=1/x",
    "https://as.example/tab\there",
    "https://a\"b.example/",
    "https://a{b}.example/p",
    "https://exa%41mple.com/",
];

const URL_SCRIPT: &str = r#"
const urls = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(urls.map((x) => {
  try { const u = new URL(x); return [u.origin + u.pathname, u.origin]; }
  catch (e) { return null; }
})));
"#;

#[test]
fn htu_matches_node_url() {
    let results = node(URL_SCRIPT, &json!(URLS));
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), URLS.len());
    for (url, result) in URLS.iter().zip(results) {
        assert_eq!(
            htu(url).ok().as_deref(),
            result.get(0).and_then(Value::as_str),
            "htu of {url:?}"
        );
        assert_eq!(
            origin(url).ok().as_deref(),
            result.get(1).and_then(Value::as_str),
            "origin of {url:?}"
        );
    }
}

const KEY_SCRIPT: &str = r#"
const crypto = require('node:crypto');
const keys = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(keys.map(({ pem, der }) => {
  const fromPem = crypto.createPrivateKey(pem).export({ format: 'jwk' });
  const fromDer = crypto.createPrivateKey({ key: Buffer.from(der, 'base64'), format: 'der', type: 'pkcs8' })
    .export({ format: 'jwk' });
  const { crv, kty, x, y } = fromPem;
  const jkt = crypto.createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  return { pem: fromPem, der: fromDer, jkt };
})));
"#;

#[test]
fn node_reads_our_key_exports() {
    use base64::Engine as _;
    let mut entropy = SeededEntropy::new(7);
    let mut keys = vec![DpopKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap()];
    for _ in 0..3 {
        keys.push(DpopKey::generate(&mut entropy).unwrap());
    }
    let input: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({
                "pem": key.to_pkcs8_pem().unwrap().as_str(),
                "der": base64::engine::general_purpose::STANDARD.encode(key.to_pkcs8_der().unwrap().as_slice()),
            })
        })
        .collect();
    let results = node(KEY_SCRIPT, &json!(input));
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), keys.len());
    for (key, result) in keys.iter().zip(results) {
        let ours: Value = serde_json::from_str(&key.to_jwk()).unwrap();
        for field in ["kty", "crv", "x", "y", "d"] {
            assert_eq!(ours[field], result["pem"][field], "{field} (PEM)");
            assert_eq!(ours[field], result["der"][field], "{field} (DER)");
        }
        assert_eq!(key.thumbprint(), result["jkt"]);
        // And Node's JWK reads back as the same key.
        assert_eq!(&DpopKey::from_jwk(&result["pem"].to_string()).unwrap(), key);
    }
}
