//! Raw HTTP calls to the harness (token endpoint, resource server), without
//! tokenkeeper.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::clients::{ClientAuth, TestClient, client_assertion};
use crate::harness::Harness;
use crate::util::percent_encode;

/// A buffered HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, `None` if it is not JSON.
    pub fn try_json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If the body is not JSON (the message shows status and body).
    pub fn json(&self) -> Value {
        self.try_json().unwrap_or_else(|| {
            panic!(
                "expected a JSON body, got HTTP {} with: {}",
                self.status, self.body
            )
        })
    }

    /// The `error` member of a JSON error body, if any.
    pub fn error(&self) -> Option<String> {
        self.try_json()?.get("error")?.as_str().map(str::to_owned)
    }

    pub(crate) fn read(mut response: ureq::http::Response<ureq::Body>) -> Self {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| format!("<unreadable body: {e}>"));
        Self {
            status,
            headers,
            body,
        }
    }
}

/// POSTs `params` to the token endpoint, authenticating as `client` with its
/// registered method (Basic header, form secret, ES256 client assertion, or
/// just `client_id`), plus `extra_headers` (e.g. `("DPoP", proof)`).
/// Repeated keys in `params` (several `resource`) are sent as given.
///
/// # Panics
/// On transport errors (connection refused, timeout); HTTP error statuses are
/// returned, not panicked on.
pub fn token_request(
    harness: &Harness,
    client: &TestClient,
    params: &[(&str, &str)],
    extra_headers: &[(&str, &str)],
) -> HttpResponse {
    let token_endpoint = harness.token_endpoint();
    let mut form: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut request = harness
        .agent()
        .post(token_endpoint)
        .header("accept", "application/json");
    match client.auth {
        ClientAuth::ClientSecretBasic => {
            // RFC 6749 §2.3.1: form-urlencode id and secret before base64
            let credentials = format!(
                "{}:{}",
                percent_encode(client.id),
                percent_encode(client.secret.unwrap_or_default())
            );
            request = request.header(
                "authorization",
                format!("Basic {}", STANDARD.encode(credentials)),
            );
        }
        ClientAuth::ClientSecretPost => {
            form.push(("client_id".into(), client.id.into()));
            form.push((
                "client_secret".into(),
                client.secret.unwrap_or_default().into(),
            ));
        }
        ClientAuth::PrivateKeyJwt => {
            form.push(("client_id".into(), client.id.into()));
            form.push((
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ));
            form.push((
                "client_assertion".into(),
                client_assertion(client, harness.issuer()),
            ));
        }
        ClientAuth::None => form.push(("client_id".into(), client.id.into())),
    }
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send_form(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap_or_else(|e| panic!("POST {token_endpoint} failed: {e}"));
    HttpResponse::read(response)
}

/// Calls the harness resource server: `method` (`GET` or `POST`) on `path`
/// (e.g. `/api1/data`) with the given `Authorization` header value (e.g.
/// `Bearer <at>` or `DPoP <at>`) and optional `DPoP` proof header.
///
/// # Panics
/// On transport errors.
pub fn resource_request(
    harness: &Harness,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    dpop_proof: Option<&str>,
) -> HttpResponse {
    let url = harness.resource_url(path);
    let mut headers: Vec<(&str, &str)> = vec![("accept", "application/json")];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    if let Some(proof) = dpop_proof {
        headers.push(("dpop", proof));
    }
    let result = if method.eq_ignore_ascii_case("POST") {
        let mut request = harness.agent().post(&url);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        request
            .header("content-type", "application/json")
            .send("{}")
    } else if method.eq_ignore_ascii_case("GET") {
        let mut request = harness.agent().get(&url);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        request.call()
    } else {
        panic!("resource_request supports GET and POST, not {method}");
    };
    let response = result.unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
    HttpResponse::read(response)
}
