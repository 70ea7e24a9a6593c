//! Token Vault (the SDK's `getAccessTokenForConnection`) against
//! node-oidc-provider with the harness's federated connection handler
//! (`tests/harness/token_vault.mjs`), through every adapter: the
//! exchange and its request, the per-connection cache and its key, force,
//! expiry, the typed errors, and single flight under 16 concurrent callers.

#[macro_use]
mod scenarios_common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scenarios_common::{
    Driver, Failure, Reqwest, SharedStore, Ureq, Wasm, config, config_builder, logged_in,
    refresh_token, with_refresh_token,
};
use serde_json::{Value, json};
use tokenkeeper::{
    AccessTokenInfo, ConnectionRequest, GRANT_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN, Session,
    TokenRequest,
};
use tokenkeeper_integration::{
    CONFIDENTIAL_BASIC, CONFIDENTIAL_POST, Harness, HarnessOptions, PUBLIC_PKCE,
};
use tokenkeeper_wasm_bridge::protocol::{Answer, Command, WireConnectionRequest};

scenarios!(
    exchange_works_and_is_stored_as_the_sdk_stores_it,
    cached_per_connection_and_login_hint,
    force_refresh_exchanges_again,
    an_expired_connection_token_is_exchanged_again,
    unknown_connection_is_a_typed_error,
    a_rotated_or_invalid_refresh_token_is_a_typed_error_and_drops_the_entry,
    sixteen_concurrent_callers_make_one_exchange,
    another_clients_refresh_token_or_a_public_client_is_refused,
);

const GOOGLE: &str = "google-oauth2";
const GITHUB: &str = "github";

/// The Token Vault call through each adapter.
trait Vault: Driver {
    fn connection(&self, request: &ConnectionRequest<'_>) -> Result<AccessTokenInfo, Failure>;
    /// `n` callers for `connection` at the same moment.
    fn connections_at_once(
        &self,
        n: usize,
        connection: &'static str,
    ) -> Vec<Result<AccessTokenInfo, Failure>>;
}

impl Vault for Ureq {
    fn connection(&self, request: &ConnectionRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        Ok(self.0.get_connection_token(request)?)
    }

    fn connections_at_once(
        &self,
        n: usize,
        connection: &'static str,
    ) -> Vec<Result<AccessTokenInfo, Failure>> {
        let barrier = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (keeper, barrier) = (self.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    keeper.connection(&ConnectionRequest::new(connection))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("caller thread"))
            .collect()
    }
}

impl Vault for Reqwest {
    fn connection(&self, request: &ConnectionRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        Ok(self
            .runtime
            .block_on(self.keeper.get_connection_token(request))?)
    }

    fn connections_at_once(
        &self,
        n: usize,
        connection: &'static str,
    ) -> Vec<Result<AccessTokenInfo, Failure>> {
        self.runtime.block_on(async {
            // Spawned on a current-thread runtime: none runs before the
            // first `.await` below, so all start together.
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let keeper = self.keeper.clone();
                    tokio::spawn(async move {
                        keeper
                            .get_connection_token(&ConnectionRequest::new(connection))
                            .await
                            .map_err(Failure::from)
                    })
                })
                .collect();
            let mut answers = Vec::with_capacity(n);
            for task in tasks {
                answers.push(task.await.expect("caller task"));
            }
            answers
        })
    }
}

impl Vault for Wasm {
    fn connection(&self, request: &ConnectionRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        let request = WireConnectionRequest::new(request);
        Wasm::one(Command::Connection {
            keeper: self.id(),
            request,
        })
        .map(connection_token)
    }

    fn connections_at_once(
        &self,
        n: usize,
        connection: &'static str,
    ) -> Vec<Result<AccessTokenInfo, Failure>> {
        // One line to the host: all n tasks start in the same tick.
        let commands = (0..n)
            .map(|_| Command::Connection {
                keeper: self.id(),
                request: WireConnectionRequest::new(&ConnectionRequest::new(connection)),
            })
            .collect();
        Wasm::all(commands)
            .into_iter()
            .map(|outcome| outcome.map(connection_token))
            .collect()
    }
}

fn connection_token(answer: Answer) -> AccessTokenInfo {
    match answer {
        Answer::Token(token) => token.get(),
        other => panic!("expected a token, got {other:?}"),
    }
}

