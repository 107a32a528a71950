--[[
charge.lua: evaluates and charges every limit of one Check, the key's credits and the day's
usage counter, atomically, in one round trip. A request refused by any limit (or by credits)
charges none of them: everything is checked first, then charged.

KEYS (all share the hash tag {<keyId>}, so the script is Redis Cluster safe)
  KEYS[1]        kg:{id}:usage:YYYYMMDD  hash of the UTC day of `now`:
                 fields allowed | denied:<reason> | would_deny:<reason> (requests, not units)
  KEYS[2]        kg:{id}:credits         integer string; read only when ARGV[3] == '1'
  KEYS[2+i]      counter of limit i (i = 1..N):
                   sliding s/m/h  kg:{id}:rl:<s|m|h>  hash, field = bucket index floor(t / w),
                                  value = '<units>:<latest hit ms>'; plus the field 'sum' =
                                  '<units of all stored buckets>:<lowest index>:<highest index>'
                   calendar d     kg:{id}:q:d:YYYYMMDD       integer string
                   calendar month kg:{id}:q:month:YYYYMM     integer string
ARGV
  ARGV[1]        now, ms since the epoch, from the caller's clock (never Redis TIME)
  ARGV[2]        cost, units charged to every limit and to credits (positive integer)
  ARGV[3]        '1' when the key carries credits, else '0'
  ARGV[4]        '1' for shadow mode (charge as if allowed, report what would have happened)
  ARGV[5]        ms from now until the usage hash expires (day end + retention - now)
  ARGV[6]        N, the number of limits
  ARGV[7+4(i-1) .. 10+4(i-1)]  limit i: count, kind, p1, p2
                   kind 'sliding':  p1 = bucket width w in ms, p2 = window length W in ms
                   kind 'calendar': p1 = window end, ms since the epoch (exclusive), p2 = 0
Returns
  { verdict, charged, deniedBy, retryAfterMs, credits, remaining_1, reset_1, ..., remaining_N, reset_N }
  verdict       'allowed' | 'rate_limited' | 'quota_exceeded' (what the limits decided)
  charged       1 when counters were charged (verdict allowed, or shadow mode), else 0
  deniedBy      0-based index of the refusing limit, -1 credits, -2 none
  retryAfterMs  ms until this request could succeed; 0 when allowed; -1 never by waiting
                (credits exhausted, or cost above the limit's count)
  credits       the balance after the charge, -1 when the key carries no credits
  remaining_i   units left in limit i after the charge (never below 0)
  reset_i       sliding: ms until its oldest counted bucket leaves (0 when none counts);
                calendar: ms until the window ends

Sliding windows (mirrors src/limits/sliding-window.ts): a hit at t lands in bucket floor(t / w),
which keeps its units and its latest hit L; the bucket counts while now < L + W. Never more than
count units in any interval [a, a + W); a request is refused at most w earlier than an exact log.

Expiry (EXPIRY_SLACK_MS past the moment a key stops counting) is set only when it has to change,
so that a busy key does not pay a PEXPIRE per counter per request:
  sliding hash     when the charge opens a bucket newer than every counted one: until the end of
                   that bucket + W (every later hit of that bucket falls before its end)
  calendar string  when INCRBY creates it: until the end of its window (its name is the window)
  usage hash       when HINCRBY creates a field (the first of the day creates the hash): until
                   the day's end + retention (ARGV[5] is that, from now)
]]

local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local has_credits = ARGV[3] == '1'
local shadow = ARGV[4] == '1'
local usage_ttl_ms = tonumber(ARGV[5])
-- Counters live this long past the moment they stop counting (EXPIRY_SLACK_MS in
-- charge-call.ts): counting never depends on expiry, and Redis's own clock may run ahead of
-- the `now` keygate passes in, which must not delete a counter that still counts.
local EXPIRY_SLACK_MS = 60000
local limit_count = tonumber(ARGV[6])

local function int(x)
  return string.format('%d', x)
end

-- The field of a sliding hash that sums it up: '<units of all stored buckets>:<lowest stored
-- index>:<highest stored index>'. Every charge rewrites it with its bucket.
local SUMMARY = 'sum'

-- Reads one stored bucket: its index, units and latest hit (numbers); stops the script on
-- anything but digits.
local function read_bucket(field, value)
  local units, last = string.match(value, '^(%d+):(%d+)$')
  if not units or not string.match(field, '^%d+$') then
    error('keygate: corrupt rate-limit bucket ' .. field .. '=' .. value)
  end
  return tonumber(field), tonumber(units), tonumber(last)
end

-- The units of a stored bucket (the value part only, without a second parse).
local function bucket_units(field, value)
  local units = tonumber(string.match(value, '^(%d+):%d+$'))
  if not units then read_bucket(field, value) end -- stops on a corrupt bucket
  return units
end

-- The wait until a sliding limit could take `cost` more units: its counted buckets leave the
-- window in the order of their latest hit (then index), which is their index order (see below),
-- so it walks them from the lowest up until enough units have left: a request refused by a few
-- units reads one or two buckets, not the whole window.
local function sliding_retry(limit)
  local left = limit.used
  local function leaves(units, last)
    left = left - units
    if left + cost <= limit.count then return last + limit.window_ms - now end
  end
  if limit.lowest == nil then return 0 end -- nothing counts (only a corrupt summary gets here)
  if limit.newest - limit.lowest <= 2 * limit.window_ms / limit.bucket_ms + 2 then
    for index = limit.lowest, limit.newest do
      local value = redis.call('HGET', limit.key, int(index))
      if value then
        local _, units, last = read_bucket(int(index), value)
        local wait = leaves(units, last)
        if wait then return wait end
      end
    end
    return 0
  end
  -- Counted buckets far apart (clocks that disagree by more than a window): read them all and
  -- sort them by latest hit, then index, instead of walking every index in between.
  local flat, counted = redis.call('HGETALL', limit.key), {}
  for j = 1, #flat, 2 do
    if flat[j] ~= SUMMARY then
      local index, units, last = read_bucket(flat[j], flat[j + 1])
      if last + limit.window_ms > now then counted[#counted + 1] = { index = index, units = units, last = last } end
    end
  end
  table.sort(counted, function(x, y)
    if x.last ~= y.last then return x.last < y.last end
    return x.index < y.index
  end)
  for _, bucket in ipairs(counted) do
    local wait = leaves(bucket.units, bucket.last)
    if wait then return wait end
  end
  return 0
end

--[[ Evaluating a sliding limit sets on `limit` what the decision, the charge and the report need:
  used          units of the counted buckets
  stale         fields of the buckets that no longer count (deleted when charging)
  newest        the highest counted bucket index (-1 when none counts)
  lowest        the lowest counted bucket index (nil when none counts)
  current_units, current_last   the counted bucket receiving hits at `now`, if any
  oldest_other  the latest hit of the lowest counted bucket, when that is not the current one

Every hit of bucket i fell in [i*w, (i+1)*w) (a charge writes the bucket of its own `now`), so its
latest hit L did too. Hence bucket i is stale for sure when (i+1)*w - 1 + W <= now, that is when
i < edge, and counts for sure when i > edge: only the edge bucket needs its L to decide. And among
counted buckets the lowest index has the earliest L.

With the summary, a busy key's charge reads a handful of fields (the summary, edge - 1, edge,
current) instead of all B + 1 buckets: used = total - the units of the buckets below the edge and
of a stale edge bucket, which lie between the summary's lowest index and the edge. ]]

-- Reads every bucket (HGETALL): for a hash without a summary (empty, or written before it existed),
-- one whose buckets have all left the window (an idle key: all are deleted), or one whose stored
-- range is too far from the window to read bucket by bucket.
local function scan_sliding(limit)
  local flat = redis.call('HGETALL', limit.key)
  local stale, used, newest, lowest, lowest_at, current_at = {}, 0, -1, nil, nil, nil
  for j = 1, #flat, 2 do
    local field, value = flat[j], flat[j + 1]
    if field ~= SUMMARY then
      local index = tonumber(field)
      local units = bucket_units(field, value)
      if not index then read_bucket(field, value) end -- stops on a corrupt bucket
      local counts = index > limit.edge
      if index == limit.edge then
        local _, _, last = read_bucket(field, value)
        counts = last + limit.window_ms > now
      end
      if not counts then
        stale[#stale + 1] = field
      else
        used = used + units
        if index > newest then newest = index end
        if lowest == nil or index < lowest then lowest, lowest_at = index, j end
        if index == limit.current then current_at = j end
      end
    end
  end
  limit.stale, limit.used, limit.newest, limit.lowest = stale, used, newest, lowest
  local _
  if current_at then _, limit.current_units, limit.current_last = read_bucket(flat[current_at], flat[current_at + 1]) end
  if lowest_at and lowest ~= limit.current then _, _, limit.oldest_other = read_bucket(flat[lowest_at], flat[lowest_at + 1]) end
end

local function evaluate_sliding(limit)
  local key, edge, current = limit.key, limit.edge, limit.current
  local buckets = limit.window_ms / limit.bucket_ms
  local got = redis.call('HMGET', key, SUMMARY, int(edge - 1), int(edge), int(current))
  if not got[1] then return scan_sliding(limit) end
  local total, lo, hi = string.match(got[1], '^(%d+):(%d+):(%d+)$')
  if not total then error('keygate: corrupt rate-limit summary ' .. SUMMARY .. '=' .. got[1]) end
  total, lo, hi = tonumber(total), tonumber(lo), tonumber(hi)
  if hi < edge or edge - lo > buckets + 1 or hi - edge > 2 * buckets + 2 then return scan_sliding(limit) end
  limit.stale, limit.newest = {}, -1
  -- Buckets below the edge are stale: take their units off the total.
  local stale, stale_units = limit.stale, 0
  if lo <= edge - 2 then
    local fields = {}
    for index = lo, edge - 2 do fields[#fields + 1] = int(index) end
    local values = redis.call('HMGET', key, unpack(fields))
    for k = 1, #fields do
      if values[k] then
        stale[#stale + 1] = fields[k]
        stale_units = stale_units + bucket_units(fields[k], values[k])
      end
    end
  end
  if got[2] then
    stale[#stale + 1] = int(edge - 1)
    stale_units = stale_units + bucket_units(stale[#stale], got[2])
  end
  local edge_counts = false
  if got[3] then
    local _, units, last = read_bucket(int(edge), got[3])
    edge_counts = last + limit.window_ms > now
    if not edge_counts then
      stale[#stale + 1] = int(edge)
      stale_units = stale_units + units
    end
  end
  limit.used = total - stale_units
  if hi > edge or edge_counts then limit.newest = hi end
  if got[4] then
    local _
    _, limit.current_units, limit.current_last = read_bucket(int(current), got[4])
  end
  -- The lowest counted bucket: the edge, or the first stored one above it.
  local lowest_value = nil
  if edge_counts then
    limit.lowest, lowest_value = edge, got[3]
  elseif limit.newest ~= -1 then
    for index = math.max(lo, edge + 1), hi do
      local value = got[4]
      if index ~= current then value = redis.call('HGET', key, int(index)) end
      if value then
        limit.lowest, lowest_value = index, value
        break
      end
    end
  end
  if lowest_value and limit.lowest ~= current then
    local _
    _, _, limit.oldest_other = read_bucket(int(limit.lowest), lowest_value)
  end
end

-- 1. Evaluate every limit without changing anything.
local limits = {}
for i = 1, limit_count do
  local a = 7 + (i - 1) * 4
  local limit = { key = KEYS[2 + i], count = tonumber(ARGV[a]), kind = ARGV[a + 1] }
  if limit.kind == 'sliding' then
    limit.bucket_ms = tonumber(ARGV[a + 2])
    limit.window_ms = tonumber(ARGV[a + 3])
    limit.current = math.floor(now / limit.bucket_ms)
    limit.edge = math.floor((now - limit.window_ms + 1) / limit.bucket_ms)
    evaluate_sliding(limit)
    limit.fits = limit.used + cost <= limit.count
    limit.retry = 0
    if not limit.fits then
      if cost > limit.count then limit.retry = -1 else limit.retry = sliding_retry(limit) end
    end
  else
    limit.window_end = tonumber(ARGV[a + 2])
    limit.used = tonumber(redis.call('GET', limit.key) or '0') or 0
    limit.fits = limit.used + cost <= limit.count
    limit.retry = 0
    if not limit.fits then
      if cost > limit.count then limit.retry = -1 else limit.retry = limit.window_end - now end
    end
  end
  limits[i] = limit
end

-- The current bucket of a sliding limit once charged: cost more units and a hit at now
-- (chargedBucket in sliding-window.ts).
local function charged_bucket(limit)
  if limit.current_units == nil then return cost, now end
  local last = limit.current_last
  if now > last then last = now end
  return limit.current_units + cost, last
end

-- 2. Decide. Credits refuse first; else the refusing limit with the longest wait (-1 = forever).
local verdict = 'allowed'
local denied_by = -2
local retry = 0
local balance = -1
if has_credits then
  balance = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if balance < cost then
    verdict = 'quota_exceeded'
    denied_by = -1
    retry = -1
  end
end
if denied_by == -2 then
  for i, limit in ipairs(limits) do
    if not limit.fits then
      local longer = denied_by == -2 or (retry ~= -1 and (limit.retry == -1 or limit.retry > retry))
      if longer then
        denied_by = i - 1
        retry = limit.retry
        if limit.kind == 'sliding' then verdict = 'rate_limited' else verdict = 'quota_exceeded' end
      end
    end
  end
end

-- 3. Charge everything, or nothing. Two limits on one counter charge it once.
local charged = verdict == 'allowed' or shadow
if charged then
  local touched = {}
  for _, limit in ipairs(limits) do
    if not touched[limit.key] then
      touched[limit.key] = true
      if limit.kind == 'sliding' then
        if #limit.stale > 0 then redis.call('HDEL', limit.key, unpack(limit.stale)) end
        local units, last = charged_bucket(limit)
        local lowest, highest = limit.current, limit.current
        if limit.lowest ~= nil and limit.lowest < lowest then lowest = limit.lowest end
        if limit.newest > highest then highest = limit.newest end
        redis.call('HSET', limit.key, int(limit.current), int(units) .. ':' .. int(last),
          SUMMARY, int(limit.used + cost) .. ':' .. int(lowest) .. ':' .. int(highest))
        if limit.newest < limit.current then
          -- the charge opens a bucket newer than every counted one
          local bucket_end = (limit.current + 1) * limit.bucket_ms
          redis.call('PEXPIRE', limit.key, int(bucket_end + limit.window_ms - now + EXPIRY_SLACK_MS))
        end
      else
        if redis.call('INCRBY', limit.key, cost) == cost then
          redis.call('PEXPIRE', limit.key, int(limit.window_end - now + EXPIRY_SLACK_MS))
        end
      end
    end
  end
  if has_credits and balance > 0 then
    if balance >= cost then
      balance = redis.call('DECRBY', KEYS[2], cost)
    else
      -- shadow mode over the balance: credits stop at 0, never below
      balance = 0
      redis.call('SET', KEYS[2], '0')
    end
  end
end

-- 4. Count the request in the day's usage (a field's first count gives the hash its expiry).
local new_field = false
if verdict == 'allowed' then
  new_field = redis.call('HINCRBY', KEYS[1], 'allowed', 1) == 1
elseif shadow then
  new_field = redis.call('HINCRBY', KEYS[1], 'allowed', 1) == 1
  new_field = redis.call('HINCRBY', KEYS[1], 'would_deny:' .. verdict, 1) == 1 or new_field
else
  new_field = redis.call('HINCRBY', KEYS[1], 'denied:' .. verdict, 1) == 1
end
if new_field then redis.call('PEXPIRE', KEYS[1], int(usage_ttl_ms)) end

-- 5. Report each limit's state after the charge.
local reply = { verdict, charged and 1 or 0, denied_by, retry, balance }
for _, limit in ipairs(limits) do
  local used_after = 0
  local reset = 0
  if limit.kind == 'sliding' then
    local oldest = limit.oldest_other
    local last = limit.current_last
    used_after = limit.used
    if charged then
      last = select(2, charged_bucket(limit))
      used_after = used_after + cost
    end
    if last ~= nil and (oldest == nil or last < oldest) then oldest = last end
    if used_after > 0 then reset = oldest + limit.window_ms - now end
  else
    used_after = limit.used
    if charged then used_after = used_after + cost end
    reset = limit.window_end - now
  end
  local remaining = limit.count - used_after
  if remaining < 0 then remaining = 0 end
  reply[#reply + 1] = remaining
  reply[#reply + 1] = reset
end
return reply
