//! Token endpoint responses: RFC 6749 §5.1 (success) and §5.2 (error).
//!
//! Parsing is lenient where real servers differ (`token_type` in any case,
//! `expires_in` as a number or a numeric string, unknown members kept) and
//! strict where mistakes cost tokens (a 2xx carrying `error` is an error, a
//! non-JSON body is an error naming the status, oversized input is refused
//! before it is parsed).
//!
//! A response is parsed once, by serde_json, into a `ParsedResponse`
//! whose members borrow from the body (strings without escapes are not
//! copied); every reader of the answer (the DPoP nonce retry, the MFA
//! details, the tokens, the errors) reads that one parse. Its decisions
//! are those of reading the body as a `serde_json::Value` object: the
//! property tests below and the `cargo fuzz` oracle hold it to that
//! definition.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use core::fmt;
use core::time::Duration;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{MfaRequired, ResponseError, ServerError};
use crate::http::{Headers, HttpResponse};
use crate::limits::{Limits, json_depth_exceeds};
use crate::secret::{AccessToken, IdToken, MfaToken, RefreshToken};
use crate::time::UnixTime;
use crate::token::TokenType;
use crate::token::set::{seconds_from_json, seconds_from_str};

/// A successful token endpoint response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TokenResponse {
    /// `access_token`.
    pub access_token: AccessToken,
    /// `token_type`, normalised. A missing `token_type` reads as `Bearer`.
    pub token_type: TokenType,
    /// `expires_in` in seconds, when sent.
    pub expires_in: Option<u64>,
    /// `refresh_token`, when the server issued (or rotated) one.
    pub refresh_token: Option<RefreshToken>,
    /// `id_token`, when issued.
    pub id_token: Option<IdToken>,
    /// `scope` as granted, when sent (absent means "as requested").
    pub scope: Option<String>,
    /// `issued_token_type` (RFC 8693), when sent.
    pub issued_token_type: Option<String>,
    /// All other members.
    pub extra: Map<String, Value>,
}

impl TokenResponse {
    /// Parses a response of the token endpoint, whatever its status.
    ///
    /// # Errors
    /// [`ResponseError::Server`] for an OAuth error (any status, a 2xx with
    /// `error` included); [`ResponseError::NotJson`] for a body that is not
    /// JSON; [`ResponseError::Malformed`] for JSON that is not a token
    /// response; [`ResponseError::TooLarge`] / [`ResponseError::HeadersTooLarge`]
    /// past the limits.
    pub fn parse(response: &HttpResponse, limits: &Limits) -> Result<Self, ResponseError> {
        ParsedResponse::parse(response, limits).take_token_response()
    }

    /// When the access token expires: the time the request was **sent** plus
    /// `expires_in`, or plus `default_lifetime` when the server gave none
    /// (never "valid forever").
    #[must_use]
    pub fn expires_at(&self, sent_at: UnixTime, default_lifetime: Duration) -> UnixTime {
        match self.expires_in {
            Some(secs) => sent_at.saturating_add(Duration::from_secs(secs)),
            None => sent_at.saturating_add(default_lifetime),
        }
    }
}

/// The MFA details of an `mfa_required` error body (`mfa_token`,
/// `mfa_requirements`), or `None` when the body is not such an error.
#[must_use]
pub fn parse_mfa_required(response: &HttpResponse, limits: &Limits) -> Option<MfaRequired> {
    ParsedResponse::parse(response, limits).mfa_required()
}

/// A token endpoint response, parsed once: the limits checked, then the
/// body read into its members (borrowed from the body where possible), or
/// the reason it could not be. The manager parses each response once and
/// hands this to every reader: the DPoP nonce check, the MFA details, the
/// error and the tokens.
pub(crate) struct ParsedResponse<'a> {
    response: &'a HttpResponse,
    limits: Limits,
    /// Why the body is unreadable: over the limits, not JSON, or not a
    /// JSON object. `None`: `members` holds the body.
    unreadable: Option<ResponseError>,
    /// The body's members, filled in place (they are not small).
    members: Members<'a>,
}

impl<'a> ParsedResponse<'a> {
    /// Checks the limits (body size, headers, JSON depth) and parses the
    /// body.
    pub(crate) fn parse(response: &'a HttpResponse, limits: &Limits) -> Self {
        let mut parsed = ParsedResponse {
            response,
            limits: *limits,
            unreadable: None,
            members: Members::default(),
        };
        parsed.unreadable = read_body(response, limits, &mut parsed.members).err();
        parsed
    }

    /// The body's members, or why there are none.
    fn body(&self) -> Result<&Members<'a>, &ResponseError> {
        match &self.unreadable {
            None => Ok(&self.members),
            Some(unreadable) => Err(unreadable),
        }
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> u16 {
        self.response.status
    }