fn harness() -> Harness {
    Harness::start(HarnessOptions::default())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Exchanges the harness counted (every request of the grant, answered or
/// not).
fn exchanges(h: &Harness) -> u64 {
    h.stats()
        .grant(GRANT_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN)
}

/// The parameters of the last exchange the harness saw.
fn last_exchange(h: &Harness) -> Value {
    h.stats()
        .recent_token_requests
        .iter()
        .rev()
        .find(|r| r["grant_type"] == GRANT_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN)
        .map(|r| r["params"].clone())
        .expect("an exchange request")
}

fn session_json(session: &Session) -> Value {
    serde_json::from_str(&session.to_json()).expect("session JSON")
}

fn edit(session: &Session, change: impl FnOnce(&mut Value)) -> Session {
    let mut json = session_json(session);
    change(&mut json);
    Session::from_json(json.to_string().as_bytes(), &Default::default()).expect("edited session")
}

/// A logged-in keeper of `confidential-post` and its store, the stats reset.
fn keeper<D: Vault>(h: &Harness) -> (D, SharedStore) {
    let session = logged_in::<D>(h, &CONFIDENTIAL_POST);
    let store = SharedStore::with_session(session);
    let keeper = D::build(config(h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();
    (keeper, store)
}

/// The exchange sends the SDK's parameters with the session's refresh
/// token, returns the connection's token, and stores it in
/// `connectionTokenSets` in the SDK's shape, saved to the store.
fn exchange_works_and_is_stored_as_the_sdk_stores_it<D: Vault>() {
    let h = harness();
    let (keeper, store) = keeper::<D>(&h);
    let before = now_secs();

    let token = keeper.connection(&ConnectionRequest::new(GOOGLE)).unwrap();
    assert!(token.token.secret().starts_with("google-oauth2-"));
    assert_eq!(
        token.scope.as_deref(),
        Some("openid email https://www.googleapis.com/auth/calendar.readonly")
    );
    let expires = token.expires_at.as_secs();
    assert!(
        (before + 3590..=now_secs() + 3600).contains(&expires),
        "{expires}"
    );
    assert_eq!(exchanges(&h), 1);

    let sent = last_exchange(&h);
    let session = keeper.session().unwrap();
    assert_eq!(sent["connection"], GOOGLE);
    assert_eq!(
        sent["subject_token_type"],
        "urn:ietf:params:oauth:token-type:refresh_token"
    );
    assert_eq!(
        sent["requested_token_type"],
        "http://auth0.com/oauth/token-type/federated-connection-access-token"
    );
    assert_eq!(sent["subject_token"], refresh_token(&session));
    assert!(sent.get("login_hint").is_none());

    let stored = session_json(&store.stored().expect("saved"));
    assert_eq!(
        stored["connectionTokenSets"],
        json!([{
            "accessToken": token.token.secret(),
            "expiresAt": expires,
            "scope": "openid email https://www.googleapis.com/auth/calendar.readonly",
            "connection": GOOGLE,
        }])
    );
}

/// A second call is served from the session (the server sees nothing);
/// another connection, or the same one with a login hint, is its own entry.
fn cached_per_connection_and_login_hint<D: Vault>() {
    let h = harness();
    let (keeper, store) = keeper::<D>(&h);

    let google = keeper.connection(&ConnectionRequest::new(GOOGLE)).unwrap();
    let again = keeper.connection(&ConnectionRequest::new(GOOGLE)).unwrap();
    assert_eq!(again.token, google.token);
    assert_eq!(exchanges(&h), 1, "the second call is cached");

    let github = keeper.connection(&ConnectionRequest::new(GITHUB)).unwrap();
    assert!(github.token.secret().starts_with("github-"));
    assert_eq!(exchanges(&h), 2);
    let hinted_request = ConnectionRequest::new(GOOGLE).login_hint("ada@example.com");
    let hinted = keeper.connection(&hinted_request).unwrap();
    assert_ne!(hinted.token, google.token);
    assert_eq!(last_exchange(&h)["login_hint"], "ada@example.com");
    assert_eq!(exchanges(&h), 3);

    // All three cached, each under its own key.
    assert_eq!(
        keeper.connection(&hinted_request).unwrap().token,
        hinted.token
    );
    assert_eq!(
        keeper
            .connection(&ConnectionRequest::new(GITHUB))
            .unwrap()
            .token,
        github.token
    );
    assert_eq!(
        keeper
            .connection(&ConnectionRequest::new(GOOGLE))
            .unwrap()
            .token,
        google.token
    );
    assert_eq!(exchanges(&h), 3);

    // A new handle on the same store (another instance) reads them.
    let other = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    assert_eq!(
        other
            .connection(&ConnectionRequest::new(GITHUB))
            .unwrap()
            .token,
        github.token
    );
    assert_eq!(exchanges(&h), 3);
    let stored = session_json(&store.stored().unwrap());
    let sets = stored["connectionTokenSets"].as_array().unwrap();
    assert_eq!(sets.len(), 3);
    assert_eq!(sets[2]["loginHint"], "ada@example.com");
    // The user's own tokens were not touched.
    assert_eq!(h.stats().grant("refresh_token"), 0);
}

fn force_refresh_exchanges_again<D: Vault>() {
    let h = harness();
    let (keeper, store) = keeper::<D>(&h);
    let first = keeper.connection(&ConnectionRequest::new(GOOGLE)).unwrap();
    let forced = keeper
        .connection(&ConnectionRequest::new(GOOGLE).force_refresh())
        .unwrap();
    assert_ne!(forced.token, first.token);
    assert_eq!(exchanges(&h), 2);
    // Replaced, not added.
    let stored = session_json(&store.stored().unwrap());
    assert_eq!(
        stored["connectionTokenSets"],
        json!([{
            "accessToken": forced.token.secret(),
            "expiresAt": forced.expires_at.as_secs(),
            "scope": "openid email https://www.googleapis.com/auth/calendar.readonly",
            "connection": GOOGLE,
        }])
    );
}

/// A stored entry past its expiry (as another instance, or the SDK, left
/// it) is exchanged again; one within the refresh buffer too.
fn an_expired_connection_token_is_exchanged_again<D: Vault>() {
    let h = harness();
    let (keeper, store) = keeper::<D>(&h);
    let first = keeper.connection(&ConnectionRequest::new(GITHUB)).unwrap();
    // Expired, then within a 60 s refresh buffer.
    for (expires_at, buffer) in [(now_secs() - 10, 0), (now_secs() + 5, 60)] {
        let aged = edit(&store.stored().unwrap(), |json| {
            json["connectionTokenSets"][0]["expiresAt"] = json!(expires_at);
        });
        let store = SharedStore::with_session(aged);
        let config = config_builder(&h, &CONFIDENTIAL_POST)
            .refresh_buffer(Duration::from_secs(buffer))
            .build()
            .unwrap();
        let keeper = D::build(config, store.clone(), None);
        h.reset_stats();
        let renewed = keeper.connection(&ConnectionRequest::new(GITHUB)).unwrap();
        assert_ne!(renewed.token, first.token);
        assert!(renewed.expires_at.as_secs() > now_secs() + 28_000);
        assert_eq!(exchanges(&h), 1, "expiresAt {expires_at}");
        let stored = session_json(&store.stored().unwrap());
        assert_eq!(
            stored["connectionTokenSets"][0]["accessToken"],
            renewed.token.secret()
        );
    }
    drop(keeper);
}

fn unknown_connection_is_a_typed_error<D: Vault>() {
    let h = harness();
    let (keeper, store) = keeper::<D>(&h);
    let before = store.stored().unwrap().to_json();
    let error = keeper
        .connection(&ConnectionRequest::new("myspace"))
        .unwrap_err();
    assert_eq!(error.code, "failed_to_exchange_refresh_token");
    assert_eq!(error.server_error(), Some("invalid_request"));
    assert!(matches!(
        error.core.as_deref(),
        Some(tokenkeeper::Error::FailedToExchangeRefreshToken(_))
    ));
    assert!(!error.requires_login);
    assert_eq!(exchanges(&h), 1);
    // Nothing stored changed; the user's session still works.
    assert_eq!(store.stored().unwrap().to_json(), before);
    keeper.get(&TokenRequest::new()).unwrap();
}

/// A refresh token the server no longer honours (rotated away by a
/// refresh, or never issued) is refused with `invalid_grant`, typed as
/// `failed_to_exchange_refresh_token`; the cached entry it can no longer
/// renew is dropped from the session, as the SDK does.
fn a_rotated_or_invalid_refresh_token_is_a_typed_error_and_drops_the_entry<D: Vault>() {
    let h = harness();
    let (keeper, store) = keeper::<D>(&h);
    keeper.connection(&ConnectionRequest::new(GOOGLE)).unwrap();
    keeper.connection(&ConnectionRequest::new(GITHUB)).unwrap();
    let old = store.stored().unwrap();
    // A refresh rotates the refresh token: the old one is consumed.
    keeper.get(&TokenRequest::new().force_refresh()).unwrap();
    assert_ne!(
        refresh_token(&keeper.session().unwrap()),
        refresh_token(&old)
    );

    for (name, session) in [
        ("rotated", old.clone()),
        ("bogus", with_refresh_token(&old, "not-a-refresh-token")),
    ] {
        // The session as it was, its google entry expired.
        let session = edit(&session, |json| {
            json["connectionTokenSets"][0]["expiresAt"] = json!(now_secs() - 10);
        });
        let store = SharedStore::with_session(session);
        let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
        h.reset_stats();
        let error = keeper
            .connection(&ConnectionRequest::new(GOOGLE))
            .unwrap_err();
        assert_eq!(error.code, "failed_to_exchange_refresh_token", "{name}");
        assert_eq!(error.server_error(), Some("invalid_grant"), "{name}");
        assert_eq!(exchanges(&h), 1, "{name}");
        let stored = session_json(&store.stored().unwrap());
        let sets = stored["connectionTokenSets"].as_array().unwrap();
        assert_eq!(sets.len(), 1, "{name}: the dead entry is dropped");
        assert_eq!(sets[0]["connection"], GITHUB, "{name}");
    }
}

/// 16 callers at once for a connection not cached: one exchange reaches
/// the server (made slow, so they all overlap it), all get its token.
fn sixteen_concurrent_callers_make_one_exchange<D: Vault>() {
    let h = harness();
    let (keeper, _store) = keeper::<D>(&h);
    let delay = h
        .agent()
        .post(format!("{}/__harness/delay_next", h.control_url()))
        .header("content-type", "application/json")
        .send(json!({"ms": 300, "times": 1}).to_string())
        .expect("delay_next");
    assert_eq!(delay.status().as_u16(), 200);

    let answers = keeper.connections_at_once(16, GITHUB);
    let tokens: Vec<_> = answers
        .into_iter()
        .map(|a| a.expect("every caller gets the token").token)
        .collect();
    assert_eq!(tokens.len(), 16);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(exchanges(&h), 1, "exactly one exchange for 16 callers");
}

/// What Auth0 checks of the caller: the refresh token must be this
/// client's (`invalid_grant` for another client's), and the client must be
/// allowed the grant, which a public client is not (`unauthorized_client`).
fn another_clients_refresh_token_or_a_public_client_is_refused<D: Vault>() {
    let h = harness();
    let (keeper, store) = keeper::<D>(&h);
    let basic = logged_in::<D>(&h, &CONFIDENTIAL_BASIC);
    let foreign = with_refresh_token(&store.stored().unwrap(), &refresh_token(&basic));
    let other = D::build(
        config(&h, &CONFIDENTIAL_POST),
        SharedStore::with_session(foreign),
        None,
    );
    let error = other
        .connection(&ConnectionRequest::new(GITHUB))
        .unwrap_err();
    assert_eq!(error.code, "failed_to_exchange_refresh_token");
    assert_eq!(error.server_error(), Some("invalid_grant"));
    // The session's own refresh token still works.
    keeper.connection(&ConnectionRequest::new(GITHUB)).unwrap();

    let public = logged_in::<D>(&h, &PUBLIC_PKCE);
    let keeper = D::build(
        config(&h, &PUBLIC_PKCE),
        SharedStore::with_session(public),
        None,
    );
    let error = keeper
        .connection(&ConnectionRequest::new(GITHUB))
        .unwrap_err();
    assert_eq!(error.code, "failed_to_exchange_refresh_token");
    assert_eq!(
        error.server_error(),
        Some("unauthorized_client"),
        "{error:?}"
    );
}
