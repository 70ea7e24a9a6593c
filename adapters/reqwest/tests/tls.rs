//! HTTPS out of the box, extra roots, redirects refused or disabled, and
//! the lease bounding the transport timeout: against a local scripted
//! token endpoint (no authorization server needed).

use tokenkeeper_integration::tls_server as server;
use tokenkeeper_integration::util::example;

use std::time::{Duration, Instant};

use tokenkeeper::{Config, Session, TokenRequest};
use tokenkeeper_reqwest::TokenKeeper;

/// A session whose access token expired long ago, with refresh token `rt-1`.
fn expired_session() -> Session {
    let json = r#"{"tokenSet":{"accessToken":"old","refreshToken":"rt-1","expiresAt":1000}}"#;
    Session::from_json(json.as_bytes(), &Default::default()).unwrap()
}

fn refresh_token(keeper: &TokenKeeper) -> String {
    let session = keeper.session().unwrap();
    let token = session.token_set().refresh_token.as_ref().unwrap();
    token.secret().to_owned()
}

/// A crypto provider for the clients the tests build themselves (the
/// adapter installs ring's when it builds one; these may come first).
fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn config(url: &str) -> Config {
    Config::builder(url, "client").build().unwrap()
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[tokio::test]
async fn a_refresh_over_https_with_a_ca_trusted_through_the_builder() {
    let server = server::https(vec![server::tokens("new", "rt-2")]);
    let keeper = TokenKeeper::builder(config(&server.url))
        .root_certificates_pem(&server.ca_pem)
        .session(expired_session())
        .build()
        .unwrap();
    let token = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(token.token.secret(), "new");
    assert_eq!(refresh_token(&keeper), "rt-2");
    assert_eq!(server.requests(), 1);
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[tokio::test]
async fn a_users_client_builder_gets_the_extra_root_too() {
    let server = server::https(vec![server::tokens("new", "rt-2")]);
    let builder = reqwest::Client::builder().user_agent("tls-test/1");
    let keeper = TokenKeeper::builder(config(&server.url))
        .client_builder(builder)
        .root_certificates_pem(&server.ca_pem)
        .session(expired_session())
        .build()
        .unwrap();
    let token = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(token.token.secret(), "new");
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error_in_time_and_nothing_is_sent() {
    let server = server::https(vec![server::tokens("new", "rt-2")]);
    let keeper = TokenKeeper::builder(config(&server.url))
        .session(expired_session())
        .build()
        .unwrap();
    let started = Instant::now();
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{error:?}");
    assert_eq!(error.code(), "tls_error", "{error:?}");
    assert!(matches!(error, tokenkeeper_reqwest::Error::Tls(_)));
    // The TLS library's error is in the source chain, and says why.
    let chain = server::chain(&error);
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    assert_eq!(server.requests(), 0);
    assert_eq!(refresh_token(&keeper), "rt-1");
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[tokio::test]
async fn a_root_certificate_that_does_not_parse_is_refused_at_build() {
    for pem in [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    ] {
        let error = TokenKeeper::builder(config("https://127.0.0.1:9/token"))
            .root_certificates_pem(pem)
            .build()
            .unwrap_err();
        assert_eq!(error.code(), "invalid_certificate", "{error:?}");
    }
}

#[tokio::test]
async fn a_client_that_follows_redirects_is_refused_at_build() {
    provider();
    for client in [
        reqwest::Client::new(),
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap(),
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::custom(|attempt| attempt.stop()))
            .build()
            .unwrap(),
    ] {
        let error = TokenKeeper::builder(config("http://127.0.0.1:9/token"))
            .client(client)
            .build()
            .unwrap_err();
        assert_eq!(error.code(), "client_follows_redirects", "{error:?}");
        assert!(matches!(
            error,
            tokenkeeper_reqwest::Error::ClientFollowsRedirects
        ));
    }
}

/// A 302 from the token endpoint is the core's to judge, whatever client
/// the handle was given; the place it points to is never asked.
#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    provider();
    let elsewhere = server::http(vec![server::tokens("stolen", "rt-stolen")]);
    let endpoint = server::http(vec![server::redirect(302, &elsewhere.url)]);
    let accepted = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let builders: [Box<dyn Fn(tokenkeeper_reqwest::Builder) -> tokenkeeper_reqwest::Builder>; 3] = [
        Box::new(|b| b),
        Box::new(move |b| b.client(accepted.clone())),
        // A builder that would follow: the handle turns redirects off.
        Box::new(|b| b.client_builder(reqwest::Client::builder())),
    ];
    for (i, builder) in builders.iter().enumerate() {
        let keeper = builder(TokenKeeper::builder(config(&endpoint.url)))
            .session(expired_session())
            .build()
            .unwrap();
        let error = keeper
            .get_access_token(&TokenRequest::new())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "failed_to_refresh_token", "{error:?}");
        let chain = server::chain(&error);
        assert!(chain.contains("302"), "{chain}");
        assert_eq!(endpoint.requests(), i + 1);
        assert_eq!(elsewhere.requests(), 0, "the redirect was followed");
        assert_eq!(refresh_token(&keeper), "rt-1");
    }
}

#[tokio::test]
async fn an_answer_after_the_lease_is_never_applied() {
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
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.code(), "timeout", "{error:?}");
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    assert_eq!(refresh_token(&keeper), "rt-1");
    assert_eq!(server.requests(), 1);

    // The late answer goes nowhere (the exchange was dropped; hyper may
    // still read it off a pooled connection, and discard it): the next
    // call refreshes afresh.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(refresh_token(&keeper), "rt-1");
    let token = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(token.token.secret(), "new");
    assert_eq!(refresh_token(&keeper), "rt-2");
}

#[tokio::test]
async fn a_users_client_with_a_long_timeout_is_bounded_by_the_lease_too() {
    provider();
    let server = server::http(vec![
        server::tokens("late", "rt-late").after(Duration::from_secs(4)),
    ]);
    let config = Config::builder(&server.url, "client")
        .lease(Duration::from_secs(2))
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let keeper = TokenKeeper::builder(config)
        .client(client)
        .session(expired_session())
        .build()
        .unwrap();
    let started = Instant::now();
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "timeout", "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(refresh_token(&keeper), "rt-1");
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[test]
fn the_example_discovers_and_refreshes_over_https() {
    let server =
        server::https_with(|base| vec![server::discovery(base), server::tokens("new", "rt-2")]);
    let ca =
        std::env::temp_dir().join(format!("tokenkeeper-reqwest-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let run = |ca_file: Option<&std::path::Path>| {
        let mut command = example("get_token_async");
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
