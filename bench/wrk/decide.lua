-- wrk script for POST /v1/decide: every request a new request_id, bodies cycled from $LUMYN_BODIES
-- (one per line: the JSON before the request_id value, a tab, the JSON after it).
--
-- The request's head is formatted once, with wrk.format, around a one-byte probe body; each request then
-- costs wrk a few concatenations instead of a wrk.format (a table of headers formatted anew): wrk shares the
-- machine's two cores with the server, so its own CPU per request is part of what is measured.
local bodies = {}
for line in io.lines(os.getenv("LUMYN_BODIES")) do
  local tab = string.find(line, "\t", 1, true)
  bodies[#bodies + 1] = { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) }
end
local prefix = '"' .. os.getenv("LUMYN_RUN") .. "-"
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("LUMYN_KEY"),
  ["Content-Type"] = "application/json",
}
local before_length, after_length
local sent = 0

init = function()
  local probe = wrk.format("POST", "/v1/decide", headers, "@")
  local at = string.find(probe, "Content-Length: 1\r\n", 1, true)
  before_length = string.sub(probe, 1, at + 15)
  after_length = string.sub(probe, at + 17, -2)
end

request = function()
  sent = sent + 1
  local body = bodies[sent % #bodies + 1]
  local text = body[1] .. prefix .. sent .. '"' .. body[2]
  return before_length .. #text .. after_length .. text
end

done = function(summary, latency, requests)
  dofile(os.getenv("LUMYN_WRK_DIR") .. "/report.lua")(summary, latency)
end
