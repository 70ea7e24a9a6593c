//! The small amount of JSON the DPoP code writes by hand.
//!
//! Proof headers and claims are written member by member so that their
//! order and bytes are fixed (golden proofs are compared byte for byte).
//! String escaping follows RFC 8259 §7 exactly as `serde_json` does it:
//! `"` and `\` are escaped, control characters become `\b`, `\f`, `\n`,
//! `\r`, `\t` or `\u00XX`, everything else (non-ASCII included) is written
//! as UTF-8.

use alloc::string::String;

/// Appends `value` to `out` as a JSON string literal, quotes included.
pub(crate) fn push_string(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, byte) in value.bytes().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is the index of an ASCII byte, hence a char boundary.
        out.push_str(&value[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(value: &str) -> String {
        let mut out = String::new();
        push_string(&mut out, value);
        out
    }

    #[test]
    fn escapes_like_rfc_8259() {
        assert_eq!(escaped(""), r#""""#);
        assert_eq!(escaped("plain"), r#""plain""#);
        assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escaped("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(escaped("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(escaped("bücher/€"), "\"bücher/€\"");
    }

    proptest! {
        #[test]
        fn matches_serde_json(value in any::<String>()) {
            prop_assert_eq!(escaped(&value), serde_json::to_string(&value).unwrap());
        }
    }
}
