//! `application/x-www-form-urlencoded` bodies, per the WHATWG URL standard
//! (the byte rules RFC 6749 §B refers to).
//!
//! Serialising: ASCII alphanumerics and `*-._` stay as they are, a space
//! becomes `+`, every other byte of the UTF-8 encoding becomes `%XX` with
//! upper-case hex. Parsing reverses it; invalid escapes are kept literally and
//! invalid UTF-8 is replaced, as browsers do.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `value` form-encoded to `out`. Runs of bytes that need no
/// escaping are copied whole (refresh tokens and JWTs are long such runs).
pub fn encode_into(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    while let Some(offset) = bytes[start..]
        .iter()
        .position(|&b| !UNESCAPED[usize::from(b)])
    {
        let at = start + offset;
        // An escaped byte is never inside a multi-byte character's run of
        // unescaped ASCII, so `start..at` falls on char boundaries.
        out.push_str(value.get(start..at).unwrap_or_default());
        let byte = bytes[at];
        if byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xF)] as char);
        }
        start = at + 1;
    }
    out.push_str(value.get(start..).unwrap_or_default());
}

/// The bytes the WHATWG `application/x-www-form-urlencoded` serializer
/// leaves as they are: `*-._`, ASCII digits and letters.
const UNESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] =
            matches!(b as u8, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_');
        b += 1;
    }
    table
};

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

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes one form-encoded name or value.
#[must_use]
pub fn decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Parses a form-encoded string (a body or a URL query) into its pairs, in
/// order. Empty sequences between `&` are skipped; a pair without `=` has an
/// empty value.
#[must_use]
pub fn parse(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (decode(name), decode(value))
        })
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

    /// The run-copying encoder matches the byte-at-a-time definition.
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

        proptest! {
            #[test]
            fn on_any_string(value in "\\PC{0,40}|[a-z %+&=._~-]{0,40}") {
                prop_assert_eq!(encode(&value), by_byte(&value));
            }
        }
    }
}
