-- wrk script of the soak test (tests-soak/soak.py runs it; see soak_app.py for the routes).
--
--   wrk -t1 -c16 -d3600s --timeout 30s -s soak.lua URL -- REQUESTS ID_BASE
--
-- Sends REQUESTS requests from a fixed mix (GETs small, 16 KiB, a 256 KiB streamed
-- response; POSTs of 100 B, 8 KiB, 100 KiB, a 40 KiB chunked upload, a few 4 MiB ones;
-- HTTP/1.0 requests; Connection: close on 5% of requests, so new connections keep being
-- opened), each with a unique x-id header. Every response is checked: status 200, the
-- x-id of a request still waiting for its answer, and exactly the body expected for that
-- request. After REQUESTS checked responses the thread stops and wrk is interrupted (the
-- process sends itself SIGINT, which ends wrk's timed wait). done() prints one line:
--   SOAK checked=<n> failures=<n> outstanding=<n> first_failure=<text>

local ffi = require("ffi")
ffi.cdef [[
  int getpid(void);
  int kill(int pid, int sig);
]]

local SIGINT = 2
limit = 0
next_id = 0
checked = 0
failures = 0
first_failure = ""
expected = {}     -- x-id -> expected body, for requests not yet answered
outstanding = 0
local kinds = {}        -- 10000 slots, spread over the mix
local requests = {}     -- kind -> {head_before_id, head_after_id_and_body, expected_body}

local function pattern(size)
  local blocks = {}
  for i = 0, math.ceil(size / 8) - 1 do
    blocks[#blocks + 1] = string.format("%07x\n", (i * 8) % 268435456)
  end
  return string.sub(table.concat(blocks), 1, size)
end

local function chunked(body, pieces)
  local out = {}
  local step = math.ceil(#body / pieces)
  for start = 1, #body, step do
    local piece = string.sub(body, start, start + step - 1)
    out[#out + 1] = string.format("%x;soak=1\r\n", #piece) .. piece .. "\r\n"
  end
  out[#out + 1] = "0\r\nx-trailer: yes\r\n\r\n"
  return table.concat(out)
end

-- name, weight per 10000, method, path, protocol, extra headers, body, expected body
local function mix()
  local p100, p8k, p100k, p40k, p4m = pattern(100), pattern(8192), pattern(102400),
      pattern(40960), pattern(4194304)
  return {
    {"get_small", 5498, "GET", "/small", "HTTP/1.1", "", "", "hello"},
    {"get_small_http10", 100, "GET", "/small", "HTTP/1.0", "", "", "hello"},
    {"get_16k", 1000, "GET", "/bytes/16384", "HTTP/1.1", "", "", pattern(16384)},
    {"get_stream_256k", 100, "GET", "/stream/262144", "HTTP/1.1", "", "", pattern(262144)},
    {"post_100", 1500, "POST", "/upload", "HTTP/1.1",
      "Content-Length: 100\r\n", p100, "ok:100"},
    {"post_8k", 1000, "POST", "/upload", "HTTP/1.1",
      "Content-Length: 8192\r\n", p8k, "ok:8192"},
    {"post_100k", 500, "POST", "/upload", "HTTP/1.1",
      "Content-Length: 102400\r\n", p100k, "ok:102400"},
    {"post_chunked_40k", 300, "POST", "/upload", "HTTP/1.1",
      "Transfer-Encoding: chunked\r\n", chunked(p40k, 3), "ok:40960"},
    {"post_4m", 2, "POST", "/upload", "HTTP/1.1",
      "Content-Length: 4194304\r\n", p4m, "ok:4194304"},
  }
end

function init(args)
  limit = tonumber(args[1])
  next_id = tonumber(args[2] or "0")
  local host = wrk.host .. ":" .. tostring(wrk.port)
  local order = {}
  for _, m in ipairs(mix()) do
    local name, weight, method, path, proto, extra, body, want =
        m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
    for _ = 1, weight do order[#order + 1] = name end
    for _, close in ipairs({false, true}) do
      local conn = ""
      if close then
        conn = "Connection: close\r\n"
      elseif proto == "HTTP/1.0" then
        conn = "Connection: keep-alive\r\n"
      end
      local key = name .. (close and ":close" or "")
      requests[key] = {
        method .. " " .. path .. " " .. proto .. "\r\nHost: " .. host .. "\r\nx-id: ",
        "\r\n" .. extra .. conn .. "\r\n" .. body,
        want,
      }
    end
  end
  assert(#order == 10000, "the mix must add up to 10000, got " .. #order)
  -- 7919 is prime to 10000: consecutive requests walk the mix in a spread-out order.
  for i = 0, 9999 do kinds[i] = order[(i * 7919) % 10000 + 1] end
end

function request()
  local id = next_id
  next_id = next_id + 1
  local key = kinds[id % 10000]
  if id % 20 == 7 then key = key .. ":close" end
  local r = requests[key]
  expected[tostring(id)] = r[3]
  outstanding = outstanding + 1
  return r[1] .. id .. r[2]
end

local function fail(text)
  failures = failures + 1
  if first_failure == "" then first_failure = text end
end

function response(status, headers, body)
  checked = checked + 1
  local id = headers["x-id"] or headers["X-Id"]
  local want = id and expected[id]
  if want == nil then
    fail("response to no pending request (x-id " .. tostring(id) .. ", status " .. status .. ")")
  else
    expected[id] = nil
    outstanding = outstanding - 1
    if status ~= 200 then
      fail("x-id " .. id .. ": status " .. status .. " " .. string.sub(body, 1, 80))
    elseif body ~= want then
      fail("x-id " .. id .. ": body of " .. #body .. " bytes, expected " .. #want)
    end
  end
  if checked == limit then
    wrk.thread:stop()
    ffi.C.kill(ffi.C.getpid(), SIGINT)
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, reqs)
  local c, f, o, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("checked")
    f = f + t:get("failures")
    o = o + t:get("outstanding")
    if first == "" then first = t:get("first_failure") end
  end
  local e = summary.errors
  io.write(string.format(
    "SOAK checked=%d failures=%d outstanding=%d connect=%d read=%d write=%d " ..
    "status=%d timeout=%d duration_us=%d p99_us=%d first_failure=%s\n",
    c, f, o, e.connect, e.read, e.write, e.status, e.timeout, summary.duration,
    latency:percentile(99.0), first))
end
