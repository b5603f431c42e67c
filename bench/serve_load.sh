#!/usr/bin/env bash
# Load on `scratchnet serve` from wrk over loopback: concurrent clients POST an MNIST digit
# (JSON pixels) to /predict for DURATION seconds. Prints wrk's throughput and latency
# percentiles, the errors, the server's /metrics, and its resident memory before and after.
#   bench/serve_load.sh MODEL [DURATION=30] [CONNECTIONS=8] [PORT=18080]
# Needs wrk (Debian's package) and a built build/scratchnet.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1 duration=${2:-30} connections=${3:-8} port=${4:-18080}
command -v wrk >/dev/null || { echo "serve_load.sh: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
[ -f "$model" ] || { echo "serve_load.sh: $model: no such model file" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# The body: the first MNIST test digit as a JSON array of 784 pixels.
od -An -v -tu1 -j16 -N784 data/mnist/t10k-images-idx3-ubyte |
  tr -s ' \n' ',' | sed 's/^,//; s/,$//; s/.*/[&]/' >"$tmp/digit.json"
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$tmp/digit.json")
wrk.body = f:read("*a")
f:close()
LUA

build/scratchnet serve "$model" --port "$port" --threads 1 >"$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$server/status"; }
curl -sf -X POST --data-binary @"$tmp/digit.json" "http://127.0.0.1:$port/predict" >/dev/null
echo "server RSS after one request: $(rss)"
wrk -t 2 -c "$connections" -d 5s -s "$tmp/post.lua" "http://127.0.0.1:$port/predict" >/dev/null
echo "server RSS after a 5 s warm-up: $(rss)"
wrk -t 2 -c "$connections" -d "${duration}s" --latency -s "$tmp/post.lua" \
  "http://127.0.0.1:$port/predict"
echo "server RSS after ${duration} s of load: $(rss)"
echo "server /metrics:"
curl -sf "http://127.0.0.1:$port/metrics"
echo
