//! The session cookie against the real `@auth0/nextjs-auth0` v4 package's
//! own code (pinned in `tests/js/package-lock.json`; `npm ci` there first):
//! sessions it writes are read here, sessions written here are read by it,
//! chunked ones included, and every damaged cookie is no session on both
//! sides.

use serde_json::{Value, json};
use tokenkeeper::Session;
use tokenkeeper_axum::cookies::{MAX_CHUNK_SIZE, RequestCookies};
use tokenkeeper_axum::jwe::{CookieKey, JweError};
use tokenkeeper_axum::session_cookie::NoSession;

mod support;

use support::sdk::{SECRET, codec, headers, jar_from_set_cookies, now, sdk};

/// A session as the SDK keeps it after a login; `groups` claims make it as
/// large as asked.
fn sdk_session(groups: usize) -> Value {
    let groups: Vec<String> = (0..groups)
        .map(|i| format!("group-number-{i:05}"))
        .collect();
    json!({
        "user": {"sub": "auth0|alice", "name": "Alice", "email": "alice@example.com", "groups": groups},
        "tokenSet": {
            "accessToken": "at-123",
            "idToken": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
            "scope": "openid profile email offline_access",
            "requestedScope": "openid profile email offline_access",
            "refreshToken": "rt-456",
            "expiresAt": now() + 3600,
            "audience": "https://api.example.com"
        },
        "accessTokens": [{
            "accessToken": "at-api2",
            "audience": "https://api2.example.com",
            "scope": "read:data",
            "requestedScope": "read:data",
            "expiresAt": now() + 600,
            "token_type": "Bearer"
        }],
        "internal": {"sid": "sid-1", "createdAt": now()}
    })
}

