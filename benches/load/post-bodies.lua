-- wrk script: POST the SubjectAccessReview bodies of $BODIES (one JSON per line) to
-- /authorize, cycling through them (each thread starts at a different offset), and print
-- one machine-readable summary line at the end (wrk's own --latency stops at p99).

local requests = {}
local n = 0
local i = 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  local path = os.getenv("BODIES") or error("BODIES is not set")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if #line > 0 then
      n = n + 1
      requests[n] = wrk.format("POST", "/authorize?timeout=10s",
        { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }, line)
    end
  end
  f:close()
  assert(n > 0, "no bodies in " .. path)
  -- Spread the threads over the set.
  i = ((id or 0) * 7919) % n
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return requests[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKSUMMARY requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
