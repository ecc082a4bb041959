-- wrk script for POST /v1/decide: every request a new request_id, bodies cycled from $LUMYN_BODIES
-- (one per line: the JSON before the request_id value, a tab, the JSON after it).
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
local sent = 0

request = function()
  sent = sent + 1
  local body = bodies[sent % #bodies + 1]
  return wrk.format("POST", "/v1/decide", headers, body[1] .. prefix .. sent .. '"' .. body[2])
end

done = function(summary, latency, requests)
  dofile(os.getenv("LUMYN_WRK_DIR") .. "/report.lua")(summary, latency)
end
