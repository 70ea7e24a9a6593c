//! Smoke tests of the integration harness itself (node-oidc-provider 9.13.3,
//! the resource server and the control API), through raw HTTP only.
//!
//! Provider facts these tests pin down (they are what the tokenkeeper tests
//! build on):
//! * refresh tokens rotate on every use; replaying a rotated (consumed)
//!   refresh token fails with `invalid_grant` AND revokes the whole grant, so
//!   the newest refresh token of the family is dead afterwards too;
//! * one refresh token from a login with `resource=api1&resource=api2` serves
//!   refreshes for either resource (`resource=` on the refresh request picks
//!   the audience); an unknown or ungranted resource gives `invalid_target`;
//! * with `HARNESS_DPOP_NONCE=required`, a DPoP proof without nonce gets
//!   `400 use_dpop_nonce` with a `DPoP-Nonce` header;
//! * RFC 8693 token exchange is not built into oidc-provider; the harness
//!   registers a minimal grant handler (see `harness/token_exchange.mjs`)
//!   that checks the subject token's audience and client;
//! * the harness is at least as strict as a real server: PKCE for every
//!   client, no resource filled in for a token request that names none, and
//!   a resource server that refuses every bad proof or token (each refusal
//!   is pinned below).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokenkeeper_integration::{
    API1, API2, AuthorizationRequest, CONFIDENTIAL_BASIC, CONFIDENTIAL_POST, CannedResponse,
    DpopKey, Harness, HarnessOptions, M2M, PKJWT, PUBLIC_PKCE, TOKEN_EXCHANGE_GRANT, TestClient,
    jwt, pkce_login, resource_request, token_request,
};

const LOGIN_SCOPE: &str = "openid profile email offline_access read:data write:data";

fn refresh(
    harness: &Harness,
    client: &TestClient,
    refresh_token: &str,
    resource: Option<&str>,
) -> tokenkeeper_integration::HttpResponse {
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(resource) = resource {
        params.push(("resource", resource));
    }
    token_request(harness, client, &params, &[])
}

fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{name}` in {value}"))
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[test]
fn server_starts_serves_discovery_and_stops() {
    let started = Instant::now();
    let harness = Harness::start(HarnessOptions::default());
    eprintln!("harness ready in {:?}", started.elapsed());

    let discovery = harness.discovery();
    assert_eq!(str_field(&discovery, "issuer"), harness.issuer());
    assert_eq!(
        str_field(&discovery, "token_endpoint"),
        harness.token_endpoint()
    );
    let grants: Vec<&str> = discovery["grant_types_supported"]
        .as_array()
        .expect("grant_types_supported")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for grant in [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        TOKEN_EXCHANGE_GRANT,
    ] {
        assert!(grants.contains(&grant), "{grant} missing from {grants:?}");
    }
    assert!(
        discovery["dpop_signing_alg_values_supported"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "ES256"))
    );
    assert!(discovery["introspection_endpoint"].is_string());
    assert!(discovery["revocation_endpoint"].is_string());

    let ports = [
        port_of(harness.issuer()),
        port_of(harness.resource_server()),
        port_of(harness.control_url()),
    ];
    assert_eq!(
        ports
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "three distinct ports: {ports:?}"
    );
    for port in ports {
        TcpStream::connect(("127.0.0.1", port)).expect("port accepts connections while running");
    }
    let pid = harness.pid();
    assert!(
        harness
            .server_log()
            .contains("[harness] provider http://127.0.0.1:")
    );

    drop(harness);

    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "node process {pid} still exists after drop"
    );
    for port in ports {
        assert!(
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
                .is_err(),
            "port {port} still accepts connections after drop"
        );
    }
}

#[test]
fn pkce_login_returns_refresh_token_and_jwt_access_token() {
    let harness = Harness::start(HarnessOptions::default());
    let tokens = pkce_login(&harness, &PUBLIC_PKCE, LOGIN_SCOPE, &[API1, API2]);

    assert_eq!(str_field(&tokens, "token_type"), "Bearer");
    assert_eq!(tokens["expires_in"], 60);
    assert!(!str_field(&tokens, "refresh_token").is_empty());
    assert!(jwt::is_jwt(str_field(&tokens, "id_token")));

    let access_token = str_field(&tokens, "access_token");
    assert!(
        jwt::is_jwt(access_token),
        "access token is not a JWT: {access_token}"
    );
    assert_eq!(jwt::header(access_token)["typ"], "at+jwt");
    let claims = jwt::claims(access_token);
    assert_eq!(claims["iss"], harness.issuer());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], PUBLIC_PKCE.id);
    // with several granted resources and no `resource` at the code exchange,
    // the harness's defaultResource picks the first one
    assert_eq!(jwt::audiences(access_token), [API1]);
    assert_eq!(claims["scope"], "read:data write:data");
    assert!(
        claims.get("cnf").is_none(),
        "Bearer token must not be bound"
    );

    let stats = harness.stats();
    assert_eq!(stats.logins, 1);
    assert_eq!(stats.grant("authorization_code"), 1);
}

#[test]
fn code_exchange_works_with_each_client_auth_method() {
    let harness = Harness::start(HarnessOptions::default());
    for client in [CONFIDENTIAL_BASIC, CONFIDENTIAL_POST, PKJWT] {
        let tokens = pkce_login(&harness, &client, LOGIN_SCOPE, &[API1]);
        let access_token = str_field(&tokens, "access_token");
        assert_eq!(jwt::claims(access_token)["client_id"], client.id);
        assert!(
            tokens["refresh_token"].is_string(),
            "{}: {tokens}",
            client.id
        );
        // and the refresh token works with the same authentication method
        let refreshed = refresh(&harness, &client, str_field(&tokens, "refresh_token"), None);
        assert_eq!(refreshed.status, 200, "{}: {}", client.id, refreshed.body);
    }
    let stats = harness.stats();
    let schemes: Vec<Option<&str>> = stats
        .recent_token_requests
        .iter()
        .map(|r| r["authorization_scheme"].as_str())
        .collect();
    assert!(schemes.contains(&Some("Basic")), "{schemes:?}");
    let pkjwt_request = stats
        .recent_token_requests
        .iter()
        .find(|r| r["params"]["client_id"] == PKJWT.id)
        .expect("pkjwt request recorded");
    assert_eq!(pkjwt_request["params"]["client_assertion"], "[redacted]");
}

/// Rotation: every refresh returns a new refresh token. Replaying the old one
/// is `invalid_grant`, and oidc-provider then revokes the whole grant
/// (`refresh_token.js`: a consumed token destroys itself and revokes its
/// grantId), so the newest refresh token is dead as well.
#[test]
fn refresh_rotation_and_replay_revokes_the_family() {
    let harness = Harness::start(HarnessOptions::default());
    let tokens = pkce_login(&harness, &CONFIDENTIAL_BASIC, LOGIN_SCOPE, &[API1, API2]);
    let rt0 = str_field(&tokens, "refresh_token").to_owned();

    let first = refresh(&harness, &CONFIDENTIAL_BASIC, &rt0, None);
    assert_eq!(first.status, 200, "{}", first.body);
    let rt1 = str_field(&first.json(), "refresh_token").to_owned();
    assert_ne!(rt0, rt1, "refresh token must rotate");

    let replay = refresh(&harness, &CONFIDENTIAL_BASIC, &rt0, None);
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(replay.error().as_deref(), Some("invalid_grant"));

    let after_replay = refresh(&harness, &CONFIDENTIAL_BASIC, &rt1, None);
    assert_eq!(after_replay.status, 400, "{}", after_replay.body);
    assert_eq!(
        after_replay.error().as_deref(),
        Some("invalid_grant"),
        "the replay revoked the grant, so the rotated token is dead too"
    );
    assert!(harness.wait_for_log("refresh token already used", Duration::from_secs(5)));
}

#[test]
fn one_refresh_token_serves_both_resources() {
    let harness = Harness::start(HarnessOptions::default());
    let tokens = pkce_login(&harness, &PUBLIC_PKCE, LOGIN_SCOPE, &[API1, API2]);
    harness.reset_stats();

    let r1 = refresh(
        &harness,
        &PUBLIC_PKCE,
        str_field(&tokens, "refresh_token"),
        Some(API1),
    );
    assert_eq!(r1.status, 200, "{}", r1.body);
    let r1 = r1.json();
    let at1 = str_field(&r1, "access_token").to_owned();
    assert_eq!(jwt::audiences(&at1), [API1]);

    let r2 = refresh(
        &harness,
        &PUBLIC_PKCE,
        str_field(&r1, "refresh_token"),
        Some(API2),
    );
    assert_eq!(r2.status, 200, "{}", r2.body);
    let r2 = r2.json();
    let at2 = str_field(&r2, "access_token").to_owned();
    assert_eq!(jwt::audiences(&at2), [API2]);
    assert_ne!(r1["refresh_token"], r2["refresh_token"]);

    // Bearer calls: the api1 token works at api1 only
    let ok = resource_request(
        &harness,
        "GET",
        "/api1/data",
        Some(&format!("Bearer {at1}")),
        None,
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let body = ok.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["aud"], API1);
    assert_eq!(body["scope"], "read:data write:data");

    let wrong_aud = resource_request(
        &harness,
        "GET",
        "/api2/data",
        Some(&format!("Bearer {at1}")),
        None,
    );
    assert_eq!(wrong_aud.status, 401, "{}", wrong_aud.body);
    let challenge = wrong_aud
        .header("www-authenticate")
        .expect("WWW-Authenticate");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );

    let post = resource_request(
        &harness,
        "POST",
        "/api2/data",
        Some(&format!("Bearer {at2}")),
        None,
    );
    assert_eq!(post.status, 200, "{}", post.body);
    assert_eq!(post.json()["aud"], API2);

    let no_token = resource_request(&harness, "GET", "/api1/data", None, None);
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.header("www-authenticate"), Some("Bearer"));

    let stats = harness.stats();
    assert_eq!(stats.grant("refresh_token"), 2, "{stats:?}");
    assert_eq!(stats.token_requests_total, 2);
    assert_eq!(stats.resource_requests, 4);
    let resources: Vec<&Value> = stats
        .recent_token_requests
        .iter()
        .map(|r| &r["params"]["resource"])
        .collect();
    assert_eq!(resources, [API1, API2]);
}

/// `invalid_target` for resources the refresh token cannot serve.
///
/// Surprise pinned here: oidc-provider rotates (consumes) the refresh token
/// BEFORE it resolves the requested resource, so a refresh that fails with
/// `invalid_target` has burnt the refresh token without returning its
/// successor; using it again is a replay (`invalid_grant`, grant revoked).
#[test]
fn unknown_or_ungranted_resource_is_invalid_target_and_burns_the_refresh_token() {
    let harness = Harness::start(HarnessOptions::default());

    let tokens = pkce_login(&harness, &CONFIDENTIAL_POST, LOGIN_SCOPE, &[API1]);
    let rt = str_field(&tokens, "refresh_token");
    let unknown = refresh(
        &harness,
        &CONFIDENTIAL_POST,
        rt,
        Some("https://api3.example.com"),
    );
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(unknown.error().as_deref(), Some("invalid_target"));
    let burnt = refresh(&harness, &CONFIDENTIAL_POST, rt, Some(API1));
    assert_eq!(burnt.status, 400, "{}", burnt.body);
    assert_eq!(burnt.error().as_deref(), Some("invalid_grant"));
    assert!(harness.wait_for_log("refresh token already used", Duration::from_secs(5)));

    // api2 exists but was not granted at this login
    let tokens = pkce_login(&harness, &CONFIDENTIAL_POST, LOGIN_SCOPE, &[API1]);
    let ungranted = refresh(
        &harness,
        &CONFIDENTIAL_POST,
        str_field(&tokens, "refresh_token"),
        Some(API2),
    );
    assert_eq!(ungranted.status, 400, "{}", ungranted.body);
    assert_eq!(ungranted.error().as_deref(), Some("invalid_target"));

    // resource indicators are compared as exact strings: a trailing slash is
    // another (unknown) resource
    let slash = token_request(
        &harness,
        &M2M,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://api1.example.com/"),
        ],
        &[],
    );
    assert_eq!(
        slash.error().as_deref(),
        Some("invalid_target"),
        "{}",
        slash.body
    );
}

#[test]
fn client_credentials_for_m2m() {
    let harness = Harness::start(HarnessOptions::default());
    let response = token_request(
        &harness,
        &M2M,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:data"),
            ("resource", API1),
        ],
        &[],
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert!(body.get("refresh_token").is_none());
    let at = str_field(&body, "access_token");
    let claims = jwt::claims(at);
    assert_eq!(claims["sub"], M2M.id);
    assert_eq!(claims["client_id"], M2M.id);
    assert_eq!(claims["scope"], "read:data");
    assert_eq!(jwt::audiences(at), [API1]);

    let call = resource_request(
        &harness,
        "GET",
        "/api1/data",
        Some(&format!("Bearer {at}")),
        None,
    );
    assert_eq!(call.status, 200, "{}", call.body);

    // no resource: an opaque token (only good for introspection)
    let opaque = token_request(&harness, &M2M, &[("grant_type", "client_credentials")], &[]);
    assert_eq!(opaque.status, 200, "{}", opaque.body);
    assert!(!jwt::is_jwt(str_field(&opaque.json(), "access_token")));

    // m2m may not use refresh tokens
    let refused = refresh(&harness, &M2M, "whatever", None);
    assert_eq!(refused.status, 400, "{}", refused.body);

    // wrong secret
    let bad = TestClient {
        secret: Some("nope"),
        ..M2M
    };
    let unauthorized = token_request(&harness, &bad, &[("grant_type", "client_credentials")], &[]);
    assert_eq!(unauthorized.status, 401, "{}", unauthorized.body);
    assert_eq!(unauthorized.error().as_deref(), Some("invalid_client"));
}

#[test]
fn fail_next_serves_a_canned_html_500_once() {
    let harness = Harness::start(HarnessOptions::default());
    let html = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>";
    harness.fail_next(
        CannedResponse::new(500, "text/html; charset=utf-8", html).header("retry-after", "1"),
    );

    let params = [("grant_type", "client_credentials"), ("resource", API1)];
    let failed = token_request(&harness, &M2M, &params, &[]);
    assert_eq!(failed.status, 500);
    assert_eq!(
        failed.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(failed.header("retry-after"), Some("1"));
    assert_eq!(failed.body, html);
    assert!(failed.try_json().is_none());

    let next = token_request(&harness, &M2M, &params, &[]);
    assert_eq!(
        next.status, 200,
        "only the next request fails: {}",
        next.body
    );

    harness.fail_next(CannedResponse::new(503, "text/plain", "busy").times(2));
    for _ in 0..2 {
        assert_eq!(token_request(&harness, &M2M, &params, &[]).status, 503);
    }
    assert_eq!(token_request(&harness, &M2M, &params, &[]).status, 200);

    let stats = harness.stats();
    assert_eq!(stats.token_requests_total, 5);
    assert_eq!(stats.grant("client_credentials"), 5);
    assert_eq!(stats.token_responses_by_status.get("500"), Some(&1));
    assert_eq!(stats.token_responses_by_status.get("503"), Some(&2));
    assert_eq!(stats.token_responses_by_status.get("200"), Some(&2));
}

#[test]
fn dpop_nonces_at_token_endpoint_and_resource_server() {
    let harness = Harness::start(HarnessOptions {
        dpop_nonce_required: true,
        access_token_ttl_secs: 30,
        rs_nonce_required: true,
    });
    let key = DpopKey::generate();
    let params = [
        ("grant_type", "client_credentials"),
        ("scope", "read:data"),
        ("resource", API1),
    ];

    // 1. token endpoint: no nonce -> 400 use_dpop_nonce + DPoP-Nonce
    let proof = key.proof("POST", harness.token_endpoint(), None, None);
    let challenged = token_request(&harness, &M2M, &params, &[("DPoP", &proof)]);
    assert_eq!(challenged.status, 400, "{}", challenged.body);
    assert_eq!(challenged.error().as_deref(), Some("use_dpop_nonce"));
    let nonce = challenged
        .header("dpop-nonce")
        .expect("DPoP-Nonce header")
        .to_owned();

    // 2. retry with the nonce -> DPoP-bound token
    let proof = key.proof("POST", harness.token_endpoint(), Some(&nonce), None);
    let issued = token_request(&harness, &M2M, &params, &[("DPoP", &proof)]);
    assert_eq!(issued.status, 200, "{}", issued.body);
    let body = issued.json();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["expires_in"], 30, "HARNESS_AT_TTL applies");
    let at = str_field(&body, "access_token").to_owned();
    assert_eq!(jwt::claims(&at)["cnf"]["jkt"], key.thumbprint());

    // a Bearer request without DPoP is not challenged
    let bearer = token_request(&harness, &M2M, &params, &[]);
    assert_eq!(bearer.status, 200, "{}", bearer.body);

    // 3. resource server: no nonce -> 401 use_dpop_nonce + DPoP-Nonce
    let url = harness.resource_url("/api1/data");
    let authz = format!("DPoP {at}");
    let proof = key.proof("GET", &url, None, Some(&at));
    let rs_challenge = resource_request(&harness, "GET", "/api1/data", Some(&authz), Some(&proof));
    assert_eq!(rs_challenge.status, 401, "{}", rs_challenge.body);
    let www = rs_challenge
        .header("www-authenticate")
        .expect("WWW-Authenticate");
    assert!(www.starts_with("DPoP error=\"use_dpop_nonce\""), "{www}");
    let rs_nonce = rs_challenge
        .header("dpop-nonce")
        .expect("RS DPoP-Nonce")
        .to_owned();

    // 4. with the RS nonce -> 200
    let proof = key.proof("GET", &url, Some(&rs_nonce), Some(&at));
    let ok = resource_request(&harness, "GET", "/api1/data", Some(&authz), Some(&proof));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["token_type"], "DPoP");

    // replayed proof (same jti) -> 401
    let replay = resource_request(&harness, "GET", "/api1/data", Some(&authz), Some(&proof));
    assert_eq!(replay.status, 401, "{}", replay.body);

    // proof for another method / wrong ath / other key -> 401
    let wrong_htm = key.proof("POST", &url, Some(&rs_nonce), Some(&at));
    assert_eq!(
        resource_request(
            &harness,
            "GET",
            "/api1/data",
            Some(&authz),
            Some(&wrong_htm)
        )
        .status,
        401
    );
    let wrong_ath = key.proof("GET", &url, Some(&rs_nonce), Some("another-token"));
    assert_eq!(
        resource_request(
            &harness,
            "GET",
            "/api1/data",
            Some(&authz),
            Some(&wrong_ath)
        )
        .status,
        401
    );
    let other_key = DpopKey::generate().proof("GET", &url, Some(&rs_nonce), Some(&at));
    assert_eq!(
        resource_request(
            &harness,
            "GET",
            "/api1/data",
            Some(&authz),
            Some(&other_key)
        )
        .status,
        401
    );

    // the DPoP-bound token presented as Bearer is rejected
    let as_bearer = resource_request(
        &harness,
        "GET",
        "/api1/data",
        Some(&format!("Bearer {at}")),
        None,
    );
    assert_eq!(as_bearer.status, 401, "{}", as_bearer.body);
    let www = as_bearer
        .header("www-authenticate")
        .expect("WWW-Authenticate");
    assert!(www.starts_with("Bearer error=\"invalid_token\""), "{www}");

    // a rotated RS nonce makes the old one stale
    let fresh = harness.rotate_rs_nonce();
    assert_ne!(fresh, rs_nonce);
    let proof = key.proof("GET", &url, Some(&rs_nonce), Some(&at));
    let stale = resource_request(&harness, "GET", "/api1/data", Some(&authz), Some(&proof));
    assert_eq!(stale.status, 401);
    assert_eq!(stale.header("dpop-nonce"), Some(fresh.as_str()));

    let stats = harness.stats();
    assert_eq!(stats.dpop_nonce_challenges, 1, "{stats:?}");
    assert_eq!(stats.resource_nonce_challenges, 2, "{stats:?}");
    assert_eq!(stats.grant("client_credentials"), 3);
}

#[test]
fn token_exchange_issues_a_token_for_another_resource() {
    let harness = Harness::start(HarnessOptions::default());
    let tokens = pkce_login(&harness, &CONFIDENTIAL_POST, LOGIN_SCOPE, &[API1]);
    let subject = str_field(&tokens, "access_token");

    let exchange = |subject_token: &str, resource: &str| {
        token_request(
            &harness,
            &CONFIDENTIAL_BASIC,
            &[
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", subject_token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("resource", resource),
            ],
            &[],
        )
    };

    let response = exchange(subject, API2);
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");
    let at = str_field(&body, "access_token");
    let claims = jwt::claims(at);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["act"]["sub"], CONFIDENTIAL_BASIC.id);
    assert_eq!(jwt::audiences(at), [API2]);
    let call = resource_request(
        &harness,
        "GET",
        "/api2/data",
        Some(&format!("Bearer {at}")),
        None,
    );
    assert_eq!(call.status, 200, "{}", call.body);

    let forged = format!("{subject}x");
    assert_eq!(
        exchange(&forged, API2).error().as_deref(),
        Some("invalid_grant")
    );
    assert_eq!(
        exchange(subject, "https://api3.example.com")
            .error()
            .as_deref(),
        Some("invalid_target")
    );
    // public client is not allowed this grant
    let public = token_request(
        &harness,
        &PUBLIC_PKCE,
        &[
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("subject_token", subject),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("resource", API2),
        ],
        &[],
    );
    assert_eq!(public.status, 400, "{}", public.body);
}

/// Without any nonce requirement: a public client's code exchange with a DPoP
/// proof gives a DPoP-bound access token AND a refresh token bound to the
/// same key (oidc-provider binds public clients' refresh tokens), which then
/// cannot be used without a proof of that key.
#[test]
fn dpop_without_nonces_binds_public_client_refresh_tokens() {
    let harness = Harness::start(HarnessOptions {
        dpop_nonce_required: false,
        access_token_ttl_secs: 60,
        rs_nonce_required: false,
    });
    let key = DpopKey::generate();
    let request = AuthorizationRequest::new(&PUBLIC_PKCE, LOGIN_SCOPE, &[API1, API2]);
    let callback = harness.login_as(&request.url(&harness), "bob");
    let code = request.code_from_callback(&harness, &callback);
    let proof = key.proof("POST", harness.token_endpoint(), None, None);
    let tokens = request.exchange_code(&harness, &code, &[("DPoP", &proof)]);
    assert_eq!(tokens["token_type"], "DPoP");
    let at = str_field(&tokens, "access_token");
    let claims = jwt::claims(at);
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["cnf"]["jkt"], key.thumbprint());

    // resource server without nonce requirement accepts the first proof
    let url = harness.resource_url("/api1/data");
    let proof = key.proof("GET", &url, None, Some(at));
    let ok = resource_request(
        &harness,
        "GET",
        "/api1/data",
        Some(&format!("DPoP {at}")),
        Some(&proof),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["sub"], "bob");

    let rt = str_field(&tokens, "refresh_token");
    let unbound = refresh(&harness, &PUBLIC_PKCE, rt, Some(API2));
    assert_eq!(unbound.status, 400, "{}", unbound.body);
    assert_eq!(unbound.error().as_deref(), Some("invalid_grant"));

    let other = DpopKey::generate().proof("POST", harness.token_endpoint(), None, None);
    let wrong_key = token_request(
        &harness,
        &PUBLIC_PKCE,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("resource", API2),
        ],
        &[("DPoP", &other)],
    );
    assert_eq!(
        wrong_key.error().as_deref(),
        Some("invalid_grant"),
        "{}",
        wrong_key.body
    );

    let proof = key.proof("POST", harness.token_endpoint(), None, None);
    let refreshed = token_request(
        &harness,
        &PUBLIC_PKCE,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("resource", API2),
        ],
        &[("DPoP", &proof)],
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let refreshed = refreshed.json();
    assert_eq!(refreshed["token_type"], "DPoP");
    assert_eq!(
        jwt::audiences(str_field(&refreshed, "access_token")),
        [API2]
    );
    assert_eq!(harness.stats().dpop_nonce_challenges, 0);
}

/// The resource server's answer to one request: its status, the `error` of
/// its `WWW-Authenticate` challenge, and the challenge itself.
fn refusal(response: &tokenkeeper_integration::HttpResponse) -> (u16, String, String) {
    let challenge = response
        .header("www-authenticate")
        .unwrap_or_default()
        .to_owned();
    let error = challenge
        .split("error=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    (response.status, error, challenge)
}

/// Every refusal the resource server makes for a DPoP proof or a token, one
/// at a time, each beside an accepted request that differs only in what is
/// checked: the harness is at least as strict as a real resource server
/// (RFC 9449 §4.3, §7.1; RFC 9068).
#[test]
fn the_resource_server_refuses_each_bad_proof_and_token() {
    use tokenkeeper_integration::util::{b64url_sha256, now_secs, random_token};

    let harness = Harness::start(HarnessOptions {
        dpop_nonce_required: false,
        access_token_ttl_secs: 60,
        rs_nonce_required: false,
    });
    let key = DpopKey::generate();
    let dpop_token = |resource: &str| {
        let proof = key.proof("POST", harness.token_endpoint(), None, None);
        let issued = token_request(
            &harness,
            &M2M,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read:data"),
                ("resource", resource),
            ],
            &[("DPoP", &proof)],
        );
        assert_eq!(issued.status, 200, "{}", issued.body);
        str_field(&issued.json(), "access_token").to_owned()
    };
    let at = dpop_token(API1);
    let url = harness.resource_url("/api1/data");
    // A proof for `GET url` bound to `token`, with `edit` applied to its
    // claims; sent to `path` with `token`.
    let call = |path: &str, token: &str, edit: &dyn Fn(&mut Value)| {
        let mut claims = serde_json::json!({
            "jti": random_token(16),
            "htm": "GET",
            "htu": url,
            "iat": now_secs(),
            "ath": b64url_sha256(token),
        });
        edit(&mut claims);
        let header =
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
        let proof = key.sign_jws(&header, &claims);
        resource_request(
            &harness,
            "GET",
            path,
            Some(&format!("DPoP {token}")),
            Some(&proof),
        )
    };
    let accepted = |response: tokenkeeper_integration::HttpResponse| {
        assert_eq!(response.status, 200, "{}", response.body);
    };
    let refused = |response: tokenkeeper_integration::HttpResponse, error: &str, because: &str| {
        let (status, got, challenge) = refusal(&response);
        assert_eq!(
            (status, got.as_str()),
            (401, error),
            "{challenge} {}",
            response.body
        );
        assert!(
            challenge.contains(because),
            "refused for another reason than {because:?}: {challenge}"
        );
    };

    // The baseline, and a request with a query whose proof's htu has none.
    accepted(call("/api1/data", &at, &|_| {}));
    accepted(call("/api1/data?page=2", &at, &|_| {}));
    // htu with a query or a fragment: refused, not trimmed (RFC 9449 §4.2).
    refused(
        call("/api1/data?page=2", &at, &|c| {
            c["htu"] = format!("{url}?page=2").into()
        }),
        "invalid_dpop_proof",
        "query or fragment",
    );
    refused(
        call("/api1/data", &at, &|c| c["htu"] = format!("{url}?").into()),
        "invalid_dpop_proof",
        "query or fragment",
    );
    refused(
        call("/api1/data", &at, &|c| c["htu"] = format!("{url}#f").into()),
        "invalid_dpop_proof",
        "query or fragment",
    );
    // Wrong htu: another path, another origin.
    refused(
        call("/api1/data", &at, &|c| {
            c["htu"] = harness.resource_url("/api2/data").into();
        }),
        "invalid_dpop_proof",
        "htu mismatch",
    );
    refused(
        call("/api1/data", &at, &|c| {
            c["htu"] = "http://127.0.0.1:9/api1/data".into();
        }),
        "invalid_dpop_proof",
        "htu mismatch",
    );
    // Stale and future iat (60 s window).
    refused(
        call("/api1/data", &at, &|c| c["iat"] = (now_secs() - 120).into()),
        "invalid_dpop_proof",
        "iat",
    );
    refused(
        call("/api1/data", &at, &|c| c["iat"] = (now_secs() + 120).into()),
        "invalid_dpop_proof",
        "iat",
    );
    // Wrong htm, wrong ath.
    refused(
        call("/api1/data", &at, &|c| c["htm"] = "POST".into()),
        "invalid_dpop_proof",
        "htm mismatch",
    );
    refused(
        call("/api1/data", &at, &|c| {
            c["ath"] = b64url_sha256("other").into()
        }),
        "invalid_dpop_proof",
        "ath mismatch",
    );
    // A token for another audience, with a proof that is right in all else.
    let at2 = dpop_token(API2);
    accepted(call("/api1/data", &at, &|_| {}));
    refused(call("/api1/data", &at2, &|_| {}), "invalid_token", "aud");
}

/// An expired access token is refused (`invalid_token`), Bearer or DPoP.
#[test]
fn the_resource_server_refuses_an_expired_token() {
    let harness = Harness::start(HarnessOptions {
        dpop_nonce_required: false,
        access_token_ttl_secs: 2,
        rs_nonce_required: false,
    });
    let issued = token_request(
        &harness,
        &M2M,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:data"),
            ("resource", API1),
        ],
        &[],
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    let at = str_field(&issued.json(), "access_token").to_owned();
    let bearer = format!("Bearer {at}");
    let fresh = resource_request(&harness, "GET", "/api1/data", Some(&bearer), None);
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    std::thread::sleep(Duration::from_millis(3_100));
    let expired = resource_request(&harness, "GET", "/api1/data", Some(&bearer), None);
    let (status, error, challenge) = refusal(&expired);
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_token"),
        "{challenge}"
    );
    assert!(challenge.contains("\\\"exp\\\""), "{challenge}");
}

/// A subject token made with the provider's own (committed, test-only)
/// ES256 key: the harness verifies it like any token the provider issued,
/// so only the claims under test differ.
fn provider_signed_access_token(harness: &Harness, claims: &Value) -> String {
    use p256::ecdsa::signature::Signer as _;
    use tokenkeeper_integration::util::{b64url, b64url_decode};
    let jwks: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/keys/provider-signing.jwks.json",
            tokenkeeper_integration::HARNESS_DIR
        ))
        .unwrap(),
    )
    .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == "ES256")
        .unwrap();
    let d = b64url_decode(jwk["d"].as_str().unwrap()).unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&d).unwrap();
    let header = serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": jwk["kid"]});
    let mut claims = claims.clone();
    claims["iss"] = harness.issuer().into();
    let input = format!(
        "{}.{}",
        b64url(header.to_string()),
        b64url(claims.to_string())
    );
    let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64url(signature.to_bytes()))
}

/// Token exchange checks the subject token's audience (one of the resource
/// servers) and the client it was issued to (one the exchanging client may
/// act for), beside the checks of signature, issuer, expiry and target.
#[test]
fn token_exchange_checks_the_subject_tokens_audience_and_client() {
    use tokenkeeper_integration::util::now_secs;
    let harness = Harness::start(HarnessOptions::default());
    let exchange = |client: &TestClient, subject_token: &str| {
        token_request(
            &harness,
            client,
            &[
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", subject_token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("resource", API2),
            ],
            &[],
        )
    };
    let claims = |aud: &str, client_id: &str| {
        serde_json::json!({
            "sub": "alice", "aud": aud, "client_id": client_id, "scope": "read:data",
            "iat": now_secs(), "exp": now_secs() + 60, "jti": "forged-1",
        })
    };
    // Made with the provider's key and right in all else: accepted...
    let good = provider_signed_access_token(&harness, &claims(API1, CONFIDENTIAL_POST.id));
    let response = exchange(&CONFIDENTIAL_BASIC, &good);
    assert_eq!(response.status, 200, "{}", response.body);
    // ...but for an audience that is none of the resource servers: refused.
    let elsewhere = provider_signed_access_token(
        &harness,
        &claims("https://elsewhere.example", CONFIDENTIAL_POST.id),
    );
    let response = exchange(&CONFIDENTIAL_BASIC, &elsewhere);
    assert_eq!(
        response.error().as_deref(),
        Some("invalid_grant"),
        "{}",
        response.body
    );
    // oidc-provider keeps the detail of `invalid_grant` out of the answer;
    // the harness log has it.
    let refused_for = |detail: &str| {
        assert!(
            harness.wait_for_log(detail, Duration::from_secs(5)),
            "no {detail:?} in the log:\n{}",
            harness.server_log()
        );
    };
    refused_for(r#"(detail: subject_token invalid: unexpected "aud" claim value)"#);

    // Issued to a client the exchanging one may not act for: refused.
    let public = pkce_login(&harness, &PUBLIC_PKCE, LOGIN_SCOPE, &[API1]);
    let public_at = str_field(&public, "access_token");
    assert_eq!(jwt::claims(public_at)["client_id"], PUBLIC_PKCE.id);
    let response = exchange(&CONFIDENTIAL_BASIC, public_at);
    assert_eq!(
        response.error().as_deref(),
        Some("invalid_grant"),
        "{}",
        response.body
    );
    refused_for("issued to public-pkce, for whom confidential-basic may not act");
    let post = pkce_login(&harness, &CONFIDENTIAL_POST, LOGIN_SCOPE, &[API1]);
    let post_at = str_field(&post, "access_token");
    // confidential-basic may act for confidential-post; pkjwt too; but
    // confidential-post may not act for confidential-basic.
    assert_eq!(exchange(&CONFIDENTIAL_BASIC, post_at).status, 200);
    let basic = pkce_login(&harness, &CONFIDENTIAL_BASIC, LOGIN_SCOPE, &[API1]);
    let response = exchange(&CONFIDENTIAL_POST, str_field(&basic, "access_token"));
    assert_eq!(
        response.error().as_deref(),
        Some("invalid_grant"),
        "{}",
        response.body
    );
    refused_for("issued to confidential-basic, for whom confidential-post may not act");
    // A machine token (no user) is exchangeable by no one.
    let m2m = token_request(
        &harness,
        &M2M,
        &[("grant_type", "client_credentials"), ("resource", API1)],
        &[],
    );
    let m2m_at = str_field(&m2m.json(), "access_token").to_owned();
    let response = exchange(&CONFIDENTIAL_BASIC, &m2m_at);
    assert_eq!(
        response.error().as_deref(),
        Some("invalid_grant"),
        "{}",
        response.body
    );
    refused_for("issued to m2m, for whom confidential-basic may not act");
}

/// PKCE is required of every client, confidential ones included (RFC 9700
/// §2.1.1): an authorization request without `code_challenge` is refused.
#[test]
fn pkce_is_required_of_every_client() {
    let harness = Harness::start(HarnessOptions::default());
    for client in [CONFIDENTIAL_BASIC, CONFIDENTIAL_POST, PKJWT, PUBLIC_PKCE] {
        let request = AuthorizationRequest::new(&client, LOGIN_SCOPE, &[API1]);
        let with_pkce = request.url(&harness);
        let without: Vec<&str> = with_pkce
            .split('&')
            .filter(|p| !p.starts_with("code_challenge"))
            .collect();
        let without = without.join("&");
        assert!(!without.contains("code_challenge"), "{without}");
        let outcome = harness.try_login_as(&without, "alice");
        let refused = match &outcome {
            Ok(callback) => tokenkeeper_integration::util::query_param(callback, "error"),
            Err(message) => Some(message.clone()),
        };
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("invalid_request")),
            "{} without PKCE: {outcome:?}",
            client.id
        );
        // The same request with PKCE logs in.
        let callback = harness.login_as(&with_pkce, "alice");
        assert!(request.code_from_callback(&harness, &callback).len() > 10);
    }
}

/// A token request that names no `resource` gets none filled in: after a
/// login for both APIs, a refresh without `resource` gets an opaque token
/// (for userinfo), not a JWT for the first API, so a client that forgets
/// `resource` is caught.
#[test]
fn a_refresh_naming_no_resource_gets_no_resource_filled_in() {
    let harness = Harness::start(HarnessOptions::default());
    let tokens = pkce_login(&harness, &CONFIDENTIAL_POST, LOGIN_SCOPE, &[API1, API2]);
    assert_eq!(jwt::audiences(str_field(&tokens, "access_token")), [API1]);
    let refreshed = refresh(
        &harness,
        &CONFIDENTIAL_POST,
        str_field(&tokens, "refresh_token"),
        None,
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let at = str_field(&refreshed.json(), "access_token").to_owned();
    assert!(!jwt::is_jwt(&at), "a resource was filled in: {at}");
    let call = resource_request(
        &harness,
        "GET",
        "/api1/data",
        Some(&format!("Bearer {at}")),
        None,
    );
    assert_eq!(call.status, 401, "{}", call.body);
}
