-- wrk script for GET /v1/decisions/{id}, cycling over the ids in $LUMYN_IDS (one per line). Each request is
-- formatted once, in init: the reads are the same every cycle, and wrk's CPU per request counts (it shares
-- the machine's two cores with the server).
local ids = {}
for id in io.lines(os.getenv("LUMYN_IDS")) do
  ids[#ids + 1] = id
end
local headers = { ["Authorization"] = "Bearer " .. os.getenv("LUMYN_KEY") }
local requests = {}
local sent = 0

init = function()
  for i, id in ipairs(ids) do
    requests[i] = wrk.format("GET", "/v1/decisions/" .. id, headers)
  end
end

request = function()
  sent = sent + 1
  return requests[sent % #requests + 1]
end

done = function(summary, latency, requests)
  dofile(os.getenv("LUMYN_WRK_DIR") .. "/report.lua")(summary, latency)
end
