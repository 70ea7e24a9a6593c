//! `WWW-Authenticate` parsing (RFC 9110 §11.6.1) and the DPoP and Bearer
//! errors resource servers signal with it (RFC 9449 §7.1, §9; RFC 6750
//! §3).
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! - One field value may hold several challenges and there may be several
//!   fields; [`parse_www_authenticate`] reads every `WWW-Authenticate`
//!   field of a response, each on its own (an unterminated quote in one
//!   field cannot swallow the next).
//! - Scheme and parameter names are case-insensitive; they are returned
//!   lower-cased. Quoted-string values are unescaped (`\x` → `x`).
//! - Empty list elements (`, ,`) and optional whitespace around `=` and
//!   commas are accepted, as RFC 9110 §5.6.1 requires of recipients.
//! - A parameter name appearing twice in one challenge is an error
//!   (RFC 9110 §11.2: "MUST only occur once per challenge"), so
//!   `error="use_dpop_nonce", error="invalid_token"` cannot be read two
//!   ways.
//! - Only ASCII is accepted outside quoted strings. Inside a quoted
//!   string, non-ASCII is kept as it is (RFC 9110 `obs-text`); control
//!   characters other than horizontal tab are errors everywhere.
//! - Input is bounded: [`MAX_WWW_AUTHENTICATE_BYTES`] in all fields
//!   together, [`MAX_CHALLENGES`] challenges, [`MAX_CHALLENGE_PARAMS`]
//!   parameters per challenge.
//!
//! Malformed input gives a [`ChallengeError`]; the parser never panics.

use alloc::string::String;
use alloc::vec::Vec;

use crate::http::Headers;

/// Most bytes read from all `WWW-Authenticate` fields together.
pub const MAX_WWW_AUTHENTICATE_BYTES: usize = 16 * 1024;
/// Most challenges read from all fields together.
pub const MAX_CHALLENGES: usize = 16;
/// Most auth-params in one challenge.
pub const MAX_CHALLENGE_PARAMS: usize = 32;

