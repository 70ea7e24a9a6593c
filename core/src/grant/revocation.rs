//! Token revocation (RFC 7009): tell the authorization server a refresh or
//! access token is no longer needed (logout, `revokeRefreshToken`).
//!
//! # Call order
//!
//! ```text
//! RevocationRequest { .. }.build() ─► HttpRequest
//! …send it…
//! parse_revocation_response(&response, &limits) ─► Ok(()) on HTTP 200
//!     Err(Unavailable { retry_after })    503: try again later
//!     Err(UnsupportedTokenType(..))        the server cannot revoke this kind
//!     Err(Rejected(..)) / Err(UnexpectedResponse { .. })
//! ```
//!
//! A 200 is success whatever the body says: RFC 7009 §2.2 answers 200 for
//! an unknown or already revoked token too, and tells clients to ignore
//! the body. Revocation changes nothing the core stores; the caller
//! decides whether to clear the session.

use core::fmt;
use core::time::Duration;

use crate::error::ResponseError;
pub use crate::error::{RetryAfter, RevocationError};
use crate::form::FormBody;
use crate::grant::{ClientAuth, form_post};
use crate::http::{HttpRequest, HttpResponse};
use crate::limits::Limits;
use crate::time::UnixTime;
use crate::token::response::ParsedResponse;

/// `token_type_hint` (RFC 7009 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `refresh_token`.
    RefreshToken,
    /// `access_token`.
    AccessToken,
}

impl TokenTypeHint {
    /// The registered value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::RefreshToken => "refresh_token",
            TokenTypeHint::AccessToken => "access_token",
        }
    }
}

/// The inputs of one revocation request. `Debug` redacts the token.
#[derive(Clone, Copy)]
pub struct RevocationRequest<'a> {
    /// The revocation endpoint URL.
    pub revocation_endpoint: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// How the client authenticates (as at the token endpoint).
    pub client_auth: &'a ClientAuth,
    /// The token to revoke.
    pub token: &'a str,
    /// What kind of token it is, when known.
    pub token_type_hint: Option<TokenTypeHint>,
}

impl RevocationRequest<'_> {
    /// The HTTP request: `POST` of `token`, `token_type_hint`, then the
    /// client authentication.
    #[must_use]
    pub fn build(&self) -> HttpRequest {
        let mut form = FormBody::new();
        let mut headers = super::request_headers();
        form.append("token", self.token);
        if let Some(hint) = self.token_type_hint {
            form.append("token_type_hint", hint.as_str());
        }
        self.client_auth
            .apply(self.client_id, &mut form, &mut headers);
        form_post(self.revocation_endpoint, form, headers)
    }
}

impl fmt::Debug for RevocationRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationRequest")
            .field("revocation_endpoint", &self.revocation_endpoint)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth)
            .field(
                "token",
                &format_args!("<redacted {} bytes>", self.token.len()),
            )
            .field("token_type_hint", &self.token_type_hint)
            .finish()
    }
}

impl RetryAfter {
    /// Parses delta-seconds or an IMF-fixdate
    /// (`Sun, 06 Nov 1994 08:49:37 GMT`); other forms give `None`.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits to fit: the longest delay there is.
            let secs = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(RetryAfter::Delay(Duration::from_secs(secs)));
        }
        parse_imf_fixdate(value).map(RetryAfter::At)
    }

    /// When to retry, for a response received at `now`.
    #[must_use]
    pub fn retry_at(self, now: UnixTime) -> UnixTime {
        match self {
            RetryAfter::Delay(delay) => now.saturating_add(delay),
            RetryAfter::At(at) => at,
        }
    }
}