/// The request cookies a browser would send back for the SDK's
/// `Set-Cookie`s (deletions dropped).
fn browser_jar(set: &Value) -> Vec<(String, String)> {
    set["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["maxAge"] != 0 && c["value"] != "")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_same_session(ours: &Session, theirs: &Value) {
    let ours = serde_json::to_value(ours).unwrap();
    for key in ["user", "internal", "accessTokens"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    for key in [
        "accessToken",
        "idToken",
        "refreshToken",
        "expiresAt",
        "scope",
        "requestedScope",
        "audience",
    ] {
        assert_eq!(
            ours["tokenSet"][key], theirs["tokenSet"][key],
            "tokenSet.{key}"
        );
    }
}

#[test]
fn a_session_the_sdk_writes_is_read_here_plain_and_chunked() {
    for (groups, chunked) in [(2, false), (400, true)] {
        let session = sdk_session(groups);
        let set = sdk(json!({"op": "store_set", "secret": SECRET, "session": session}));
        let jar = browser_jar(&set);
        assert_eq!(jar.len() > 1, chunked, "{jar:?}");
        if chunked {
            assert_eq!(jar[0].0, "__session__0");
            assert!(jar.iter().all(|(_, v)| v.len() <= MAX_CHUNK_SIZE));
        }
        let h = headers(&jar);
        let read = codec()
            .read_session(&RequestCookies::from_headers(&h), now())
            .unwrap();
        assert_same_session(&read, &session);
    }
}

#[test]
fn the_sdk_testing_helper_cookie_is_read_here() {
    let session = sdk_session(1);
    let jwe = sdk(json!({"op": "generate", "secret": SECRET, "session": session}))["jwe"]
        .as_str()
        .unwrap()
        .to_owned();
    let h = headers(&[("__session".into(), jwe)]);
    let read = codec()
        .read_session(&RequestCookies::from_headers(&h), now())
        .unwrap();
    assert_same_session(&read, &session);
}

#[test]
fn a_session_written_here_is_read_by_the_sdk_plain_and_chunked() {
    for (groups, chunked) in [(2, false), (400, true)] {
        let session: Session = serde_json::from_value(sdk_session(groups)).unwrap();
        let mut set_cookies = Vec::new();
        codec()
            .write_session(
                &session,
                now(),
                &RequestCookies::default(),
                &mut set_cookies,
            )
            .unwrap();
        let jar = jar_from_set_cookies(&set_cookies);
        assert_eq!(jar.len() > 1, chunked, "{jar:?}");
        let pairs: serde_json::Map<String, Value> = jar
            .iter()
            .map(|(n, v)| (n.clone(), Value::from(v.as_str())))
            .collect();
        let theirs = sdk(json!({"op": "store_get", "secret": SECRET, "cookies": pairs}));
        let theirs = &theirs["session"];
        assert!(theirs.is_object(), "the SDK read no session: {theirs}");
        assert_same_session(&session, theirs);
        // `exp` is the session's expiry: one day of inactivity.
        let exp = theirs["exp"].as_u64().unwrap();
        assert!(exp.abs_diff(now() + 24 * 3600) <= 2, "{exp}");
        // The SDK's own chunk reader joins our chunks to our value.
        let joined = sdk(json!({"op": "get_chunked", "name": "__session", "cookies": pairs}));
        let jar_headers = headers(&jar);
        let ours = tokenkeeper_axum::cookies::get_chunked(
            &RequestCookies::from_headers(&jar_headers),
            "__session",
        )
        .unwrap();
        assert_eq!(joined["value"], ours.as_ref());
    }
}

#[test]
fn jwe_both_ways_with_the_sdk_encrypt_and_decrypt() {
    let key = CookieKey::from_secret(SECRET.as_bytes());
    let exp = now() + 100;
    let payload = json!({"id": "session-id-1", "nested": {"a": [1, 2, 3]}});
    let theirs = sdk(json!({"op": "encrypt", "secret": SECRET, "payload": payload, "exp": exp}));
    let claims = key.decrypt(theirs["jwe"].as_str().unwrap(), now()).unwrap();
    assert_eq!(Value::Object(claims), payload);

    let ours = key
        .encrypt(payload.as_object().unwrap().clone(), exp)
        .unwrap();
    let decrypted = sdk(json!({"op": "decrypt", "secret": SECRET, "jwe": ours}));
    assert_eq!(decrypted["header"], json!({"enc": "A256GCM", "alg": "dir"}));
    let mut expected = payload.clone();
    expected["exp"] = json!(exp);
    assert_eq!(decrypted["payload"], expected);
}

#[test]
fn damaged_expired_and_foreign_cookies_are_no_session_on_both_sides() {
    let key = CookieKey::from_secret(SECRET.as_bytes());
    let good = key
        .encrypt(sdk_session(1).as_object().unwrap().clone(), now() + 3600)
        .unwrap();
    let mut tampered = good.clone().into_bytes();
    let at = tampered.len() - 40; // inside the ciphertext
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let truncated = good[..good.len() - 7].to_owned();
    let expired = key
        .encrypt(sdk_session(1).as_object().unwrap().clone(), now() - 20)
        .unwrap();
    let foreign = CookieKey::from_secret(b"another-secret-another-secret-another!!")
        .encrypt(sdk_session(1).as_object().unwrap().clone(), now() + 3600)
        .unwrap();
    let expired_by_sdk = sdk(
        json!({"op": "encrypt", "secret": SECRET, "payload": sdk_session(1), "exp": now() - 20}),
    )["jwe"]
        .as_str()
        .unwrap()
        .to_owned();
    for (label, value, want) in [
        ("tampered", &tampered, "Decryption"),
        ("truncated", &truncated, ""),
        ("expired", &expired, "Expired"),
        ("expired by the SDK", &expired_by_sdk, "Expired"),
        ("foreign key", &foreign, "Decryption"),
        ("garbage", &"not-a-jwe".to_owned(), "Malformed"),
    ] {
        let h = headers(&[("__session".into(), value.clone())]);
        let ours = codec().read_session(&RequestCookies::from_headers(&h), now());
        let Err(NoSession::Invalid(error)) = ours else {
            panic!("{label}: {ours:?}")
        };
        if !want.is_empty() {
            assert_eq!(format!("{error:?}"), want, "{label}");
        }
        let theirs =
            sdk(json!({"op": "store_get", "secret": SECRET, "cookies": {"__session": value}}));
        assert_eq!(theirs["session"], Value::Null, "{label}: the SDK agrees");
    }
    // A missing chunk is no session (the SDK says so too).
    let big = key
        .encrypt(sdk_session(400).as_object().unwrap().clone(), now() + 3600)
        .unwrap();
    assert!(big.len() > 2 * MAX_CHUNK_SIZE);
    let jar = vec![
        ("__session__0".to_owned(), big[..MAX_CHUNK_SIZE].to_owned()),
        (
            "__session__2".to_owned(),
            big[2 * MAX_CHUNK_SIZE..].to_owned(),
        ),
    ];
    let ours = codec().read_session(&RequestCookies::from_headers(&headers(&jar)), now());
    assert_eq!(ours.unwrap_err(), NoSession::Absent);
    let _ = JweError::Expired;
}
