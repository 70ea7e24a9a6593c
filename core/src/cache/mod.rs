//! The multi-resource token cache: access tokens per audience and scope (the
//! SDK's `accessTokens[]`), all refreshed with the session's one refresh
//! token.
//!
//! Lookup (as the SDK's `findAccessTokenSet`): the audience must be equal
//! byte for byte, the entry's `requestedScope` (else `scope`) must cover the
//! wanted scope as a set, and among matches an unexpired entry wins over an
//! expired one, then the fewest granted scopes, then the freshest. A refresh
//! of an entry found this way replaces that entry. Lookups borrow and never allocate:
//! they run on every cached-token request. A lookup answers where the entry
//! sits (an index); counting the hit as use is a separate `&mut` step.
//!
//! Writes are upserts keyed by audience + requested scope (as sets), so
//! duplicates never pile up; the cache is capped, least recently used first.

use alloc::string::String;
use alloc::vec::Vec;

use crate::scope;
use crate::time::UnixTime;
use crate::token::AccessTokenSet;

/// The scope a request wants: the union of up to two scope strings (the
/// default scope for the audience and the scope asked for), kept apart so
/// matching needs no merged copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedScope<'a> {
    parts: [&'a str; 2],
    /// The first part is known to be in merged form (each token once,
    /// single spaces): with nothing in the second, it is the merge.
    first_merged: bool,
}

impl<'a> WantedScope<'a> {
    /// The union of `first` and `second`.
    #[must_use]
    pub const fn new(first: &'a str, second: &'a str) -> Self {
        WantedScope {
            parts: [first, second],
            first_merged: false,
        }
    }

    /// The same, `first` known to be in merged form already (the
    /// configuration's default scope, checked once when it was built).
    #[must_use]
    pub(crate) const fn with_merged_first(first: &'a str, second: &'a str) -> Self {
        WantedScope {
            parts: [first, second],
            first_merged: true,
        }
    }

    /// Whether `have` covers every wanted token.
    #[must_use]
    pub fn covered_by(&self, have: &str) -> bool {
        self.parts.iter().all(|part| scope::covers(have, part))
    }

    /// Whether `scope` is exactly the two parts joined by one space (or the
    /// one non-empty part): then it covers them, with no token scan.
    fn joined_equals(&self, scope: &str) -> bool {
        let [first, second] = self.parts;
        match (first.is_empty(), second.is_empty()) {
            (true, true) => false,
            (false, true) => scope == first,
            (true, false) => scope == second,
            (false, false) => {
                scope.len() == first.len() + 1 + second.len()
                    && scope.as_bytes().get(first.len()) == Some(&b' ')
                    && scope.starts_with(first)
                    && scope.ends_with(second)
            }
        }
    }

    /// Whether nothing is wanted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| scope::tokens(p).next().is_none())
    }

    /// The merged scope string (allocates; for requests, not lookups).
    #[must_use]
    pub fn merged(&self) -> String {
        // A request that adds no scope to a default scope already in
        // merged form: a copy (the merge walks every byte; it ran on every
        // refresh).
        if self.first_merged && self.parts[1].is_empty() {
            return String::from(self.parts[0]);
        }
        scope::merge(self.parts[0], self.parts[1])
    }
}

#[derive(Debug, Clone)]
struct Slot {
    set: AccessTokenSet,
    /// Recency tick of the last lookup or write. Lookups that should count
    /// as use go through [`TokenCache::touch`], on `&mut`: the decision is
    /// made on a shared borrow, the use recorded after it.
    last_used: u64,
    /// The key scope's distinct tokens, each as its first eight bytes
    /// packed in a word, its length, and its byte range in
    /// `set.key_scope()`. A word compare settles most tokens (scope names are
    /// short) without calling `memcmp`.
    key_tokens: Vec<KeyToken>,
    /// How many distinct scopes were granted (ranks matches).
    granted_count: usize,
}

#[derive(Debug, Clone, Copy)]
struct KeyToken {
    prefix: u64,
    start: usize,
    end: usize,
}

