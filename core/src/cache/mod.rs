//! The multi-resource token cache: access tokens per audience and scope (the
//! SDK's `accessTokens[]`), all refreshed with the session's one refresh
//! token.
//!
//! Lookup (as the SDK's `findAccessTokenSet`): the audience must be equal
//! byte for byte, the entry's `requestedScope` (else `scope`) must cover the
//! wanted scope as a set, and among matches the entry with the fewest
//! granted scopes wins (ties: the oldest). Lookups borrow and never allocate:
//! they run on every cached-token request.
//!
//! Writes are upserts keyed by audience + requested scope (as sets), so
//! duplicates never pile up; the cache is capped, least recently used first.

use alloc::collections::BTreeMap;
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
}

impl<'a> WantedScope<'a> {
    /// The union of `first` and `second`.
    #[must_use]
    pub const fn new(first: &'a str, second: &'a str) -> Self {
        WantedScope {
            parts: [first, second],
        }
    }

    /// Whether `have` covers every wanted token.
    #[must_use]
    pub fn covered_by(&self, have: &str) -> bool {
        self.parts.iter().all(|part| scope::covers(have, part))
    }

    /// Whether nothing is wanted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| scope::tokens(p).next().is_none())
    }

    /// The merged scope string (allocates; for requests, not lookups).
    #[must_use]
    pub fn merged(&self) -> String {
        scope::merge(self.parts[0], self.parts[1])
    }
}

#[derive(Debug, Clone)]
struct Slot {
    set: AccessTokenSet,
    /// Insertion order, for a stable `accessTokens[]` order.
    seq: u64,
    /// Recency tick of the last lookup or write.
    last_used: u64,
}

/// Where an entry is: its audience and its index among that audience's
/// entries. Valid until the cache is next modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRef {
    index: usize,
}

