//! Back-channel logout in a shared store: "logged out at" marks.
//!
//! A logout token ends sessions by `sid` (one session at the
//! authorization server) or by `sub` (every session of a user). Instead of
//! an index from `sid`/`sub` to session ids that every save must keep up
//! to date (and a scan or a multi-key write per logout), the store keeps
//! one **mark** per `sid` or `sub`: "every session of this `sid`/`sub`
//! created at or before `at` has ended". Every instance checks the marks
//! of a session when it loads it ([`is_ended`]), so a logout received by
//! one instance is seen by all on their next request, with one small
//! write per logout and one or two reads per load; a session created
//! after the mark (the user logged in again) is unaffected. Marks expire
//! after a retention the operator picks: at least the longest a session
//! may live.
//!
//! The same store keeps the logout tokens' `jti`s for the replay check
//! ([`LogoutMarks::record_once`]: "set if absent" with an expiry), so a
//! token replayed to another instance is refused too.
//!
//! ```text
//! POST /backchannel-logout ─► LogoutTokenValidator::validate (everything but the replay)
//!   ─► marks.record_once(token.replay_key(), token.remember_until(), now)   false: jti_replayed
//!   ─► end_sessions(&mut marks, token.target(), now, retention)             200
//! every request:  load session ─► is_ended(&mut marks, &session, now)?  yes: no session
//! ```

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::time::Duration;

use super::StoreError;
#[cfg(feature = "login")]
use crate::logout_token::LogoutTarget;
use crate::session::Session;
use crate::time::UnixTime;

/// How long a logout mark is kept by default: 30 days (the SDK's default
/// absolute session duration is 3 days; a mark must outlive every session
/// it may end).
pub const DEFAULT_MARK_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where back-channel logout marks and seen `jti`s are kept: shared by
/// every instance of the app (a Redis database, a table), or in memory
/// for one process ([`MemoryLogoutMarks`]).
pub trait LogoutMarks {
    /// Records that the sessions under `key` ended at `at`; the mark may
    /// be forgotten after `until`. A later mark replaces an earlier one.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be written.
    fn mark(&mut self, key: &str, at: UnixTime, until: UnixTime) -> Result<(), StoreError>;

    /// When the sessions under `key` were last ended, if a mark is kept
    /// at `now`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn marked_at(&mut self, key: &str, now: UnixTime) -> Result<Option<UnixTime>, StoreError>;

    /// The latest of the marks kept at `now` under `keys` ([`is_ended`]
    /// asks for a session's `sid` and `sub` on every request). By default
    /// one [`marked_at`](LogoutMarks::marked_at) per key; a store that can
    /// read them together should (one round trip).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn latest_mark(
        &mut self,
        keys: &[&str],
        now: UnixTime,
    ) -> Result<Option<UnixTime>, StoreError> {
        let mut latest = None;
        for key in keys {
            latest = latest.max(self.marked_at(key, now)?);
        }
        Ok(latest)
    }

    /// Records `key` (a logout token's replay key) until `until`; `false`
    /// when it was already recorded at `now` (a replay). Must be atomic
    /// across instances ("set if absent").
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be written.
    fn record_once(
        &mut self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
}

/// The mark key of the sessions with authorization-server session id `sid`.
#[must_use]
pub fn sid_key(sid: &str) -> String {
    alloc::format!("bcl:sid:{sid}")
}

/// The mark key of every session of user `sub`.
#[must_use]
pub fn sub_key(sub: &str) -> String {
    alloc::format!("bcl:sub:{sub}")
}

