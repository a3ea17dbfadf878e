#!/usr/bin/env bash
# The chat socket under load: N chat-protocol clients on one channel, M chat messages posted,
# with examples/wsload.rs; a fresh release server per run, loopback only. One JSON line per run
# (also appended to $WORK/results-$LABEL.jsonl).
# Usage: [RUNS="N:M:RATE ..."] bench/ws.sh     e.g. RUNS="1000:200:0 10000:60:5" bench/ws.sh
# BIN and WSLOAD run other builds of the server and the load tool (to compare two builds).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
work="${WORK:-/tmp/ws-bench}"
port="${PORT:-18091}"
mkdir -p "$work/overlays"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cat > "$work/overlay.toml" <<CONF
[server]
bind = "127.0.0.1:$port"
history = 4000
data_dir = "data"
[store]
kind = "${STORE:-sqlite}"
CONF
bin="${BIN:-$repo/target/release/overlayd}"
wsload="${WSLOAD:-$repo/target/release/examples/wsload}"
[ -n "${BIN:-}${WSLOAD:-}" ] || (cd "$repo" && cargo build --release --quiet --bin overlayd --example wsload)
for run in ${RUNS:-1000:200:0 10000:200:0 10000:60:5}; do
  IFS=: read -r N M RATE <<<"$run"
  rm -rf "$work/data"
  RUST_LOG="${RUST_LOG:-warn}" "$bin" --config "$work/overlay.toml" > "$work/server.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
  "$wsload" --ws "ws://127.0.0.1:$port/ws" \
    --publish "http://127.0.0.1:$port/api/events" --pid "$spid" -n "$N" -m "$M" --rate "$RATE" \
    --label "${LABEL:-overlayd-chat-ws}" | tee -a "$work/results-${LABEL:-overlayd-chat-ws}.jsonl" || true
  kill -TERM "$spid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$spid" 2>/dev/null || true
  sleep 1
done
