-- The user's follow graph changed: move the generation on (which invalidates
-- cached followees and any rebuild read before the change); optionally drop the
-- timeline. KEYS: the timeline, the generation; ARGV: the generation's TTL,
-- whether to drop the timeline ('1'). Returns the new generation. Uses advance()
-- (lib/advance.lua).
local g = advance(KEYS[2], 'EX', ARGV[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
return g
