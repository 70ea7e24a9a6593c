//! The URL a transport last sent to, kept parsed by the HTTP library's own
//! parser.
//!
//! A handle sends to its token endpoint again and again; parsing the URL
//! cost a refresh more than the rest of the request's conversion. The core
//! sends only to configured endpoints (token, revocation, JWKS, discovery);
//! a URL handed to an adapter's `send_request` is kept the same way until
//! the next request, so it should not carry a secret in its query.

use std::sync::{Mutex, PoisonError};

/// One URL and what the HTTP library's parser made of it: a handle sends
/// to its token endpoint again and again, and parsing the URL cost a
/// refresh more than the rest of the request's conversion. A URL handed
/// to an adapter's `send_request` is kept the same way until the next
/// request, so it should not carry a secret in its query.
#[derive(Debug)]
pub struct LastUrl<T>(Mutex<Option<(String, T)>>);

impl<T> Default for LastUrl<T> {
    fn default() -> Self {
        LastUrl(Mutex::new(None))
    }
}

impl<T: Clone> LastUrl<T> {
    /// `url` parsed: the kept value when `url` is the URL last parsed,
    /// otherwise `parse(url)`, kept when it succeeds (a refused URL
    /// leaves the kept one as it was).
    ///
    /// # Errors
    /// What `parse` answers.
    pub fn parse<E>(&self, url: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, E> {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((kept, parsed)) = &*last
            && kept == url
        {
            return Ok(parsed.clone());
        }
        let parsed = parse(url)?;
        *last = Some((url.to_owned(), parsed.clone()));
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept value serves only the same URL: a request to another
    /// endpoint (a revocation, a discovery fetch) and back is parsed for
    /// its own URL.
    #[test]
    fn a_parsed_url_serves_only_the_same_url() {
        let last = LastUrl::default();
        let mut parses = 0;
        let mut parse = |url: &str| -> Result<String, ()> {
            parses += 1;
            if url.contains(' ') {
                Err(())
            } else {
                Ok(url.to_uppercase())
            }
        };
        for url in [
            "https://a/token",
            "https://a/token",
            "https://a/revoke",
            "https://a/token",
        ] {
            assert_eq!(last.parse(url, &mut parse), Ok(url.to_uppercase()));
        }
        assert_eq!(last.parse("not a url", &mut parse), Err(()));
        assert_eq!(
            last.parse("https://a/token", &mut parse),
            Ok("HTTPS://A/TOKEN".to_owned())
        );
        // Parsed again only when the URL changed; the refused one left the
        // kept URL as it was.
        assert_eq!(parses, 4);
    }
}
