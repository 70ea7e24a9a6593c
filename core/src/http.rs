//! Owned descriptions of HTTP requests and responses.
//!
//! The core never performs I/O: it returns an [`HttpRequest`] for the host to
//! send and takes the [`HttpResponse`] back, whatever its status (a 400 or a
//! 401 is data, never a transport error). URLs are kept as the exact strings
//! configured, because authorization servers compare `resource` and
//! `audience` values byte for byte.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// An HTTP method, upper-case (`GET`, `POST`, …).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Method(Cow<'static, str>);

impl Method {
    /// `GET`
    pub const GET: Method = Method(Cow::Borrowed("GET"));
    /// `POST`
    pub const POST: Method = Method(Cow::Borrowed("POST"));
    /// `PUT`
    pub const PUT: Method = Method(Cow::Borrowed("PUT"));
    /// `PATCH`
    pub const PATCH: Method = Method(Cow::Borrowed("PATCH"));
    /// `DELETE`
    pub const DELETE: Method = Method(Cow::Borrowed("DELETE"));

    /// A method from its name; it is upper-cased (methods are case-sensitive
    /// on the wire, and DPoP's `htm` compares them exactly).
    #[must_use]
    pub fn new(name: &str) -> Self {
        for known in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            if known.as_str().eq_ignore_ascii_case(name) {
                return known;
            }
        }
        Method(Cow::Owned(name.to_ascii_uppercase()))
    }

    /// The method name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ordered list of header fields. Names compare case-insensitively; a
/// name may repeat (several `WWW-Authenticate` fields, for example).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

/// Headers whose values are secrets (`Authorization` carries tokens and
/// client secrets, `DPoP` a proof bound to a token).
fn is_sensitive(name: &str) -> bool {
    [
        "authorization",
        "dpop",
        "cookie",
        "set-cookie",
        "proxy-authorization",
    ]
    .iter()
    .any(|s| s.eq_ignore_ascii_case(name))
}

impl Headers {
    /// No headers.
    #[must_use]
    pub const fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a field, keeping any existing field of the same name.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Replaces every field named `name` with one field.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.0.push((String::from(name), value.into()));
    }

    /// Removes every field named `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The first value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in &self.0 {
            if is_sensitive(name) {
                list.entry(&format_args!("{name}: <redacted>"));
            } else {
                list.entry(&format_args!("{name}: {value}"));
            }
        }
        list.finish()
    }
}

/// The fields, owned, in order (a host can hand the strings to its HTTP
/// library without copying them).
impl IntoIterator for Headers {
    type Item = (String, String);
    type IntoIter = alloc::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }
}

/// A request the host must send.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL, exactly as it must be sent.
    pub url: String,
    /// Header fields, in order.
    pub headers: Headers,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body of a token request holds refresh tokens and secrets.
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// A response the host received, whatever its status.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header fields, in order.
    pub headers: Headers,
    /// The body as received (the core enforces its own size limit).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with no headers.
    #[must_use]
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: Headers::new(),
            body: body.into(),
        }
    }

    /// Adds a header (builder style, handy in tests).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Whether the status is 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Token responses carry tokens.
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// Conversions to and from the `http` crate.
#[cfg(feature = "http")]
mod http_crate {
    use super::*;

