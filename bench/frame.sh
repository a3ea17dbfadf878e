#!/usr/bin/env bash
# Prints the data line overlayd sends for the benchmark's event, as an sseload body template
# ({seq}, {ts} and {pad} where the numbers and the padding go). bench/sitting.sh gives it to the
# floor, so that the load tool parses the same bytes from both servers. Loopback only.
# Usage: bench/frame.sh   (needs a release build: cargo build --release)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
work="$(mktemp -d)"
port="${PORT:-18091}"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/overlays"
printf '[server]\nbind = "127.0.0.1:%s"\n[store]\nkind = "memory"\n' "$port" > "$work/overlay.toml"
printf 'kind = "events"\nchannel = "bench"\n' > "$work/overlays/bench.toml"
"$repo/target/release/overlayd" --config "$work/overlay.toml" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done
curl -sN -m 3 "http://127.0.0.1:$port/o/bench/events" > "$work/stream" &
reader=$!
sleep 0.5
# The body bench/run.sh publishes, with numbers that appear nowhere else in the frame.
curl -sf -X POST -H 'content-type: application/json' "http://127.0.0.1:$port/api/events" \
  -d '{"channel":"bench","kind":"follow","data":{"user_name":"bench","seq":918273645,"ts":546372819,"pad":""}}' \
  >/dev/null
wait "$reader" || true
line="$(grep -m1 '^data: {"id"' "$work/stream")"
line="${line#data: }"
line="${line/918273645/\{seq\}}"
line="${line/546372819/\{ts\}}"
printf '%s\n' "${line/\"pad\":\"\"/\"pad\":\"\{pad\}\"}"
