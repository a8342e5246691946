-- KEYS: m, d.  ARGV: channel, live_ms, ttl_ms, upsert ('1' after a reconnect), peer, info, ...
-- Without upsert only peers still present are refreshed, so a heartbeat racing a
-- `leave` cannot bring a departed peer back.
local now = now_ms()
local live = now + tonumber(ARGV[2])
for i = 5, #ARGV, 2 do
  if ARGV[4] == '1' or redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], live, ARGV[i])
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
reap(KEYS[1], KEYS[2], ARGV[1], now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 0