    /// The response's header fields.
    pub(crate) fn headers(&self) -> &'a Headers {
        &self.response.headers
    }

    /// The limits on the body size and the headers.
    ///
    /// # Errors
    /// [`ResponseError::TooLarge`] or [`ResponseError::HeadersTooLarge`].
    pub(crate) fn check_limits(&self) -> Result<(), ResponseError> {
        self.limits.check_response(self.response)
    }

    /// Whether the body is the OAuth error `code` (a JSON object whose
    /// `error` is that string), whatever the status.
    pub(crate) fn is_error(&self, code: &str) -> bool {
        self.body()
            .is_ok_and(|members| raw_str(members.errors().error.as_ref()) == Some(code))
    }

    /// The body as a JSON object: `Ok` for a 2xx object without `error`.
    /// An OAuth error (`error` member, any status) is
    /// [`ResponseError::Server`]; another non-2xx object is
    /// [`ResponseError::UnexpectedStatus`].
    ///
    /// # Errors
    /// As [`TokenResponse::parse`], but for the token members' checks.
    pub(crate) fn check(&self) -> Result<(), ResponseError> {
        let members = self.body().map_err(Clone::clone)?;
        let status = self.status();
        if members.errors().error.is_some() {
            return Err(ResponseError::Server(members.server_error(status)));
        }
        if !self.response.is_success() {
            return Err(ResponseError::UnexpectedStatus { status });
        }
        Ok(())
    }

    /// The token response (RFC 6749 §5.1 and §5.2 checks). Its members move
    /// out: call it once. After an error, nothing has moved, so the MFA
    /// details can still be read.
    ///
    /// # Errors
    /// As [`TokenResponse::parse`].
    pub(crate) fn take_token_response(&mut self) -> Result<TokenResponse, ResponseError> {
        self.check()?;
        let status = self.status();
        let max_token_bytes = self.limits.max_token_bytes;
        let parsed = self.members.take_token_response(status, max_token_bytes);
        // Fuzzing holds the one parse to serde_json's `Value` answers.
        #[cfg(fuzzing)]
        assert_eq!(
            parsed,
            reference::token_response(self.response, &self.limits)
        );
        parsed
    }

    /// The `id_token` of a successful answer, as [`take_token_response`]
    /// will read it (the last of duplicated members, as `JSON.parse`
    /// keeps); `None` for an error, an unreadable body, or an `id_token`
    /// that is not a string (which the token response refuses).
    ///
    /// [`take_token_response`]: ParsedResponse::take_token_response
    #[cfg(feature = "login")]
    pub(crate) fn id_token(&self) -> Option<&str> {
        let members = self.body().ok()?;
        if !self.response.is_success() || members.errors().error.is_some() {
            return None;
        }
        raw_str(members.id_token.as_ref())
    }

    /// The MFA details when the body is an `mfa_required` error (`error`
    /// or `code`), whatever the status.
    pub(crate) fn mfa_required(&self) -> Option<MfaRequired> {
        let details = self.body().ok().and_then(Members::mfa_required);
        #[cfg(fuzzing)]
        assert_eq!(
            details,
            reference::mfa_required(self.response, &self.limits)
        );
        details
    }
}

impl fmt::Debug for ParsedResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The members carry tokens.
        f.debug_struct("ParsedResponse")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// The limits, then one serde_json parse of the body.
///
/// The JSON depth limit decides before anything else the body says, as
/// if [`json_depth_exceeds`] ran first: it does run for every body that is
/// not a flat object (its answer taking precedence over the parse's). A
/// flat object, the shape of nearly every token response, has depth 1 and
/// so is within any limit but zero: its bytes are not scanned twice (the
/// flat reader this parse replaced skipped the scan the same way).
fn read_body<'a>(
    response: &'a HttpResponse,
    limits: &Limits,
    members: &mut Members<'a>,
) -> Result<(), ResponseError> {
    limits.check_response(response)?;
    let status = response.status;
    // As `serde_json::from_slice`: the value, then nothing but whitespace.
    // A body that is not UTF-8 is not JSON either; one check of the whole
    // body lets serde_json skip checking each string on its own.
    let parsed = core::str::from_utf8(&response.body)
        .map_err(drop)
        .and_then(|text| {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            BodySeed(members)
                .deserialize(&mut deserializer)
                .and_then(|object| deserializer.end().map(|()| object))
                .map_err(drop)
        });
    let flat = matches!(parsed, Ok(true)) && !members.nested;
    if !(flat && limits.max_json_depth >= 1)
        && json_depth_exceeds(&response.body, limits.max_json_depth)
    {
        return Err(ResponseError::Malformed {
            status,
            reason: "JSON nesting is deeper than the limit",
        });
    }
    match parsed {
        Ok(true) => Ok(()),
        Ok(false) if response.is_success() => Err(ResponseError::Malformed {
            status,
            reason: "the body is not a JSON object",
        }),
        Ok(false) => Err(ResponseError::UnexpectedStatus { status }),
        Err(_) => Err(ResponseError::NotJson { status }),
    }
}

/// A member's value as sent: a string (borrowed from the body when it has
/// no escapes), or any other JSON value.
#[derive(Debug)]
enum Raw<'a> {
    Str(Cow<'a, str>),
    Other(Value),
}

impl Raw<'_> {
    fn into_value(self) -> Value {
        match self {
            Raw::Str(s) => Value::String(s.into_owned()),
            Raw::Other(value) => value,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Raw::Other(Value::Null))
    }
}

