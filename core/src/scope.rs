//! Scope strings as sets (RFC 6749 §3.3): space-delimited tokens, order
//! irrelevant for matching, duplicates meaningless.
//!
//! Matching works on the borrowed strings, without allocating, because it
//! runs on every cached-token lookup. Merging keeps the first-seen order, as
//! the Auth0 SDK's `mergeScopes` does.

use alloc::string::String;

/// The SDK's default scope.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";

/// The scope tokens of `scope`, in order, empty ones skipped (so repeated
/// spaces are harmless).
#[must_use]
pub fn tokens(scope: &str) -> Tokens<'_> {
    Tokens { scope, pos: 0 }
}

/// Iterator over scope tokens (see [`tokens`]). A byte scan rather than
/// `str::split`: this runs on every cached-token lookup.
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    scope: &'a str,
    pos: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.scope.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos] == b' ' {
            self.pos += 1;
        }
        if self.pos >= bytes.len() {
            return None;
        }
        let start = self.pos;
        while self.pos < bytes.len() && bytes[self.pos] != b' ' {
            self.pos += 1;
        }
        // Splitting at an ASCII space always falls on a char boundary.
        self.scope.get(start..self.pos)
    }
}

/// Whether `scope` contains the token `token`.
#[must_use]
pub fn contains(scope: &str, token: &str) -> bool {
    tokens(scope).any(|t| t == token)
}

/// Whether every token of `wanted` is in `have` (`have ⊇ wanted` as sets).
/// An empty `wanted` is covered by anything.
#[must_use]
pub fn covers(have: &str, wanted: &str) -> bool {
    // The same string (a refresh asking for the scope it holds) needs no
    // token walk.
    have == wanted || tokens(wanted).all(|t| contains(have, t))
}

/// Whether `a` and `b` hold the same tokens.
#[must_use]
pub fn same_set(a: &str, b: &str) -> bool {
    covers(a, b) && covers(b, a)
}

/// The number of distinct tokens in `scope`.
#[must_use]
pub fn count(scope: &str) -> usize {
    let mut n = 0;
    for (i, t) in tokens(scope).enumerate() {
        if !tokens(scope).take(i).any(|seen| seen == t) {
            n += 1;
        }
    }
    n
}

/// The union of `first` and `second`: the tokens of `first`, then those of
/// `second` not seen yet, each once, single-space separated.
#[must_use]
pub fn merge(first: &str, second: &str) -> String {
    let mut out = String::with_capacity(first.len() + second.len() + 1);
    // The tokens kept so far, for the duplicate check without re-scanning
    // `out` (scopes rarely hold more; past that, `out` is scanned).
    let mut seen: [&str; 16] = [""; 16];
    let mut kept = 0;
    for t in tokens(first).chain(tokens(second)) {
        let duplicate = if kept <= seen.len() {
            seen[..kept].contains(&t)
        } else {
            contains(&out, t)
        };
        if duplicate {
            continue;
        }
        if let Some(slot) = seen.get_mut(kept) {
            *slot = t;
        }
        kept += 1;
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// `scope` with duplicates and extra spaces removed, order kept.
#[must_use]
pub fn normalize(scope: &str) -> String {
    merge(scope, "")
}

/// The tokens of `asked` that are not in `granted`, space-separated.
#[must_use]
pub fn missing(asked: &str, granted: &str) -> String {
    let mut out = String::new();
    for t in tokens(asked) {
        if !contains(granted, t) && !contains(&out, t) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_semantics() {
        assert!(covers("openid profile read:data", "read:data openid"));
        assert!(!covers("openid", "openid profile"));
        assert!(covers("a", ""));
        assert!(covers("", ""));
        assert!(same_set("b  a a", "a b"));
        assert!(!same_set("a", "a b"));
        assert_eq!(count("a b a  c"), 3);
        assert_eq!(count(""), 0);
    }

    #[test]
    fn merge_keeps_order_and_drops_duplicates() {
        assert_eq!(
            merge("openid profile email offline_access", "read:data openid"),
            "openid profile email offline_access read:data"
        );
        assert_eq!(merge("", "b a b"), "b a");
        assert_eq!(normalize("  x  y x "), "x y");
        // Prefix tokens are distinct tokens.
        assert_eq!(merge("read", "read:data"), "read read:data");
    }

    #[test]
    fn missing_lists_ungranted() {
        assert_eq!(missing("a b c b", "b"), "a c");
        assert_eq!(missing("a", "a b"), "");
    }

    /// The merge with its duplicate list matches the plain definition,
    /// past the sixteen tokens the list holds too.
    mod merge_agrees_with_definition {
        use super::*;
        use proptest::prelude::*;

        fn by_scanning(first: &str, second: &str) -> String {
            let mut out = String::new();
            for t in tokens(first).chain(tokens(second)) {
                if !contains(&out, t) {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(t);
                }
            }
            out
        }

        proptest! {
            #[test]
            fn on_many_tokens(a in "([a-z]{1,2} {1,2}){0,30}", b in "( ?[a-z]{1,2}){0,30}") {
                prop_assert_eq!(merge(&a, &b), by_scanning(&a, &b));
            }
        }
    }
}
