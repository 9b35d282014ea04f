"""The limiter's Lua scripts: one atomic script per decision (acquire, refund, observe), run by Redis (or by
fakeredis through lupa without REDIS_URL). See the package docstring for the rules they enforce."""

# KEYS: 1 slots, 2 tenant minute log, 3 app minute log, 4 day window, 5 tenant block, 6 app block, 7 waiters,
#       8 this class's app log (counted for /metrics; background calls only), 9 the app's background log
# ARGV: 1 ticket, 2 concurrent, 3 minute, 4 app minute, 5 day, 6 minute window ms (with guard), 7 day ms,
#       8 slot ttl ms, 9 longest wait for a slot ms, 10 waiter name ('' for none),
#       11 background: 1 or 0, 12 background calls this class may reach in the window, 13 app calls (all classes)
#       under which background may go, 14 tenant calls under which background may go, 15 tenant slots background
#       may fill, 16 the quiet time after a customer call (ms): a customer call sets it, a background call of a
#       class that waits for it checks it; 0 for neither
# KEYS 10: the tenant's customer activity (set for the quiet time by every customer call asked for, made or not)
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait, problem = 0, ''
local function need(ms, why)
  if ms > wait then wait = ms; problem = why end
end
local quiet = tonumber(ARGV[16] or '0')
if tonumber(ARGV[11]) ~= 1 and quiet > 0 then
  redis.call('SET', KEYS[10], '1', 'PX', quiet)
end
local tb = redis.call('PTTL', KEYS[5])
if tb > 0 then need(tb, redis.call('GET', KEYS[5]) or 'blocked') end
local ab = redis.call('PTTL', KEYS[6])
if ab > 0 then need(ab, 'appminute') end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  need(math.max(1, math.min(tonumber(first[2]) - now, tonumber(ARGV[9]))), 'concurrent')
end
local win = tonumber(ARGV[6])
-- Callers that wait for the minute window (ARGV[10] names one) queue in KEYS[7]: the k-th waiter is told to
-- come back when the k-th slot frees, not all of them at the first one.
local me = ARGV[10]
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - win)
local ahead = 0
if me ~= '' then
  local mine = redis.call('ZSCORE', KEYS[7], me)
  redis.call('ZREM', KEYS[7], me)
  if mine then
    ahead = redis.call('ZCOUNT', KEYS[7], now, '(' .. mine)  -- keep its place: only those due before it
  else
    ahead = redis.call('ZCOUNT', KEYS[7], now, '+inf')
  end
end
local function log_check(key, limit, why, queue)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local index = n - limit
    if queue then index = math.min(n - 1, index + ahead) end
    local e = redis.call('ZRANGE', key, index, index, 'WITHSCORES')
    need(math.max(1, tonumber(e[2]) + win - now), why)
  end
end
log_check(KEYS[2], tonumber(ARGV[3]), 'minute', true)
log_check(KEYS[3], tonumber(ARGV[4]), 'appminute', false)
local background = tonumber(ARGV[11]) == 1
if background then
  -- Background waits for: its class's part of the cap (all background calls together, KEYS[9]), the app's calls
  -- of every class reaching (1 - share) of the app minute, and its tenant's minute or slots nearing what customers
  -- need. Each wait is until the call that must leave the window has left it.
  local function under(key, limit)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
    local c = redis.call('ZCARD', key)
    if c >= limit then
      local e = redis.call('ZRANGE', key, c - limit, c - limit, 'WITHSCORES')
      need(math.max(1, tonumber(e[2] or now) + win - now), 'background')
    end
  end
  under(KEYS[9], tonumber(ARGV[12]))
  under(KEYS[3], tonumber(ARGV[13]))
  under(KEYS[2], tonumber(ARGV[14]))
  -- A tenant whose customers are calling (a push under way) keeps its whole minute: its background comes after.
  if quiet > 0 then
    local active = redis.call('PTTL', KEYS[10])
    if active > 0 then need(active, 'background') end
  end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[15]) then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    need(math.max(1, math.min(tonumber(first[2]) - now, tonumber(ARGV[9]))), 'background')
  end
