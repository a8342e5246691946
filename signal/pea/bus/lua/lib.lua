-- Shared by the scripts that read the clock or reap: prepended to them.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function reap(m, d, channel, now)
  local gone = redis.call('ZRANGEBYSCORE', d, '-inf', now)
  for _, p in ipairs(gone) do
    redis.call('ZREM', d, p)
    redis.call('HDEL', m, p)
    redis.call('PUBLISH', channel, 'L ' .. p)
  end
end