/// The string of a member, when it is one.
fn raw_str<'r>(raw: Option<&'r Raw<'_>>) -> Option<&'r str> {
    match raw {
        Some(Raw::Str(s)) => Some(s),
        _ => None,
    }
}

/// The members of a token response object: the known ones by name, every
/// other in `extra` (as the SDK keeps them). The last of duplicates wins,
/// as in a `Map`.
#[derive(Default)]
struct Members<'a> {
    access_token: Option<Raw<'a>>,
    token_type: Option<Raw<'a>>,
    expires_in: Option<Raw<'a>>,
    refresh_token: Option<Raw<'a>>,
    id_token: Option<Raw<'a>>,
    scope: Option<Raw<'a>>,
    issued_token_type: Option<Raw<'a>>,
    /// The error members, when any came.
    errors: Option<Box<ErrorMembers<'a>>>,
    extra: Map<String, Value>,
    /// Whether any member's value (duplicates included) was an array or
    /// an object.
    nested: bool,
}

/// The members of an OAuth error (RFC 6749 §5.2) and of Auth0's
/// `mfa_required` error, kept apart: token responses seldom carry them, and
/// the members are moved whole.
#[derive(Default)]
struct ErrorMembers<'a> {
    error: Option<Raw<'a>>,
    error_description: Option<Raw<'a>>,
    error_uri: Option<Raw<'a>>,
    mfa_token: Option<Raw<'a>>,
    mfa_requirements: Option<Raw<'a>>,
}

const NO_ERROR_MEMBERS: ErrorMembers<'static> = ErrorMembers {
    error: None,
    error_description: None,
    error_uri: None,
    mfa_token: None,
    mfa_requirements: None,
};

impl<'a> Members<'a> {
    fn errors(&self) -> &ErrorMembers<'a> {
        self.errors.as_deref().unwrap_or(&NO_ERROR_MEMBERS)
    }

    /// Where `member` is kept.
    fn slot(&mut self, member: Member) -> &mut Option<Raw<'a>> {
        match member {
            Member::AccessToken => &mut self.access_token,
            Member::TokenType => &mut self.token_type,
            Member::ExpiresIn => &mut self.expires_in,
            Member::RefreshToken => &mut self.refresh_token,
            Member::IdToken => &mut self.id_token,
            Member::Scope => &mut self.scope,
            Member::IssuedTokenType => &mut self.issued_token_type,
            Member::Error => &mut self.errors.get_or_insert_default().error,
            Member::ErrorDescription => &mut self.errors.get_or_insert_default().error_description,
            Member::ErrorUri => &mut self.errors.get_or_insert_default().error_uri,
            Member::MfaToken => &mut self.errors.get_or_insert_default().mfa_token,
            Member::MfaRequirements => &mut self.errors.get_or_insert_default().mfa_requirements,
        }
    }

    /// The OAuth error of an object with an `error` member.
    #[cold]
    fn server_error(&self, status: u16) -> ServerError {
        let text = |raw: &Option<Raw<'_>>| raw_str(raw.as_ref()).map(String::from);
        let errors = self.errors();
        ServerError {
            status,
            // A non-string `error` still signals an error; keep its JSON form.
            error: match &errors.error {
                Some(Raw::Str(s)) => String::from(&**s),
                Some(Raw::Other(other)) => other.to_string(),
                None => String::from("unknown_error"),
            },
            error_description: text(&errors.error_description),
            error_uri: text(&errors.error_uri),
        }
    }

    #[cold]
    fn mfa_required(&self) -> Option<MfaRequired> {
        let errors = self.errors();
        let is_mfa = raw_str(errors.error.as_ref()) == Some("mfa_required")
            || self.extra.get("code").and_then(Value::as_str) == Some("mfa_required");
        if !is_mfa {
            return None;
        }
        Some(MfaRequired {
            description: raw_str(errors.error_description.as_ref()).map(String::from),
            mfa_token: raw_str(errors.mfa_token.as_ref()).map(MfaToken::new),
            mfa_requirements: errors.mfa_requirements.as_ref().map(|raw| match raw {
                Raw::Str(s) => Value::String(String::from(&**s)).to_string(),
                Raw::Other(value) => value.to_string(),
            }),
        })
    }

    /// The checks of RFC 6749 §5.1 on an object without `error`, in the
    /// order of the members. Moves the members out.
    fn take_token_response(
        &mut self,
        status: u16,
        max_token_bytes: usize,
    ) -> Result<TokenResponse, ResponseError> {
        let malformed = |reason| ResponseError::Malformed { status, reason };
        let access_token = match self.access_token.take() {
            Some(Raw::Str(s)) if s.is_empty() => return Err(malformed("access_token is empty")),
            Some(Raw::Str(s)) if s.len() > max_token_bytes => {
                return Err(malformed("access_token is longer than the limit"));
            }
            Some(Raw::Str(s)) => AccessToken::new(s),
            Some(Raw::Other(_)) => return Err(malformed("access_token is not a string")),
            None => return Err(malformed("access_token is missing")),
        };
        let token_type = match &self.token_type {
            Some(Raw::Str(s)) if !s.is_empty() => TokenType::parse(s),
            None => TokenType::Bearer,
            Some(_) => return Err(malformed("token_type is not a string")),
        };
        let expires_in = match &self.expires_in {
            None | Some(Raw::Other(Value::Null)) => None,
            Some(raw) => {
                let seconds = match raw {
                    Raw::Str(s) => seconds_from_str(s),
                    Raw::Other(value) => seconds_from_json(value),
                };
                match seconds {
                    Some(0) => return Err(malformed("expires_in is zero")),
                    Some(secs) => Some(secs),
                    None => return Err(malformed("expires_in is not a non-negative number")),
                }
            }
        };
        let refresh_token = optional_token(self.refresh_token.take(), max_token_bytes)
            .map_err(malformed)?
            .map(RefreshToken::new);
        let id_token = optional_token(self.id_token.take(), max_token_bytes)
            .map_err(malformed)?
            .map(IdToken::new);
        let scope = optional_string(self.scope.take()).map_err(malformed)?;
        let issued_token_type =
            optional_string(self.issued_token_type.take()).map_err(malformed)?;
        let mut extra = core::mem::take(&mut self.extra);
        // The error members are filed by name for error bodies; in a
        // success body they are ordinary extra members.
        if let Some(errors) = self.errors.take() {
            let ErrorMembers {
                error_description,
                error_uri,
                mfa_token,
                mfa_requirements,
                ..
            } = *errors;
            for (name, raw) in [
                ("error_description", error_description),
                ("error_uri", error_uri),
                ("mfa_token", mfa_token),
                ("mfa_requirements", mfa_requirements),
            ] {
                if let Some(raw) = raw {
                    extra.insert(String::from(name), raw.into_value());
                }
            }
        }
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token,
            id_token,
            scope,
            issued_token_type,
            extra,
        })
    }
}

