-- wrk: post.lua's request; after $MAX_REQUESTS responses this thread stops and creates
-- $DONE_FILE, so the harness can end wrk at once (wrk -d bounds it in time; wrk itself
-- would sleep out the whole duration).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "post.lua")
local limit = tonumber(os.getenv("MAX_REQUESTS"))
local n = 0
function response(status, headers, body)
  n = n + 1
  if n == limit then
    io.open(os.getenv("DONE_FILE"), "w"):close()
    wrk.thread:stop()
  end
end
