-- KEYS: m, d.  ARGV: peer, grace_ms
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[2]), ARGV[1])
end
return 0
