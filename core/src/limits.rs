//! Bounds on everything that comes from outside: servers and storage.
//! Each bound is checked before the input is used, and exceeding it is a
//! typed error, never a panic or an unbounded allocation.

use crate::error::ResponseError;
use crate::http::HttpResponse;

/// Limits on external input. [`Limits::default`] is suitable for real
/// authorization servers; tighten them for constrained targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest response body accepted, in bytes (default 1 MiB, as the SDK).
    pub max_body_bytes: usize,
    /// Most header fields in a response (default 128).
    pub max_headers: usize,
    /// Largest single header value, in bytes (default 16 KiB).
    pub max_header_value_bytes: usize,
    /// Deepest JSON nesting accepted (default 32).
    pub max_json_depth: usize,
    /// Longest access, refresh or ID token accepted, in bytes (default 64 KiB).
    pub max_token_bytes: usize,
    /// Largest stored session read back ([`Session::from_json`]), in bytes
    /// (default 8 MiB). A session grows with its caches: with the default
    /// caps (50 access tokens and 50 connection tokens, each at most
    /// `max_token_bytes`) and scopes of ordinary length it stays below
    /// 7 MiB. (Scopes, login hints and members kept from another writer
    /// are bounded only by `max_body_bytes` each, so this is headroom, not
    /// a proof.) Lower it with the caps and the token size.
    ///
    /// [`Session::from_json`]: crate::Session::from_json
    pub max_session_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_headers: 128,
            max_header_value_bytes: 16 * 1024,
            max_json_depth: 32,
            max_token_bytes: 64 * 1024,
            max_session_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Checks a response's body size and headers.
    ///
    /// # Errors
    /// [`ResponseError::TooLarge`] or [`ResponseError::HeadersTooLarge`].
    pub fn check_response(&self, response: &HttpResponse) -> Result<(), ResponseError> {
        if response.body.len() > self.max_body_bytes {
            return Err(ResponseError::TooLarge {
                limit: self.max_body_bytes,
            });
        }
        if response.headers.len() > self.max_headers {
            return Err(ResponseError::HeadersTooLarge {
                what: "count",
                limit: self.max_headers,
            });
        }
        if response
            .headers
            .iter()
            .any(|(n, v)| n.len() + v.len() > self.max_header_value_bytes)
        {
            return Err(ResponseError::HeadersTooLarge {
                what: "value size",
                limit: self.max_header_value_bytes,
            });
        }
        Ok(())
    }
}

/// `serde_json::from_slice`, with the UTF-8 of the whole input checked
/// once: serde_json then reads a `&str` and does not check each string
/// again (a parse of a token response or a session spends about a fifth
/// of its time there), and the crate carries one reader, not two.
/// Input that is not UTF-8 is not JSON: an error either way.
pub(crate) fn from_json_slice<'de, T: serde::Deserialize<'de>>(
    json: &'de [u8],
) -> Result<T, serde_json::Error> {
    let text = core::str::from_utf8(json)
        .map_err(|_| <serde_json::Error as serde::de::Error>::custom("not UTF-8"))?;
    serde_json::from_str(text)
}

