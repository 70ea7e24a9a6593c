//! Errors read well: printed with its sources, a chain never repeats a
//! cause (issue 19, part 5). Each message says what failed; its source says
//! why, once.

use std::error::Error as StdError;

use tokenkeeper::discovery::DiscoveryError;
use tokenkeeper::id_token::IdTokenError;
use tokenkeeper::login::LoginError;

/// The messages of `error` and its sources, outermost first.
fn chain(error: &(dyn StdError + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut next = error.source();
    while let Some(source) = next {
        messages.push(source.to_string());
        next = source.source();
    }
    messages
}

/// No message contains the message of a source below it.
fn assert_no_repeats(error: &(dyn StdError + 'static)) {
    let messages = chain(error);
    for (i, outer) in messages.iter().enumerate() {
        for inner in &messages[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{outer:?} repeats its cause {inner:?} (chain {messages:?})"
            );
        }
    }
}

#[test]
fn core_errors_with_sources_do_not_repeat_them() {
    let errors = [
        tokenkeeper::Error::IdToken(IdTokenError::MissingSub),
        tokenkeeper::Error::IdToken(IdTokenError::Malformed("not a compact JWT")),
        tokenkeeper::Error::Login(LoginError::InvalidRequest("the client id is empty")),
        tokenkeeper::Error::Discovery(DiscoveryError::InvalidIssuer("not absolute")),
    ];
    for error in &errors {
        assert!(error.source().is_some(), "{error:?} has a source");
        assert_no_repeats(error);
    }
}

#[test]
fn adapter_transport_errors_do_not_repeat_their_cause() {
    // A refused connection through each native adapter, as users see it.
    let config = tokenkeeper::Config::builder("http://127.0.0.1:9/oauth/token", "client")
        .build()
        .unwrap();
    let session = tokenkeeper::Session::from_refresh_token(
        tokenkeeper::RefreshToken::new("rt"),
        tokenkeeper::UnixTime::from_secs(1),
        &mut tokenkeeper::SeededEntropy::new(1),
    );
    let keeper = tokenkeeper_ureq::TokenKeeper::builder(config.clone())
        .session(session.clone())
        .build()
        .unwrap();
    let error = keeper
        .get_access_token(&tokenkeeper::TokenRequest::new())
        .unwrap_err();
    assert!(error.source().is_some(), "{error:?}");
    assert_no_repeats(&error);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime.block_on(async {
        let keeper = tokenkeeper_reqwest::TokenKeeper::builder(config)
            .session(session)
            .build()
            .unwrap();
        keeper
            .get_access_token(&tokenkeeper::TokenRequest::new())
            .await
            .unwrap_err()
    });
    assert!(error.source().is_some(), "{error:?}");
    assert_no_repeats(&error);
}
