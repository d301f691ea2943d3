-- wrk script of bench/ingest.py: a fresh 10-event batch per request.
counter = 0
math.randomseed(os.time())
local prefix = tostring(math.random(1, 1e9))
request = function()
  counter = counter + 1
  local events = {}
  for i = 1, 10 do
    events[i] = string.format('{"id":"%s-%d-%d","type":"pageview","url":"https://example.com/page/%d?utm_source=bench","ref":"https://news.ycombinator.com/","title":"Bench page"}', prefix, counter, i, i)
  end
  local body = '{"site":"example.com","ctx":{"sw":1920,"sh":1080,"vw":1280,"vh":720,"lang":"en-GB","tz":"Europe/London"},"events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "/collect", {["Content-Type"] = "text/plain", ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}, body)
end
