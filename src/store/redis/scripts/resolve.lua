-- Reads a token's record and, when a use is due, records it: the record's "l" becomes now
-- and, with an idle timeout "d", the key lives until now + d (never past the absolute
-- expiry "e"). One call on the one key, so a resolve stays one round trip.
--
-- KEYS[1]: the record. KEYS[2], when given: where versions before 0.2 kept it, read (and
-- recorded in) when KEYS[1] holds nothing; only on one Redis, where both are on one node.
-- ARGV[1]: now (Unix ms). ARGV[2]: the longest a use goes unrecorded (ms); a quarter of the
-- idle timeout when that is shorter.
--
-- The codec writes "l", "d", "e" (each only when set) and "i" (issue) first, in that
-- order: they are read with patterns anchored at the start, before any field a client
-- could have chosen.
local key = KEYS[1]
local record = redis.call('GET', key)
if not record and KEYS[2] then
  key = KEYS[2]
  record = redis.call('GET', key)
end
if not record then
  return false
end
local now = tonumber(ARGV[1])
local step = tonumber(ARGV[2])

local at = 2
local after_last = 2
local last, idle, expires
local value, next_at = string.match(record, '^"l":(%d+),()', at)
if value then
  last = tonumber(value)
  at = next_at
  after_last = next_at
end
value, next_at = string.match(record, '^"d":(%d+),()', at)
if value then
  idle = tonumber(value)
  at = next_at
  if idle / 4 < step then
    step = idle / 4
  end
end
value, next_at = string.match(record, '^"e":(%d+),()', at)
if value then
  expires = tonumber(value)
  at = next_at
end
local issued = tonumber(string.match(record, '^"i":(%d+)', at))

-- Expired (the key outlives it by the clock difference between Redis and the app): never
-- recorded, so never brought back; the app refuses it.
if expires and expires <= now then
  return record
end
if idle and issued and (last or issued) + idle <= now then
  return record
end
if last and now - last < step then
  return record
end
local recorded = '{"l":' .. ARGV[1] .. ',' .. string.sub(record, after_last)
if idle then
  local deadline = now + idle
  if expires and expires < deadline then
    deadline = expires
  end
  redis.call('SET', key, recorded, 'PXAT', string.format('%d', deadline))
else
  redis.call('SET', key, recorded, 'KEEPTTL')
end
return recorded
