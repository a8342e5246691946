-- KEYS: m, d.  ARGV: channel, peer
if redis.call('ZREM', KEYS[2], ARGV[2]) == 1 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('PUBLISH', ARGV[1], 'L ' .. ARGV[2])
end
return 0
