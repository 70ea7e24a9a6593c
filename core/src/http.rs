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

use zeroize::{Zeroize, ZeroizeOnDrop};

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
///
/// The names and values sit back to back in one string, so a response's
/// headers cost two allocations however many fields it has. That string is
/// wiped when the headers are dropped (`Authorization` values carry tokens
/// and client secrets).
#[derive(Clone, Default)]
pub struct Headers {
    /// Every name and value, back to back.
    text: String,
    /// Each field's place in `text`, in order.
    fields: Vec<Field>,
}

/// One field: its name is `text[start..name_end]`, its value
/// `text[name_end..end]`.
#[derive(Clone, Copy)]
struct Field {
    start: usize,
    name_end: usize,
    end: usize,
}

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
        Headers {
            text: String::new(),
            fields: Vec::new(),
        }
    }

    /// No headers, with room for `fields` fields of `bytes` bytes in all
    /// (names and values).
    #[must_use]
    pub fn with_capacity(fields: usize, bytes: usize) -> Self {
        Headers {
            text: String::with_capacity(bytes),
            fields: Vec::with_capacity(fields),
        }
    }

    /// Appends a field, keeping any existing field of the same name.
    pub fn append(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let start = self.text.len();
        self.text.push_str(name.as_ref());
        let name_end = self.text.len();
        self.text.push_str(value.as_ref());
        self.fields.push(Field {
            start,
            name_end,
            end: self.text.len(),
        });
    }

    /// Replaces every field named `name` with one field.
    pub fn set(&mut self, name: &str, value: impl AsRef<str>) {
        self.remove(name);
        self.append(name, value);
    }

    /// Removes every field named `name`.
    pub fn remove(&mut self, name: &str) {
        let text = &self.text;
        self.fields
            .retain(|f| !field_name(text, f).eq_ignore_ascii_case(name));
        if self.fields.is_empty() {
            self.text.zeroize();
        }
    }

    /// The first value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|f| {
            (
                field_name(&self.text, f),
                self.text.get(f.name_end..f.end).unwrap_or_default(),
            )
        })
    }

    /// Number of fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Wipes every name and value and leaves no fields.
impl Zeroize for Headers {
    fn zeroize(&mut self) {
        self.text.zeroize();
        self.fields.clear();
    }
}

impl Drop for Headers {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

impl ZeroizeOnDrop for Headers {}

/// A field's name. Fields are appended whole, so their bounds fall on
/// character boundaries.
fn field_name<'a>(text: &'a str, field: &Field) -> &'a str {
    text.get(field.start..field.name_end).unwrap_or_default()
}

/// The same fields in the same order (removed fields leave no trace).
impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.iter() {
            if is_sensitive(name) {
                list.entry(&format_args!("{name}: <redacted>"));
            } else {
                list.entry(&format_args!("{name}: {value}"));
            }
        }
        list.finish()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.append(name, value);
        }
        headers
    }
}

/// A request the host must send. Its body (refresh tokens, codes, client
/// secrets in a token request) and headers are wiped when it is dropped.
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

impl Drop for HttpRequest {
    fn drop(&mut self) {
        self.body.zeroize();
        self.url.zeroize();
    }
}

impl ZeroizeOnDrop for HttpRequest {}

/// A response the host received, whatever its status. Its body (the tokens
/// of a token response) and headers are wiped when it is dropped.
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

impl Drop for HttpResponse {
    fn drop(&mut self) {
        self.body.zeroize();
    }
}

