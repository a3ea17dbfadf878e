#!/usr/bin/env bash
# Fan-out benchmark of overlayd with the shared harness (../shared/bench), loopback only.
# Usage: [STORE=sqlite|memory|redis] [RUNS="N:M:RATE ..."] bench/run.sh   e.g. RUNS="10000:60:5" bench/run.sh
# Writes a config with one `events` overlay on channel "bench", starts a fresh release server
# per run, and prints one JSON line per run plus a summary (see ../shared/bench/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
shared="${SHARED_BENCH:-$repo/../shared/bench}"
work="${WORK:-/tmp/sse-bench}/overlayd"
port="${PORT:-18090}"
mkdir -p "$work/overlays"
cat > "$work/overlay.toml" <<CONF
[server]
bind = "127.0.0.1:$port"
history = 4000
data_dir = "data"
[store]
kind = "${STORE:-sqlite}"   # sqlite (the default, durable), memory, or redis
CONF
if [ "${STORE:-}" = redis ]; then
  # A redis-server of the benchmark's own, on loopback, emptied for every run by a new prefix.
  redis_port="${REDIS_PORT:-18379}"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$work/redis.pid" --dir "$work" >/dev/null
  trap 'kill "$(cat "$work/redis.pid")" 2>/dev/null || true' EXIT
  printf 'url = "redis://127.0.0.1:%s/"\nprefix = "bench-%s"\n' "$redis_port" "$$" >> "$work/overlay.toml"
fi
rm -rf "$work/data"
cat > "$work/overlays/bench.toml" <<CONF
kind = "events"
channel = "bench"
CONF
(cd "$repo" && cargo build --release --quiet)
export START="$repo/target/release/overlayd --config $work/overlay.toml"
export SUB_URL="http://127.0.0.1:$port/o/bench/events"
export PUB_URL="http://127.0.0.1:$port/api/events"
export BODY='{"channel":"bench","kind":"follow","data":{"user_name":"bench","seq":{seq},"ts":{ts},"pad":"{pad}"}}'
export LABEL="${LABEL:-overlayd-${STORE:-sqlite}}"
export RUST_LOG="${RUST_LOG:-warn}"
export RUNS="${RUNS:-1000:2000:0 10000:200:0 10000:60:5}"
"$shared/run-cmd.sh"
