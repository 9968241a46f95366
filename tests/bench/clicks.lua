-- wrk script of the click benchmark (see clicks.py).
--
-- Every request rotates through 8 real user agents, a sub1 value and a public client
-- address in X-Forwarded-For (the tracker runs with TRACKER_TRUSTED_PROXIES=1, so its
-- GeoIP lookup really runs). After `stop_after` seconds (the first script argument) a
-- thread sends nothing more, so when wrk stops no request is left in flight and every
-- click the server recorded was answered: stored clicks must equal the 302s counted here (or
-- exceed them by the few answered after wrk stopped waiting, on a machine busy enough for that).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local agents = {
  -- iPhone Safari
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  -- Android Chrome
  "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36",
  -- Windows Chrome
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  -- Mac Safari
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  -- Firefox on Windows
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
  -- Edge on Windows
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68",
  -- Googlebot
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  -- iPad Safari
  "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
}

-- The /16 networks the benchmark's GeoIP databases cover (kept in step with clicks.py).
local networks = {"81.2", "2.125", "216.160", "89.160", "175.16", "202.196", "67.43", "149.101"}

local threads = {}
local thread_index = 0

function setup(thread)
  thread_index = thread_index + 1
  thread:set("seed", thread_index)
  table.insert(threads, thread)
end

function init(args)
  stop_at = now() + tonumber(args[1])
  n = 0
  sent = 0
  got302 = 0
  other = 0
  math.randomseed(seed * 7919)
end

function delay()
  if now() < stop_at then
    return 0
  end
  return 3600000  -- past the deadline: idle until wrk stops
end

function request()
  n = n + 1
  sent = sent + 1
  local ip = networks[n % #networks + 1] .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  local headers = {
    ["User-Agent"] = agents[n % #agents + 1],
    ["X-Forwarded-For"] = ip,
    ["Accept-Language"] = "en-US,en;q=0.9",
  }
  local path = wrk.path .. "?sub1=banner" .. (n % 50) .. "&utm_source=bench&gclid=g" .. n
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  if status == 302 then
    got302 = got302 + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local s, g, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    g = g + thread:get("got302")
    o = o + thread:get("other")
  end
  io.write(string.format("BENCH sent=%d found302=%d other=%d\n", s, g, o))
end
