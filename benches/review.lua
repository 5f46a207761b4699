-- wrk script for benches/load.sh: POSTs one AdmissionReview body (the file named by
-- $REVIEW_BODY) to $REVIEW_PATH over keep-alive, and prints one parseable summary line.
local file = assert(io.open(os.getenv("REVIEW_BODY"), "rb"))
wrk.method = "POST"
wrk.path = os.getenv("REVIEW_PATH") or "/validate?timeout=10s"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
file:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d rps=%.0f errors=%d non2xx=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
