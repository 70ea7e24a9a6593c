//! Token Vault entries in stateless session cookies against the pinned
//! `@auth0/nextjs-auth0` package's own `StatelessSessionStore`
//! (`tests/js/cookie_compat.mjs`; `npm ci` in `tests/js` first): the SDK
//! keeps each `connectionTokenSets` entry in a cookie of its own
//! (`__FC_<i>`); sessions it writes are read here with their entries,
//! sessions written here are read by it with theirs, and entries the
//! session no longer has are deleted.

use serde_json::{Value, json};
use tokenkeeper::Session;
use tokenkeeper_axum::cookies::RequestCookies;

mod support;

use support::sdk::{SECRET, codec, headers, jar_from_set_cookies, now, sdk};

fn entries() -> Value {
    json!([
        {"accessToken": "google-at", "expiresAt": now() + 3600,
         "scope": "email", "connection": "google-oauth2"},
        {"accessToken": "github-at", "expiresAt": now() + 7200,
         "connection": "github", "loginHint": "ada"}
    ])
}

fn sdk_session(connections: &Value) -> Value {
    json!({
        "user": {"sub": "auth0|alice"},
        "tokenSet": {"accessToken": "at", "refreshToken": "rt", "expiresAt": now() + 3600},
        "internal": {"sid": "sid-1", "createdAt": now()},
        "connectionTokenSets": connections,
    })
}

/// The SDK's entries without the cookie's `exp` it leaves in them.
fn without_exp(entries: &Value) -> Value {
    let mut entries = entries.clone();
    for entry in entries.as_array_mut().unwrap() {
        entry.as_object_mut().unwrap().remove("exp");
    }
    entries
}

#[test]
fn entries_the_sdk_writes_in_fc_cookies_are_read_here() {
    let entries = entries();
    let session = sdk_session(&entries);
    let set = sdk(json!({"op": "store_set", "secret": SECRET, "session": session}));
    let jar: Vec<(String, String)> = set["cookies"]
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
        .collect();
    let names: Vec<&str> = jar.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"__FC_0") && names.contains(&"__FC_1"),
        "{names:?}"
    );
    let h = headers(&jar);
    let read = codec()
        .read_session(&RequestCookies::from_headers(&h), now())
        .unwrap();
    let ours = serde_json::to_value(read.connection_token_sets()).unwrap();
    assert_eq!(ours, entries);
}

#[test]
fn entries_written_here_are_read_by_the_sdk_and_stale_ones_deleted() {
    let entries = entries();
    let session: Session = serde_json::from_value(sdk_session(&entries)).unwrap();
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
    let names: Vec<&str> = jar.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["__session", "__FC_0", "__FC_1"]);
    let pairs: serde_json::Map<String, Value> = jar
        .iter()
        .map(|(n, v)| (n.clone(), Value::from(v.as_str())))
        .collect();
    let theirs = sdk(json!({"op": "store_get", "secret": SECRET, "cookies": pairs}));
    assert_eq!(
        without_exp(&theirs["session"]["connectionTokenSets"]),
        entries
    );
    // Read back here, too.
    let h = headers(&jar);
    let read = codec()
        .read_session(&RequestCookies::from_headers(&h), now())
        .unwrap();
    assert_eq!(
        serde_json::to_value(read.connection_token_sets()).unwrap(),
        entries
    );

    // The session shrinks to one entry: `__FC_1` is deleted, not left to
    // be read back.
    let one: Session = serde_json::from_value(sdk_session(&json!([entries[0]]))).unwrap();
    let mut set_cookies = Vec::new();
    codec()
        .write_session(
            &one,
            now(),
            &RequestCookies::from_headers(&h),
            &mut set_cookies,
        )
        .unwrap();
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("__FC_1=") && c.contains("Max-Age=0")),
        "{set_cookies:?}"
    );
    assert!(
        !jar_from_set_cookies(&set_cookies)
            .iter()
            .any(|(n, _)| n == "__FC_1")
    );
}
