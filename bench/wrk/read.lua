-- wrk script for GET /v1/decisions/{id}, cycling over the ids in $LUMYN_IDS (one per line).
local paths = {}
for id in io.lines(os.getenv("LUMYN_IDS")) do
  paths[#paths + 1] = "/v1/decisions/" .. id
end
local headers = { ["Authorization"] = "Bearer " .. os.getenv("LUMYN_KEY") }
local sent = 0

request = function()
  sent = sent + 1
  return wrk.format("GET", paths[sent % #paths + 1], headers)
end

done = function(summary, latency, requests)
  dofile(os.getenv("LUMYN_WRK_DIR") .. "/report.lua")(summary, latency)
end