fn parse_imf_fixdate(value: &str) -> Option<UnixTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let mut parts = value.split(' ');
    let (Some(weekday), Some(day), Some(month), Some(year), Some(time), Some("GMT"), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if weekday.len() != 4 || !weekday.ends_with(',') || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let number = |s: &str| -> Option<u64> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let day = number(day)?;
    let year = number(year)?;
    let month = 1 + [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as u64;
    let mut hms = time.split(':');
    let (Some(h), Some(m), Some(s), None) = (hms.next(), hms.next(), hms.next(), hms.next()) else {
        return None;
    };
    if h.len() != 2 || m.len() != 2 || s.len() != 2 {
        return None;
    }
    let (h, m, s) = (number(h)?, number(m)?, number(s)?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || year < 1970 {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm), for years >= 1970.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(UnixTime::from_secs(days * 86_400 + h * 3600 + m * 60 + s))
}

/// Reads a revocation response.
///
/// # Errors
/// A [`RevocationError`] for anything but HTTP 200.
pub fn parse_revocation_response(
    response: &HttpResponse,
    limits: &Limits,
) -> Result<(), RevocationError> {
    revocation_outcome(&ParsedResponse::parse(response, limits))
}

/// [`parse_revocation_response`] on a response parsed once.
pub(crate) fn revocation_outcome(answer: &ParsedResponse<'_>) -> Result<(), RevocationError> {
    let status = answer.status();
    if status == 200 {
        return Ok(());
    }
    answer.check_limits().map_err(RevocationError::Limit)?;
    if status == 503 {
        return Err(RevocationError::Unavailable {
            retry_after: answer
                .headers()
                .get("retry-after")
                .and_then(RetryAfter::parse),
        });
    }
    match answer.check() {
        Err(ResponseError::Server(e)) if e.error == "unsupported_token_type" => {
            Err(RevocationError::UnsupportedTokenType(e))
        }
        Err(ResponseError::Server(e)) => Err(RevocationError::Rejected(e)),
        Err(e @ (ResponseError::TooLarge { .. } | ResponseError::HeadersTooLarge { .. })) => {
            Err(RevocationError::Limit(e))
        }
        _ => Err(RevocationError::UnexpectedResponse { status }),
    }
}

/// A revocation request for a refresh token, with the hint set.
#[must_use]
pub fn revoke_refresh_token<'a>(
    revocation_endpoint: &'a str,
    client_id: &'a str,
    client_auth: &'a ClientAuth,
    refresh_token: &'a crate::secret::RefreshToken,
) -> RevocationRequest<'a> {
    RevocationRequest {
        revocation_endpoint,
        client_id,
        client_auth,
        token: refresh_token.secret(),
        token_type_hint: Some(TokenTypeHint::RefreshToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{ClientSecret, RefreshToken};

    fn parse(response: HttpResponse) -> Result<(), RevocationError> {
        parse_revocation_response(&response, &Limits::default())
    }

    #[test]
    fn builds_the_wire_request() {
        let auth = ClientAuth::SecretBasic(ClientSecret::new("secret"));
        let rt = RefreshToken::new("rt/1");
        let request = revoke_refresh_token("https://as.example/oauth/revoke", "client", &auth, &rt);
        let printed = alloc::format!("{request:?}");
        assert!(!printed.contains("rt/1"), "{printed}");
        let request = request.build();
        assert_eq!(request.url, "https://as.example/oauth/revoke");
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(
            core::str::from_utf8(&request.body).unwrap(),
            "token=rt%2F1&token_type_hint=refresh_token"
        );
        assert_eq!(
            request.headers.get("authorization"),
            Some("Basic Y2xpZW50OnNlY3JldA==")
        );

        let auth = ClientAuth::SecretPost(ClientSecret::new("s"));
        let request = RevocationRequest {
            revocation_endpoint: "https://as.example/revoke",
            client_id: "c",
            client_auth: &auth,
            token: "at",
            token_type_hint: Some(TokenTypeHint::AccessToken),
        }
        .build();
        assert_eq!(
            core::str::from_utf8(&request.body).unwrap(),
            "token=at&token_type_hint=access_token&client_id=c&client_secret=s"
        );
    }

    #[test]
    fn responses() {
        assert!(parse(HttpResponse::new(200, "")).is_ok());
        // The body of a 200 is ignored.
        assert!(parse(HttpResponse::new(200, "<html>")).is_ok());
        let e = parse(HttpResponse::new(
            400,
            r#"{"error":"unsupported_token_type"}"#,
        ))
        .unwrap_err();
        assert_eq!(e.code(), "unsupported_token_type");
        let e = parse(HttpResponse::new(
            401,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#,
        ))
        .unwrap_err();
        assert_eq!(e.code(), "failed_to_revoke");
        assert_eq!(e.server_error().unwrap().error, "invalid_client");
        assert_eq!(
            parse(HttpResponse::new(500, "<html>")).unwrap_err(),
            RevocationError::UnexpectedResponse { status: 500 }
        );
        assert_eq!(
            parse(HttpResponse::new(204, "")).unwrap_err().code(),
            "unexpected_response"
        );
        assert_eq!(
            parse(HttpResponse::new(404, "{}")).unwrap_err().code(),
            "unexpected_response"
        );
        let limits = Limits {
            max_body_bytes: 4,
            ..Limits::default()
        };
        assert_eq!(
            parse_revocation_response(&HttpResponse::new(400, "{\"error\":1}"), &limits)
                .unwrap_err()
                .code(),
            "response_limit_exceeded"
        );
    }

    #[test]
    fn unavailable_with_retry_after() {
        let e = parse(HttpResponse::new(503, "").with_header("Retry-After", "120")).unwrap_err();
        assert_eq!(e.code(), "revocation_unavailable");
        let RevocationError::Unavailable {
            retry_after: Some(retry),
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            retry.retry_at(UnixTime::from_secs(1000)),
            UnixTime::from_secs(1120)
        );
        let e = parse(
            HttpResponse::new(503, "{\"error\":\"temporarily_unavailable\"}")
                .with_header("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
        )
        .unwrap_err();
        assert_eq!(
            e,
            RevocationError::Unavailable {
                retry_after: Some(RetryAfter::At(UnixTime::from_secs(784_111_777)))
            }
        );
        assert_eq!(
            parse(HttpResponse::new(503, "")).unwrap_err(),
            RevocationError::Unavailable { retry_after: None }
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            RetryAfter::parse("0"),
            Some(RetryAfter::Delay(Duration::ZERO))
        );
        assert_eq!(
            RetryAfter::parse("99999999999999999999999"),
            Some(RetryAfter::Delay(Duration::from_secs(u64::MAX)))
        );
        assert_eq!(
            RetryAfter::parse("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(RetryAfter::At(UnixTime::EPOCH))
        );
        assert_eq!(
            RetryAfter::parse("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(RetryAfter::At(UnixTime::from_secs(1_835_481_599)))
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(RetryAfter::parse(bad), None, "{bad:?}");
        }
    }
}