/// The deepest nesting of arrays and objects in `json`, counting brackets
/// outside strings. Stops early once `max` is exceeded.
#[must_use]
pub fn json_depth_exceeds(json: &[u8], max: usize) -> bool {
    // The depth is at most the number of opening brackets, strings
    // included. Counting them settles nearly every session and token
    // response, in a fraction of the scan below: per chunk of at most 255
    // bytes into a `u8`, which the compiler vectorises 16 bytes at a time
    // (a `usize` count it did 4 at a time). `{` and `[` are the two bytes
    // that are `[` with bit 5 cleared.
    let openings: usize = json
        .chunks(255)
        .map(|chunk| {
            let count = chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b & 0xdf == b'[')));
            usize::from(count)
        })
        .sum();
    if openings <= max {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(offset) = json[i..]
        .iter()
        .position(|&b| matches!(b, b'"' | b'[' | b'{' | b']' | b'}'))
    {
        i += offset;
        match json[i] {
            b'"' => {
                // Skip the string (tokens are long ones): to its closing
                // quote, stepping over escapes.
                i += 1;
                loop {
                    // memchr: SIMD where the target has it; this scan runs on
                    // every token response, most of whose bytes are tokens.
                    match memchr::memchr2(b'"', b'\\', &json[i..]) {
                        None => return false,
                        Some(offset) if json[i + offset] == b'\\' => i += offset + 2,
                        Some(offset) => {
                            i += offset + 1;
                            break;
                        }
                    }
                    if i >= json.len() {
                        return false;
                    }
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            _ => depth = depth.saturating_sub(1),
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    #[test]
    fn depth_counting() {
        assert!(!json_depth_exceeds(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[1,{"b":2}]}"#, 2));
        // Brackets inside strings do not count, escaped quotes do not end them.
        assert!(!json_depth_exceeds(br#"{"a":"[[[[\"[[[["}"#, 1));
        let deep: String = "[".repeat(33) + &"]".repeat(33);
        assert!(json_depth_exceeds(deep.as_bytes(), 32));
        let ok: String = "[".repeat(32) + &"]".repeat(32);
        assert!(!json_depth_exceeds(ok.as_bytes(), 32));
        // The bracket count runs in chunks of 255 bytes: brackets on both
        // sides of a chunk boundary, inside a string and outside.
        for padding in [200, 254, 255, 256, 600] {
            let pad = "a".repeat(padding);
            let deep = alloc::format!("[\"{pad}\",{}{}]", "[".repeat(32), "]".repeat(32));
            assert!(json_depth_exceeds(deep.as_bytes(), 32), "{padding}");
            assert!(!json_depth_exceeds(deep.as_bytes(), 33), "{padding}");
            let quoted = alloc::format!("[\"{pad}{}\"]", "[".repeat(300));
            assert!(!json_depth_exceeds(quoted.as_bytes(), 1), "{padding}");
        }
        // A count per chunk that could wrap would call this shallow.
        let very_deep: String = "[".repeat(256) + &"]".repeat(256);
        assert!(json_depth_exceeds(very_deep.as_bytes(), 32));
    }

    #[test]
    fn body_limit_at_and_past() {
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        assert!(
            limits
                .check_response(&HttpResponse::new(200, vec![b'x'; 10]))
                .is_ok()
        );
        assert_eq!(
            limits.check_response(&HttpResponse::new(200, vec![b'x'; 11])),
            Err(ResponseError::TooLarge { limit: 10 })
        );
    }

    #[test]
    fn header_limits_at_and_past() {
        let limits = Limits {
            max_headers: 2,
            max_header_value_bytes: 8,
            ..Limits::default()
        };
        let two = HttpResponse::new(200, "")
            .with_header("a", "1")
            .with_header("b", "2");
        assert!(limits.check_response(&two).is_ok());
        let three = two.clone().with_header("c", "3");
        assert!(matches!(
            limits.check_response(&three),
            Err(ResponseError::HeadersTooLarge { what: "count", .. })
        ));
        let at = HttpResponse::new(200, "").with_header("abc", "12345");
        assert!(limits.check_response(&at).is_ok());
        let past = HttpResponse::new(200, "").with_header("abc", "123456");
        assert!(limits.check_response(&past).is_err());
    }

    /// The skipping scanner decides as the byte-at-a-time state machine.
    mod depth_scan_agrees_with_definition {
        use super::*;
        use proptest::prelude::*;

        fn by_byte(json: &[u8], max: usize) -> bool {
            let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
            for &b in json {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => {
                        depth += 1;
                        if depth > max {
                            return true;
                        }
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            false
        }

        proptest! {
            #[test]
            fn on_long_strings(json in "[\\[\\]{}\"\\\\a]{0,10}\"[a-z]{0,30}(\\\\\"|\\\\\\\\)?[a-z\\[]{0,20}\"?[\\[\\]{}\"]{0,10}", max in 0usize..6) {
                prop_assert_eq!(json_depth_exceeds(json.as_bytes(), max), by_byte(json.as_bytes(), max));
            }

            #[test]
            fn on_bracket_soup(json in "[\\[\\]{}\"\\\\a]{0,40}", max in 0usize..6) {
                prop_assert_eq!(json_depth_exceeds(json.as_bytes(), max), by_byte(json.as_bytes(), max));
            }
        }
    }
}
