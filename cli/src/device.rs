//! The device authorization grant (RFC 8628), for servers that announce a
//! `device_authorization_endpoint`: the core has no builder for it, so the
//! two form requests are built here from the core's parts (form encoding,
//! client authentication, target parameter, token response parsing, ID
//! token checks) and sent through the adapter.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokenkeeper::Limits;
use tokenkeeper::TokenResponse;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::FormBody;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::grant::form_post;
use tokenkeeper::id_token::IdTokenValidator;
use tokenkeeper::{Headers, HttpRequest, Session, UnixTime};
use tokenkeeper_ureq::{OsEntropy, TokenKeeper};

use crate::Context;
use crate::error::CliError;

/// The grant type of the polling requests (RFC 8628 §3.4).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The polling interval when the server names none (RFC 8628 §3.2).
const DEFAULT_INTERVAL: u64 = 5;

/// What a device login needs.
pub struct DeviceLogin<'a> {
    /// The device authorization endpoint.
    pub endpoint: &'a str,
    /// The token endpoint.
    pub token_endpoint: &'a str,
    /// The issuer (ID tokens are checked against it).
    pub issuer: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// How the client authenticates.
    pub auth: &'a ClientAuth,
    /// The scope asked for.
    pub scope: &'a str,
    /// The APIs asked for (the first is the session's audience).
    pub targets: Vec<&'a str>,
    /// How they are named.
    pub target_parameter: TargetParameter,
}

/// The seconds since the epoch.
fn now() -> UnixTime {
    UnixTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

impl DeviceLogin<'_> {
    /// A form POST with the client's authentication.
    fn post(&self, url: &str, mut form: FormBody) -> HttpRequest {
        let mut headers = Headers::default();
        self.auth.apply(self.client_id, &mut form, &mut headers);
        form_post(url, form, headers)
    }

    /// Runs the grant: asks for a device code, shows the user code and
    /// the verification URI on standard error, polls the token endpoint
    /// (every `interval`, slower on `slow_down`) until the user has
    /// approved, and returns the new session.
    ///
    /// # Errors
    /// The server's refusal (`access_denied`, `expired_token`, …), a
    /// transport error, an ID token that fails its checks.
    pub fn run(&self, context: &Context, keeper: &TokenKeeper) -> Result<Session, CliError> {
        let limits = Limits::default();
        let mut form = FormBody::new();
        form.append("scope", self.scope);
        for target in &self.targets {
            self.target_parameter.apply(&mut form, target);
        }
        let response = keeper.send_request(self.post(self.endpoint, form))?;
        let authorization: Value = match serde_json::from_slice(&response.body) {
            Ok(value) if response.is_success() => value,
            _ => {
                let error = TokenResponse::parse(&response, &limits)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| format!("HTTP {}", response.status));
                return Err(CliError::other(
                    "device_authorization_failed",
                    format!("the device authorization request failed: {error}"),
                ));
            }
        };
        let text = |name: &str| authorization.get(name).and_then(Value::as_str);
        let (Some(device_code), Some(user_code), Some(verification_uri)) = (
            text("device_code"),
            text("user_code"),
            text("verification_uri"),
        ) else {
            return Err(CliError::other(
                "invalid_response",
                "the device authorization response lacks device_code, user_code or \
                 verification_uri",
            ));
        };
        let number = |name: &str| authorization.get(name).and_then(Value::as_u64);
        let mut interval = number("interval").unwrap_or(DEFAULT_INTERVAL).max(1);
        let expires_in = number("expires_in").unwrap_or(600);
        eprintln!("To log in, open {verification_uri} and enter the code {user_code}");
        if let Some(complete) = text("verification_uri_complete") {
            eprintln!("or open this URL:\n\n    {complete}\n");
        }
        eprintln!("Waiting for the approval …");
        let deadline = Instant::now() + Duration::from_secs(expires_in);
        loop {
            std::thread::sleep(Duration::from_secs(interval));
            if Instant::now() >= deadline {
                return Err(CliError::other(
                    "expired_token",
                    "the device code expired before the login was approved",
                ));
            }
            let mut form = FormBody::new();
            form.append("grant_type", DEVICE_CODE_GRANT);
            form.append("device_code", device_code);
            // RFC 8707 §2.2: the token request names the API the session's
            // token is for (a grant for several resources otherwise gets a
            // token for none of them).
            if let Some(first) = self.targets.first() {
                self.target_parameter.apply(&mut form, first);
            }
            let sent_at = now();
            let response = keeper.send_request(self.post(self.token_endpoint, form))?;
            match TokenResponse::parse(&response, &limits) {
                Ok(tokens) => return self.session(tokens, sent_at),
                Err(error) => match error.server_error().map(|e| e.error.as_str()) {
                    Some("authorization_pending") => context.say("not approved yet"),
                    Some("slow_down") => {
                        interval += 5;
                        context.say(format_args!("slowing down: polling every {interval} s"));
                    }
                    _ => return Err(tokenkeeper::Error::TokenRequestFailed(error).into()),
                },
            }
        }
    }

    /// The session from the token response, its ID token checked (issuer,
    /// audience, expiry; it came straight from the token endpoint).
    fn session(&self, tokens: TokenResponse, sent_at: UnixTime) -> Result<Session, CliError> {
        match &tokens.id_token {
            Some(id_token) => {
                IdTokenValidator::new(self.issuer, self.client_id)
                    .validate(id_token, None, now())
                    .map_err(tokenkeeper::Error::IdToken)?;
            }
            None if tokenkeeper::__private::scope::tokens(self.scope).any(|s| s == "openid") => {
                return Err(tokenkeeper::Error::IdToken(
                    tokenkeeper::id_token::IdTokenError::Missing,
                )
                .into());
            }
            None => {}
        }
        Ok(Session::from_token_response(
            tokens,
            sent_at,
            Some(self.scope),
            self.targets.first().copied(),
            &mut OsEntropy,
        ))
    }
}
