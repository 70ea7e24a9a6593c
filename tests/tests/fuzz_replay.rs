//! The committed fuzz seed corpora (`fuzz/corpus/<target>/`), replayed by
//! `cargo test` on stable through the fuzz targets' own code: an input that
//! crashed a target once keeps failing here, without nightly or libFuzzer.
//!
//! `build.rs` compiles every target listed in `fuzz/Cargo.toml` into a
//! module with a `run(bytes) -> bool` made by the `fuzz_target!` below, which
//! decodes the input as libfuzzer-sys 0.4 does (the same `size_hint` early
//! exit, `Arbitrary::arbitrary_take_rest` with the same `arbitrary` version)
//! and runs the target's body; `false` means the bytes do not decode to the
//! target's input (a dead seed, refused here).
//!
//! The targets whose input is `Arbitrary` (not raw bytes) get seeds written
//! by [`Seed`], an encoder for `arbitrary`'s format; each seed is checked to
//! decode to exactly the value it was written from, and the committed files
//! to be what the encoder writes (`TOKENKEEPER_WRITE_SEEDS=1` rewrites them).
//! Under `cargo fuzz` the core is also built with `--cfg fuzzing` (extra
//! oracles inside the parsers); this replay runs the targets' own checks.

use std::path::{Path, PathBuf};

/// libfuzzer-sys 0.4's `fuzz_target!`, minus libFuzzer: the same decoding,
/// then the body.
macro_rules! fuzz_target {
    (|$data:ident: &[u8]| $body:block) => {
        /// Runs the target on `bytes`; always decodes.
        pub fn run(bytes: &[u8]) -> bool {
            fn body($data: &[u8]) $body
            body(bytes);
            true
        }
    };
    (|$data:ident: $dty:ty| $body:block) => {
        /// Runs the target on `bytes` when they decode to its input.
        pub fn run(bytes: &[u8]) -> bool {
            use arbitrary::{Arbitrary, Unstructured};
            fn body($data: $dty) $body
            if bytes.len() < <$dty as Arbitrary>::size_hint(0).0 {
                return false;
            }
            match <$dty as Arbitrary>::arbitrary_take_rest(Unstructured::new(bytes)) {
                Ok(input) => {
                    body(input);
                    true
                }
                Err(_) => false,
            }
        }
    };
}

