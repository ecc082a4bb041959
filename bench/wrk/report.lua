-- The summary of a wrk run as one JSON line for bench/load.ts (latencies in microseconds).
return function(summary, latency)
  local errors = summary.errors
  io.write(string.format(
    'LUMYN_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