impl ZeroizeOnDrop for HttpResponse {}

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
    #[error("cannot convert to an http crate type")]
    pub struct ConversionError(#[from] http::Error);

    impl From<ConversionError> for http::Error {
        fn from(error: ConversionError) -> Self {
            error.0
        }
    }

    /// The request for an HTTP library on the `http` crate (ureq, reqwest,
    /// hyper). The URL and the body move into it.
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    impl TryFrom<HttpRequest> for http::Request<Vec<u8>> {
        type Error = ConversionError;

        fn try_from(mut request: HttpRequest) -> Result<Self, Self::Error> {
            let url = core::mem::take(&mut request.url);
            let uri = http::Uri::try_from(url).map_err(http::Error::from)?;
            request.into_http_with_uri(uri)
        }
    }

    impl HttpRequest {
        /// As [`http::Request::try_from`], with the URL already parsed:
        /// `uri` must be this request's URL. For a host that sends to the
        /// same URL again and again (every refresh goes to the token
        /// endpoint) and keeps it parsed: parsing it costs more than the
        /// rest of the conversion.
        ///
        /// # Errors
        /// A method or a header field the `http` crate refuses.
        #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
        pub fn into_http_with_uri(
            mut self,
            uri: http::Uri,
        ) -> Result<http::Request<Vec<u8>>, ConversionError> {
            // Taken, not copied; until it is handed over, the body is wiped
            // if a conversion fails (the request wipes what it still holds).
            let mut body = zeroize::Zeroizing::new(core::mem::take(&mut self.body));
            let HttpRequest {
                method, headers, ..
            } = &self;
            let mut out = http::Request::new(Vec::new());
            *out.method_mut() =
                http::Method::from_bytes(method.as_str().as_bytes()).map_err(http::Error::from)?;
            *out.uri_mut() = uri;
            let fields = out.headers_mut();
            fields.reserve(headers.len());
            for (name, value) in headers.iter() {
                let (name, value) = http_field(name, value)?;
                fields.append(name, value);
            }
            *out.body_mut() = core::mem::take(&mut *body);
            Ok(out)
        }
    }

    /// A header field for the `http` crate. The names and values every
    /// token request carries are the crate's constants: no parse, no copy
    /// (each parse and copy cost a request about 120 instructions).
    fn http_field(
        name: &str,
        value: &str,
    ) -> Result<(http::HeaderName, http::HeaderValue), ConversionError> {
        const JSON: http::HeaderValue = http::HeaderValue::from_static("application/json");
        const FORM: http::HeaderValue =
            http::HeaderValue::from_static("application/x-www-form-urlencoded");
        let name = if name.eq_ignore_ascii_case("content-type") {
            http::header::CONTENT_TYPE
        } else if name.eq_ignore_ascii_case("accept") {
            http::header::ACCEPT
        } else {
            http::HeaderName::from_bytes(name.as_bytes()).map_err(http::Error::from)?
        };
        let value = match value {
            "application/json" => JSON,
            "application/x-www-form-urlencoded" => FORM,
            _ => http::HeaderValue::from_str(value).map_err(http::Error::from)?,
        };
        Ok((name, value))
    }

    /// Every field, in order (values that are not UTF-8, lossily).
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    impl From<&http::HeaderMap> for Headers {
        fn from(map: &http::HeaderMap) -> Self {
            let bytes = map
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum();
            let mut headers = Headers::with_capacity(map.len(), bytes);
            for (name, value) in map {
                headers.append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
            }
            headers
        }
    }

    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
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

            // The fields every token request carries, in any case, and
            // others beside them: each as it was.
            let mut headers = Headers::new();
            headers.append("CONTENT-type", "application/x-www-form-urlencoded");
            headers.append("accept", "application/json");
            headers.append("Accept-Language", "application/json");
            headers.append("Content-Typo", "application/jsonx");
            headers.append("DPoP", "ey.J");
            let request = HttpRequest {
                method: Method::POST,
                url: "https://as.example/token".into(),
                headers,
                body: Vec::new(),
            };
            let converted: http::Request<Vec<u8>> = request.try_into().unwrap();
            let fields: Vec<(&str, &str)> = converted
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
                .collect();
            assert_eq!(
                fields,
                [
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("accept", "application/json"),
                    ("accept-language", "application/json"),
                    ("content-typo", "application/jsonx"),
                    ("dpop", "ey.J"),
                ]
            );

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
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
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
    fn removed_fields_leave_no_trace() {
        let mut h = Headers::with_capacity(1, 4);
        h.append("A", "1");
        h.append("Ünïcode", "välue ✓");
        h.append("b", String::from("2"));
        h.remove("a");
        h.set("B", "3");
        let fresh: Headers = [("Ünïcode", "välue ✓"), ("B", "3")].into_iter().collect();
        assert_eq!(h, fresh);
        assert_eq!(h.get("ÜNÏCODE"), None, "only ASCII case folds");
        assert_eq!(h.get("Ünïcode"), Some("välue ✓"));
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("Ünïcode", "välue ✓"), ("B", "3")]
        );
        h.remove("b");
        h.remove("ünïcode");
        assert_eq!(h.get("Ünïcode"), Some("välue ✓"));
        h.remove("Ünïcode");
        assert!(h.is_empty());
        assert_eq!(h, Headers::new());
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
