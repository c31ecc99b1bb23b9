-- wrk script: post-bodies.lua with a pause of $PAUSE_MS milliseconds before each request on
-- each connection, so the offered rate stays under what the server can serve (about
-- connections / (pause + latency) requests per second). The closed loop of post-bodies.lua
-- measures the server at full load, where p99 is queueing; paced, it is measured with room
-- to spare, as kube-apiserver drives a webhook. wrk times each request from when it is sent.

-- Checked first: wrk reports a script error and runs on with what was defined, so a bad pause
-- must leave the bodies unloaded (every request then fails) rather than run unpaced.
local pause = tonumber(os.getenv("PAUSE_MS") or "")
assert(pause and pause >= 1 and pause == math.floor(pause), "PAUSE_MS must be a whole number of milliseconds >= 1")

dofile(os.getenv("POST_BODIES") or error("POST_BODIES is not set"))

function delay()
  return pause
end
