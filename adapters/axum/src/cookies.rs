//! Request cookies, `Set-Cookie` attributes, and the SDK's chunked cookies:
//! a value above [`MAX_CHUNK_SIZE`] bytes is written as `{name}__0`,
//! `{name}__1`, … and read back by joining a complete run of chunks
//! (`dist/server/cookies.js` `setChunkedCookie` / `getChunkedCookie`).
//!
//! ```text
//! RequestCookies::from_headers(&headers)
//!   get_chunked(&cookies, "__session")            ─► Some(value) | None
//!   set_chunked("__session", value, &attrs, max_age, &cookies, &mut set_cookies)
//!   delete_chunked("__session", &attrs, &cookies, &mut set_cookies)
//! ```

use std::borrow::Cow;

use cookie::{Cookie, SameSite};
use http::HeaderMap;

/// The SDK's chunk size (bytes of value per cookie).
pub const MAX_CHUNK_SIZE: usize = 3500;
/// How many chunk indices a write or delete always sweeps (the SDK's
/// `MAX_CHUNKS`), besides any higher one the request shows.
pub const MIN_SWEEP: usize = 5;
const CHUNK_PREFIX: &str = "__";

/// The cookies of one request, as sent (values not percent-decoded; the
/// SDK writes its JWEs raw).
#[derive(Debug, Default, Clone)]
pub struct RequestCookies<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestCookies<'a> {
    /// Every `Cookie` header of `headers`; unparseable pairs are skipped.
    #[must_use]
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        let mut pairs = Vec::new();
        for value in headers.get_all(http::header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(value).flatten() {
                if let (Some(name), Some(value)) = (cookie.name_raw(), cookie.value_raw()) {
                    pairs.push((name, value));
                }
            }
        }
        RequestCookies { pairs }
    }

    /// The first cookie called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Every cookie, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.pairs.iter().copied()
    }

    /// The index of `cookie` if it is a chunk of `name` (`{name}__{digits}`).
    fn chunk_index(name: &str, cookie: &str) -> Option<usize> {
        let digits = cookie.strip_prefix(name)?.strip_prefix(CHUNK_PREFIX)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// `name`'s chunks present in the request, as `(index, value)`.
    fn chunks(&self, name: &str) -> Vec<(usize, &'a str)> {
        self.pairs
            .iter()
            .filter_map(|(n, v)| Some((Self::chunk_index(name, n)?, *v)))
            .collect()
    }

    /// One past the highest chunk index of `name` to sweep: at least
    /// [`MIN_SWEEP`], more when the request shows higher ones.
    fn sweep_end(&self, name: &str) -> usize {
        self.chunks(name)
            .iter()
            .map(|(i, _)| i.saturating_add(1))
            .max()
            .unwrap_or(0)
            .max(MIN_SWEEP)
    }
}

/// The attributes every cookie of the integration is written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttributes {
    /// `Path` (default `/`).
    pub path: String,
    /// `Domain`, when set.
    pub domain: Option<String>,
    /// `Secure`.
    pub secure: bool,
    /// `SameSite` (default `Lax`: the cookie must come back on the
    /// top-level redirect from the authorization server).
    pub same_site: SameSite,
    /// `HttpOnly` (default on: scripts never see the session).
    pub http_only: bool,
}

impl CookieAttributes {
    /// `Path=/`, `SameSite=Lax`, `HttpOnly`, and `Secure` as given.
    #[must_use]
    pub fn new(secure: bool) -> Self {
        CookieAttributes {
            path: String::from("/"),
            domain: None,
            secure,
            same_site: SameSite::Lax,
            http_only: true,
        }
    }

    /// A `Set-Cookie` value for `name=value`, kept for `max_age` seconds
    /// (`None`: a browser-session cookie).
    #[must_use]
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut cookie = Cookie::build((name, value))
            .path(self.path.as_str())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site);
        if let Some(domain) = &self.domain {
            cookie = cookie.domain(domain.as_str());
        }
        if let Some(max_age) = max_age {
            let secs = i64::try_from(max_age).unwrap_or(i64::MAX);
            cookie = cookie.max_age(cookie::time::Duration::seconds(secs));
        }
        cookie.build().to_string()
    }

    /// A `Set-Cookie` value that deletes `name` (empty, `Max-Age=0`, the
    /// same attributes: browsers match on them).
    #[must_use]
    pub fn delete_cookie(&self, name: &str) -> String {
        self.set_cookie(name, "", Some(0))
    }
}

