-- A pulled list was written to: readers' copies of the lists are stale (see
-- process_cache.py). KEYS: the pull sequence. Uses advance() (lib/advance.lua).
return advance(KEYS[1])
