-- wrk: POST the body in $BODY_FILE; after $MAX_REQUESTS responses this thread stops and
-- creates $DONE_FILE, so the harness can end wrk at once (wrk -d bounds it in time; wrk
-- itself would sleep out the whole duration).
local f = io.open(os.getenv("BODY_FILE"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")
local limit = tonumber(os.getenv("MAX_REQUESTS"))
local n = 0
function response(status, headers, body)
  n = n + 1
  if n == limit then
    io.open(os.getenv("DONE_FILE"), "w"):close()
    wrk.thread:stop()
  end
end