/// Ends the sessions `target` names at `now`: a mark on its `sid` (which
/// names one session at the server; with a `sub` too, the `sid` alone is
/// as precise), else on its `sub` (every session of the user), kept for
/// `retention`.
///
/// # Errors
/// The store's error; nothing is ended then.
#[cfg(feature = "login")]
#[cfg_attr(docsrs, doc(cfg(feature = "login")))]
pub fn end_sessions(
    marks: &mut (impl LogoutMarks + ?Sized),
    target: &LogoutTarget,
    now: UnixTime,
    retention: Duration,
) -> Result<(), StoreError> {
    let key = match (&target.sid, &target.sub) {
        (Some(sid), _) => sid_key(sid),
        (None, Some(sub)) => sub_key(sub),
        // A validated logout token always names one.
        (None, None) => return Ok(()),
    };
    marks.mark(&key, now, now.saturating_add(retention))
}

/// Whether a back-channel logout ended `session`: a mark on its `sid`
/// (`internal.sid`) or its user's `sub` (`user.sub`) at or after its
/// creation (`internal.createdAt`; a session without one is ended by any
/// mark).
///
/// # Errors
/// The store's error (callers treat the session as ended: failing closed).
pub fn is_ended(
    marks: &mut (impl LogoutMarks + ?Sized),
    session: &Session,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let created = session.created_at().unwrap_or(UnixTime::from_secs(0));
    // Asked on every request of a stateful session: the keys on the stack.
    let (sid, sub) = (session.sid().map(sid_key), session.sub().map(sub_key));
    let mut keys = [""; 2];
    let mut count = 0;
    for key in [sid.as_deref(), sub.as_deref()].into_iter().flatten() {
        keys[count] = key;
        count += 1;
    }
    if count == 0 {
        return Ok(false);
    }
    Ok(marks
        .latest_mark(&keys[..count], now)?
        .is_some_and(|at| at >= created))
}

/// Logout marks and seen `jti`s in memory: one process (several app
/// instances in one process share it behind a lock), and tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryLogoutMarks {
    /// key ─► (ended at, kept until)
    marks: BTreeMap<String, (UnixTime, UnixTime)>,
    /// replay key ─► kept until
    seen: BTreeMap<String, UnixTime>,
}

impl MemoryLogoutMarks {
    /// No marks.
    #[must_use]
    pub fn new() -> Self {
        MemoryLogoutMarks::default()
    }

    /// Forgets the marks and `jti`s whose time ran out at `now`.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        self.marks.retain(|_, (_, until)| *until > now);
        self.seen.retain(|_, until| *until > now);
    }

    /// How many marks are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    /// Whether no mark is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }
}

// Each write first forgets what ran out (writes are logout requests: rare),
// so what is kept stays bounded by what is live without a timer.
impl LogoutMarks for MemoryLogoutMarks {
    fn mark(&mut self, key: &str, at: UnixTime, until: UnixTime) -> Result<(), StoreError> {
        self.handle_timeout(at);
        let entry = self.marks.entry(String::from(key)).or_insert((at, until));
        *entry = (entry.0.max(at), entry.1.max(until));
        Ok(())
    }

    fn marked_at(&mut self, key: &str, now: UnixTime) -> Result<Option<UnixTime>, StoreError> {
        Ok(self
            .marks
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(at, _)| *at))
    }

    fn record_once(
        &mut self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.handle_timeout(now);
        if self.seen.contains_key(key) {
            return Ok(false);
        }
        self.seen.insert(String::from(key), until);
        Ok(true)
    }
}

#[cfg(all(test, feature = "login"))]
mod tests {
    use super::*;

