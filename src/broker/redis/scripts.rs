//! The Lua scripts the Redis backend runs: each one a single atomic step on
//! one channel's keys. Numbers leave Lua through `string.format('%d', …)`
//! (`tostring` would print a large offset as `1e+15`); user data is never
//! decoded in Lua (cjson would rewrite it).
//!
//! Keys of a channel `ch` under prefix `p` (hash-tagged, so that a channel's
//! keys stay in one slot if Cluster is ever supported):
//!
//! * `p{ch}:meta` — hash: `e` the epoch, `s` the last offset;
//! * `p{ch}:log` — stream of the channel's history, entry id `<offset>-0`,
//!   field `d` the encoded publication;
//! * `p{ch}:pres` / `p{ch}:pexp` — presence: hash member → JSON, sorted set
//!   member → expiry (ms).

use redis::Script;

/// KEYS: meta, log. ARGV: pub/sub channel, body, epoch if new, history
/// length, history age (s), meta TTL (s). Returns `{epoch, offset}`.
///
/// A missing meta (a new channel, a flushed or restarted Redis, an expired
/// channel) starts a new epoch and drops any log left over, so an offset is
/// never reused under an epoch a client already knows.
pub(super) fn publish() -> Script {
    Script::new(
        r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
end
local offset = string.format('%d', redis.call('HINCRBY', KEYS[1], 's', 1))
local keep = tonumber(ARGV[4])
if keep > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', keep, offset .. '-0', 'd', ARGV[2])
  local age = tonumber(ARGV[5])
  if age > 0 then redis.call('EXPIRE', KEYS[2], age) end
end
local meta_ttl = tonumber(ARGV[6])
if meta_ttl > 0 then redis.call('EXPIRE', KEYS[1], meta_ttl) end
redis.call('PUBLISH', ARGV[1], 'm ' .. epoch .. ' ' .. offset .. ' ' .. ARGV[2])
return {epoch, offset}
",
    )
}

/// KEYS: meta, log. ARGV: first offset wanted (`0`: all). Returns
/// `{epoch or false, last offset or false, entries}` read atomically.
pub(super) fn history() -> Script {
    Script::new(
        r"
local meta = redis.call('HMGET', KEYS[1], 'e', 's')
local entries = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+')
return {meta[1], meta[2], entries}
",
    )
}

/// KEYS: meta, log. ARGV: the epoch and offset a process saw last, a fresh
/// epoch. When Redis is behind what was seen under that same epoch — a
/// failover lost writes the old primary had acknowledged — starts the
/// fresh epoch (and drops the log): the offsets handed out again must not
/// pass for ones already delivered. Returns 1 when it did.
pub(super) fn heal() -> Script {
    Script::new(
        r"
local meta = redis.call('HMGET', KEYS[1], 'e', 's')
if meta[1] == ARGV[1] and meta[2] and tonumber(meta[2]) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'e', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
",
    )
}

/// KEYS: presence hash, expiry set. ARGV: now (ms). The members whose
/// expiry has not passed, as their JSON. Expired ones are left for the
/// sweeper, which reports them.
pub(super) fn presence() -> Script {
    Script::new(
        r"
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
local members = {}
for _, id in ipairs(live) do
  local member = redis.call('HGET', KEYS[1], id)
  if member then table.insert(members, member) end
end
return members
",
    )
}

/// KEYS: presence hash, expiry set. ARGV: now (ms). Removes the members
/// whose expiry passed (their process stopped refreshing them: it died) and
/// returns their ids — to exactly one caller, however many processes sweep
/// at once, so each leave is reported once.
pub(super) fn sweep() -> Script {
    Script::new(
        r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return expired
",
    )
}
