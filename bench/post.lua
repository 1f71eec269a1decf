-- wrk: POST the body in $BODY_FILE to the given URL path.
local f = io.open(os.getenv("BODY_FILE"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")
-- At the end, the latency distribution as one line of "percentile:microseconds" pairs, so
-- the harness can pool the distributions of many runs (bench/pooled.py): fine steps in
-- the tail, where p99 is read, coarser ones below.
function done(summary, latency, requests)
  local cells = {}
  local function add(p) cells[#cells + 1] = string.format("%g:%d", p, latency:percentile(p)) end
  for p = 1, 29 do add(p) end
  for i = 60, 189 do add(i / 2) end          -- 30 … 94.5
  for i = 950, 998 do add(i / 10) end        -- 95 … 99.8
  for i = 9990, 9999 do add(i / 100) end     -- 99.9 … 99.99
  -- (percentile(100) answers 0 in wrk 4: the maximum instead)
  cells[#cells + 1] = string.format("100:%d", latency.max)
  io.write("quantiles " .. table.concat(cells, " ") .. "\n")
end
