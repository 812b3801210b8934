-- Lists a new token in its subject's index under the subject's limit, in one atomic step,
-- so concurrent issues never leave more than the limit listed.
--
-- KEYS: [the token's record,] the subject's index. The record comes only on one Redis: on
-- a cluster it lives in another slot and was written before this call.
-- ARGV[1]: the token's member (raw hash). ARGV[2]: its score (expiry, Unix ms).
-- ARGV[3]: the index's time to live (ms). ARGV[4]: the score below which entries are
-- dropped as expired. ARGV[5]: the limit. ARGV[6]: "1" to refuse past the limit, "0" to
-- name the oldest entries to revoke. ARGV[7], ARGV[8]: the record and its time to live
-- (ms, "0" for none), with the record key.
--
-- Returns nil when refused (nothing kept), else the members to revoke (oldest first,
-- never the new one).
local index = KEYS[#KEYS]
redis.call('ZREMRANGEBYSCORE', index, '-inf', ARGV[4])
redis.call('ZADD', index, ARGV[2], ARGV[1])
local count = redis.call('ZCARD', index)
local limit = tonumber(ARGV[5])
if count > limit and ARGV[6] == '1' then
  redis.call('ZREM', index, ARGV[1])
  return false
end
redis.call('PEXPIRE', index, ARGV[3], 'NX')
redis.call('PEXPIRE', index, ARGV[3], 'GT')
if #KEYS == 2 then
  if ARGV[8] == '0' then
    redis.call('SET', KEYS[1], ARGV[7])
  else
    redis.call('SET', KEYS[1], ARGV[7], 'PX', ARGV[8])
  end
end
local victims = {}
if count > limit then
  local excess = count - limit
  for _, member in ipairs(redis.call('ZRANGE', index, 0, excess)) do
    if member ~= ARGV[1] and #victims < excess then
      victims[#victims + 1] = member
    end
  end
end
return victims
