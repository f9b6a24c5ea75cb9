-- The wrk script of treadle's benchmark.
--
-- WRK_PIPELINE=N (default 1) makes every write carry N GET requests back to back, so a
-- connection has N requests in flight; wrk learns N by parsing what request() returns
-- and counts each response. The done() hook prints one line, "WRK_JSON {...}", that the
-- harness reads instead of wrk's human-readable report.

local depth = tonumber(os.getenv("WRK_PIPELINE") or "1") or 1

if depth > 1 then
  local batch

  init = function(args)
    local parts = {}
    for i = 1, depth do
      parts[i] = wrk.format(nil, nil)
    end
    batch = table.concat(parts)
  end

  request = function()
    return batch
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us": %.0f, "requests": %.0f, "bytes": %.0f, ' ..
    '"p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "max_us": %.0f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.duration, summary.requests, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
