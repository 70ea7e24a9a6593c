//! The `token_type` of an access token, normalised.

use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The type of an access token (RFC 6749 §7.1). Parsed case-insensitively:
/// `bearer` and `BEARER` are [`TokenType::Bearer`], `dpop` is
/// [`TokenType::DPoP`]; other types are kept as given.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenType {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP`: bound to the client's key (RFC 9449).
    DPoP,
    /// Anything else, as the server sent it.
    Other(String),
}

impl TokenType {
    /// Normalises a `token_type` value.
    #[must_use]
    pub fn parse(value: &str) -> Self {
        if value.eq_ignore_ascii_case("bearer") {
            TokenType::Bearer
        } else if value.eq_ignore_ascii_case("dpop") {
            TokenType::DPoP
        } else {
            TokenType::Other(String::from(value))
        }
    }

    /// The canonical name (`Bearer`, `DPoP`, or the value as given).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            TokenType::Bearer => "Bearer",
            TokenType::DPoP => "DPoP",
            TokenType::Other(s) => s,
        }
    }
}

impl fmt::Debug for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TokenType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TokenType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(TokenType::parse(&value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case() {
        assert_eq!(TokenType::parse("bearer"), TokenType::Bearer);
        assert_eq!(TokenType::parse("BEARER"), TokenType::Bearer);
        assert_eq!(TokenType::parse("dpop"), TokenType::DPoP);
        assert_eq!(TokenType::parse("DPoP").as_str(), "DPoP");
        assert_eq!(TokenType::parse("N_A"), TokenType::Other("N_A".into()));
        let t: TokenType = serde_json::from_str("\"dpop\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"DPoP\"");
    }
}
