-- One atomic write to a blog (see pushhub/brokers/base.py for the contract).
-- KEYS: 1 meta, 2 entries (hash), 3 seq, 4 epoch, 5 history (list), 6 idempotency key
-- ARGV: 1 kind ("meta"|"entry"), 2 entry id, 3 has expect ("0"|"1"), 4 expect, 5 has new ("0"|"1"),
--       6 new, 7 event body, 8 epoch for a new blog, 9 history limit, 10 channel,
--       11 idempotency ttl (s), 12 result
local prev = redis.call("GET", KEYS[6])
if prev then
  return {"DUP", prev}
end
local cur
if ARGV[1] == "meta" then
  cur = redis.call("GET", KEYS[1])
else
  if redis.call("EXISTS", KEYS[1]) == 0 then
    return {"NOBLOG"}
  end
  cur = redis.call("HGET", KEYS[2], ARGV[2])
end
if ARGV[3] == "0" then
  if cur then return {"CONFLICT"} end
elseif cur ~= ARGV[4] then
  return {"CONFLICT"}
end
local epoch = redis.call("GET", KEYS[4])
if not epoch then
  epoch = ARGV[8]
  redis.call("SET", KEYS[4], epoch)
end
local seq = redis.call("INCR", KEYS[3])
if ARGV[1] == "meta" then
  redis.call("SET", KEYS[1], ARGV[6])
elseif ARGV[5] == "1" then
  redis.call("HSET", KEYS[2], ARGV[2], ARGV[6])
else
  redis.call("HDEL", KEYS[2], ARGV[2])
end
local frame = '{"type":"event","seq":' .. seq .. ',"epoch":"' .. epoch .. '",' .. ARGV[7] .. '}'
redis.call("RPUSH", KEYS[5], frame)
redis.call("LTRIM", KEYS[5], -tonumber(ARGV[9]), -1)
redis.call("SET", KEYS[6], seq .. "|" .. epoch .. "|" .. ARGV[12], "EX", tonumber(ARGV[11]))
redis.call("PUBLISH", ARGV[10], frame)
return {"OK", seq, epoch}