/// The first eight bytes of `token`, zero-padded, as one word.
fn prefix_word(token: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = token.len().min(8);
    word[..n].copy_from_slice(&token[..n]);
    u64::from_le_bytes(word)
}

impl Slot {
    fn new(set: AccessTokenSet, last_used: u64) -> Self {
        let key = set.key_scope();
        let mut key_tokens: Vec<KeyToken> = Vec::new();
        let mut pos = 0;
        for token in scope::tokens(key) {
            // Tokens come in order: find each one's offset from the last.
            let start = key[pos..].find(token).map_or(pos, |i| pos + i);
            let end = start + token.len();
            pos = end;
            if !key_tokens.iter().any(|k| &key[k.start..k.end] == token) {
                key_tokens.push(KeyToken {
                    prefix: prefix_word(token.as_bytes()),
                    start,
                    end,
                });
            }
        }
        let granted_count = scope::count(set.scope.as_deref().unwrap_or(key));
        Slot {
            set,
            last_used,
            key_tokens,
            granted_count,
        }
    }

    /// Whether the key scope holds `token`.
    fn has(&self, token: &[u8]) -> bool {
        let key = self.set.key_scope().as_bytes();
        let prefix = prefix_word(token);
        self.key_tokens.iter().any(|k| {
            k.prefix == prefix
                && k.end - k.start == token.len()
                && (token.len() <= 8 || key.get(k.start + 8..k.end) == token.get(8..))
        })
    }

    /// Whether the key scope covers `wanted`.
    fn covers(&self, wanted: &WantedScope<'_>) -> bool {
        // The common case first: the entry was stored for this very request,
        // so its key scope is the two parts joined (what `merged` gives when
        // they share no token). Equal strings cover; anything else is
        // checked token by token.
        if wanted.joined_equals(self.set.key_scope()) {
            return true;
        }
        wanted
            .parts
            .iter()
            .all(|part| scope::tokens(part).all(|t| self.has(t.as_bytes())))
    }
}

/// One audience's entries: its hash, the audience, their positions.
#[derive(Debug, Clone)]
struct AudienceIndex {
    hash: u64,
    audience: String,
    positions: Vec<usize>,
}

/// The hash an audience is indexed by: a word-at-a-time multiply-rotate
/// mix. The list is searched, never probed, so quality only matters for
/// speed (a collision lengthens the scan of equal hashes by one string
/// compare) and no seed is needed. Written here rather than taken from
/// `foldhash` (already a dependency): its `Hasher` plumbing cost a wasm app
/// about 3 KB for these few lines' work.
fn audience_hash(audience: &str) -> u64 {
    const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes = audience.as_bytes();
    let mut hash = (bytes.len() as u64).wrapping_mul(MIX);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        hash = (hash ^ u64::from_le_bytes(w))
            .wrapping_mul(MIX)
            .rotate_left(31);
    }
    let mut last = 0u64;
    for (i, &b) in words.remainder().iter().enumerate() {
        last |= u64::from(b) << (8 * i);
    }
    (hash ^ last).wrapping_mul(MIX).rotate_left(31)
}

/// Where an entry sits in a [`TokenCache`]: a plain index, valid until the
/// cache is next written. A lookup's answer, kept by a decision made on a
/// shared borrow and used to borrow the entry again (or count its use)
/// without a second search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryIndex(usize);

/// The per-audience access token cache.
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    /// The entries in insertion order (the `accessTokens[]` order): a
    /// replaced entry keeps its place, a new one goes last.
    slots: Vec<Slot>,
    /// The positions in `slots` of each audience's entries, sorted by the
    /// audience's hash (then the audience) for a binary search on integers
    /// and one string compare at the end; rebuilt when an entry goes (rare:
    /// writes happen at refresh time). A sorted list rather than a
    /// `BTreeMap` or a hash table: the same lookups, without another copy of
    /// the tree or table code in a wasm app. Audiences of one API family
    /// share long prefixes, so comparing strings at every step of the search
    /// cost most of a cached lookup.
    by_audience: Vec<AudienceIndex>,
    /// The recency clock: raised by every counted use and write.
    clock: u64,
}

