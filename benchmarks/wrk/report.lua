-- Appended to every wrk script: print one machine-readable line for benchmarks/run.py.

-- wrk 4.1 "corrects" its latency histogram for coordinated omission after the run, with an
-- interval taken from the responses per connection; with pipelining (16 responses per
-- recorded batch) that adds samples below the recorded minimum, which percentile() does
-- not see, so it can answer 0. Then the percentile is taken over the samples it can see.
local function percentile(latency, p)
  local value = latency:percentile(p)
  if value > 0 or #latency == 0 then
    return value
  end
  local total = 0
  for i = 1, #latency do
    local _, count = latency(i)
    total = total + count
  end
  local rank, seen = math.ceil(total * p / 100), 0
  for i = 1, #latency do
    local v, count = latency(i)
    seen = seen + count
    if seen >= rank then
      return v
    end
  end
  return latency.max
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"connect\":%d,\"read\":%d," ..
    "\"write\":%d,\"status\":%d,\"timeout\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, percentile(latency, 50), percentile(latency, 99)))
end
