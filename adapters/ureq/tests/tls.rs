//! HTTPS out of the box, extra roots, and the lease bounding the transport
//! timeout: against a local scripted token endpoint (no authorization
//! server needed).

use tokenkeeper_integration::tls_server as server;
use tokenkeeper_integration::util::example;

use std::time::{Duration, Instant};

use tokenkeeper::{Config, Session, TokenRequest};
use tokenkeeper_ureq::TokenKeeper;

/// A session whose access token expired long ago, with refresh token `rt-1`.
fn expired_session() -> Session {
    let json = r#"{"tokenSet":{"accessToken":"old","refreshToken":"rt-1","expiresAt":1000}}"#;
    Session::from_json(json.as_bytes(), &Default::default()).unwrap()
}

/// Whether `condition` holds within 8 s (polled).
fn eventually(condition: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(8);
    while !condition() {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn refresh_token(keeper: &TokenKeeper) -> String {
    let session = keeper.session().unwrap();
    let token = session.token_set().refresh_token.as_ref().unwrap();
    token.secret().to_owned()
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[test]
fn a_refresh_over_https_with_a_ca_trusted_through_the_builder() {
    let server = server::https(vec![server::tokens("new", "rt-2")]);
    let config = Config::builder(&server.url, "client").build().unwrap();
    let keeper = TokenKeeper::builder(config)
        .root_certificates_pem(&server.ca_pem)
        .session(expired_session())
        .build()
        .unwrap();
    let token = keeper.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(token.token.secret(), "new");
    assert_eq!(refresh_token(&keeper), "rt-2");
    assert_eq!(server.requests(), 1);
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[test]
fn an_untrusted_certificate_is_a_tls_error_in_time_and_nothing_is_sent() {
    let server = server::https(vec![server::tokens("new", "rt-2")]);
    let config = Config::builder(&server.url, "client").build().unwrap();
    let keeper = TokenKeeper::builder(config)
        .session(expired_session())
        .build()
        .unwrap();
    let started = Instant::now();
    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{error:?}");
    assert_eq!(error.code(), "tls_error", "{error:?}");
    assert!(matches!(error, tokenkeeper_ureq::Error::Tls(_)));
    // The TLS library's own error is the source, and says why.
    let source = std::error::Error::source(&error).expect("a source");
    if cfg!(feature = "native-tls") {
        assert!(!source.is::<rustls::Error>(), "{source:?}");
    } else {
        assert!(source.is::<rustls::Error>(), "{source:?}");
    }
    let chain = server::chain(&error);
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    // The refresh token never left, and the session is as it was.
    assert_eq!(server.requests(), 0);
    assert_eq!(refresh_token(&keeper), "rt-1");
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[test]
fn a_root_certificate_that_does_not_parse_is_refused_at_build() {
    for pem in [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    ] {
        let config = Config::builder("https://127.0.0.1:9/token", "client")
            .build()
            .unwrap();
        let error = TokenKeeper::builder(config)
            .root_certificates_pem(pem)
            .build()
            .unwrap_err();
        assert_eq!(error.code(), "invalid_certificate", "{error:?}");
    }
}

#[test]
fn an_answer_after_the_lease_is_never_applied() {
    // The first answer comes after the lease (2 s); the second at once.
    let server = server::http(vec![
        server::tokens("late", "rt-late").after(Duration::from_secs(4)),
        server::tokens("new", "rt-2"),
    ]);
    let config = Config::builder(&server.url, "client")
        .lease(Duration::from_secs(2))
        .build()
        .unwrap();
    // A transport timeout longer than the lease: the lease bounds it.
    let keeper = TokenKeeper::builder(config)
        .timeout(Duration::from_secs(30))
        .session(expired_session())
        .build()
        .unwrap();
    let started = Instant::now();
    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.code(), "timeout", "{error:?}");
    // Given up before the lease deadline (at most 2 s away when it left).
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    assert_eq!(refresh_token(&keeper), "rt-1");
    assert_eq!(server.requests(), 1);

    // The late answer goes nowhere: the next call refreshes afresh.
    // The server finds the connection closed when its answer is due.
    assert!(
        eventually(|| server.hung_up() == 1),
        "the late request was not given up"
    );
    assert_eq!(refresh_token(&keeper), "rt-1");
    let token = keeper.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(token.token.secret(), "new");
    assert_eq!(refresh_token(&keeper), "rt-2");
}

#[test]
fn a_user_agent_with_a_long_timeout_is_bounded_by_the_lease_too() {
    let server = server::http(vec![
        server::tokens("late", "rt-late").after(Duration::from_secs(4)),
    ]);
    let config = Config::builder(&server.url, "client")
        .lease(Duration::from_secs(2))
        .build()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let keeper = TokenKeeper::builder(config)
        .agent(agent)
        .session(expired_session())
        .build()
        .unwrap();
    let started = Instant::now();
    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code(), "timeout", "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(refresh_token(&keeper), "rt-1");
    // The server finds the connection closed when its answer is due.
    assert!(
        eventually(|| server.hung_up() == 1),
        "the late request was not given up"
    );
    assert_eq!(refresh_token(&keeper), "rt-1");
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[test]
fn the_example_discovers_and_refreshes_over_https() {
    let server =
        server::https_with(|base| vec![server::discovery(base), server::tokens("new", "rt-2")]);
    let ca = std::env::temp_dir().join(format!("tokenkeeper-ureq-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let run = |ca_file: Option<&std::path::Path>| {
        let mut command = example("get_token");
        command
            .env_clear()
            .env("TOKENKEEPER_ISSUER", &server.base)
            .env("TOKENKEEPER_CLIENT_ID", "client")
            .env("TOKENKEEPER_REFRESH_TOKEN", "rt-1");
        if let Some(file) = ca_file {
            command.env("TOKENKEEPER_CA_FILE", file);
        }
        command.output().unwrap()
    };

    // Without the CA: a TLS error at discovery, said plainly.
    let output = run(None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains("TLS connection failed"), "{stderr}");
    assert_eq!(server.requests(), 0);

    let output = run(Some(&ca));
    let _ = std::fs::remove_file(&ca);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("expires at"), "{stdout}");
    assert!(stdout.contains("rotated"), "{stdout}");
    assert_eq!(server.requests(), 2);
}

/// A DPoP signer that always defers to the handle's deferred signer.
struct Deferring(std::sync::Arc<tokenkeeper::dpop::P256Signer>);

impl tokenkeeper::dpop::Signer for Deferring {
    fn algorithm(&self) -> &'static str {
        self.0.algorithm()
    }
    fn public_jwk(&self) -> &tokenkeeper::dpop::PublicJwk {
        self.0.public_jwk()
    }
    fn sign(
        &self,
        _: &[u8],
    ) -> Result<tokenkeeper::dpop::SignOutcome, tokenkeeper::dpop::SignError> {
        Ok(tokenkeeper::dpop::SignOutcome::Deferred)
    }
}

#[test]
fn a_request_whose_lease_ran_out_while_signing_is_never_sent() {
    use tokenkeeper::dpop::{DpopKey, P256Signer};

    let server = server::http(vec![server::tokens("new", "rt-2")]);
    let config = Config::builder(&server.url, "client")
        .lease(Duration::from_secs(1))
        .build()
        .unwrap();
    let key = DpopKey::generate(&mut tokenkeeper::SeededEntropy::new(7)).unwrap();
    let signer = std::sync::Arc::new(P256Signer::new(key));
    let remote = std::sync::Arc::clone(&signer);
    // A remote signer (a KMS) that answers after the lease.
    let keeper = TokenKeeper::builder(config)
        .dpop(Deferring(std::sync::Arc::clone(&signer)))
        .deferred_signer(move |input: &str| {
            std::thread::sleep(Duration::from_millis(1500));
            Ok(remote.sign_now(input.as_bytes())?)
        })
        .session(expired_session())
        .build()
        .unwrap();
    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code(), "timeout", "{error:?}");
    assert_eq!(server.requests(), 0, "a request past its lease was sent");
    assert_eq!(refresh_token(&keeper), "rt-1");
}