/// Why `WWW-Authenticate` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The fields are longer than [`MAX_WWW_AUTHENTICATE_BYTES`].
    #[error("WWW-Authenticate exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More than [`MAX_CHALLENGES`] challenges.
    #[error("WWW-Authenticate has more than {limit} challenges")]
    TooManyChallenges {
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_CHALLENGE_PARAMS`] parameters in one challenge.
    #[error("a WWW-Authenticate challenge has more than {limit} parameters")]
    TooManyParams {
        /// The limit.
        limit: usize,
    },
    /// A parameter name occurs twice in one challenge.
    #[error("a WWW-Authenticate challenge repeats a parameter")]
    DuplicateParam,
    /// The syntax is wrong at byte `offset` of the field value.
    #[error("malformed WWW-Authenticate at byte {offset}: {reason}")]
    Malformed {
        /// Byte offset in the field value.
        offset: usize,
        /// What was expected.
        reason: &'static str,
    },
}

/// One authentication challenge: a scheme with either a token68 or
/// parameters (or neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// The auth-scheme, lower-cased (`bearer`, `dpop`, `basic`, …).
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `scheme` (case-insensitive).
    #[must_use]
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The token68, for schemes that use one (`Negotiate abc==`).
    #[must_use]
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The value of parameter `name` (case-insensitive), unescaped.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All parameters in order, names lower-cased.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The `error` parameter (RFC 6750 §3, RFC 9449 §7.1).
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.param("error")
    }
}

/// Parses one `WWW-Authenticate` field value.
///
/// # Errors
/// [`ChallengeError`] when it is malformed or exceeds the limits.
pub fn parse_challenges(field_value: &str) -> Result<Vec<Challenge>, ChallengeError> {
    parse_challenge_fields([field_value])
}

/// Parses several `WWW-Authenticate` field values (in order) as one list.
///
/// # Errors
/// [`ChallengeError`] when any is malformed or together they exceed the
/// limits.
pub fn parse_challenge_fields<'a>(
    fields: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, ChallengeError> {
    let mut challenges = Vec::new();
    let mut total = 0usize;
    for field in fields {
        total = total.saturating_add(field.len());
        if total > MAX_WWW_AUTHENTICATE_BYTES {
            return Err(ChallengeError::TooLarge {
                limit: MAX_WWW_AUTHENTICATE_BYTES,
            });
        }
        Parser {
            input: field.as_bytes(),
            pos: 0,
        }
        .parse_into(&mut challenges)?;
    }
    Ok(challenges)
}

/// Parses every `WWW-Authenticate` field of a response's `headers`.
///
/// # Errors
/// [`ChallengeError`] when any is malformed or they exceed the limits.
pub fn parse_www_authenticate(headers: &Headers) -> Result<Vec<Challenge>, ChallengeError> {
    parse_challenge_fields(headers.get_all("www-authenticate"))
}

/// The `error` of the first `DPoP` challenge, e.g. `use_dpop_nonce`,
/// `invalid_token` or `invalid_dpop_proof`.
#[must_use]
pub fn dpop_error(challenges: &[Challenge]) -> Option<&str> {
    challenges
        .iter()
        .find(|c| c.is_scheme("dpop"))
        .and_then(Challenge::error)
}

/// Whether a resource server asks for a (new) nonce: `DPoP
/// error="use_dpop_nonce"` (RFC 9449 §9). The request may then be retried
/// once with a fresh proof carrying the nonce from `DPoP-Nonce`.
#[must_use]
pub fn is_use_dpop_nonce(challenges: &[Challenge]) -> bool {
    dpop_error(challenges) == Some("use_dpop_nonce")
}

/// Whether a `Bearer` or `DPoP` challenge says `error="invalid_token"`:
/// the access token is expired, revoked or otherwise unusable and a fresh
/// one is needed.
#[must_use]
pub fn bearer_or_dpop_invalid_token(challenges: &[Challenge]) -> bool {
    challenges.iter().any(|c| {
        (c.is_scheme("bearer") || c.is_scheme("dpop")) && c.error() == Some("invalid_token")
    })
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 9110 token68 characters other than the trailing `=`.
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn malformed(&self, reason: &'static str) -> ChallengeError {
        ChallengeError::Malformed {
            offset: self.pos,
            reason,
        }
    }

    /// Skips OWS (spaces and horizontal tabs); returns whether any was.
    fn skip_ows(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Skips whitespace and commas: the separators and empty elements of
    /// a list. Returns whether a comma was among them.
    fn skip_list_separators(&mut self) -> bool {
        let mut comma = false;
        while let Some(b @ (b' ' | b'\t' | b',')) = self.peek() {
            comma |= b == b',';
            self.pos += 1;
        }
        comma
    }

    fn text(&self, start: usize, end: usize) -> &'a str {
        // Only ever called on ranges of ASCII bytes.
        self.input
            .get(start..end)
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.text(start, self.pos))
    }

    /// A token68 that ends the challenge (followed by OWS and the end or a
    /// comma); otherwise nothing is consumed.
    fn token68(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_token68_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.pos += 1;
        }
        let end = self.pos;
        self.skip_ows();
        if matches!(self.peek(), None | Some(b',')) {
            Some(self.text(start, end))
        } else {
            self.pos = start;
            None
        }
    }

    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        // The caller saw the opening quote.
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.malformed("unterminated quoted-string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(escaped @ (b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)) => {
                            value.push(escaped);
                            self.pos += 1;
                        }
                        Some(_) => return Err(self.malformed("invalid quoted-pair")),
                        None => return Err(self.malformed("unterminated quoted-string")),
                    }
                }
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => {
                    value.push(b);
                    self.pos += 1;
                }
                _ => return Err(self.malformed("control character in quoted-string")),
            }
        }
        // Only ASCII backslashes were removed from valid UTF-8.
        String::from_utf8(value).map_err(|_| self.malformed("invalid UTF-8 in quoted-string"))
    }

    fn parse_into(&mut self, out: &mut Vec<Challenge>) -> Result<(), ChallengeError> {
        loop {
            self.skip_list_separators();
            if self.peek().is_none() {
                return Ok(());
            }
            let scheme = self
                .token()
                .ok_or_else(|| self.malformed("expected an auth-scheme"))?;
            if out.len() >= MAX_CHALLENGES {
                return Err(ChallengeError::TooManyChallenges {
                    limit: MAX_CHALLENGES,
                });
            }
            let mut challenge = Challenge {
                scheme: scheme.to_ascii_lowercase(),
                token68: None,
                params: Vec::new(),
            };
            let spaced = self.skip_ows();
            match self.peek() {
                None => {
                    out.push(challenge);
                    return Ok(());
                }
                // An empty first list element: parameters may follow the
                // comma, or the next challenge.
                Some(b',') => {}
                Some(_) if !spaced => {
                    return Err(self.malformed("expected a space after the auth-scheme"));
                }
                Some(_) => {
                    if let Some(token68) = self.token68() {
                        challenge.token68 = Some(String::from(token68));
                        out.push(challenge);
                        continue;
                    }
                }
            }
            self.parse_params(&mut challenge)?;
            out.push(challenge);
        }
    }

    /// Reads `#auth-param` until the end or the start of the next
    /// challenge: a token not followed by `=`, after a comma.
    fn parse_params(&mut self, challenge: &mut Challenge) -> Result<(), ChallengeError> {
        loop {
            let after_comma = self.skip_list_separators();
            if self.peek().is_none() {
                return Ok(());
            }
            let start = self.pos;
            let name = self
                .token()
                .ok_or_else(|| self.malformed("expected a parameter name"))?;
            self.skip_ows();
            if self.peek() != Some(b'=') {
                if !after_comma {
                    return Err(self.malformed("expected '=' after a parameter name"));
                }
                // The next challenge starts here.
                self.pos = start;
                return Ok(());
            }
            self.pos += 1;
            self.skip_ows();
            let value = match self.peek() {
                Some(b'"') => self.quoted_string()?,
                _ => String::from(
                    self.token()
                        .ok_or_else(|| self.malformed("expected a token or quoted-string"))?,
                ),
            };
            if challenge.params.len() >= MAX_CHALLENGE_PARAMS {
                return Err(ChallengeError::TooManyParams {
                    limit: MAX_CHALLENGE_PARAMS,
                });
            }
            if challenge.param(name).is_some() {
                return Err(ChallengeError::DuplicateParam);
            }
            challenge.params.push((name.to_ascii_lowercase(), value));
            self.skip_ows();
            match self.peek() {
                None => return Ok(()),
                // The loop's separator skipping takes the comma.
                Some(b',') => {}
                Some(_) => return Err(self.malformed("expected ',' after a parameter")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    /// (scheme, token68, params) of each challenge.
    type Shape<'a> = Vec<(&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>)>;

    fn shape(challenges: &[Challenge]) -> Shape<'_> {
        challenges
            .iter()
            .map(|c| (c.scheme(), c.token68(), c.params().collect()))
            .collect()
    }

    fn parses(input: &str) -> Vec<Challenge> {
        parse_challenges(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn rfc_9449_and_6750_examples() {
        let c = parses(
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
        );
        assert_eq!(
            shape(&c),
            vec![(
                "dpop",
                None,
                vec![
                    ("error", "use_dpop_nonce"),
                    (
                        "error_description",
                        "Resource server requires nonce in DPoP proof"
                    )
                ]
            )]
        );
        assert!(is_use_dpop_nonce(&c));
        assert_eq!(dpop_error(&c), Some("use_dpop_nonce"));
        assert!(!bearer_or_dpop_invalid_token(&c));

        let c = parses(r#"DPoP algs="ES256 PS256""#);
        assert_eq!(c[0].param("ALGS"), Some("ES256 PS256"));
        assert_eq!(dpop_error(&c), None);

        let c = parses(
            r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#,
        );
        assert!(bearer_or_dpop_invalid_token(&c));
        assert!(!is_use_dpop_nonce(&c));
        assert_eq!(c[0].error(), Some("invalid_token"));
    }

    #[test]
    fn several_challenges_in_one_field() {
        let c = parses(r#"Bearer realm="api", DPoP algs="ES256", error="invalid_token""#);
        assert_eq!(
            shape(&c),
            vec![
                ("bearer", None, vec![("realm", "api")]),
                (
                    "dpop",
                    None,
                    vec![("algs", "ES256"), ("error", "invalid_token")]
                ),
            ]
        );
        assert!(bearer_or_dpop_invalid_token(&c));

        let c = parses(
            "Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", Basic realm=\"simple\"",
        );
        assert_eq!(
            shape(&c),
            vec![
                (
                    "newauth",
                    None,
                    vec![
                        ("realm", "apps"),
                        ("type", "1"),
                        ("title", "Login to \"apps\"")
                    ]
                ),
                ("basic", None, vec![("realm", "simple")]),
            ]
        );

        let c = parses("Negotiate a87421000492aa874209af8bc028==, Basic realm=x, DPoP");
        assert_eq!(
            shape(&c),
            vec![
                ("negotiate", Some("a87421000492aa874209af8bc028=="), vec![]),
                ("basic", None, vec![("realm", "x")]),
                ("dpop", None, vec![]),
            ]
        );
        let c = parses("Bearer, DPoP");
        assert_eq!(
            shape(&c),
            vec![("bearer", None, vec![]), ("dpop", None, vec![])]
        );
        let c = parses("Negotiate abc/+_-.~9");
        assert_eq!(c[0].token68(), Some("abc/+_-.~9"));
        // `name=` with no value is, by the grammar, a token68, not an
        // empty parameter.
        let c = parses("DPoP error=, Bearer");
        assert_eq!(
            shape(&c),
            vec![("dpop", Some("error="), vec![]), ("bearer", None, vec![])]
        );
        assert_eq!(dpop_error(&c), None);
    }

    #[test]
    fn several_fields() {
        let mut headers = Headers::new();
        headers.append("WWW-Authenticate", r#"Bearer realm="a""#);
        headers.append("Content-Type", "application/json");
        headers.append("www-authenticate", r#"DPoP error="use_dpop_nonce""#);
        let c = parse_www_authenticate(&headers).unwrap();
        assert_eq!(c.len(), 2);
        assert!(is_use_dpop_nonce(&c));
        // A broken field does not swallow the next one: it is an error.
        let mut headers = Headers::new();
        headers.append("WWW-Authenticate", r#"Bearer realm="a"#);
        headers.append("WWW-Authenticate", r#"DPoP error="x""#);
        assert!(parse_www_authenticate(&headers).is_err());
        assert_eq!(parse_www_authenticate(&Headers::new()), Ok(vec![]));
    }

    #[test]
    fn case_whitespace_and_empty_elements() {
        let c = parses("  dPoP   ERROR =\t\"use_dpop_nonce\" ,  Error_Description= x  ");
        assert_eq!(
            shape(&c),
            vec![(
                "dpop",
                None,
                vec![("error", "use_dpop_nonce"), ("error_description", "x")]
            )]
        );
        assert!(is_use_dpop_nonce(&c));
        for input in [
            ",,DPoP error=use_dpop_nonce,,",
            ", , DPoP , , error=use_dpop_nonce , ,",
            "DPoP ,error=use_dpop_nonce",
            "DPoP\terror=use_dpop_nonce",
        ] {
            let c = parses(input);
            assert!(is_use_dpop_nonce(&c), "{input:?}");
            assert_eq!(c.len(), 1, "{input:?}");
        }
        let c = parses("Bearer , , Basic");
        assert_eq!(
            shape(&c),
            vec![("bearer", None, vec![]), ("basic", None, vec![])]
        );
        assert_eq!(parses(""), vec![]);
        assert_eq!(parses(" , ,\t"), vec![]);
        // Scheme comparison is case-insensitive, values are not.
        assert!(!is_use_dpop_nonce(&parses("DPoP error=USE_DPOP_NONCE")));
    }

    #[test]
    fn quoted_strings() {
        let c = parses(r#"X a="", b="\\", c="\"q\"", d="tab	and space ", e="ümlaut", f="a\z""#);
        let params: Vec<_> = c[0].params().collect();
        assert_eq!(
            params,
            vec![
                ("a", ""),
                ("b", "\\"),
                ("c", "\"q\""),
                ("d", "tab\tand space "),
                ("e", "ümlaut"),
                ("f", "az"),
            ]
        );
        // A comma inside a quoted string does not split.
        let c = parses(r#"Bearer error_description="a, DPoP b=c""#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("error_description"), Some("a, DPoP b=c"));
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let malformed = [
            r#"DPoP error="use_dpop_nonce"#,       // unterminated quote
            r#"DPoP error="use_dpop_nonce\"#,      // escaped closing quote
            "DPoP =use_dpop_nonce",                // '=' without name
            "DPoP error=use_dpop_nonce, =x",       // '=' without name later
            "=DPoP",                               // no scheme
            "DPoP error==x",                       // stray '='
            "DPoP error=\"a\"b",                   // junk after a quoted value
            "DPoP error=a b",                      // junk after a token value
            "DPoP error=a realm=b",                // missing comma
            "DPoP\"x\"",                           // no space after the scheme
            "DPoP=x",                              // no space after the scheme
            "DPoP error=\"use_dpop_nonce\" x=1 y", // missing comma
            "Bearer Basic realm=x",                // token then scheme, no comma
            "Négotiate abc",                       // non-ASCII scheme
            "DPoP érror=x",                        // non-ASCII name
            "DPoP error=nönce",                    // non-ASCII token value
            "DPoP error=\"a\u{1}b\"",              // control character
            "DPoP error=\"a\\\u{1}\"",             // control character escaped
            "DPoP error=\"a\rb\"",                 // CR
            "DPoP\u{0}",                           // NUL
            "DPoP error=x;y=z",                    // ';' is not a separator
            "Basic realm=\"a\", realm=\"b\"",      // duplicate parameter
            "DPoP error=a, ERROR=b",               // duplicate, case-insensitive
        ];
        for input in malformed {
            assert!(parse_challenges(input).is_err(), "{input:?} was accepted");
        }
        assert_eq!(
            parse_challenges("DPoP =x"),
            Err(ChallengeError::Malformed {
                offset: 5,
                reason: "expected a parameter name"
            })
        );
        assert_eq!(
            parse_challenges("Basic a=1, A=2"),
            Err(ChallengeError::DuplicateParam)
        );
    }

    #[test]
    fn limits() {
        let huge = format!(
            "Bearer realm=\"{}\"",
            "a".repeat(MAX_WWW_AUTHENTICATE_BYTES)
        );
        assert_eq!(
            parse_challenges(&huge),
            Err(ChallengeError::TooLarge {
                limit: MAX_WWW_AUTHENTICATE_BYTES
            })
        );
        // The limit covers all fields together.
        let half = "a".repeat(MAX_WWW_AUTHENTICATE_BYTES / 2 + 1);
        assert!(matches!(
            parse_challenge_fields([half.as_str(), half.as_str()]),
            Err(ChallengeError::TooLarge { .. })
        ));

        let at = vec!["Basic"; MAX_CHALLENGES].join(", ");
        assert_eq!(parses(&at).len(), MAX_CHALLENGES);
        let past = vec!["Basic"; MAX_CHALLENGES + 1].join(", ");
        assert_eq!(
            parse_challenges(&past),
            Err(ChallengeError::TooManyChallenges {
                limit: MAX_CHALLENGES
            })
        );
        let params = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("p{i}=v")).collect();
            format!("X {}", list.join(", "))
        };
        assert_eq!(
            parses(&params(MAX_CHALLENGE_PARAMS))[0].params().count(),
            MAX_CHALLENGE_PARAMS
        );
        assert_eq!(
            parse_challenges(&params(MAX_CHALLENGE_PARAMS + 1)),
            Err(ChallengeError::TooManyParams {
                limit: MAX_CHALLENGE_PARAMS
            })
        );
    }
}
