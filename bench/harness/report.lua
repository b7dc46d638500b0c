-- wrk script: report the run's figures as one JSON line (latencies in microseconds).
-- With args (after "--": a file of Cookie header values, one a line, and the number of
-- threads) and users.lua appended, each thread cycles through the cookies from its own
-- starting point, so that requests are spread over many distinct signed-in users. Without
-- them, no request function is defined and wrk sends its one static request at full speed.
local cookies = nil
local counter = 0
local idx = 0
local path = "/"

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  path = wrk.path
  if args[1] then
    cookies = {}
    for line in io.lines(args[1]) do
      if #line > 0 then cookies[#cookies + 1] = line end
    end
    local threads = tonumber(args[2]) or 1
    idx = math.floor((id or 0) * #cookies / threads)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
