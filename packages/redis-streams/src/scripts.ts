/** Lua scripts: each runs atomically on the server, so a crash between its steps loses or doubles nothing. */

/** Delayed publish: the entry waits in a side stream (KEYS[1]), its id scored by due time in a sorted set (KEYS[2]). */
export const DELAY = `local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('ZADD', KEYS[2], ARGV[1], id)
return id`;

/**
 * One redelivery pass. KEYS: stream, parked set (the group's nacked entries by due time), delay set, side stream.
 * ARGV: group, consumer, now, leaseMs, XAUTOCLAIM cursor, max, parking consumer, XADD trimming arguments.
 * (1) Moves due delayed publishes into the stream; (2) takes due parked entries and expired leases (XAUTOCLAIM
 * JUSTID: a dead consumer's), handing parked ones not due back to the parking consumer; (3) claims them with XCLAIM
 * (which counts a delivery) and reads the count. Returns {cursor, {{id, fields, count}…}, next parked, next delayed}.
 */
export const RECLAIM = `local group, consumer, now, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[6])
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)) do
  local e = redis.call('XRANGE', KEYS[4], sid, sid)[1]
  if e then
    local args = {unpack(ARGV, 8)}
    args[#args + 1] = '*'
    for _, v in ipairs(e[2]) do args[#args + 1] = v end
    redis.call('XADD', KEYS[1], unpack(args))
    redis.call('XDEL', KEYS[4], sid)
  end
  redis.call('ZREM', KEYS[3], sid)
end
local ids, seen = {}, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, max)) do
  redis.call('ZREM', KEYS[2], id)
  ids[#ids + 1], seen[id] = id, true
end
local cursor = ARGV[5]
if #ids < max then
  local r = redis.call('XAUTOCLAIM', KEYS[1], group, consumer, ARGV[4], cursor, 'COUNT', max - #ids, 'JUSTID')
  cursor = r[1]
  for _, id in ipairs(r[2]) do
    if redis.call('ZSCORE', KEYS[2], id) then redis.call('XCLAIM', KEYS[1], group, ARGV[7], 0, id, 'JUSTID')
    elseif not seen[id] then ids[#ids + 1] = id end
  end
end
local out = {}
if #ids > 0 then
  for _, e in ipairs(redis.call('XCLAIM', KEYS[1], group, consumer, 0, unpack(ids))) do
    if e and e[2] then
      local p = redis.call('XPENDING', KEYS[1], group, e[1], e[1], 1)[1]
      out[#out + 1] = {e[1], e[2], p and p[4] or 1}
    end
  end
end
return {cursor, out, redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2] or false, redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2] or false}`;

/** Resets the idle time (lease) of entries still owned by the consumer, without counting a delivery. */
export const EXTEND = `local out = {}
for i = 3, #ARGV do
  local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])[1]
  if mine then redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID') end
  out[#out + 1] = mine and 1 or 0
end
return out`;

/** Removes a closing consumer from the group when it owns no pending entry (nothing is lost). */
export const RELEASE = `if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1`;