    fn session(sub: &str, sid: &str, created: u64) -> Session {
        let json = alloc::format!(
            r#"{{"user":{{"sub":"{sub}"}},"internal":{{"sid":"{sid}","createdAt":{created}}},
               "tokenSet":{{"accessToken":"at","expiresAt":1}}}}"#
        );
        Session::from_json(json.as_bytes(), &crate::Limits::default()).unwrap()
    }

    fn target(sub: Option<&str>, sid: Option<&str>) -> LogoutTarget {
        LogoutTarget {
            sub: sub.map(String::from),
            sid: sid.map(String::from),
        }
    }

    const RETAIN: Duration = Duration::from_secs(100);

    #[test]
    fn a_sid_mark_ends_that_session_only() {
        let mut marks = MemoryLogoutMarks::new();
        let t = UnixTime::from_secs(1_000);
        end_sessions(&mut marks, &target(Some("alice"), Some("s1")), t, RETAIN).unwrap();
        assert!(is_ended(&mut marks, &session("alice", "s1", 900), t).unwrap());
        assert!(!is_ended(&mut marks, &session("alice", "s2", 900), t).unwrap());
        assert!(!is_ended(&mut marks, &session("bob", "s3", 900), t).unwrap());
    }

    #[test]
    fn a_sub_mark_ends_every_older_session_of_the_user_not_a_newer_login() {
        let mut marks = MemoryLogoutMarks::new();
        let t = UnixTime::from_secs(1_000);
        end_sessions(&mut marks, &target(Some("alice"), None), t, RETAIN).unwrap();
        assert!(is_ended(&mut marks, &session("alice", "s1", 900), t).unwrap());
        assert!(is_ended(&mut marks, &session("alice", "s2", 1_000), t).unwrap());
        assert!(!is_ended(&mut marks, &session("alice", "s3", 1_001), t).unwrap());
        assert!(!is_ended(&mut marks, &session("bob", "s4", 900), t).unwrap());
    }

    /// `createdAt` as the SDK accepts it (any number, a numeric string):
    /// a login after the mark stays logged in however it is written.
    #[test]
    fn a_newer_login_written_as_a_float_or_a_string_is_not_ended() {
        let mut marks = MemoryLogoutMarks::new();
        let t = UnixTime::from_secs(1_000);
        end_sessions(&mut marks, &target(Some("alice"), None), t, RETAIN).unwrap();
        for created in ["1001.5", "\"1001\""] {
            let json = alloc::format!(
                r#"{{"user":{{"sub":"alice"}},"internal":{{"sid":"s","createdAt":{created}}},
                   "tokenSet":{{"accessToken":"at","expiresAt":1}}}}"#
            );
            let session = Session::from_json(json.as_bytes(), &crate::Limits::default()).unwrap();
            assert!(!is_ended(&mut marks, &session, t).unwrap(), "{created}");
        }
        assert!(is_ended(&mut marks, &session("alice", "s", 999), t).unwrap());
    }

    #[test]
    fn writes_forget_what_ran_out_so_memory_stays_bounded() {
        let mut marks = MemoryLogoutMarks::new();
        let short = Duration::from_secs(10);
        for i in 0..100u64 {
            let t = UnixTime::from_secs(1_000 + i * 20);
            let sid = alloc::format!("s{i}");
            end_sessions(&mut marks, &target(None, Some(&sid)), t, short).unwrap();
            let jti = alloc::format!("jti-{i}");
            assert!(marks.record_once(&jti, t.saturating_add(short), t).unwrap());
        }
        assert_eq!(marks.len(), 1, "only the live mark is kept");
        assert_eq!(marks.seen.len(), 1, "only the live jti is kept");
    }

    #[test]
    fn marks_expire_after_their_retention() {
        let mut marks = MemoryLogoutMarks::new();
        let t = UnixTime::from_secs(1_000);
        end_sessions(&mut marks, &target(None, Some("s1")), t, RETAIN).unwrap();
        let later = t.saturating_add(RETAIN);
        assert!(!is_ended(&mut marks, &session("alice", "s1", 900), later).unwrap());
        marks.handle_timeout(later);
        assert!(marks.is_empty());
    }

    #[test]
    fn a_jti_is_recorded_once_until_it_expires() {
        let mut marks = MemoryLogoutMarks::new();
        let t = UnixTime::from_secs(1_000);
        let until = t.saturating_add(RETAIN);
        assert!(marks.record_once("jti-1", until, t).unwrap());
        assert!(!marks.record_once("jti-1", until, t).unwrap());
        assert!(marks.record_once("jti-2", until, t).unwrap());
        assert!(marks.record_once("jti-1", until, until).unwrap());
    }
}
