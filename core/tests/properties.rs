//! Property tests: the manager's invariants over random event sequences,
//! scope algebra laws, and form encoding round trips.

#[path = "support/model.rs"]
mod model;
mod support;

use proptest::prelude::*;
use support::FakeServer;
use tokenkeeper::__private::{form, scope};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{
    Action, ClientSecret, Completion, Config, HttpResponse, OutgoingRequest, SeededEntropy,
    Session, TokenManager, TokenRequest, UnixTime,
};

const AUDIENCES: [Option<&str>; 4] = [
    None,
    Some("https://api1.example.com"),
    Some("https://api2.example.com"),
    Some("https://api2.example.com/"),
];
const SCOPES: [Option<&str>; 3] = [None, Some("read:data"), Some("read:data write:data")];

#[derive(Debug, Clone)]
enum Reply {
    Rotate,
    NoRotate,
    InvalidGrant,
    ServerError,
    Html,
    Malformed,
    Expired,
}

#[derive(Debug, Clone)]
enum Op {
    Get {
        audience: usize,
        scope: usize,
        force: bool,
    },
    /// Answer the oldest outstanding request.
    Respond(Reply),
    /// The oldest outstanding request never reached the server.
    TransportError,
    Cancel,
    Advance(u64),
    Rewind(u64),
    Timeout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..AUDIENCES.len(), 0..SCOPES.len(), any::<bool>())
            .prop_map(|(audience, scope, force)| Op::Get { audience, scope, force }),
        4 => prop_oneof![
            3 => Just(Reply::Rotate),
            1 => Just(Reply::NoRotate),
            1 => Just(Reply::InvalidGrant),
            1 => Just(Reply::ServerError),
            1 => Just(Reply::Html),
            1 => Just(Reply::Malformed),
            1 => Just(Reply::Expired),
        ].prop_map(Op::Respond),
        1 => Just(Op::TransportError),
        1 => Just(Op::Cancel),
        2 => (1u64..5000).prop_map(Op::Advance),
        1 => (1u64..100).prop_map(Op::Rewind),
        1 => Just(Op::Timeout),
    ]
}

