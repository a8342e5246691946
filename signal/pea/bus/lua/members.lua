-- KEYS: m, d.  ARGV: channel
reap(KEYS[1], KEYS[2], ARGV[1], now_ms())
return redis.call('HGETALL', KEYS[1])
