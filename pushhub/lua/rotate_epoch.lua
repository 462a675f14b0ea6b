-- Start a new epoch for a blog whose stored history was found to have lost acknowledged
-- events (see Hub._diverged). Publishes a "blog" event in the new epoch so every node and
-- reader replaces its copy. A no-op unless the epoch is still the one the caller saw.
-- KEYS: 1 meta, 2 seq, 3 epoch, 4 history ; ARGV: 1 expected epoch, 2 new epoch, 3 channel
if redis.call("GET", KEYS[3]) ~= ARGV[1] then return 0 end
local meta = redis.call("GET", KEYS[1])
if not meta then return 0 end
redis.call("SET", KEYS[3], ARGV[2])
local seq = redis.call("INCR", KEYS[2])
local frame = '{"type":"event","seq":' .. seq .. ',"epoch":"' .. ARGV[2] .. '","op":"blog","blog":' .. meta .. '}'
-- The old epoch's history cannot be replayed in the new one.
redis.call("DEL", KEYS[4])
redis.call("RPUSH", KEYS[4], frame)
redis.call("PUBLISH", ARGV[3], frame)
return seq