fn optional_string(raw: Option<Raw<'_>>) -> Result<Option<String>, &'static str> {
    match raw {
        Some(Raw::Str(s)) => Ok(Some(s.into_owned())),
        Some(raw) if !raw.is_null() => Err("a string member has another type"),
        _ => Ok(None),
    }
}

fn optional_token(raw: Option<Raw<'_>>, max_bytes: usize) -> Result<Option<String>, &'static str> {
    match raw {
        Some(Raw::Str(s)) if s.is_empty() => Ok(None),
        Some(Raw::Str(s)) if s.len() > max_bytes => Err("a token is longer than the limit"),
        other => optional_string(other),
    }
}

/// The members of RFC 6749 §5.1 and §5.2, RFC 8693 §2.2.1, and Auth0's
/// `mfa_required` error.
#[derive(Clone, Copy)]
enum Member {
    AccessToken,
    TokenType,
    ExpiresIn,
    RefreshToken,
    IdToken,
    Scope,
    IssuedTokenType,
    Error,
    ErrorDescription,
    ErrorUri,
    MfaToken,
    MfaRequirements,
}

impl Member {
    fn of(name: &str) -> Option<Member> {
        Some(match name {
            "access_token" => Member::AccessToken,
            "token_type" => Member::TokenType,
            "expires_in" => Member::ExpiresIn,
            "refresh_token" => Member::RefreshToken,
            "id_token" => Member::IdToken,
            "scope" => Member::Scope,
            "issued_token_type" => Member::IssuedTokenType,
            "error" => Member::Error,
            "error_description" => Member::ErrorDescription,
            "error_uri" => Member::ErrorUri,
            "mfa_token" => Member::MfaToken,
            "mfa_requirements" => Member::MfaRequirements,
            _ => return None,
        })
    }
}

// The serde side: one pass over the body. Every JSON value is accepted
// wherever it stands (types are judged afterwards, as the `Value` reading
// judged them), and every value that is not a string of a known member is
// read as a `Value`, so what serde_json refuses is exactly what it refuses
// when reading the body as a `Value`: such bodies are not JSON.

/// Reads a body into the members it points to: `true` for an object,
/// `false` for another JSON value (read whole).
struct BodySeed<'m, 'a>(&'m mut Members<'a>);

impl<'de> DeserializeSeed<'de> for BodySeed<'_, 'de> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let members = self.0;
        let nested = |value: &Value| matches!(value, Value::Array(_) | Value::Object(_));
        while let Some(name) = map.next_key::<Name>()? {
            match name {
                Name::Known(member) => {
                    let raw = map.next_value()?;
                    members.nested |= matches!(&raw, Raw::Other(value) if nested(value));
                    *members.slot(member) = Some(raw);
                }
                Name::Other(name) => {
                    let value = map.next_value::<Value>()?;
                    members.nested |= nested(&value);
                    members.extra.insert(name, value);
                }
            }
        }
        Ok(true)
    }

    #[cold]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(|_| false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// A member name: a known member, or another (kept for `extra`).
enum Name {
    Known(Member),
    Other(String),
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = Name;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Name, E> {
        Ok(Member::of(name).map_or_else(|| Name::Other(String::from(name)), Name::Known))
    }

    fn visit_string<E>(self, name: String) -> Result<Name, E> {
        Ok(Member::of(&name).map_or(Name::Other(name), Name::Known))
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

/// Strings as [`Raw::Str`], anything else as the `Value` serde_json makes
/// of it.
struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(String::from(value))))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(value)))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Raw::Other(Value::Bool(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Raw::Other(Value::from(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Raw::Other(Value::from(value)))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        // As `Value` reads it: a non-finite float is `null`.
        Ok(Raw::Other(Value::from(value)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Raw::Other(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Raw::Other(Value::Null))
    }

    #[cold]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Raw::Other)
    }

    #[cold]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Raw::Other)
    }
}

/// The plain definition the one parse is held to (by the property tests
/// and under `cargo fuzz`): the body read as a `serde_json::Value` object,
/// its members judged from there.
#[cfg(any(test, fuzzing))]
mod reference {
    use super::*;

    /// The body as a JSON object, or the error of [`TokenResponse::parse`].
    pub(super) fn json_object(
        response: &HttpResponse,
        limits: &Limits,
    ) -> Result<Map<String, Value>, ResponseError> {
        limits.check_response(response)?;
        let status = response.status;
        if json_depth_exceeds(&response.body, limits.max_json_depth) {
            return Err(ResponseError::Malformed {
                status,
                reason: "JSON nesting is deeper than the limit",
            });
        }
        let object = match crate::limits::from_json_slice::<Value>(&response.body) {
            Ok(Value::Object(map)) => map,
            Ok(_) if response.is_success() => {
                return Err(ResponseError::Malformed {
                    status,
                    reason: "the body is not a JSON object",
                });
            }
            Ok(_) => return Err(ResponseError::UnexpectedStatus { status }),
            Err(_) => return Err(ResponseError::NotJson { status }),
        };
        if let Some(error) = object.get("error") {
            let text = |name: &str| object.get(name).and_then(Value::as_str).map(String::from);
            return Err(ResponseError::Server(ServerError {
                status,
                error: match error {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                error_description: text("error_description"),
                error_uri: text("error_uri"),
            }));
        }
        if !response.is_success() {
            return Err(ResponseError::UnexpectedStatus { status });
        }
        Ok(object)
    }

    pub(super) fn token_response(
        response: &HttpResponse,
        limits: &Limits,
    ) -> Result<TokenResponse, ResponseError> {
        let mut extra = json_object(response, limits)?;
        let malformed = |reason| ResponseError::Malformed {
            status: response.status,
            reason,
        };
        let access_token = match extra.remove("access_token") {
            Some(Value::String(s)) if !s.is_empty() => AccessToken::new(s),
            Some(Value::String(_)) => return Err(malformed("access_token is empty")),
            Some(_) => return Err(malformed("access_token is not a string")),
            None => return Err(malformed("access_token is missing")),
        };
        if access_token.len() > limits.max_token_bytes {
            return Err(malformed("access_token is longer than the limit"));
        }
        let token_type = match extra.remove("token_type") {
            Some(Value::String(s)) if !s.is_empty() => TokenType::parse(&s),
            None => TokenType::Bearer,
            Some(_) => return Err(malformed("token_type is not a string")),
        };
        let expires_in = match extra.remove("expires_in") {
            None | Some(Value::Null) => None,
            Some(v) => match seconds_from_json(&v) {
                Some(0) => return Err(malformed("expires_in is zero")),
                Some(secs) => Some(secs),
                None => return Err(malformed("expires_in is not a non-negative number")),
            },
        };
        let string = |value: Option<Value>| match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err("a string member has another type"),
        };
        let token = |value: Option<Value>| match string(value)? {
            Some(s) if s.is_empty() => Ok(None),
            Some(s) if s.len() > limits.max_token_bytes => Err("a token is longer than the limit"),
            other => Ok(other),
        };
        let refresh_token = token(extra.remove("refresh_token")).map_err(malformed)?;
        let id_token = token(extra.remove("id_token")).map_err(malformed)?;
        let scope = string(extra.remove("scope")).map_err(malformed)?;
        let issued_token_type = string(extra.remove("issued_token_type")).map_err(malformed)?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token: refresh_token.map(RefreshToken::new),
            id_token: id_token.map(IdToken::new),
            scope,
            issued_token_type,
            extra,
        })
    }

    pub(super) fn mfa_required(response: &HttpResponse, limits: &Limits) -> Option<MfaRequired> {
        if limits.check_response(response).is_err()
            || json_depth_exceeds(&response.body, limits.max_json_depth)
        {
            return None;
        }
        let Ok(Value::Object(object)) = crate::limits::from_json_slice::<Value>(&response.body)
        else {
            return None;
        };
        let is_mfa = |name| object.get(name).and_then(Value::as_str) == Some("mfa_required");
        if !is_mfa("error") && !is_mfa("code") {
            return None;
        }
        let text = |name: &str| object.get(name).and_then(Value::as_str);
        Some(MfaRequired {
            description: text("error_description").map(String::from),
            mfa_token: text("mfa_token").map(MfaToken::new),
            mfa_requirements: object.get("mfa_requirements").map(Value::to_string),
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn parse(status: u16, body: &str) -> Result<TokenResponse, ResponseError> {
        TokenResponse::parse(&HttpResponse::new(status, body), &Limits::default())
    }

    #[test]
    fn success_with_all_fields() {
        let r = parse(
            200,
            r#"{"access_token":"at","token_type":"bearer","expires_in":3600,
               "refresh_token":"rt2","id_token":"a.b.c","scope":"openid read","x-extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.access_token.secret(), "at");
        assert_eq!(r.token_type, TokenType::Bearer);
        assert_eq!(r.expires_in, Some(3600));
        assert_eq!(r.refresh_token.unwrap().secret(), "rt2");
        assert_eq!(r.scope.as_deref(), Some("openid read"));
        assert_eq!(r.extra["x-extra"], 1);
    }

    #[test]
    fn expires_in_forms() {
        assert_eq!(
            parse(
                200,
                r#"{"access_token":"a","token_type":"DPoP","expires_in":"120"}"#
            )
            .unwrap()
            .expires_in,
            Some(120)
        );
        assert_eq!(
            parse(200, r#"{"access_token":"a","expires_in":59.9}"#)
                .unwrap()
                .expires_in,
            Some(59)
        );
        let r = parse(200, r#"{"access_token":"a","token_type":"bearer"}"#).unwrap();
        assert_eq!(r.expires_in, None);
        assert_eq!(
            r.expires_at(UnixTime::from_secs(1000), Duration::from_secs(300)),
            UnixTime::from_secs(1300)
        );
        for bad in [r#""soon""#, "-1", "0", "true", "[]"] {
            let body = alloc::format!(r#"{{"access_token":"a","expires_in":{bad}}}"#);
            assert!(
                matches!(parse(200, &body), Err(ResponseError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn expires_at_counts_from_send_time() {
        let r = parse(200, r#"{"access_token":"a","expires_in":60}"#).unwrap();
        assert_eq!(
            r.expires_at(UnixTime::from_secs(100), Duration::from_secs(3600)),
            UnixTime::from_secs(160)
        );
        let r = parse(
            200,
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
        )
        .unwrap();
        assert_eq!(
            r.expires_at(UnixTime::from_secs(100), Duration::ZERO),
            UnixTime::from_secs(u64::MAX)
        );
    }

    #[test]
    fn errors() {
        let e = parse(
            400,
            r#"{"error":"invalid_grant","error_description":"grant request is invalid","error_uri":"https://x"}"#,
        )
        .unwrap_err();
        let ResponseError::Server(server) = e else {
            panic!("{e:?}")
        };
        assert_eq!(server.error, "invalid_grant");
        assert_eq!(server.status, 400);
        assert_eq!(server.error_uri.as_deref(), Some("https://x"));

        // A 200 carrying `error` is an error.
        assert!(matches!(
            parse(200, r#"{"error":"server_error","access_token":"x"}"#),
            Err(ResponseError::Server(ServerError { status: 200, .. }))
        ));
        // A proxy's HTML page.
        assert_eq!(
            parse(502, "<html><body>Bad Gateway</body></html>").unwrap_err(),
            ResponseError::NotJson { status: 502 }
        );
        assert_eq!(
            parse(500, "{}").unwrap_err(),
            ResponseError::UnexpectedStatus { status: 500 }
        );
        assert!(matches!(
            parse(200, "[]"),
            Err(ResponseError::Malformed { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"token_type":"bearer"}"#),
            Err(ResponseError::Malformed { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"access_token":""}"#),
            Err(ResponseError::Malformed { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"access_token":7}"#),
            Err(ResponseError::Malformed { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"access_token":"a","refresh_token":5}"#),
            Err(ResponseError::Malformed { .. })
        ));
        assert_eq!(
            parse(200, "").unwrap_err(),
            ResponseError::NotJson { status: 200 }
        );
        // A non-string error code is still an error.
        assert!(matches!(
            parse(400, r#"{"error":42}"#),
            Err(ResponseError::Server(ServerError { ref error, .. })) if error == "42"
        ));
    }

    #[test]
    fn body_size_limit() {
        let limits = Limits {
            max_body_bytes: 64,
            ..Limits::default()
        };
        let body = r#"{"access_token":"a"}"#.to_string() + &" ".repeat(44);
        assert_eq!(body.len(), 64);
        assert!(TokenResponse::parse(&HttpResponse::new(200, body.clone()), &limits).is_ok());
        let body = body + " ";
        assert_eq!(
            TokenResponse::parse(&HttpResponse::new(200, body), &limits).unwrap_err(),
            ResponseError::TooLarge { limit: 64 }
        );
    }

    #[test]
    fn token_length_limit() {
        let limits = Limits {
            max_token_bytes: 4,
            ..Limits::default()
        };
        let ok = HttpResponse::new(200, r#"{"access_token":"abcd","refresh_token":"wxyz"}"#);
        assert!(TokenResponse::parse(&ok, &limits).is_ok());
        let long = HttpResponse::new(200, r#"{"access_token":"abcde"}"#);
        assert!(TokenResponse::parse(&long, &limits).is_err());
        let long_rt = HttpResponse::new(200, r#"{"access_token":"a","refresh_token":"vwxyz"}"#);
        assert!(TokenResponse::parse(&long_rt, &limits).is_err());
    }

    #[test]
    fn deep_json_is_refused() {
        let deep = "[".repeat(40) + &"]".repeat(40);
        let body = alloc::format!(r#"{{"access_token":"a","x":{deep}}}"#);
        assert!(matches!(
            parse(200, &body),
            Err(ResponseError::Malformed { .. })
        ));
    }

    #[test]
    fn mfa_details() {
        let response = HttpResponse::new(
            403,
            r#"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"mfa-1","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#,
        );
        let mfa = parse_mfa_required(&response, &Limits::default()).unwrap();
        assert_eq!(mfa.mfa_token.unwrap().secret(), "mfa-1");
        assert_eq!(
            mfa.mfa_requirements.as_deref(),
            Some(r#"{"challenge":[{"type":"otp"}]}"#)
        );
        assert!(
            parse_mfa_required(
                &HttpResponse::new(400, r#"{"error":"x"}"#),
                &Limits::default()
            )
            .is_none()
        );
        let _ = vec![0u8; 0];
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let response = HttpResponse::new(
            200,
            r#"{"access_token":"eyJ.eyJ.c2ln","refresh_token":"a\/b","x":1}"#,
        );
        let parsed = ParsedResponse::parse(&response, &Limits::default());
        let members = parsed.body().unwrap();
        assert!(matches!(
            members.access_token,
            Some(Raw::Str(Cow::Borrowed("eyJ.eyJ.c2ln")))
        ));
        assert!(matches!(
            &members.refresh_token,
            Some(Raw::Str(Cow::Owned(s))) if s == "a/b"
        ));
        assert_eq!(members.extra["x"], 1);
    }

    #[test]
    fn success_keeps_error_members_in_extra() {
        let r = parse(
            200,
            r#"{"access_token":"a","error_description":"d","error_uri":7,"mfa_token":"m","mfa_requirements":{"c":[]},"code":"x"}"#,
        )
        .unwrap();
        assert_eq!(r.extra["error_description"], "d");
        assert_eq!(r.extra["error_uri"], 7);
        assert_eq!(r.extra["mfa_token"], "m");
        assert_eq!(r.extra["mfa_requirements"]["c"], Value::Array(vec![]));
        assert_eq!(r.extra["code"], "x");
        assert_eq!(r.extra.len(), 5);
    }

    /// The one parse decides exactly as reading the body as a
    /// `serde_json::Value` object does (the plain definition, in
    /// `reference`): duplicates, escapes, numbers, wrong types, errors, MFA
    /// details, the DPoP nonce error and odd bytes included.
    mod one_parse_agrees_with_value {
        use super::*;
        use crate::http::Headers;
        use proptest::prelude::*;

        fn agree(response: &HttpResponse, limits: &Limits) -> Result<(), TestCaseError> {
            let mut parsed = ParsedResponse::parse(response, limits);
            let object = reference::json_object(response, limits);
            prop_assert_eq!(
                parsed.check(),
                object.as_ref().map(|_| ()).map_err(Clone::clone)
            );
            prop_assert_eq!(
                parsed.is_error("use_dpop_nonce"),
                matches!(&object, Err(ResponseError::Server(e)) if e.error == "use_dpop_nonce")
            );
            prop_assert_eq!(
                parsed.mfa_required(),
                reference::mfa_required(response, limits)
            );
            prop_assert_eq!(
                parsed.take_token_response(),
                reference::token_response(response, limits)
            );
            Ok(())
        }

        fn member() -> impl Strategy<Value = (String, String)> {
            // `error` is rare: it decides every body it is in.
            let name = prop_oneof![
                8 => Just("access_token"),
                1 => Just("token_type"),
                1 => Just("expires_in"),
                1 => Just("refresh_token"),
                1 => Just("id_token"),
                1 => Just("scope"),
                1 => Just("issued_token_type"),
                1 => Just("acc\\u0065ss_token"),
                1 => Just("x"),
                1 => Just("error_description"),
                1 => Just("error_uri"),
                1 => Just("mfa_token"),
                1 => Just("mfa_requirements"),
                1 => Just("code"),
                1 => Just("error"),
            ];
            let value = prop_oneof![
                Just("\"at\"".to_string()),
                Just("\"\"".to_string()),
                Just("3600".to_string()),
                Just("\"60\"".to_string()),
                Just("\" 60.5 \"".to_string()),
                Just("0".to_string()),
                Just("-1".to_string()),
                Just("null".to_string()),
                Just("true".to_string()),
                Just("[1,{}]".to_string()),
                Just("{\"a\":\"b\"}".to_string()),
                Just("1.5e3".to_string()),
                Just(r#""a\"b\\c""#.to_string()),
                Just(r#""http:\/\/x\n\t\r\b\f""#.to_string()),
                Just(r#""\u0041\ud83d\ude00""#.to_string()),
                Just(r#""\ud800""#.to_string()),
                Just("\"é€😀\"".to_string()),
                Just("\"a\u{1}\"".to_string()),
                Just("\"mfa_required\"".to_string()),
                Just("\"use_dpop_nonce\"".to_string()),
                Just("-0".to_string()),
                Just("1e2".to_string()),
                Just("1e400".to_string()),
                Just("01".to_string()),
                Just("1.".to_string()),
                Just("18446744073709551616".to_string()),
                Just("-9223372036854775809".to_string()),
                Just("tru".to_string()),
                "[a-z ]{0,6}".prop_map(|s| alloc::format!("\"{s}\"")),
            ];
            (name.prop_map(String::from), value)
        }

        #[test]
        fn typical_bodies() {
            for (status, body) in [
                (
                    200,
                    r#"{"access_token":"eyJ.eyJ.c2ln","token_type":"Bearer","expires_in":3600,"scope":"openid offline_access","refresh_token":"rt","id_token":"eyJ.eyJ.sig"}"#,
                ),
                (
                    200,
                    r#"{"access_token":"at","expires_in":"60","token_type":"DPoP","custom":true,"n":null}"#,
                ),
                (
                    400,
                    r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
                ),
                (
                    400,
                    r#"{"error":"use_dpop_nonce","error_description":"nonce"}"#,
                ),
                (
                    403,
                    r#"{"error":"mfa_required","mfa_token":"m","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#,
                ),
                (200, "{ \"access_token\" : \"a\\/b\" }\n"),
                (500, "[1,\"\\ud800\"]"),
                (200, "[\"\u{1}\"]"),
                (200, "\"x\""),
            ] {
                agree(&HttpResponse::new(status, body), &Limits::default()).unwrap();
            }
            let invalid_utf8 = HttpResponse::new(200, b"[\"\xff\"]".to_vec());
            agree(&invalid_utf8, &Limits::default()).unwrap();
            // Not UTF-8 outside a string, and past the depth limit too.
            let mut deep_invalid = "[".repeat(33).into_bytes();
            deep_invalid.extend_from_slice(b"\xff]");
            let deep_invalid = HttpResponse::new(200, deep_invalid);
            agree(&deep_invalid, &Limits::default()).unwrap();
            let object_invalid = HttpResponse::new(400, b"{\"error\":\"x\",\xff}".to_vec());
            agree(&object_invalid, &Limits::default()).unwrap();
            // Past the depth limit: that error comes first, whatever else
            // is wrong with the body (broken syntax, an `error` member).
            let deep = "[".repeat(33);
            for body in [
                alloc::format!(r#"{{"error":"x","a":{deep}"#),
                alloc::format!(r#"{{"access_token":"a","x":{deep}1{}}}"#, "]".repeat(33)),
                alloc::format!("{deep},,"),
                // Overwritten by a later duplicate, still too deep.
                alloc::format!(
                    r#"{{"access_token":{deep}{},"access_token":"a"}}"#,
                    "]".repeat(33)
                ),
                String::from(r#"{"access_token":"a","x":[]}"#),
            ] {
                for status in [200, 400] {
                    let response = HttpResponse::new(status, body.clone());
                    agree(&response, &Limits::default()).unwrap();
                    let shallow = Limits {
                        max_json_depth: 1,
                        ..Limits::default()
                    };
                    agree(&response, &shallow).unwrap();
                }
            }
            let flat = HttpResponse::new(200, r#"{"access_token":"a"}"#);
            let zero = Limits {
                max_json_depth: 0,
                ..Limits::default()
            };
            assert!(matches!(
                TokenResponse::parse(&flat, &zero),
                Err(ResponseError::Malformed {
                    reason: "JSON nesting is deeper than the limit",
                    ..
                })
            ));
        }

        proptest! {
            #[test]
            fn on_objects(members in proptest::collection::vec(member(), 0..8), status in prop_oneof![6 => Just(200u16), 1 => Just(400), 1 => Just(500)], cut in prop_oneof![4 => Just(0usize), 1 => Just(1), 1 => Just(2)]) {
                // JSON whitespace anywhere it may go.
                let ws = [" ", "", "\n", "\t\r"];
                let mut body = String::from(ws[members.len() % 4]);
                body.push('{');
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 { body.push(','); }
                    body.push_str(&alloc::format!("{}\"{name}\"{}:{value}{}", ws[i % 4], ws[(i + 1) % 4], ws[(i + 2) % 4]));
                }
                body.push('}');
                // Sometimes truncated: not JSON any more.
                let keep = match cut { 0 => body.len(), 1 => body.len() - 1, _ => body.len() / 2 };
                let body = body.get(..keep).unwrap_or(&body);
                let response = HttpResponse::new(status, body);
                agree(&response, &Limits::default())?;
                // Tight limits: depth and token length.
                let tight = Limits { max_json_depth: 1, max_token_bytes: 2, ..Limits::default() };
                agree(&response, &tight)?;
                let zero = Limits { max_json_depth: 0, ..Limits::default() };
                agree(&response, &zero)?;
            }

            #[test]
            fn on_bytes(body in proptest::collection::vec(any::<u8>(), 0..64), status in 100u16..600) {
                let response = HttpResponse { status, headers: Headers::new(), body };
                agree(&response, &Limits::default())?;
            }
        }
    }
}
