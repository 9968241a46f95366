-- wrk script of the postback benchmark (see postbacks.py).
--
-- Arguments: seconds to send for, then a file of click ids (one a line). Every request is a
-- new conversion: a click of the file (round robin from a per-thread offset) with a txid never
-- sent before. After `stop_after` seconds a thread sends nothing more, so when wrk stops no
-- request is left in flight: conversions stored must equal the "ok" answers counted here.
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

local threads = {}
local thread_index = 0

function setup(thread)
  thread_index = thread_index + 1
  thread:set("seed", thread_index)
  table.insert(threads, thread)
end

function init(args)
  stop_at = now() + tonumber(args[1])
  run = args[3] or "0"
  ids = {}
  for line in io.lines(args[2]) do
    table.insert(ids, line)
  end
  n = seed * 7919
  sent = 0
  ok = 0
  other = 0
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
  local click = ids[n % #ids + 1]
  local path = wrk.path .. "?click_id=" .. click .. "&payout=1.50&status=approved&txid=r" .. run .. "t" .. seed .. "n" .. n
    .. "&email=lead" .. n .. "%40example.com"
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"status":"ok"', 1, true) then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local s, g, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    g = g + thread:get("ok")
    o = o + thread:get("other")
  end
  io.write(string.format("BENCH sent=%d ok=%d other=%d\n", s, g, o))
end
