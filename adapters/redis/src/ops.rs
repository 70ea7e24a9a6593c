//! The store operations as script invocations and their answers decoded:
//! shared by the async and the blocking store, which only run them.

use std::time::{SystemTime, UNIX_EPOCH};

use redis::ScriptInvocation;
use serde_json::{Value, json};
use tokenkeeper::Limits;
use tokenkeeper::{RefreshClaim, Session, StoreError, UnixTime};

use crate::error::RedisStoreError;
use crate::keys::KeyScheme;
use crate::script::{CLEAR_SCRIPT, FLOOR_SCRIPT, GENERATION_SCRIPT, SAVE_SCRIPT};

/// What a load reads: session JSON, generation, the claim key's value,
/// claim PTTL (nothing when no session is stored).
pub(crate) type Loaded = Option<(Option<String>, Option<String>, Option<StoredClaim>, i64)>;

/// The claim key's JSON, read once: who holds the claim (`None` when the
/// value does not say, or is not JSON).
#[derive(Debug)]
pub(crate) struct StoredClaim {
    owner: Option<String>,
}

impl StoredClaim {
    fn read(json: &str) -> StoredClaim {
        let value = serde_json::from_str::<Value>(json).ok();
        StoredClaim {
            owner: value
                .as_ref()
                .and_then(|v| v.get("owner"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// What the load transaction answers: the session key's type, its session
/// and generation fields (an error for a key of another type), the claim,
/// the claim's PTTL.
pub(crate) type LoadReply = (String, redis::Value, Option<String>, i64);

/// What the save script answers: `(1)` or `(0, found)`.
pub(crate) type SaveReply = (i64, Option<String>);

/// The wall clock in milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The load's first try: one `HMGET` of the session's fields (one round
/// trip, atomic, nothing else for the server to run): the session, its
/// generation, and `claim_owner`, which the save script writes beside
/// the claim key (`""` when the save carried no claim). With no claim
/// recorded there is nothing more to read; the claim key and its lease
/// are read only when one is ([`quick_loaded`]). Each command of a
/// pipeline costs the round trip about 1.5 µs on loopback: the earlier
/// pipeline of `HMGET`, `GET` and `PTTL` was about 4 µs over a bare `HGET`,
/// against about 1 µs for this one command (measured side by side on
/// one connection).
pub(crate) fn quick_load(session_key: &str) -> redis::Pipeline {
    let mut pipe = redis::Pipeline::with_capacity(1);
    pipe.ignore_errors().add_command(command(&[
        "HMGET",
        session_key,
        "session",
        "generation",
        "claim_owner",
    ]));
    pipe
}

/// What the quick load answers: the session's three fields (an error for
/// a key of another type).
pub(crate) type QuickReply = (redis::Value,);

/// The quick load's answer as the session's fields; `None` when it must be
/// read again in one transaction ([`load`]):
/// - neither session nor generation: no key, or a key this store did not
///   write (another type, or a hash of other fields), which the
///   transaction's `TYPE` tells apart. An `EXISTS` beside the `HMGET`
///   would tell it too, but costs every load about 1.5 µs to spare the
///   rare load of a missing session its second round trip;
/// - a claim recorded (`claim_owner` not empty), or no `claim_owner` at
///   all (a hash this store's save did not write whole): the claim key
///   decides whether the claim is live and until when (its `PTTL`), read
///   with the session in one transaction. Only a refresh under way (or a
///   claimant that died before its save) pays this second round trip.
///
/// With `claim_owner` empty, no claim key of this session's can be live:
/// the save script writes the key and the field together, and a save that
/// carries no claim removes the key it displaces.
pub(crate) fn quick_loaded(reply: QuickReply) -> Option<Loaded> {
    // `WRONGTYPE` (kept as the reply's value) is not three fields.
    let redis::Value::Array(fields) = reply.0 else {
        return None;
    };
    let [json, generation, claim_owner] = <[redis::Value; 3]>::try_from(fields).ok()?;
    // No claim recorded; anything else (none, a claim, not text) is read
    // again in the transaction.
    if !matches!(&claim_owner, redis::Value::BulkString(owner) if owner.is_empty()) {
        return None;
    }
    let (json, generation) = (text(json)?, text(generation)?);
    if json.is_none() && generation.is_none() {
        return None;
    }
    Some(Some((json, generation, None, 0)))
}

/// A field's value as text, taking the reply's bytes (no copy):
/// `Some(None)` for a field that is not there, `None` for a value that is
/// not UTF-8 text (read again in the transaction, which reports it).
fn text(value: redis::Value) -> Option<Option<String>> {
    match value {
        redis::Value::Nil => Some(None),
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).ok().map(Some),
        _ => None,
    }
}

/// A command of these words, its buffers allocated once at their size
/// (built word by word, they grow several times).
fn command(words: &[&str]) -> redis::Cmd {
    let bytes = words.iter().map(|word| word.len()).sum();
    let mut command = redis::Cmd::with_capacity(words.len(), bytes);
    for word in words {
        command.arg(*word);
    }
    command
}

/// The load in one `MULTI`/`EXEC` transaction (atomic, one round trip) of
/// plain reads, not a script: what [`quick_load`] falls back to. A script
/// costs the server about 20 times an `HGET` (6.7 µs against 0.3 µs
/// measured). A key of another type fails the `HMGET` (`WRONGTYPE`, kept
/// as the reply's value): the `TYPE` read beside it names the foreign
/// value, refused and left as it is.
pub(crate) fn load(keys: &KeyScheme, key: &str) -> redis::Pipeline {
    let session = keys.session(key);
    let claim = keys.claim(key);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .ignore_errors()
        .cmd("TYPE")
        .arg(&session)
        .cmd("HMGET")
        .arg(&session)
        .arg("session")
        .arg("generation")
        .arg("claim_owner")
        .cmd("GET")
        .arg(&claim)
        .cmd("PTTL")
        .arg(&claim);
    pipe
}

/// The load transaction's answer as the session's fields, or a refusal
/// of a value this store did not write.
pub(crate) fn loaded_of(redis_key: &str, reply: LoadReply) -> Result<Loaded, RedisStoreError> {
    let (kind, fields, claim, pttl) = reply;
    match kind.as_str() {
        "none" => Ok(None),
        "hash" => {
            let (json, generation, claim_owner): (Option<String>, Option<String>, Option<String>) =
                redis::from_redis_value(fields).map_err(|e| RedisStoreError::Redis(e.into()))?;
            // The claim key counts only as the claim the session records
            // (as the save script counts it): a key left by a session that
            // expired under it is nobody's claim.
            let claim = claim.as_deref().map(StoredClaim::read).filter(|c| {
                c.owner.as_deref().is_some_and(|o| !o.is_empty()) && c.owner == claim_owner
            });
            Ok(Some((json, generation, claim, pttl)))
        }
        other => Err(RedisStoreError::Foreign {
            key: redis_key.to_owned(),
            found: format!("a {other}"),
        }),
    }
}

pub(crate) fn generation(keys: &KeyScheme, key: &str) -> ScriptInvocation<'static> {
    GENERATION_SCRIPT.key(keys.session(key))
}

pub(crate) fn floor(keys: &KeyScheme, key: &str) -> ScriptInvocation<'static> {
    let mut invocation = FLOOR_SCRIPT.key(keys.session(key));
    invocation.key(keys.floor(key));
    invocation
}

pub(crate) fn clear(keys: &KeyScheme, key: &str) -> ScriptInvocation<'static> {
    let mut invocation = CLEAR_SCRIPT.key(keys.session(key));
    invocation.key(keys.claim(key)).arg(keys.channel()).arg(key);
    invocation
}

/// The save script for `session`, at `now_ms`. Whether it carries a live
/// claim (the claim key is written).
pub(crate) fn save(
    keys: &KeyScheme,
    key: &str,
    session: &Session,
    expected: Option<u64>,
    now_ms: u64,
) -> (ScriptInvocation<'static>, bool) {
    let generation = session.generation();
    // The session's ceiling as a TTL; at least a second, so a session
    // saved at its very end is still read back as it was.
    let ttl_ms = session.session_expires_at().map(|at| {
        at.as_secs()
            .saturating_mul(1000)
            .saturating_sub(now_ms)
            .max(1000)
    });
    let claim = session.refresh_claim();
    let lease_ms = claim.map_or(0, |c| {
        c.until
            .as_secs()
            .saturating_mul(1000)
            .saturating_sub(now_ms)
    });
    let claim_json = claim.map_or_else(String::new, |c| {
        json!({ "owner": c.owner, "until": c.until.as_secs(), "generation": generation })
            .to_string()
    });
    let mut invocation = SAVE_SCRIPT.key(keys.session(key));
    invocation
        .key(keys.floor(key))
        .key(keys.claim(key))
        .arg(expected.map_or_else(String::new, |g| g.to_string()))
        .arg(generation.to_string())
        .arg(session.to_json())
        .arg(ttl_ms.map_or_else(String::new, |t| t.to_string()))
        .arg(claim.map_or("", |c| c.owner.as_str()))
        .arg(claim_json)
        .arg(lease_ms)
        .arg(keys.channel())
        .arg(key);
    (invocation, claim.is_some() && lease_ms > 0)
}

/// The save script's answer.
pub(crate) fn saved(key: &str, reply: SaveReply) -> Result<(), StoreError> {
    match reply {
        (1, _) => Ok(()),
        (_, found) => Err(StoreError::Conflict {
            found: found.map(|g| parse_generation(key, &g)).transpose()?,
        }),
    }
}

fn parse_generation(key: &str, text: &str) -> Result<u64, RedisStoreError> {
    text.parse().map_err(|_| RedisStoreError::BadGeneration {
        key: key.to_owned(),
    })
}

pub(crate) fn generation_of(key: &str, reply: Option<String>) -> Result<Option<u64>, StoreError> {
    Ok(reply.map(|g| parse_generation(key, &g)).transpose()?)
}

pub(crate) fn floor_of(
    key: &str,
    reply: (Option<String>, Option<String>),
) -> Result<u64, StoreError> {
    let floor = reply.0.map(|g| parse_generation(key, &g)).transpose()?;
    let generation = reply.1.map(|g| parse_generation(key, &g)).transpose()?;
    Ok(floor.max(generation).unwrap_or(0))
}

/// The stored session, with the refresh claim as the claim key says: its
/// owner, and its end on this host's clock (now + the key's remaining
/// lease, so hosts whose clocks differ agree on it); none when the key
/// is gone (the lease ran out in Redis). Whether a live claim was read.
pub(crate) fn session_of(
    redis_key: &str,
    loaded: Loaded,
    limits: &Limits,
    now_ms: u64,
) -> Result<(Option<Session>, bool), RedisStoreError> {
    let Some((json, generation, claim, pttl)) = loaded else {
        return Ok((None, false));
    };
    let foreign = |found: &str| RedisStoreError::Foreign {
        key: redis_key.to_owned(),
        found: found.to_owned(),
    };
    let (Some(json), Some(generation)) = (json, generation) else {
        return Err(foreign("a hash without a session or generation"));
    };
    let corrupt = |source| RedisStoreError::Corrupt {
        key: redis_key.to_owned(),
        source,
    };
    let session = Session::from_json(json.as_bytes(), limits).map_err(corrupt)?;
    if generation.parse::<u64>().ok() != Some(session.generation()) {
        return Err(foreign("a generation that is not the session's"));
    }
    let owner = claim.filter(|_| pttl > 0).and_then(|c| c.owner);
    // The claim key decides, whatever the session JSON says: its owner,
    // and its end on this host's clock.
    let claim = owner.map(|owner| {
        let remaining_ms = u64::try_from(pttl).unwrap_or(0);
        RefreshClaim {
            owner,
            until: UnixTime::from_secs((now_ms + remaining_ms).div_ceil(1000)),
        }
    });
    let live = claim.is_some();
    Ok((Some(session.with_refresh_claim(claim)), live))
}
