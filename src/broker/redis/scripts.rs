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
//!   member → expiry (ms);
//! * `p{ch}:items` — keyed items (state streams): hash id → JSON text, and
//!   `t` in meta the channel's last timestamp;
//! * `p{ix}:index` — set: the channels of index `ix` holding items (a state
//!   stream's groups);
//! * `pstash:<key>` — a stashed value (a parked cable session), with a TTL.

use redis::Script;

/// KEYS: meta, log. ARGV: pub/sub channel, body, epoch if new, history
/// length, history age (s), meta TTL (s), then any further bodies of the
/// same channel. Returns `{epoch, offset}`: the offset of the first body;
/// the others follow it, one each, in their order.
///
/// A missing meta (a new channel, a flushed or restarted Redis, an expired
/// channel) starts a new epoch and drops any log left over, so an offset is
/// never reused under an epoch a client already knows.
pub(super) fn publish() -> Script {
    Script::new(&format!(
        "{PUBLISH_BODIES}\n{PUBLISH_STEPS}\nreturn {{epoch, offset}}"
    ))
}

/// The publish script's bodies: ARGV 2, then ARGV 7 on.
const PUBLISH_BODIES: &str = r"
local bodies = {ARGV[2]}
for i = 7, #ARGV do bodies[#bodies + 1] = ARGV[i] end
";

/// The publish script's steps (KEYS 1–2, ARGV 1 and 3–6 as [`publish`],
/// the Lua table `bodies`), leaving `epoch` and `offset` (the first body's)
/// set. The offsets are counted once for all the bodies, and the expiries
/// refreshed once: a burst on one channel costs Redis one script call, an
/// `XADD` and a `PUBLISH` per publication. The log is trimmed approximately
/// (`MAXLEN ~`: whole nodes of the stream, not one entry per publication);
/// the history read never returns more than the configured length.
const PUBLISH_STEPS: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
end
local count = #bodies
local last = redis.call('HINCRBY', KEYS[1], 's', count)
local keep = tonumber(ARGV[4])
local prefix = 'm ' .. epoch .. ' '
for i = 1, count do
  local id = string.format('%d', last - count + i)
  if keep > 0 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', keep, id .. '-0', 'd', bodies[i])
  end
  redis.call('PUBLISH', ARGV[1], prefix .. id .. ' ' .. bodies[i])
end
if keep > 0 then
  local age = tonumber(ARGV[5])
  if age > 0 then redis.call('EXPIRE', KEYS[2], age) end
end
local meta_ttl = tonumber(ARGV[6])
if meta_ttl > 0 then redis.call('EXPIRE', KEYS[1], meta_ttl) end
local offset = string.format('%d', last - count + 1)
";

/// KEYS: meta, items. ARGV: `all`, `one` (item 3) or `none`, `1` to take
/// the timestamp, the item. Returns `{epoch or false, last offset or false, next
/// timestamp, {id, json, id, json, …}}` read atomically. The timestamp is
/// Redis's clock in ms, or one past the channel's last (`t` in meta) if
/// that is not behind; taken, it becomes the last (kept only while the
/// channel has a meta: no key is made for a group never written).
pub(super) fn items_read() -> Script {
    Script::new(
        r"
local meta = redis.call('HMGET', KEYS[1], 'e', 's', 't')
local now = redis.call('TIME')
local ts = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local last = tonumber(meta[3] or '0')
if ts <= last then ts = last + 1 end
ts = string.format('%d', ts)
if ARGV[2] == '1' and meta[1] then redis.call('HSET', KEYS[1], 't', ts) end
local items = {}
if ARGV[1] == 'all' then
  items = redis.call('HGETALL', KEYS[2])
elseif ARGV[1] == 'one' then
  local value = redis.call('HGET', KEYS[2], ARGV[3])
  if value then items = {ARGV[3], value} end
end
return {meta[1], meta[2], ts, items}
",
    )
}

/// KEYS: meta, log, items, index. ARGV 1–6 as [`publish`], then: 7 the
/// position required (`''`: any, `-`: none, else `<epoch> <offset>`), 8 the
/// item (`''`: none), 9 `1` if it must hold 10 (else it must be absent),
/// 11 `1` to set it to 12 (else delete it), 13 the timestamp (must be above
/// the channel's last), 14 the index member (`''`: none). Returns `{epoch,
/// offset}` of the publication, or nil — and changes nothing — when a check
/// fails.
pub(super) fn commit() -> Script {
    Script::new(&format!(
        r"
local meta = redis.call('HMGET', KEYS[1], 'e', 's', 't')
if ARGV[7] ~= '' then
  local at = '-'
  if meta[1] and meta[2] then at = meta[1] .. ' ' .. meta[2] end
  if at ~= ARGV[7] then return false end
end
if meta[3] and tonumber(meta[3]) >= tonumber(ARGV[13]) then return false end
if ARGV[8] ~= '' then
  local old = redis.call('HGET', KEYS[3], ARGV[8])
  if ARGV[9] == '1' then
    if old ~= ARGV[10] then return false end
  elseif old then
    return false
  end
  if ARGV[11] == '1' then
    redis.call('HSET', KEYS[3], ARGV[8], ARGV[12])
  else
    redis.call('HDEL', KEYS[3], ARGV[8])
  end
  if ARGV[14] ~= '' then
    if redis.call('HLEN', KEYS[3]) > 0 then
      redis.call('SADD', KEYS[4], ARGV[14])
    else
      redis.call('SREM', KEYS[4], ARGV[14])
    end
  end
end
local bodies = {{ARGV[2]}}
{PUBLISH_STEPS}
redis.call('HSET', KEYS[1], 't', ARGV[13])
return {{epoch, offset}}
"
    ))
}

/// KEYS: meta, log. ARGV: first offset wanted (`0`: all), history length.
/// Returns `{epoch or false, last offset or false, entries}` read
/// atomically: at most the last `length` publications — the log is trimmed
/// approximately (`MAXLEN ~`, whole nodes of the stream at a time, far
/// cheaper than trimming to the entry on every publish), so it may hold a
/// few more, which a read never returns: the history reaches back exactly
/// as far as configured.
pub(super) fn history() -> Script {
    Script::new(
        r"
local meta = redis.call('HMGET', KEYS[1], 'e', 's')
local first = tonumber(ARGV[1])
local floor = tonumber(meta[2] or '0') - tonumber(ARGV[2]) + 1
if floor > first then first = floor end
local entries = redis.call('XRANGE', KEYS[2], string.format('%d', first) .. '-0', '+')
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
