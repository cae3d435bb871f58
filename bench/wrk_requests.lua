-- wrk script for bench/api.py: cycles through the requests of a file, counts statuses, prints one JSON line.
--
--   wrk -t2 -c8 -d15s -s bench/wrk_requests.lua http://127.0.0.1:8000 -- requests.tsv
--
-- Each line of requests.tsv is METHOD<TAB>PATH<TAB>BODY (BODY may be empty). Thread t of n sends lines
-- t, t+n, t+2n, ... so no two threads send the same line until the file is used up.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  nthreads = #args > 1 and tonumber(args[2]) or 1
  lines = {}
  for line in io.lines(args[1]) do
    local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
    local headers = {}
    if body ~= "" then
      headers["Content-Type"] = "application/json"
    else
      body = nil
    end
    table.insert(lines, wrk.format(method, path, headers, body))
  end
  position = tid
  statuses = {}
end

function request()
  local req = lines[(position % #lines) + 1]
  position = position + nthreads
  return req
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"socket_errors": %d, "timeouts": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect + e.read + e.write, e.timeout, table.concat(parts, ", ")))
end
