//! Small encoding helpers (base64url, randomness, form/query encoding).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// base64url without padding (RFC 4648 §5), as used by JOSE and PKCE.
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` if malformed.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// base64url(SHA-256(input)): PKCE S256 challenges, DPoP `ath`.
pub fn b64url_sha256(input: impl AsRef<[u8]>) -> String {
    b64url(Sha256::digest(input.as_ref()))
}

/// `n` bytes from the operating system's CSPRNG.
///
/// # Panics
/// If the OS random source fails.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("OS random source");
    buf
}

/// A random base64url string made of `n` random bytes.
pub fn random_token(n: usize) -> String {
    b64url(random_bytes(n))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (as space) of a form/query component.
pub fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes `pairs` as `application/x-www-form-urlencoded` / a query string.
/// Repeated keys (e.g. several `resource`) are kept in order.
pub fn form_encode<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k.as_ref()),
                percent_encode(v.as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses the query component of `url` into decoded `(key, value)` pairs.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = match url.split_once('?') {
        Some((_, q)) => q.split('#').next().unwrap_or(""),
        None => return Vec::new(),
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The first value of `key` in the query of `url`.
pub fn query_param(url: &str, key: &str) -> Option<String> {
    query_pairs(url)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Reads one whole HTTP/1.1 request (head and a `Content-Length` body) from
/// `stream`, for the tiny servers inside tests. Reading only part of it and
/// closing would make the kernel reset the connection, which the client then
/// sees as a transport error.
pub fn read_http_request(stream: &mut impl std::io::Read) -> Vec<u8> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return data;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return data,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A child process that is killed (and reaped) when the guard drops: a
/// test that fails half way does not leave, say, a login example waiting
/// on its loopback listener for ever.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// The example binary, built next to this test by `cargo test` (the
/// newest build, if `cargo build --examples` left another).
pub fn example(name: &str) -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let newest = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            file == name
                || file
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .max_by_key(|entry| entry.metadata().and_then(|m| m.modified()).ok());
    let path = newest.map(|entry| entry.path()).unwrap_or_else(|| {
        panic!(
            "{name} not built in {}: plain `cargo test` builds the examples, `--test` alone does not",
            dir.display()
        )
    });
    std::process::Command::new(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_roundtrip() {
        let s = "https://api1.example.com/x?y=1 2&z=ü";
        assert_eq!(percent_decode(&percent_encode(s)), s);
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn query_parsing() {
        let url = "http://127.0.0.1/callback?code=abc&state=s%20t&iss=http%3A%2F%2Fx#frag";
        assert_eq!(query_param(url, "code").as_deref(), Some("abc"));
        assert_eq!(query_param(url, "state").as_deref(), Some("s t"));
        assert_eq!(query_param(url, "iss").as_deref(), Some("http://x"));
        assert_eq!(query_param(url, "nope"), None);
    }

    #[test]
    fn pkce_vector() {
        // RFC 7636 appendix B
        assert_eq!(
            b64url_sha256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
