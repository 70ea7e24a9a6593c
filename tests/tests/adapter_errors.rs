//! The adapters' public error types keep secrets out of `Display` and
//! `Debug` (with their whole `source()` chain), like the core's
//! (`core/tests/secrets.rs`): each variant made from a real failure whose
//! inputs carry the secret (a refresh token and a client secret sent to a
//! port nothing listens on, a login callback whose code is the secret, a
//! store that fails), or built directly where only the host can make it.

use std::time::Duration;

use tokenkeeper::grant::ClientAuth;
use tokenkeeper::login::LoginRequest;
use tokenkeeper::{ClientSecret, Config, Session, StoreError, TokenRequest};

/// Differs from its form encoding, its JSON form and its base64 forms.
const SECRET: &str = "SeCrEt/01?>?+456=789 ä&x??>y";

fn forms() -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let mut forms = vec![
        SECRET.to_owned(),
        tokenkeeper::__private::form::encode(SECRET),
        serde_json::to_string(SECRET)
            .unwrap()
            .trim_matches('"')
            .to_owned(),
    ];
    for plain in [
        SECRET.to_owned(),
        tokenkeeper::__private::form::encode(SECRET),
    ] {
        for offset in 0..3 {
            let mut bytes = vec![b'x'; offset];
            bytes.extend_from_slice(plain.as_bytes());
            let skip = if offset == 0 { 0 } else { 4 };
            let whole = bytes.len() / 3 * 4;
            for encoded in [STANDARD.encode(&bytes), URL_SAFE_NO_PAD.encode(&bytes)] {
                forms.push(encoded[skip..whole - 4].to_owned());
            }
        }
    }
    forms
}

fn check(label: &str, error: &(dyn std::error::Error + 'static)) {
    let forms = forms();
    let mut current = Some(error);
    let mut depth = 0;
    while let Some(e) = current {
        for printed in [
            e.to_string(),
            format!("{e:#}"),
            format!("{e:?}"),
            format!("{e:#?}"),
        ] {
            for form in &forms {
                assert!(
                    !printed.contains(form.as_str()),
                    "{label} (source {depth}) leaks the secret as {form:?}: {printed}"
                );
            }
        }
        current = e.source();
        depth += 1;
    }
}

/// A session whose tokens are the secret, expired at 1000 (a refresh is
/// due), for a client whose secret is the secret, at a token endpoint
/// nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn config(port: u16) -> Config {
    Config::builder(format!("http://127.0.0.1:{port}/token"), "c")
        .client_auth(ClientAuth::SecretBasic(ClientSecret::new(SECRET)))
        .build()
        .unwrap()
}

fn session() -> Session {
    let json = serde_json::json!({
        "tokenSet": {
            "accessToken": SECRET, "refreshToken": SECRET, "idToken": SECRET,
            "expiresAt": 1000,
        },
    });
    Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap()
}

fn login_error() -> tokenkeeper::Error {
    let (_, transaction) = LoginRequest::new("https://as/authorize", "c", "https://app/cb")
        .start(&mut tokenkeeper::SeededEntropy::new(1))
        .unwrap();
    let callback = format!(
        "https://app/cb?code={}&state={}&error=access_denied",
        tokenkeeper::__private::form::encode(SECRET),
        transaction.state().secret()
    );
    tokenkeeper::Error::Login(
        transaction
            .validate_callback(&callback, None, false)
            .unwrap_err(),
    )
}

#[test]
fn ureq_errors_keep_secrets_out() {
    use tokenkeeper_ureq::{Error, TokenKeeper};
    let keeper = TokenKeeper::builder(config(closed_port()))
        .session(session())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let transport = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert!(matches!(transport, Error::Transport(_)), "{transport:?}");
    check("ureq Error::Transport (refresh)", &transport);
    check("ureq Error::Core", &Error::Core(login_error()));
    check(
        "ureq Error::Store",
        &Error::Store(StoreError::Conflict { found: Some(3) }),
    );
    check(
        "ureq Error::Unsupported",
        &Error::Unsupported("a step".to_owned()),
    );
    check(
        "ureq Error::Signing",
        &Error::Signing(Box::new(tokenkeeper::dpop::SignError::InvalidSignature)),
    );
}

#[test]
fn reqwest_errors_keep_secrets_out() {
    use tokenkeeper_reqwest::{Error, TokenKeeper};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keeper = TokenKeeper::new(config(closed_port()), session()).unwrap();
    let transport = runtime
        .block_on(keeper.get_access_token(&TokenRequest::new()))
        .unwrap_err();
    assert!(matches!(transport, Error::Transport(_)), "{transport:?}");
    check("reqwest Error::Transport (refresh)", &transport);
    check("reqwest Error::Core", &Error::Core(login_error()));
    check(
        "reqwest Error::Store",
        &Error::Store(StoreError::Conflict { found: Some(3) }),
    );
    let invalid = http::Request::builder()
        .uri(format!("http://127.0.0.1/?{SECRET}"))
        .body(())
        .unwrap_err();
    check(
        "reqwest Error::InvalidRequest",
        &Error::InvalidRequest(invalid),
    );
    check(
        "reqwest Error::Unsupported",
        &Error::Unsupported("a step".to_owned()),
    );
    check(
        "reqwest Error::Signing",
        &Error::Signing(Box::new(tokenkeeper::dpop::SignError::InvalidSignature)),
    );
}
