//! Secret-holding string types. Their `Debug` output is redacted, they have
//! no `Display`, and their bytes are wiped when dropped.

/// Defines a secret-holding string newtype (redacted `Debug`, no
/// `Display`, wiped on drop, serialised as a plain string).
macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` prints only the type name and the length; the value is
        /// wiped from memory on drop.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(::alloc::string::String);

        impl $name {
            /// Wraps a secret value.
            #[must_use]
            pub fn new(value: impl Into<::alloc::string::String>) -> Self {
                $name(value.into())
            }

            /// The secret itself. Handle with care: never log it.
            #[must_use]
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Length of the secret in bytes.
            #[must_use]
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether the secret is the empty string.
            #[must_use]
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, concat!(stringify!($name), "(<redacted {} bytes>)"), self.0.len())
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                ::zeroize::Zeroize::zeroize(&mut self.0);
            }
        }

        impl ::zeroize::ZeroizeOnDrop for $name {}

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <::alloc::string::String as ::serde::Deserialize>::deserialize(deserializer).map($name)
            }
        }
    };
}

#[cfg(feature = "login")]
pub(crate) use secret_string;

secret_string!(
    /// An OAuth 2.0 access token.
    AccessToken
);
secret_string!(
    /// An OAuth 2.0 refresh token.
    RefreshToken
);
secret_string!(
    /// An OpenID Connect ID token (a JWT carrying the user's claims).
    IdToken
);
secret_string!(
    /// A client secret for `client_secret_basic` / `client_secret_post`.
    ClientSecret
);
secret_string!(
    /// The `mfa_token` an authorization server returns with `mfa_required`.
    MfaToken
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn debug_is_redacted() {
        let secret = "s3cr3t-value-XYZ";
        let printed = format!(
            "{:?} {:?} {:?} {:?}",
            AccessToken::new(secret),
            RefreshToken::new(secret),
            IdToken::new(secret),
            ClientSecret::new(secret)
        );
        assert!(!printed.contains(secret), "{printed}");
        assert!(printed.contains("RefreshToken(<redacted 16 bytes>)"));
    }

    #[test]
    fn serde_is_transparent() {
        let token: RefreshToken = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(token.secret(), "abc");
        assert_eq!(serde_json::to_string(&token).unwrap(), "\"abc\"");
    }
}