impl TokenCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        TokenCache::default()
    }

    /// A cache holding `entries`, in order. Later duplicates (same audience
    /// and requested scope) replace earlier ones.
    #[must_use]
    pub fn from_entries(entries: Vec<AccessTokenSet>) -> Self {
        let mut cache = TokenCache::new();
        for entry in entries {
            cache.upsert(entry);
        }
        cache
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The entries in insertion order (the `accessTokens[]` order).
    #[must_use]
    pub fn entries(&self) -> Vec<&AccessTokenSet> {
        self.slots.iter().map(|s| &s.set).collect()
    }

    /// The best entry for `audience` covering `wanted` at `now`, if any:
    /// an unexpired entry before an expired one (which only a refresh can
    /// use), then the fewest granted scopes, then the freshest. A pure
    /// lookup: the manager counts a hit as use for the least-recently-used
    /// eviction (`touch`, on `&mut`).
    #[must_use]
    pub fn find(
        &self,
        audience: &str,
        wanted: &WantedScope<'_>,
        now: UnixTime,
    ) -> Option<&AccessTokenSet> {
        self.locate(audience, wanted, now)
            .and_then(|at| self.at(at))
    }

    /// Where [`TokenCache::find`]'s entry sits.
    pub(crate) fn locate(
        &self,
        audience: &str,
        wanted: &WantedScope<'_>,
        now: UnixTime,
    ) -> Option<EntryIndex> {
        let positions = self.positions(audience)?;
        let mut best: Option<(usize, &Slot)> = None;
        let live = |slot: &Slot| slot.set.expires_at.is_some_and(|e| e > now);
        for &i in positions {
            let Some(slot) = self.slots.get(i) else {
                continue;
            };
            if !slot.covers(wanted) {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, b)) => match (live(slot), live(b)) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => {
                        slot.granted_count < b.granted_count
                            || (slot.granted_count == b.granted_count
                                && slot.set.expires_at > b.set.expires_at)
                    }
                },
            };
            if better {
                best = Some((i, slot));
            }
        }
        best.map(|(i, _)| EntryIndex(i))
    }

    /// The entry at `at` (`None` when the cache was written since `at` was
    /// found and it is gone).
    #[must_use]
    #[inline]
    pub(crate) fn at(&self, at: EntryIndex) -> Option<&AccessTokenSet> {
        self.slots.get(at.0).map(|s| &s.set)
    }

    /// Counts a use of the entry at `at`, for the least-recently-used
    /// eviction.
    #[inline]
    pub(crate) fn touch(&mut self, at: EntryIndex) {
        let tick = self.tick();
        if let Some(slot) = self.slots.get_mut(at.0) {
            slot.last_used = tick;
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Where the entry of `audience` whose key scope is `key_scope` (as
    /// sets) sits.
    pub(crate) fn position(&self, audience: &str, key_scope: &str) -> Option<EntryIndex> {
        self.positions(audience)?
            .iter()
            .copied()
            .find(|&i| {
                self.slots
                    .get(i)
                    .is_some_and(|s| scope::same_set(s.set.key_scope(), key_scope))
            })
            .map(EntryIndex)
    }

    /// The entry of `audience` whose key scope is `key_scope` (as sets).
    #[must_use]
    pub fn get(&self, audience: &str, key_scope: &str) -> Option<&AccessTokenSet> {
        self.position(audience, key_scope)
            .and_then(|at| self.at(at))
    }

    /// Removes the entry of `audience` whose key scope is `key_scope` (as
    /// sets). Returns whether one went.
    pub(crate) fn remove(&mut self, audience: &str, key_scope: &str) -> bool {
        match self.position(audience, key_scope) {
            Some(at) => {
                self.slots.remove(at.0);
                self.reindex();
                true
            }
            None => false,
        }
    }

    /// Inserts `set`, replacing an entry with the same audience and the same
    /// requested scope (as sets). Returns where it sits.
    pub(crate) fn upsert(&mut self, set: AccessTokenSet) -> EntryIndex {
        let tick = self.tick();
        if let Some(at) = self.position(&set.audience, set.key_scope())
            && let Some(slot) = self.slots.get_mut(at.0)
        {
            *slot = Slot::new(set, tick);
            return at;
        }
        let i = self.slots.len();
        self.index(&set.audience, i);
        self.slots.push(Slot::new(set, tick));
        EntryIndex(i)
    }

    /// Removes the least recently used entries until at most `max` remain,
    /// never the entry `keep` of `keep_audience`. Returns how many went.
    pub(crate) fn evict_over(&mut self, max: usize, keep: Option<(&str, &str)>) -> usize {
        let mut evicted = 0;
        while self.slots.len() > max {
            let victim = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    keep.is_none_or(|(k_aud, k_scope)| {
                        s.set.audience != k_aud || !scope::same_set(s.set.key_scope(), k_scope)
                    })
                })
                // Ties (never touched) go oldest first.
                .min_by_key(|(i, s)| (s.last_used, *i))
                .map(|(i, _)| i);
            let Some(victim) = victim else {
                break;
            };
            self.slots.remove(victim);
            evicted += 1;
        }
        if evicted > 0 {
            self.reindex();
        }
        evicted
    }

    /// Whether some entry has expired at `now` (or has no known expiry).
    #[must_use]
    pub fn has_expired(&self, now: UnixTime) -> bool {
        self.slots
            .iter()
            .any(|s| s.set.expires_at.is_none_or(|e| e <= now))
    }

    /// Removes every entry whose token has expired at `now` (for sessions
    /// that cannot refresh them). Returns how many went.
    pub(crate) fn remove_expired(&mut self, now: UnixTime) -> usize {
        let before = self.slots.len();
        self.slots
            .retain(|s| s.set.expires_at.is_some_and(|e| e > now));
        let removed = before - self.slots.len();
        if removed > 0 {
            self.reindex();
        }
        removed
    }

    /// Marks every entry holding `access_token` as expired (a resource server
    /// said `invalid_token`), so the next request refreshes it. Returns
    /// whether one was found.
    pub(crate) fn invalidate(&mut self, access_token: &str) -> bool {
        let mut found = false;
        for slot in &mut self.slots {
            if slot.set.access_token.secret() == access_token {
                slot.set.expires_at = Some(UnixTime::EPOCH);
                found = true;
            }
        }
        found
    }

    /// Rebuilds the audience index after entries went.
    fn reindex(&mut self) {
        self.by_audience.clear();
        // Borrowed out while the index is built from it.
        let slots = core::mem::take(&mut self.slots);
        for (i, slot) in slots.iter().enumerate() {
            self.index(&slot.set.audience, i);
        }
        self.slots = slots;
    }

    /// Where `audience` sits in the index: `Ok` with its place, or `Err`
    /// with where it would go.
    fn search(&self, audience: &str) -> Result<usize, usize> {
        let hash = audience_hash(audience);
        let start = self.by_audience.partition_point(|e| e.hash < hash);
        let mut at = start;
        while let Some(e) = self.by_audience.get(at) {
            if e.hash != hash {
                break;
            }
            match e.audience.as_str().cmp(audience) {
                core::cmp::Ordering::Equal => return Ok(at),
                core::cmp::Ordering::Greater => break,
                core::cmp::Ordering::Less => at += 1,
            }
        }
        Err(at)
    }

    /// The positions of `audience`'s entries.
    fn positions(&self, audience: &str) -> Option<&[usize]> {
        let at = self.search(audience).ok()?;
        self.by_audience.get(at).map(|e| e.positions.as_slice())
    }

    /// Records that `audience` has an entry at position `i`.
    fn index(&mut self, audience: &str, i: usize) {
        match self.search(audience) {
            Ok(at) => {
                if let Some(e) = self.by_audience.get_mut(at) {
                    e.positions.push(i);
                }
            }
            Err(at) => self.by_audience.insert(
                at,
                AudienceIndex {
                    hash: audience_hash(audience),
                    audience: String::from(audience),
                    positions: alloc::vec![i],
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AccessToken;
    use serde_json::Map;

    fn entry(audience: &str, requested: &str, granted: &str, token: &str) -> AccessTokenSet {
        AccessTokenSet {
            access_token: AccessToken::new(token),
            scope: Some(granted.into()),
            requested_scope: Some(requested.into()),
            audience: audience.into(),
            expires_at: Some(UnixTime::from_secs(100)),
            expires_in: None,
            token_type: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn many_audiences_are_each_found_and_unknown_ones_are_not() {
        // Inserted out of order, with shared prefixes and a removal: the
        // hash-sorted index must find every audience and no other.
        let audiences: Vec<String> = (0..300)
            .map(|i| alloc::format!("https://api{}.example.com", (i * 7919) % 300))
            .collect();
        let mut cache = TokenCache::new();
        for (i, audience) in audiences.iter().enumerate() {
            cache.upsert(entry(audience, "read", "read", &alloc::format!("at-{i}")));
        }
        let wanted = WantedScope::new("read", "");
        let now = UnixTime::from_secs(1);
        for (i, audience) in audiences.iter().enumerate() {
            let found = cache
                .find(audience, &wanted, now)
                .map(|e| e.access_token.secret());
            assert_eq!(found, Some(alloc::format!("at-{i}").as_str()), "{audience}");
        }
        for unknown in [
            "https://api300.example.com",
            "https://api1.example.com/",
            "",
        ] {
            assert!(cache.find(unknown, &wanted, now).is_none(), "{unknown}");
        }
        assert!(cache.remove("https://api5.example.com", "read"));
        assert!(
            cache
                .find("https://api5.example.com", &wanted, now)
                .is_none()
        );
        assert!(
            cache
                .find("https://api6.example.com", &wanted, now)
                .is_some()
        );
    }

    #[test]
    fn a_key_scope_equal_to_the_joined_parts_covers_them_and_others_are_scanned() {
        let cache = TokenCache::from_entries(alloc::vec![entry(
            "https://api1",
            "openid read:data",
            "openid read:data",
            "t"
        )]);
        let now = UnixTime::from_secs(1);
        let hit = |a: &str, b: &str| {
            cache
                .find("https://api1", &WantedScope::new(a, b), now)
                .is_some()
        };
        assert!(hit("openid", "read:data"));
        assert!(hit("openid read:data", ""));
        assert!(hit("", "openid read:data"));
        // Same length, not the same scope.
        assert!(!hit("openid", "read:date"));
        assert!(!hit("openie", "read:data"));
        // Not joined, still covered token by token.
        assert!(hit("read:data", "openid"));
        assert!(hit("read:data", ""));
        assert!(!hit("openid", "write"));
    }

    #[test]
    fn lookup_rules() {
        let cache = TokenCache::from_entries(alloc::vec![
            entry(
                "https://api1",
                "openid read write",
                "openid read write",
                "broad"
            ),
            entry("https://api1", "openid read", "openid read", "narrow"),
            entry("https://api1/", "openid read", "openid read", "slash"),
        ]);
        let find = |aud, want| {
            cache
                .find(aud, &WantedScope::new(want, ""), UnixTime::EPOCH)
                .map(|e| e.access_token.secret())
        };
        // The smallest granted scope that covers wins.
        assert_eq!(find("https://api1", "read"), Some("narrow"));
        assert_eq!(find("https://api1", "write"), Some("broad"));
        // Byte-for-byte audiences.
        assert_eq!(find("https://api1/", "read"), Some("slash"));
        assert_eq!(find("https://api2", "read"), None);
        assert_eq!(find("https://api1", "admin"), None);
        // Wanted scope split in two parts.
        assert_eq!(
            cache
                .find(
                    "https://api1",
                    &WantedScope::new("openid", "write"),
                    UnixTime::EPOCH
                )
                .map(|e| e.access_token.secret()),
            Some("broad")
        );
    }

    #[test]
    fn requested_scope_is_the_key_not_granted() {
        // Asked for read+write, got only read: the entry still answers a
        // request for write (the SDK's behaviour; strict mode reports it).
        let cache = TokenCache::from_entries(alloc::vec![entry("a", "read write", "read", "t")]);
        assert!(
            cache
                .find("a", &WantedScope::new("write", ""), UnixTime::EPOCH)
                .is_some()
        );
    }

    #[test]
    fn upsert_replaces_same_key() {
        let mut cache = TokenCache::new();
        cache.upsert(entry("a", "x y", "x y", "1"));
        cache.upsert(entry("a", "y  x", "x y", "2"));
        cache.upsert(entry("a", "x", "x", "3"));
        assert_eq!(cache.len(), 2);
        let tokens: Vec<&str> = cache
            .entries()
            .iter()
            .map(|e| e.access_token.secret())
            .collect();
        assert_eq!(tokens, ["2", "3"]);
    }

    #[test]
    fn lru_eviction_keeps_the_newest() {
        let mut cache = TokenCache::new();
        for aud in ["a", "b", "c"] {
            cache.upsert(entry(aud, "s", "s", aud));
        }
        // Use "a" so "b" becomes the least recently used.
        let a = cache
            .locate("a", &WantedScope::new("s", ""), UnixTime::EPOCH)
            .unwrap();
        cache.touch(a);
        cache.upsert(entry("d", "s", "s", "d"));
        assert_eq!(cache.evict_over(3, Some(("d", "s"))), 1);
        assert!(
            cache
                .find("b", &WantedScope::new("s", ""), UnixTime::EPOCH)
                .is_none()
        );
        assert_eq!(cache.len(), 3);
        // The kept entry survives even when it is the oldest.
        assert_eq!(cache.evict_over(1, Some(("c", "s"))), 2);
        assert!(
            cache
                .find("c", &WantedScope::new("s", ""), UnixTime::EPOCH)
                .is_some()
        );
    }

    #[test]
    fn indexes_follow_removals() {
        let mut cache = TokenCache::from_entries(alloc::vec![
            entry("a", "s", "s", "1"),
            entry("b", "s", "s", "2"),
            entry("a", "t", "t", "3"),
        ]);
        assert!(cache.remove("a", "s"));
        let wanted = WantedScope::new("t", "");
        let at = cache.locate("a", &wanted, UnixTime::EPOCH).unwrap();
        assert_eq!(cache.at(at).unwrap().access_token.secret(), "3");
        let b = cache.position("b", "s").unwrap();
        assert_eq!(cache.at(b).unwrap().access_token.secret(), "2");
        // A replacement keeps its place in the `accessTokens[]` order.
        assert_eq!(cache.upsert(entry("b", "s", "s", "4")), b);
        let tokens: Vec<&str> = cache
            .entries()
            .iter()
            .map(|e| e.access_token.secret())
            .collect();
        assert_eq!(tokens, ["4", "3"]);
    }

    #[test]
    fn expired_entries_go() {
        let mut cache = TokenCache::from_entries(alloc::vec![
            entry("a", "s", "s", "1"),
            entry("b", "s", "s", "2")
        ]);
        let mut fresh = entry("c", "s", "s", "3");
        fresh.expires_at = Some(UnixTime::from_secs(500));
        cache.upsert(fresh);
        assert_eq!(cache.remove_expired(UnixTime::from_secs(100)), 2);
        assert_eq!(cache.len(), 1);
        assert!(cache.invalidate("3"));
        assert_eq!(cache.remove_expired(UnixTime::from_secs(100)), 1);
        assert!(cache.is_empty());
    }
}
