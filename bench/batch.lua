-- wrk script of bench/ingest.py: a fresh 10-event batch per request.
-- Ids must be unique across wrk's threads and across runs: each thread gets its own
-- number from setup() and the start second, so threads started in the same second
-- (which all saw the same os.time()) no longer send the same ids.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  counter = 0
  prefix = string.format("%d-%d-%d", os.time(), tid or 0, math.floor(os.clock() * 1e6))
end

request = function()
  counter = counter + 1
  local events = {}
  for i = 1, 10 do
    events[i] = string.format('{"id":"%s-%d-%d","type":"pageview","url":"https://example.com/page/%d?utm_source=bench","ref":"https://news.ycombinator.com/","title":"Bench page"}', prefix, counter, i, i)
  end
  local body = '{"site":"example.com","ctx":{"sw":1920,"sh":1080,"vw":1280,"vh":720,"lang":"en-GB","tz":"Europe/London"},"events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "/collect", {["Content-Type"] = "text/plain", ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}, body)
end