/// The value of cookie `name`: the cookie itself when present and not
/// empty, else its chunks joined — only when they run from `__0` without a
/// gap (a partial set is no value, as in the SDK).
#[must_use]
pub fn get_chunked<'a>(cookies: &RequestCookies<'a>, name: &str) -> Option<Cow<'a, str>> {
    if let Some(value) = cookies.get(name).filter(|v| !v.is_empty()) {
        return Some(Cow::Borrowed(value));
    }
    let mut chunks = cookies.chunks(name);
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_unstable_by_key(|(i, _)| *i);
    chunks.dedup_by_key(|(i, _)| *i);
    let complete = chunks.iter().enumerate().all(|(want, (i, _))| want == *i);
    if !complete {
        return None;
    }
    Some(Cow::Owned(chunks.iter().map(|(_, v)| *v).collect()))
}

/// Writes `value` as cookie `name`, chunked above [`MAX_CHUNK_SIZE`]
/// bytes, and deletes what the other shape left (the plain cookie, or
/// stale chunks). Returns the bytes of the `name=value` pairs written.
pub fn set_chunked(
    name: &str,
    value: &str,
    attributes: &CookieAttributes,
    max_age: Option<u64>,
    cookies: &RequestCookies<'_>,
    out: &mut Vec<String>,
) -> usize {
    let sweep_end = cookies.sweep_end(name);
    if value.len() <= MAX_CHUNK_SIZE {
        out.push(attributes.set_cookie(name, value, max_age));
        for i in 0..sweep_end {
            out.push(attributes.delete_cookie(&chunk_name(name, i)));
        }
        return name.len() + 1 + value.len();
    }
    let mut written = 0;
    let mut count = 0;
    // The values are ASCII (base64url and dots): byte chunks are character
    // chunks, as the SDK's `String.slice` makes them.
    for (i, chunk) in value.as_bytes().chunks(MAX_CHUNK_SIZE).enumerate() {
        let chunk = std::str::from_utf8(chunk).unwrap_or_default();
        let chunk_name = chunk_name(name, i);
        written += chunk_name.len() + 1 + chunk.len();
        out.push(attributes.set_cookie(&chunk_name, chunk, max_age));
        count = i + 1;
    }
    for i in count..sweep_end {
        out.push(attributes.delete_cookie(&chunk_name(name, i)));
    }
    out.push(attributes.delete_cookie(name));
    written
}

/// Deletes cookie `name` and its chunks.
pub fn delete_chunked(
    name: &str,
    attributes: &CookieAttributes,
    cookies: &RequestCookies<'_>,
    out: &mut Vec<String>,
) {
    out.push(attributes.delete_cookie(name));
    for i in 0..cookies.sweep_end(name) {
        out.push(attributes.delete_cookie(&chunk_name(name, i)));
    }
}

/// `{name}__{index}`.
#[must_use]
pub fn chunk_name(name: &str, index: usize) -> String {
    format!("{name}{CHUNK_PREFIX}{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, cookie.parse().unwrap());
        headers
    }

    #[test]
    fn chunks_join_only_when_complete() {
        let h = headers("__session__1=bb; x=1; __session__0=aa; __session__x=zz");
        assert_eq!(
            get_chunked(&RequestCookies::from_headers(&h), "__session").unwrap(),
            "aabb"
        );
        let h = headers("__session__0=aa; __session__2=cc");
        assert_eq!(
            get_chunked(&RequestCookies::from_headers(&h), "__session"),
            None
        );
        let h = headers("__session=whole; __session__0=aa");
        assert_eq!(
            get_chunked(&RequestCookies::from_headers(&h), "__session").unwrap(),
            "whole"
        );
        let h = headers("__session_x__0=aa");
        assert_eq!(
            get_chunked(&RequestCookies::from_headers(&h), "__session"),
            None
        );
    }

    #[test]
    fn large_values_are_chunked_and_old_shapes_deleted() {
        let attributes = CookieAttributes::new(false);
        let value = "v".repeat(MAX_CHUNK_SIZE * 2 + 1);
        let h = headers("__session=old; __session__6=stale");
        let cookies = RequestCookies::from_headers(&h);
        let mut out = Vec::new();
        set_chunked(
            "__session",
            &value,
            &attributes,
            Some(60),
            &cookies,
            &mut out,
        );
        let names: Vec<&str> = out.iter().map(|c| c.split('=').next().unwrap()).collect();
        assert_eq!(
            names,
            [
                "__session__0",
                "__session__1",
                "__session__2",
                "__session__3",
                "__session__4",
                "__session__5",
                "__session__6",
                "__session"
            ]
        );
        assert!(
            out[0].contains("HttpOnly")
                && out[0].contains("SameSite=Lax")
                && out[0].contains("Path=/")
        );
        assert!(out[0].contains("Max-Age=60") && !out[0].contains("Secure"));
        assert!(out[7].contains("Max-Age=0"));
    }
}
