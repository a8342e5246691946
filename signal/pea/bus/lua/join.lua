-- KEYS: m, d.  ARGV: channel, peer, info, limit, live_ms, resume_peer, joined_frame, ttl_ms, node
local now = now_ms()
reap(KEYS[1], KEYS[2], ARGV[1], now)
local who = ARGV[2]
local status = 'joined'
local live = now + tonumber(ARGV[5])
if ARGV[6] ~= '' and redis.call('ZSCORE', KEYS[2], ARGV[6]) then
  who = ARGV[6]
  status = 'resumed'
  redis.call('PUBLISH', ARGV[1], 'T ' .. who .. ' ' .. ARGV[9])
else
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
    return {'full', who, {}}
  end
  redis.call('PUBLISH', ARGV[1], 'J ' .. who .. ' ' .. ARGV[7])
end
redis.call('HSET', KEYS[1], who, ARGV[3])
redis.call('ZADD', KEYS[2], live, who)
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('PEXPIRE', KEYS[2], ARGV[8])
return {status, who, redis.call('HGETALL', KEYS[1])}