/// The per-audience access token cache.
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    by_audience: BTreeMap<String, Vec<Slot>>,
    len: usize,
    next_seq: u64,
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
            cache.upsert(entry, 0);
        }
        cache
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in insertion order (the `accessTokens[]` order).
    #[must_use]
    pub fn entries(&self) -> Vec<&AccessTokenSet> {
        let mut slots: Vec<&Slot> = self.by_audience.values().flatten().collect();
        slots.sort_by_key(|s| s.seq);
        slots.into_iter().map(|s| &s.set).collect()
    }

    /// The best entry for `audience` covering `wanted`, if any.
    #[must_use]
    pub fn find(&self, audience: &str, wanted: &WantedScope<'_>) -> Option<&AccessTokenSet> {
        self.find_slot(audience, wanted)
            .map(|r| &self.by_audience[audience][r.index].set)
    }

    pub(crate) fn find_slot(&self, audience: &str, wanted: &WantedScope<'_>) -> Option<SlotRef> {
        let slots = self.by_audience.get(audience)?;
        let mut best: Option<(usize, usize, u64)> = None;
        for (index, slot) in slots.iter().enumerate() {
            if !wanted.covered_by(slot.set.key_scope()) {
                continue;
            }
            let granted = scope::count(slot.set.scope.as_deref().unwrap_or(slot.set.key_scope()));
            let better = match best {
                None => true,
                Some((_, best_granted, best_seq)) => {
                    granted < best_granted || (granted == best_granted && slot.seq < best_seq)
                }
            };
            if better {
                best = Some((index, granted, slot.seq));
            }
        }
        best.map(|(index, _, _)| SlotRef { index })
    }

    pub(crate) fn get(&self, audience: &str, slot: SlotRef) -> Option<&AccessTokenSet> {
        self.by_audience
            .get(audience)
            .and_then(|slots| slots.get(slot.index))
            .map(|s| &s.set)
    }

    pub(crate) fn touch(&mut self, audience: &str, slot: SlotRef, tick: u64) {
        if let Some(s) = self
            .by_audience
            .get_mut(audience)
            .and_then(|slots| slots.get_mut(slot.index))
        {
            s.last_used = tick;
        }
    }

    /// Inserts `set`, replacing an entry with the same audience and the same
    /// requested scope (as sets). Returns where it went.
    pub(crate) fn upsert(&mut self, set: AccessTokenSet, tick: u64) -> SlotRef {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slots = self.by_audience.entry(set.audience.clone()).or_default();
        if let Some(index) = slots
            .iter()
            .position(|s| scope::same_set(s.set.key_scope(), set.key_scope()))
        {
            let slot = &mut slots[index];
            slot.set = set;
            slot.last_used = tick;
            return SlotRef { index };
        }
        slots.push(Slot {
            set,
            seq,
            last_used: tick,
        });
        self.len += 1;
        SlotRef {
            index: slots.len() - 1,
        }
    }

    /// Removes the least recently used entries until at most `max` remain,
    /// never the entry `keep` of `keep_audience`. Returns how many went.
    pub(crate) fn evict_over(&mut self, max: usize, keep: Option<(&str, &str)>) -> usize {
        let mut evicted = 0;
        while self.len > max {
            let victim = self
                .by_audience
                .iter()
                .flat_map(|(aud, slots)| slots.iter().enumerate().map(move |(i, s)| (aud, i, s)))
                .filter(|(aud, _, s)| {
                    keep.is_none_or(|(k_aud, k_scope)| {
                        aud.as_str() != k_aud || !scope::same_set(s.set.key_scope(), k_scope)
                    })
                })
                .min_by_key(|(_, _, s)| (s.last_used, s.seq))
                .map(|(aud, i, _)| (aud.clone(), i));
            let Some((audience, index)) = victim else {
                break;
            };
            self.remove_at(&audience, index);
            evicted += 1;
        }
        evicted
    }

    /// Whether some entry has expired at `now` (or has no known expiry).
    #[must_use]
    pub fn has_expired(&self, now: UnixTime) -> bool {
        self.by_audience
            .values()
            .flatten()
            .any(|s| s.set.expires_at.is_none_or(|e| e <= now))
    }

    /// Removes every entry whose token has expired at `now` (for sessions
    /// that cannot refresh them). Returns how many went.
    pub(crate) fn remove_expired(&mut self, now: UnixTime) -> usize {
        let before = self.len;
        for slots in self.by_audience.values_mut() {
            slots.retain(|s| s.set.expires_at.is_some_and(|e| e > now));
        }
        self.by_audience.retain(|_, slots| !slots.is_empty());
        self.len = self.by_audience.values().map(Vec::len).sum();
        before - self.len
    }

    /// Marks every entry holding `access_token` as expired (a resource server
    /// said `invalid_token`), so the next request refreshes it. Returns
    /// whether one was found.
    pub(crate) fn invalidate(&mut self, access_token: &str) -> bool {
        let mut found = false;
        for slot in self.by_audience.values_mut().flatten() {
            if slot.set.access_token.secret() == access_token {
                slot.set.expires_at = Some(UnixTime::EPOCH);
                found = true;
            }
        }
        found
    }

    fn remove_at(&mut self, audience: &str, index: usize) {
        if let Some(slots) = self.by_audience.get_mut(audience) {
            if index < slots.len() {
                slots.remove(index);
                self.len -= 1;
            }
            if slots.is_empty() {
                self.by_audience.remove(audience);
            }
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
            token_type: None,
            extra: Map::new(),
        }
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
                .find(aud, &WantedScope::new(want, ""))
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
                .find("https://api1", &WantedScope::new("openid", "write"))
                .map(|e| e.access_token.secret()),
            Some("broad")
        );
    }

    #[test]
    fn requested_scope_is_the_key_not_granted() {
        // Asked for read+write, got only read: the entry still answers a
        // request for write (the SDK's behaviour; strict mode reports it).
        let cache = TokenCache::from_entries(alloc::vec![entry("a", "read write", "read", "t")]);
        assert!(cache.find("a", &WantedScope::new("write", "")).is_some());
    }

    #[test]
    fn upsert_replaces_same_key() {
        let mut cache = TokenCache::new();
        cache.upsert(entry("a", "x y", "x y", "1"), 1);
        cache.upsert(entry("a", "y  x", "x y", "2"), 2);
        cache.upsert(entry("a", "x", "x", "3"), 3);
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
        for (i, aud) in ["a", "b", "c"].iter().enumerate() {
            cache.upsert(entry(aud, "s", "s", aud), i as u64);
        }
        // Use "a" so "b" becomes the least recently used.
        let slot = cache.find_slot("a", &WantedScope::new("s", "")).unwrap();
        cache.touch("a", slot, 10);
        cache.upsert(entry("d", "s", "s", "d"), 11);
        assert_eq!(cache.evict_over(3, Some(("d", "s"))), 1);
        assert!(cache.find("b", &WantedScope::new("s", "")).is_none());
        assert_eq!(cache.len(), 3);
        // The kept entry survives even when it is the oldest.
        assert_eq!(cache.evict_over(1, Some(("c", "s"))), 2);
        assert!(cache.find("c", &WantedScope::new("s", "")).is_some());
    }

    #[test]
    fn expired_entries_go() {
        let mut cache = TokenCache::from_entries(alloc::vec![
            entry("a", "s", "s", "1"),
            entry("b", "s", "s", "2")
        ]);
        let mut fresh = entry("c", "s", "s", "3");
        fresh.expires_at = Some(UnixTime::from_secs(500));
        cache.upsert(fresh, 0);
        assert_eq!(cache.remove_expired(UnixTime::from_secs(100)), 2);
        assert_eq!(cache.len(), 1);
        assert!(cache.invalidate("3"));
        assert_eq!(cache.remove_expired(UnixTime::from_secs(100)), 1);
        assert!(cache.is_empty());
    }
}