mod targets {
    include!(concat!(env!("OUT_DIR"), "/fuzz_targets.rs"));
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "fuzz target {target} has no seed corpus {}: {e}",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

#[test]
fn the_fuzz_crate_decodes_with_the_same_arbitrary() {
    assert_eq!(
        env!("FUZZ_LOCK_ARBITRARY"),
        env!("WORKSPACE_LOCK_ARBITRARY"),
        "fuzz/Cargo.lock and Cargo.lock resolve different `arbitrary` versions: seeds would decode differently here"
    );
}

#[test]
fn every_target_has_seeds_and_every_seed_replays() {
    assert!(targets::TARGETS.len() >= 11, "{}", targets::TARGETS.len());
    for (target, run) in targets::TARGETS {
        let seeds = corpus(target);
        assert!(!seeds.is_empty(), "fuzz target {target} has no seeds");
        for (path, bytes) in seeds {
            eprintln!("replaying {}", path.display());
            assert!(
                run(&bytes),
                "{} does not decode to {target}'s input: a dead seed",
                path.display()
            );
        }
    }
}

/// An encoder for `arbitrary` 1.x's format, for the inputs the seeds need
/// (seeds up to 256 bytes: every length then takes one byte).
///
/// `arbitrary` reads integers little-endian from the front, a `bool` from
/// one byte's low bit, an enum variant from a `u32` (`(u32 * count) >> 32`),
/// an `Option` as a `bool` then the value, a collection element by element
/// each behind a `true`, and the length of a `&str` / `&[u8]` from the *end*
/// of the data (one byte while at most 256 bytes are left). The last member
/// of the input takes whatever is left.
#[derive(Default)]
struct Seed {
    front: Vec<u8>,
    lengths: Vec<u8>,
}

impl Seed {
    fn u8(mut self, v: u8) -> Self {
        self.front.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.front.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.front.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bool(self, v: bool) -> Self {
        self.u8(u8::from(v))
    }
    /// Variant `index` of an enum of `count` variants.
    fn variant(mut self, index: u32, count: u32) -> Self {
        let v = u32::try_from((u64::from(index) << 32).div_ceil(u64::from(count))).unwrap();
        assert_eq!((u64::from(v) * u64::from(count)) >> 32, u64::from(index));
        self.front.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A `&[u8]` (or a `&str`'s bytes) that is not the last member.
    fn bytes(mut self, v: &[u8]) -> Self {
        self.lengths.push(u8::try_from(v.len()).unwrap());
        self.front.extend_from_slice(v);
        self
    }
    fn str(self, v: &str) -> Self {
        self.bytes(v.as_bytes())
    }
    fn opt_str(self, v: Option<&str>) -> Self {
        match v {
            Some(s) => self.bool(true).str(s),
            None => self.bool(false),
        }
    }
    /// The last member: the rest of the data.
    fn rest(mut self, v: &[u8]) -> Self {
        self.front.extend_from_slice(v);
        self
    }
    fn finish(self) -> Vec<u8> {
        let mut out = self.front;
        out.extend(self.lengths.iter().rev());
        assert!(
            out.len() <= 256,
            "a seed of {} bytes (at most 256)",
            out.len()
        );
        out
    }
}

/// Decodes `bytes` as `T` the way the targets do.
fn decode<'a, T: arbitrary::Arbitrary<'a> + std::fmt::Debug>(bytes: &'a [u8]) -> String {
    let value = T::arbitrary_take_rest(arbitrary::Unstructured::new(bytes)).unwrap();
    format!("{value:?}")
}

/// The seeds of the targets whose input is `Arbitrary`: (target, label,
/// bytes, the `Debug` of the input they were written from, the `Debug` of
/// what they decode to).
fn written_seeds() -> Vec<(&'static str, &'static str, Vec<u8>, String, String)> {
    let mut seeds = Vec::new();
    let mut add = |target: &'static str,
                   label: &'static str,
                   bytes: Vec<u8>,
                   meant: String,
                   decoded: String| {
        seeds.push((target, label, bytes, meant, decoded));
    };

    // form_and_url: (&str, &str, &str)
    for (label, (a, b, c)) in [
        (
            "seed-token-endpoint",
            (
                "https://as.example/oauth/token",
                "client id+é&x=1",
                "rt-ä/1+2=",
            ),
        ),
        (
            "seed-scopes",
            (
                "openid profile read:data",
                "profile email  read:data",
                "https://api.example/ r?x#y",
            ),
        ),
        ("seed-empty", ("", "", "")),
    ] {
        let bytes = Seed::default().str(a).str(b).rest(c.as_bytes()).finish();
        let decoded = decode::<(&str, &str, &str)>(&bytes);
        add(
            "form_and_url",
            label,
            bytes,
            format!("{:?}", (a, b, c)),
            decoded,
        );
    }

    // access_token_route: (u16, &[u8], &str)
    for (label, (status, body, query)) in [
        (
            "seed-ready",
            (
                200u16,
                &br#"{"token":"at-1","expires_at":1700000000,"scope":"read:data","token_type":"Bearer"}"#[..],
                "audience=https%3A%2F%2Fapi.example&scope=read%3Adata+write&refresh=true",
            ),
        ),
        (
            "seed-error",
            (
                401,
                &br#"{"error":{"code":"missing_session","message":"The user does not have an active session."}}"#[..],
                "scope=openid",
            ),
        ),
        (
            "seed-mfa",
            (403, &br#"{"error":{"code":"mfa_required","message":"m"},"mfa_token":"mfa-1"}"#[..], ""),
        ),
    ] {
        let bytes = Seed::default().u16(status).bytes(body).rest(query.as_bytes()).finish();
        let decoded = decode::<(u16, &[u8], &str)>(&bytes);
        add("access_token_route", label, bytes, format!("{:?}", (status, body, query)), decoded);
    }

    // login_callback: (&str, &str, &str, bool)
    for (label, (callback, param, issuer, required)) in [
        (
            "seed-code",
            (
                "https://app.example/cb?code=c-1&state=s-1&iss=https%3A%2F%2Fas.example",
                "openid offline_access",
                "https://as.example",
                true,
            ),
        ),
        (
            "seed-error",
            (
                "https://app.example/cb?error=access_denied&error_description=no&state=s",
                "consent",
                "https://other.example",
                false,
            ),
        ),
        ("seed-fragment", ("code=a&code=b#state=x", "", "", false)),
    ] {
        let bytes = Seed::default()
            .str(callback)
            .str(param)
            .str(issuer)
            .bool(required)
            .finish();
        let decoded = decode::<(&str, &str, &str, bool)>(&bytes);
        add(
            "login_callback",
            label,
            bytes,
            format!("{:?}", (callback, param, issuer, required)),
            decoded,
        );
    }

    // dpop_inputs: (&str, &str, &[u8], u8)
    let key =
        tokenkeeper::dpop::DpopKey::generate(&mut tokenkeeper::SeededEntropy::new(11)).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let jwk = key.public_jwk().to_string();
    let signature = {
        let signer = tokenkeeper::dpop::P256Signer::new(key.clone());
        signer.sign_now(b"header.claims").unwrap()
    };
    for (label, (url, text, bytes, capacity)) in [
        (
            "seed-pkcs8",
            (
                "https://AS.example:443/token?x=1#f",
                " \tn-1\t ",
                der.as_slice(),
                3u8,
            ),
        ),
        (
            "seed-jwk",
            (
                "http://[::1]:8080/a/../b",
                jwk.as_str(),
                signature.as_bytes(),
                1,
            ),
        ),
        (
            "seed-nonce",
            (
                "https://bücher.example/a b",
                "nonce-with-=+/",
                &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01][..],
                0,
            ),
        ),
    ] {
        let seed = Seed::default()
            .str(url)
            .str(text)
            .bytes(bytes)
            .u8(capacity)
            .finish();
        let decoded = decode::<(&str, &str, &[u8], u8)>(&seed);
        add(
            "dpop_inputs",
            label,
            seed,
            format!("{:?}", (url, text, bytes, capacity)),
            decoded,
        );
    }

    for (label, bytes, meant, decoded) in manager_ops_seeds::seeds() {
        add("manager_ops", label, bytes, meant, decoded);
    }
    seeds
}

/// Seeds for `manager_ops`, written from the target's own `Op` (a checked
/// copy, see `fuzz_seeds/manager_ops_op.rs`).
mod manager_ops_seeds {
    use super::Seed;
    use arbitrary::Arbitrary;

    include!("fuzz_seeds/manager_ops_op.rs");

    /// The number of variants of `Op`.
    const VARIANTS: u32 = 12;

    fn op(seed: Seed, op: &Op<'_>) -> Seed {
        let seed = seed.bool(true);
        match *op {
            Op::Get {
                audience,
                scope,
                force,
                merge,
            } => {
                let seed = seed
                    .variant(0, VARIANTS)
                    .opt_str(audience)
                    .opt_str(scope)
                    .bool(force);
                match merge {
                    Some(m) => seed.bool(true).bool(m),
                    None => seed.bool(false),
                }
            }
            Op::GetAfterWait { audience, waited } => {
                seed.variant(1, VARIANTS).opt_str(audience).u8(waited)
            }
            Op::Respond {
                which,
                status,
                ref headers,
                body,
            } => {
                let mut seed = seed.variant(2, VARIANTS).u8(which).u16(status);
                for (name, value) in headers {
                    seed = seed.bool(true).str(name).str(value);
                }
                seed.bool(false).bytes(body)
            }
            Op::RespondToken {
                which,
                access_token,
                refresh_token,
                expires_in,
                scope,
            } => seed
                .variant(3, VARIANTS)
                .u8(which)
                .str(access_token)
                .opt_str(refresh_token)
                .i64(expires_in)
                .opt_str(scope),
            Op::TransportError(which) => seed.variant(4, VARIANTS).u8(which),
            Op::Cancel(which) => seed.variant(5, VARIANTS).u8(which),
            Op::Forward(s) => seed.variant(6, VARIANTS).u16(s),
            Op::Back(s) => seed.variant(7, VARIANTS).u16(s),
            Op::Timeout => seed.variant(8, VARIANTS),
            Op::ResourceResponse {
                status,
                www_authenticate,
                nonce,
            } => seed
                .variant(9, VARIANTS)
                .u16(status)
                .str(www_authenticate)
                .opt_str(nonce),
            Op::Authorize { method, url } => seed.variant(10, VARIANTS).str(method).str(url),
            Op::ReloadSession => seed.variant(11, VARIANTS),
        }
    }

    fn write(seed_byte: u8, ops: &[Op<'_>]) -> Vec<u8> {
        let mut seed = Seed::default().u8(seed_byte);
        for o in ops {
            seed = op(seed, o);
        }
        seed.bool(false).finish()
    }

    pub fn seeds() -> Vec<(&'static str, Vec<u8>, String, String)> {
        let get = |audience| Op::Get {
            audience,
            scope: None,
            force: false,
            merge: None,
        };
        let cases: Vec<(&'static str, u8, Vec<Op<'static>>)> = vec![
            (
                // Bearer: the stored token expires (refresh), a rotation,
                // a cached answer, a forced refresh answered without a new
                // refresh token, a reload.
                "seed-refresh-rotation",
                0,
                vec![
                    Op::Forward(600),
                    get(None),
                    Op::RespondToken {
                        which: 0,
                        access_token: "at-1",
                        refresh_token: Some("rt-1"),
                        expires_in: 3600,
                        scope: Some("openid"),
                    },
                    get(None),
                    Op::Get {
                        audience: None,
                        scope: None,
                        force: true,
                        merge: None,
                    },
                    Op::RespondToken {
                        which: 1,
                        access_token: "at-2",
                        refresh_token: None,
                        expires_in: 60,
                        scope: None,
                    },
                    Op::ReloadSession,
                    Op::Forward(61),
                    get(None),
                ],
            ),
            (
                // Two audiences (MRRT): the second waits for the first
                // flight, then goes with the rotated token; an error and a
                // transport failure leave the refresh token as it was.
                "seed-mrrt-errors",
                5,
                vec![
                    Op::Forward(600),
                    get(Some("https://api1.example")),
                    get(Some("https://api2.example")),
                    Op::RespondToken {
                        which: 0,
                        access_token: "at-a",
                        refresh_token: Some("rt-a"),
                        expires_in: 300,
                        scope: Some("read"),
                    },
                    Op::GetAfterWait {
                        audience: Some("https://api2.example"),
                        waited: 0,
                    },
                    Op::Respond {
                        which: 1,
                        status: 400,
                        headers: vec![("Content-Type", "application/json")],
                        body: br#"{"error":"invalid_grant"}"#,
                    },
                    get(Some("https://api2.example")),
                    Op::TransportError(2),
                    Op::Cancel(0),
                    Op::Timeout,
                ],
            ),
            (
                // DPoP (seed & 2): a nonce challenge, the retry, a bound
                // token, a resource request and its nonce challenge.
                "seed-dpop",
                2,
                vec![
                    Op::Forward(600),
                    get(None),
                    Op::Respond {
                        which: 0,
                        status: 400,
                        headers: vec![("DPoP-Nonce", "n-1")],
                        body: br#"{"error":"use_dpop_nonce"}"#,
                    },
                    Op::RespondToken {
                        which: 1,
                        access_token: "at-d",
                        refresh_token: Some("rt-d"),
                        expires_in: 120,
                        scope: None,
                    },
                    get(None),
                    Op::Authorize {
                        method: "GET",
                        url: "https://api.example/x?y=1",
                    },
                    Op::ResourceResponse {
                        status: 401,
                        www_authenticate: r#"DPoP error="use_dpop_nonce""#,
                        nonce: Some("rs-1"),
                    },
                    Op::Back(30),
                ],
            ),
        ];
        cases
            .into_iter()
            .map(|(label, seed_byte, ops)| {
                let bytes = write(seed_byte, &ops);
                let meant = format!("{:?}", (seed_byte, &ops));
                let decoded = super::decode::<(u8, Vec<Op<'_>>)>(&bytes);
                (label, bytes, meant, decoded)
            })
            .collect()
    }
}

#[test]
fn the_manager_ops_seeds_are_written_for_the_targets_own_op() {
    fn enum_block(text: &str) -> String {
        let start = text
            .find("#[derive(Debug, Arbitrary)]\nenum Op<'a> {")
            .expect("`enum Op` in the text");
        let end = start + text[start..].find("\n}\n").expect("the end of `enum Op`") + 3;
        text[start..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
    let target = std::fs::read_to_string(fuzz_dir().join("fuzz_targets/manager_ops.rs")).unwrap();
    let copy = include_str!("fuzz_seeds/manager_ops_op.rs");
    assert_eq!(
        enum_block(copy),
        enum_block(&target),
        "fuzz/fuzz_targets/manager_ops.rs changed its `Op`: copy it into tests/tests/fuzz_seeds/manager_ops_op.rs, \
         adapt the seeds, and rewrite them with TOKENKEEPER_WRITE_SEEDS=1"
    );
}

#[test]
fn the_written_seeds_decode_to_what_they_were_written_from_and_are_committed() {
    let write = std::env::var("TOKENKEEPER_WRITE_SEEDS").is_ok_and(|v| v == "1");
    for (target, label, bytes, meant, decoded) in written_seeds() {
        assert_eq!(decoded, meant, "{target}/{label} decodes to another input");
        let path = fuzz_dir().join("corpus").join(target).join(label);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (write the seeds with TOKENKEEPER_WRITE_SEEDS=1)",
                    path.display()
                )
            });
            assert_eq!(
                committed,
                bytes,
                "{} is not what the encoder writes",
                path.display()
            );
        }
    }
}
