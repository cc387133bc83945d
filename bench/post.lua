-- wrk script for scripts/bench: POST the JSON body in BENCH_BODY; with
-- BENCH_CLOSE=1 every request asks for its own connection (and so its own
-- TLS handshake on an https:// URL).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end
