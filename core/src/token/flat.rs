//! A small reader for flat JSON objects: string, integer, boolean and null
//! members, the shape of nearly every token endpoint response.
//!
//! A refresh parses one such object per round trip, right after the thread
//! woke from waiting on the network, when little of serde_json's much larger
//! code is still in cache; this reader touches a few hundred bytes of code.
//! It is a shortcut, never a second opinion: anything it does not take
//! whole (nesting, `\u` escapes, fractions and exponents it hands to
//! serde_json, any syntax error) makes it return `None`, and the caller
//! parses the body with serde_json instead. Where it answers, it answers as
//! serde_json does: the property tests in `response.rs` compare the two,
//! and under `cargo fuzz` every answer is checked against serde_json's.

use alloc::borrow::Cow;
use alloc::string::String;

use serde_json::Value;

/// Reads `json` as one flat object, calling `member` for each member in
/// order (duplicates included). `None` when `json` is anything else; then
/// whatever `member` saw must be discarded.
pub(crate) fn read_object<'a>(
    json: &'a [u8],
    mut member: impl FnMut(Cow<'a, str>, Value),
) -> Option<()> {
    // JSON text is UTF-8 (RFC 8259 §8.1): checked once, then strings are
    // sliced out of it.
    let text = core::str::from_utf8(json).ok()?;
    let mut reader = Reader { text, pos: 0 };
    reader.skip_whitespace();
    reader.expect(b'{')?;
    reader.skip_whitespace();
    if reader.peek() == Some(b'}') {
        reader.pos += 1;
    } else {
        loop {
            let name = reader.string()?;
            reader.skip_whitespace();
            reader.expect(b':')?;
            reader.skip_whitespace();
            let value = reader.value()?;
            member(name, value);
            reader.skip_whitespace();
            match reader.next()? {
                b',' => reader.skip_whitespace(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    reader.skip_whitespace();
    (reader.pos == json.len()).then_some(())
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

/// The bytes a string runs on: all but `"`, `\` and control characters.
const PLAIN: [bool; 256] = {
    let mut table = [true; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = false;
        b += 1;
    }
    table[b'"' as usize] = false;
    table[b'\\' as usize] = false;
    table
};

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// JSON whitespace (RFC 8259 §2): space, tab, line feed, carriage return.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A string: borrowed when it has no escapes. Control characters are
    /// errors (as in serde_json); `\u` escapes are left to serde_json.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let mut owned: Option<String> = None;
        loop {
            let start = self.pos;
            // One table lookup per byte. The text is valid UTF-8 and every
            // stop byte is ASCII, so the run ends on a character boundary.
            while PLAIN.get(usize::from(self.peek()?)) == Some(&true) {
                self.pos += 1;
            }
            let run = self.text.get(start..self.pos)?;
            match self.next()? {
                b'"' => {
                    return Some(match owned {
                        None => Cow::Borrowed(run),
                        Some(mut text) => {
                            text.push_str(run);
                            Cow::Owned(text)
                        }
                    });
                }
                b'\\' => {
                    let text = owned.get_or_insert_with(String::new);
                    text.push_str(run);
                    text.push(match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        _ => return None,
                    });
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => Some(Value::String(self.string()?.into_owned())),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        let end = self.pos + word.len();
        (self.bytes().get(self.pos..end)? == word).then(|| {
            self.pos = end;
            value
        })
    }

    /// A number. A plain non-negative integer that fits a `u64` (the usual
    /// `expires_in`) is read here; any other run of number characters goes
    /// to serde_json whole, so negatives, fractions, exponents and
    /// overflows become exactly the `Value` serde_json makes of them.
    fn number(&mut self) -> Option<Value> {
        let rest = &self.bytes()[self.pos..];
        let end = rest
            .iter()
            .position(|&b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        let run = &rest[..end];
        self.pos += end;
        let plain = run.iter().all(u8::is_ascii_digit) && (run.len() == 1 || run[0] != b'0');
        if plain {
            let integer = run.iter().try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            });
            if let Some(integer) = integer {
                return Some(Value::from(integer));
            }
        }
        serde_json::from_slice(run).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn read(json: &str) -> Option<Vec<(String, Value)>> {
        let mut members = Vec::new();
        read_object(json.as_bytes(), |name, value| {
            members.push((name.into_owned(), value));
        })?;
        Some(members)
    }

    #[test]
    fn takes_token_responses() {
        let members = read(
            " {\"access_token\":\"a.b.c\", \"expires_in\" : 3600,\n\"x\":null,\"y\":true,\"z\":false,\"s\":\"http:\\/\\/a\\\"b\\\\\"}\r\n",
        )
        .unwrap();
        assert_eq!(
            members,
            [
                ("access_token".into(), Value::from("a.b.c")),
                ("expires_in".into(), Value::from(3600u64)),
                ("x".into(), Value::Null),
                ("y".into(), Value::Bool(true)),
                ("z".into(), Value::Bool(false)),
                ("s".into(), Value::from("http://a\"b\\")),
            ]
        );
        assert_eq!(read("{}").unwrap(), []);
    }

    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        for number in [
            "0",
            "-0",
            "-1",
            "1.5",
            "1e3",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
        ] {
            let members = read(&alloc::format!("{{\"n\":{number}}}")).unwrap();
            let expected: Value = serde_json::from_str(number).unwrap();
            assert_eq!(members[0].1, expected, "{number}");
        }
    }

    #[test]
    fn leaves_everything_else_to_serde_json() {
        for json in [
            "",
            "[]",
            "{\"a\":{}}",
            "{\"a\":[1]}",
            "{\"a\":\"\\u0041\"}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":tru}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":1} x",
            "{'a':1}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"open",
        ] {
            assert_eq!(read(json), None, "{json}");
        }
        let invalid_utf8 = b"{\"a\":\"\xff\"}";
        assert_eq!(read_object(invalid_utf8, |_, _| {}), None);
    }
}