end
local day = tonumber(ARGV[7])
local start = tonumber(redis.call('HGET', KEYS[4], 'start') or '-1')
local used = tonumber(redis.call('HGET', KEYS[4], 'used') or '0')
if start < 0 then
  start = now; used = 0
elseif now >= start + day then
  start = start + math.floor((now - start) / day) * day; used = 0
end
if now < start then
  need(start - now, 'day')
elseif used >= tonumber(ARGV[5]) then
  need(start + day - now, 'day')
end
if wait > 0 then
  if me ~= '' and problem == 'minute' then
    redis.call('ZADD', KEYS[7], now + wait, me)
    redis.call('PEXPIRE', KEYS[7], win * 2)
  end
  return {0, wait, problem}
end
if me ~= '' then redis.call('ZREM', KEYS[7], me) end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[8]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[8]) * 2)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], win * 2)
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('PEXPIRE', KEYS[3], win * 2)
if background then
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - win)
  redis.call('ZADD', KEYS[8], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[8], win * 2)
  redis.call('ZADD', KEYS[9], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[9], win * 2)
end
redis.call('HSET', KEYS[4], 'start', start, 'used', used + 1)
redis.call('PEXPIRE', KEYS[4], day * 2)
return {1, 0, ''}
"""

# KEYS: 1 slots, 2 tenant minute log, 3 app minute log, 4 day window, 5 the call's class log, 6 background log
# ARGV: 1 ticket
REFUND = """
redis.call('ZREM', KEYS[1], ARGV[1])
local counted = redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if counted == 1 and tonumber(redis.call('HGET', KEYS[4], 'used') or '0') > 0 then
  redis.call('HINCRBY', KEYS[4], 'used', -1)
end
return counted
"""

# KEYS: 1 tenant minute log, 2 app minute log, 3 day window, 4 tenant block, 5 app block
# ARGV: 1 minute remaining, 2 app minute remaining, 3 day remaining (-1: header absent), 4 minute, 5 app minute,
#       6 day, 7 minute window ms, 8 call duration ms, 9 status, 10 problem, 11 retry-after ms (-1: absent),
#       12 unique id, 13 day ms
OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = now - tonumber(ARGV[8])
local win = tonumber(ARGV[7])
local added = 0
local function correct(key, remaining, limit, tag)
  if remaining < 0 then return end
  local xero_used = limit - remaining
  local ours = redis.call('ZCOUNT', key, at - win, '+inf')
  for i = 1, xero_used - ours do
    redis.call('ZADD', key, at, 'x:' .. ARGV[12] .. ':' .. tag .. i)
    added = added + 1
  end
  redis.call('PEXPIRE', key, win * 2)
end
correct(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[4]), 't')
correct(KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[5]), 'a')
local day_remaining = tonumber(ARGV[3])
if day_remaining >= 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  local xero_used = tonumber(ARGV[6]) - day_remaining
  if xero_used > tonumber(redis.call('HGET', KEYS[3], 'used') or '0') then
    redis.call('HSET', KEYS[3], 'used', xero_used)
  end
end
if tonumber(ARGV[9]) == 429 then
  local problem = ARGV[10]
  local ra = tonumber(ARGV[11])
  if problem ~= 'concurrent' and ra > 0 then
    if problem == 'appminute' then
      redis.call('SET', KEYS[5], 'appminute', 'PX', ra)
    else
      if problem == '' then problem = 'blocked' end
      redis.call('SET', KEYS[4], problem, 'PX', ra)
      if problem == 'day' then
        redis.call('HSET', KEYS[3], 'start', now + ra, 'used', 0)
        redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[13]) * 2 + ra)
      end
    end
  end
end
return added
"""