fn body_for(reply: &Reply, server: &mut FakeServer, out: &OutgoingRequest) -> HttpResponse {
    match reply {
        Reply::Rotate | Reply::NoRotate | Reply::Expired => {
            server.rotate = matches!(reply, Reply::Rotate);
            server.expires_in = if matches!(reply, Reply::Expired) {
                1
            } else {
                600
            };
            server.handle(&out.request)
        }
        Reply::InvalidGrant => HttpResponse::new(400, r#"{"error":"invalid_grant"}"#),
        Reply::ServerError => HttpResponse::new(500, r#"{"error":"server_error"}"#),
        Reply::Html => HttpResponse::new(502, "<html>bad gateway</html>"),
        Reply::Malformed => HttpResponse::new(200, r#"{"access_token":5}"#),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// After every step: no ready token is expired at `now`; at most one
    /// refresh in flight; no refresh request carries a refresh token the
    /// server has seen spent; the stored refresh token is the newest one
    /// the client received.
    #[test]
    fn invariants_hold(ops in proptest::collection::vec(op(), 1..80)) {
        let config = Config::builder("https://as.example/oauth/token", "c")
            .client_auth(ClientAuth::SecretPost(ClientSecret::new("s")))
            .max_cache_entries(2)
            .lease(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        let mut m = TokenManager::new(config, SeededEntropy::new(3));
        m.set_session(support::expired_session(1000));
        let mut server = FakeServer::default();
        let mut now = 900u64;
        let mut outstanding: Vec<OutgoingRequest> = Vec::new();
        let mut newest_received = Some("rt-0".to_string());
        for op in ops {
            match op {
                Op::Get { audience, scope, force } => {
                    let mut req = TokenRequest::new();
                    req.audience = AUDIENCES[audience];
                    req.scope = SCOPES[scope];
                    req.force_refresh = force;
                    match m.get_access_token(&req, UnixTime::from_secs(now)) {
                        Action::Ready(token) => {
                            prop_assert!(token.expires_at > UnixTime::from_secs(now), "expired token served");
                        }
                        Action::Send(out) => {
                            let sent = support::field(&out.request, "refresh_token").unwrap();
                            prop_assert!(!server.spent.contains(&sent), "spent refresh token sent");
                            prop_assert_eq!(Some(sent), newest_received.clone());
                            outstanding.push(out);
                        }
                        _ => {}
                    }
                }
                Op::Respond(reply) => {
                    if outstanding.is_empty() { continue; }
                    let out = outstanding.remove(0);
                    let response = body_for(&reply, &mut server, &out);
                    let rotated_to = serde_json::from_slice::<serde_json::Value>(&response.body)
                        .ok()
                        .and_then(|v| v.get("refresh_token").and_then(|r| r.as_str()).map(String::from));
                    let stored_before = m.session().unwrap().token_set().refresh_token.as_ref().map(|r| r.secret().to_string());
                    let json_before = m.session().map(Session::to_json);
                    let failed = match m.handle_response(out.id, response, UnixTime::from_secs(now)) {
                        Completion::Ready(token) => {
                            prop_assert!(token.expires_at > UnixTime::from_secs(now));
                            None
                        }
                        Completion::Failed(error) => Some(error),
                        _ => None,
                    };
                    let stored_after = m.session().unwrap().token_set().refresh_token.as_ref().map(|r| r.secret().to_string());
                    // Invariant 6: bad input leaves the whole session as it
                    // was, except what the answer proved (a rotated refresh
                    // token, a dead grant); the generation may move.
                    if let Some(error) = failed {
                        let rt_proved = rotated_to.is_some() && stored_after == rotated_to;
                        let grant_dead = error
                            .server_error()
                            .is_some_and(|s| s.error == "invalid_grant");
                        let json_after = m.session().map(Session::to_json);
                        prop_assert_eq!(
                            model::normalized(json_before.as_deref(), rt_proved, grant_dead),
                            model::normalized(json_after.as_deref(), rt_proved, grant_dead),
                            "{} changed the session beyond what it proved", error.code()
                        );
                    }
                    if let Some(new) = rotated_to {
                        // Applied (or refused because the session moved on).
                        if stored_after.as_deref() == Some(new.as_str()) {
                            newest_received = Some(new);
                        } else {
                            prop_assert_eq!(&stored_after, &stored_before);
                        }
                    } else {
                        prop_assert_eq!(&stored_after, &stored_before, "refresh token changed without a new one");
                    }
                    prop_assert_eq!(stored_after, newest_received.clone(), "newest refresh token lost");
                }
                Op::TransportError => {
                    if outstanding.is_empty() { continue; }
                    let out = outstanding.remove(0);
                    let before = m.session().map(Session::to_json);
                    let _ = m.handle_transport_error(out.id, UnixTime::from_secs(now));
                    let after = m.session().map(Session::to_json);
                    prop_assert_eq!(
                        model::normalized(before.as_deref(), false, false),
                        model::normalized(after.as_deref(), false, false),
                        "a transport error changed the session"
                    );
                }
                Op::Cancel => {
                    if outstanding.is_empty() { continue; }
                    let out = outstanding.remove(0);
                    let before = m.session().map(Session::to_json);
                    let _ = m.cancel(out.id);
                    let after = m.session().map(Session::to_json);
                    prop_assert_eq!(
                        model::normalized(before.as_deref(), false, false),
                        model::normalized(after.as_deref(), false, false),
                        "a cancel changed the session"
                    );
                }
                Op::Advance(s) => now += s,
                Op::Rewind(s) => now = now.saturating_sub(s),
                Op::Timeout => {
                    m.handle_timeout(UnixTime::from_secs(now));
                    // A lease runs out when its caller vanished: model the
                    // request as lost (a late answer to it could meet a newer
                    // refresh with the same token, which the lease trades
                    // for liveness; a unit test covers late answers).
                    outstanding.retain(|out| m.is_in_flight(out.id));
                }
            }
            prop_assert!(m.in_flight() <= 1, "more than one refresh in flight");
            let in_flight = m.in_flight_refresh_tokens();
            prop_assert!(in_flight.len() <= 1);
            prop_assert_eq!(server.replays, 0);
            while m.poll_event().is_some() {}
        }
    }

    /// Scope merging is a union that keeps order and drops duplicates.
    #[test]
    fn scope_merge_laws(a in "[a-c ]{0,12}", b in "[a-d ]{0,12}") {
        let merged = scope::merge(&a, &b);
        prop_assert!(scope::covers(&merged, &a));
        prop_assert!(scope::covers(&merged, &b));
        // Nothing new appears.
        for t in scope::tokens(&merged) {
            prop_assert!(scope::contains(&a, t) || scope::contains(&b, t));
        }
        // No duplicates, single spaces.
        prop_assert_eq!(scope::count(&merged), scope::tokens(&merged).count());
        prop_assert!(!merged.contains("  ") && !merged.starts_with(' ') && !merged.ends_with(' '));
        // Idempotent and normalising.
        prop_assert_eq!(scope::merge(&merged, &merged), merged.clone());
        prop_assert_eq!(scope::normalize(&merged), merged.clone());
        prop_assert!(scope::same_set(&scope::merge(&a, &b), &scope::merge(&b, &a)));
        // Subset: a ⊆ merge(a, b); missing(a, b) is exactly a \\ b.
        let missing = scope::missing(&a, &b);
        for t in scope::tokens(&a) {
            prop_assert_eq!(scope::contains(&missing, t), !scope::contains(&b, t));
        }
    }

    /// Form encoding round-trips any string, and its output only uses the
    /// WHATWG-safe alphabet.
    #[test]
    fn form_round_trip(s in any::<String>()) {
        let encoded = form::encode(&s);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"*-._+%".contains(&b)));
        prop_assert_eq!(form::decode(&encoded), s.clone());
        let mut body = form::FormBody::new();
        body.append(&s, &s);
        let pairs = form::parse(&body.finish());
        if !s.is_empty() || !pairs.is_empty() {
            prop_assert_eq!(pairs, vec![(s.clone(), s)]);
        }
    }

    /// Parsing never panics on arbitrary input, and a session read back
    /// from storage survives a round trip.
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), status in 100u16..600) {
        let response = HttpResponse::new(status, bytes.clone());
        let _ = tokenkeeper::TokenResponse::parse(&response, &Default::default());
        if let Ok(session) = Session::from_json(&bytes, &Default::default()) {
            let again = Session::from_json(session.to_json().as_bytes(), &Default::default()).unwrap();
            prop_assert_eq!(again.to_json(), session.to_json());
        }
        let _ = form::parse(&String::from_utf8_lossy(&bytes));
    }
}
