//! The Lua scripts: every operation but the load (a pipeline of plain
//! reads, see `ops::quick_load`) reads and writes its keys in one atomic step on
//! the server (`EVALSHA`, with `EVAL` when the script
//! cache was flushed: the `redis` crate's [`Script`]). No `WATCH`: on a
//! multiplexed connection shared by every task it would watch for all of
//! them at once.
//!
//! Every script checks the session key's type first and refuses a value
//! it did not write (`TKFOREIGN …`), leaving it as it was.

use std::sync::LazyLock;

use redis::Script;

/// The helpers every script starts with. `not_below(a, b)`: `a >= b` for
/// decimal strings of any length (Lua numbers are doubles).
const NOT_BELOW: &str = r"
local function not_below(a, b)
  if #a ~= #b then return #a > #b end
  return a >= b
end
-- The stored generation (false: nothing stored), or a refusal of a value
-- this store did not write.
local function stored_generation(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then return false end
  if kind ~= 'hash' then
    return nil, redis.error_reply('TKFOREIGN a ' .. kind)
  end
  local found = redis.call('HGET', key, 'generation')
  if not found or not string.match(found, '^%d+$') then
    return nil, redis.error_reply('TKFOREIGN a hash without a generation')
  end
  return found
end
";

/// Compare-and-swap save. KEYS: session, floor, claim. ARGV: expected
/// generation ('' = nothing stored), generation, session JSON, TTL in ms
/// ('' = none), claim owner ('' = no claim), claim JSON, lease in ms,
/// channel, key. Answers `{1}`, or `{0, found}` (a conflict; `found` nil
/// when nothing is stored) — also when another owner's claim key is live.
const SAVE: &str = r"
local found, refusal = stored_generation(KEYS[1])
if refusal then return refusal end
if (found or '') ~= ARGV[1] then return {0, found} end
-- A generation only grows: not below the stored one, nor, for a new
-- session, below the highest ever stored under the key.
if found and not not_below(ARGV[2], found) then return {0, found} end
local floor = redis.call('GET', KEYS[2])
if floor and not string.match(floor, '^%d+$') then floor = false end
if not found and floor and not not_below(ARGV[2], floor) then return {0, found} end

-- The claim key counts only as the claim the stored session records
-- (its `claim_owner`): a key left by a session that expired under it is
-- nobody's claim, and goes with this save.
local displaced = ''
if found then displaced = redis.call('HGET', KEYS[1], 'claim_owner') or '' end
local held = redis.call('GET', KEYS[3])
local holder = nil
if held and displaced ~= '' then
  local ok, claim = pcall(cjson.decode, held)
  if ok and type(claim) == 'table' and claim.owner == displaced then
    holder = displaced
  end
end
local owner = ''
if ARGV[5] ~= '' then
  -- Another instance's live claim: this one may not spend the token.
  if holder and holder ~= ARGV[5] then return {0, found} end
  if tonumber(ARGV[7]) > 0 then
    redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[7])
    owner = ARGV[5]
  elseif held then
    redis.call('DEL', KEYS[3])
  end
elseif held then
  -- Released, or the session replaced: the claim this save displaces
  -- goes.
  redis.call('DEL', KEYS[3])
end

redis.call('HSET', KEYS[1], 'session', ARGV[3], 'generation', ARGV[2], 'claim_owner', owner)
if ARGV[4] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
if not floor or not_below(ARGV[2], floor) then
  redis.call('SET', KEYS[2], ARGV[2])
end
if ARGV[4] ~= '' then
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) + 86400000)
else
  redis.call('PERSIST', KEYS[2])
end
redis.call('PUBLISH', ARGV[8], ARGV[9])
return {1, false}
";

/// Generation. KEYS: session. Answers nil or the generation.
const GENERATION: &str = r"
local found, refusal = stored_generation(KEYS[1])
if refusal then return refusal end
return found
";

/// Floor. KEYS: session, floor. Answers `{floor, generation}`.
const FLOOR: &str = r"
local found, refusal = stored_generation(KEYS[1])
if refusal then return refusal end
return {redis.call('GET', KEYS[2]), found}
";

/// Clear. KEYS: session, claim. ARGV: channel, key. The floor stays; the
/// claim goes (nothing is left to refresh).
const CLEAR: &str = r"
local _, refusal = stored_generation(KEYS[1])
if refusal then return refusal end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
";

fn script(body: &str) -> Script {
    Script::new(&format!("{NOT_BELOW}{body}"))
}

pub(crate) static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(SAVE));
pub(crate) static GENERATION_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(GENERATION));
pub(crate) static FLOOR_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(FLOOR));
pub(crate) static CLEAR_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CLEAR));
