-- older(a, b): whether decimal id a is older (smaller) than b, compared without
-- converting (Lua numbers are doubles, exact only to 2^53): a shorter string is a
-- smaller number, equal lengths compare lexically.
local function older(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
