//! `application/x-www-form-urlencoded` bodies, per the WHATWG URL standard
//! (the byte rules RFC 6749 §B refers to).
//!
//! Serialising: ASCII alphanumerics and `*-._` stay as they are, a space
//! becomes `+`, every other byte of the UTF-8 encoding becomes `%XX` with
//! upper-case hex. Parsing reverses it; invalid escapes are kept literally and
//! invalid UTF-8 is replaced, as browsers do. The encoding and the parsing are
//! `form_urlencoded`'s (the `url` crate's own); this module keeps the
//! redacting [`FormBody`] and the few helpers the grants and tests use.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

/// Appends `value` form-encoded to `out`, with `form_urlencoded` (the `url`
/// crate's own serializer): runs of bytes that need no escaping are copied
/// whole (refresh tokens and JWTs are long such runs).
pub fn encode_into(out: &mut String, value: &str) {
    // Grant types, client ids and most tokens need no escape at all: one
    // scan and one copy (the serializer's chunking costs several times
    // that per byte).
    if value.bytes().all(unchanged) {
        out.push_str(value);
        return;
    }
    for chunk in form_urlencoded::byte_serialize(value.as_bytes()) {
        // An escape comes as a chunk of its own (`+`, `%XX`): pushed a
        // character at a time, cheaper than copying a tiny slice.
        if chunk.len() <= 3 {
            chunk.chars().for_each(|c| out.push(c));
        } else {
            out.push_str(chunk);
        }
    }
}

/// Whether the serializer leaves a byte as it is: ASCII alphanumerics and
/// `*-._` (a table: a chain of range tests costs several times as much per
/// byte).
fn unchanged(byte: u8) -> bool {
    const TABLE: [bool; 256] = {
        let mut table = [false; 256];
        let mut byte = 0;
        while byte < 256 {
            table[byte] = matches!(
                byte as u8,
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_'
            );
            byte += 1;
        }
        table
    };
    TABLE[usize::from(byte)]
}

/// `value` form-encoded.
#[must_use]
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    encode_into(&mut out, value);
    out
}

/// Builds a form body pair by pair, keeping the order.
#[derive(Default, Clone)]
pub struct FormBody {
    body: String,
}

impl FormBody {
    /// An empty body, with room for a typical token request (growing a
    /// body pair by pair would reallocate several times).
    #[must_use]
    pub fn new() -> Self {
        FormBody {
            body: String::with_capacity(256),
        }
    }

    /// Appends `name=value`.
    pub fn append(&mut self, name: &str, value: &str) -> &mut Self {
        if !self.body.is_empty() {
            self.body.push('&');
        }
        encode_into(&mut self.body, name);
        self.body.push('=');
        encode_into(&mut self.body, value);
        self
    }

    /// The encoded body.
    #[must_use]
    pub fn finish(self) -> String {
        self.body
    }
}

impl core::fmt::Debug for FormBody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Form bodies carry refresh tokens and client secrets.
        write!(f, "FormBody(<{} bytes>)", self.body.len())
    }
}

/// Decodes one form-encoded name or value: `+` is a space, then
/// percent-decoding (as `form_urlencoded` decodes each name and value).
#[must_use]
pub fn decode(input: &str) -> String {
    let bytes: Cow<'_, [u8]> = if input.contains('+') {
        Cow::Owned(input.replace('+', " ").into_bytes())
    } else {
        Cow::Borrowed(input.as_bytes())
    };
    percent_encoding::percent_decode(&bytes)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses a form-encoded string (a body or a URL query) into its pairs, in
/// order. Empty sequences between `&` are skipped; a pair without `=` has an
/// empty value.
#[must_use]
pub fn parse(input: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(input.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// The first value of `name` in a parsed form.
#[must_use]
pub fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<Cow<'a, str>> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| Cow::Borrowed(v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn whatwg_vectors() {
        assert_eq!(encode("abcXYZ019*-._"), "abcXYZ019*-._");
        assert_eq!(encode("a b"), "a+b");
        assert_eq!(encode("~"), "%7E");
        assert_eq!(encode("!'()"), "%21%27%28%29");
        assert_eq!(encode("a+b&c=d/e?f#g%h"), "a%2Bb%26c%3Dd%2Fe%3Ff%23g%25h");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode("日本"), "%E6%97%A5%E6%9C%AC");
        assert_eq!(encode("😀"), "%F0%9F%98%80");
        assert_eq!(encode("\n\t"), "%0A%09");
    }

    #[test]
    fn rfc6749_appendix_b_example() {
        // RFC 6749 Appendix B: " %&+£€" encodes to "+%25%26%2B%C2%A3%E2%82%AC".
        assert_eq!(encode(" %&+£€"), "+%25%26%2B%C2%A3%E2%82%AC");
        assert_eq!(decode("+%25%26%2B%C2%A3%E2%82%AC"), " %&+£€");
    }

    #[test]
    fn body_keeps_order_and_repeats() {
        let mut form = FormBody::new();
        form.append("grant_type", "refresh_token")
            .append("resource", "https://a.example/")
            .append("resource", "https://b.example");
        assert_eq!(
            form.finish(),
            "grant_type=refresh_token&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example"
        );
    }

    #[test]
    fn parse_handles_odd_input() {
        assert_eq!(
            parse("a=1&&b&c=%zz&d=%4&e=%41%42+x"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("c".into(), "%zz".into()),
                ("d".into(), "%4".into()),
                ("e".into(), "AB x".into()),
            ]
        );
        assert_eq!(decode("%FF"), "\u{FFFD}");
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%4"), "%4");
    }

    /// `form_urlencoded` encodes, decodes and splits as the byte-at-a-time
    /// definitions (this module's own code before it) do.
    mod encoder_agrees_with_definition {
        use super::*;
        use proptest::prelude::*;

        fn by_byte(value: &str) -> String {
            let mut out = String::new();
            for &byte in value.as_bytes() {
                match byte {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                        out.push(char::from(byte));
                    }
                    b' ' => out.push('+'),
                    _ => out.push_str(&alloc::format!("%{byte:02X}")),
                }
            }
            out
        }

        /// The decoder this module had before `form_urlencoded`: `+` is a
        /// space, a `%` with two hex digits a byte, anything else literal.
        fn decode_by_byte(input: &str) -> String {
            let bytes = input.as_bytes();
            let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'+' => out.push(b' '),
                    b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                        (Some(hi), Some(lo)) => {
                            out.push(hi << 4 | lo);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    },
                    other => out.push(other),
                }
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }

        fn parse_by_split(input: &str) -> Vec<(String, String)> {
            input
                .split('&')
                .filter(|part| !part.is_empty())
                .map(|part| {
                    let (name, value) = part.split_once('=').unwrap_or((part, ""));
                    (decode_by_byte(name), decode_by_byte(value))
                })
                .collect()
        }

        proptest! {
            #[test]
            fn on_any_string(value in "\\PC{0,40}|[a-z %+&=._~-]{0,40}") {
                prop_assert_eq!(encode(&value), by_byte(&value));
            }

            #[test]
            fn decoding_as_before(input in "[a-fA-F0-9%+&=xé ]{0,40}|\\PC{0,20}") {
                prop_assert_eq!(decode(&input), decode_by_byte(&input));
                prop_assert_eq!(parse(&input), parse_by_split(&input));
            }
        }
    }
}