    /// Why a description could not become an `http` type.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot convert to an http crate type: {0}")]
    pub struct ConversionError(#[from] http::Error);

    impl From<ConversionError> for http::Error {
        fn from(error: ConversionError) -> Self {
            error.0
        }
    }

    /// The request for an HTTP library on the `http` crate (ureq, reqwest,
    /// hyper). Nothing is copied: the URL, the header values and the body
    /// move into it.
    impl TryFrom<HttpRequest> for http::Request<Vec<u8>> {
        type Error = ConversionError;

        fn try_from(request: HttpRequest) -> Result<Self, Self::Error> {
            let HttpRequest {
                method,
                url,
                headers,
                body,
            } = request;
            let mut out = http::Request::new(body);
            *out.method_mut() =
                http::Method::from_bytes(method.as_str().as_bytes()).map_err(http::Error::from)?;
            *out.uri_mut() = http::Uri::try_from(url).map_err(http::Error::from)?;
            let fields = out.headers_mut();
            fields.reserve(headers.len());
            for (name, value) in headers {
                let name =
                    http::HeaderName::from_bytes(name.as_bytes()).map_err(http::Error::from)?;
                let value = http::HeaderValue::try_from(value).map_err(http::Error::from)?;
                fields.append(name, value);
            }
            Ok(out)
        }
    }

    /// Every field, in order (values that are not UTF-8, lossily).
    impl From<&http::HeaderMap> for Headers {
        fn from(map: &http::HeaderMap) -> Self {
            map.iter()
                .map(|(name, value)| {
                    (
                        name.as_str(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect()
        }
    }

    impl<B: Into<Vec<u8>>> From<http::Response<B>> for HttpResponse {
        fn from(response: http::Response<B>) -> Self {
            let (parts, body) = response.into_parts();
            HttpResponse {
                status: parts.status.as_u16(),
                headers: Headers::from(&parts.headers),
                body: body.into(),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trip() {
            let mut headers = Headers::new();
            headers.append("Accept", "application/json");
            headers.append("X-Two", "a");
            headers.append("X-Two", "b");
            let request = HttpRequest {
                method: Method::POST,
                url: "https://as.example/token?x=1".into(),
                headers,
                body: b"a=b".to_vec(),
            };
            let converted: http::Request<Vec<u8>> = request.try_into().unwrap();
            assert_eq!(converted.headers().len(), 3);
            assert_eq!(converted.headers()["accept"], "application/json");
            assert_eq!(converted.method(), http::Method::POST);
            assert_eq!(converted.uri(), "https://as.example/token?x=1");
            assert_eq!(converted.headers().get_all("x-two").iter().count(), 2);
            assert_eq!(converted.body(), b"a=b");

            let response = http::Response::builder()
                .status(401)
                .header("WWW-Authenticate", "DPoP error=\"use_dpop_nonce\"")
                .header("DPoP-Nonce", "n1")
                .body(b"{}".to_vec())
                .unwrap();
            let back = HttpResponse::from(response);
            assert_eq!(back.status, 401);
            assert_eq!(back.headers.get("dpop-nonce"), Some("n1"));
            assert_eq!(back.body, b"{}");
        }

        #[test]
        fn bad_parts_are_errors_not_panics() {
            for (url, name, value) in [
                ("not a uri", "Accept", "x"),
                ("https://as.example/", "Bad Name", "x"),
                ("https://as.example/", "Accept", "line\nbreak"),
            ] {
                let mut headers = Headers::new();
                headers.append(name, value);
                let request = HttpRequest {
                    method: Method::POST,
                    url: url.into(),
                    headers,
                    body: Vec::new(),
                };
                let converted: Result<http::Request<Vec<u8>>, _> = request.try_into();
                let error = http::Error::from(converted.unwrap_err());
                assert!(!alloc::format!("{error}").is_empty());
            }
        }
    }
}

#[cfg(feature = "http")]
pub use http_crate::ConversionError;

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn headers_are_case_insensitive_and_repeatable() {
        let mut h = Headers::new();
        h.append("WWW-Authenticate", "Bearer");
        h.append("www-authenticate", "DPoP");
        assert_eq!(h.get_all("Www-Authenticate").count(), 2);
        h.set("WWW-AUTHENTICATE", "x");
        assert_eq!(h.get_all("www-authenticate").collect::<Vec<_>>(), ["x"]);
        h.remove("www-authenticate");
        assert!(h.is_empty());
    }

    #[test]
    fn debug_hides_secrets() {
        let mut headers = Headers::new();
        headers.append("Authorization", "Basic c2VjcmV0");
        headers.append("DPoP", "eyJproof");
        let request = HttpRequest {
            method: Method::POST,
            url: "https://as.example/token".into(),
            headers,
            body: b"refresh_token=topsecret".to_vec(),
        };
        let printed = format!("{request:?}");
        assert!(!printed.contains("c2VjcmV0"));
        assert!(!printed.contains("eyJproof"));
        assert!(!printed.contains("topsecret"));
        assert!(printed.contains("https://as.example/token"));
    }

    #[test]
    fn method_is_upper_cased() {
        assert_eq!(Method::new("get"), Method::GET);
        assert_eq!(Method::new("purge").as_str(), "PURGE");
    }
}
