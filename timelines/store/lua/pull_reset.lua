-- The master of the {pull} slot failed over: the promoted replica may lack the
-- last writes to the pull keys. The live-user filter goes off until every cached
-- timeline is marked again (a lost bit would make a fan-out skip a reader); the
-- pull epoch moves on (a lost first pulled tweet of an author would leave cached
-- graphs without that author), and so does the pull sequence (process copies of
-- pulled lists). KEYS: the live-indexed flag, the pull epoch, the pull sequence.
-- Uses advance() (lib/advance.lua).
redis.call('DEL', KEYS[1])
advance(KEYS[2])
return advance(KEYS[3])
