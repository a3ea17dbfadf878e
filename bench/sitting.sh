#!/usr/bin/env bash
# One sitting against the floor, as the README's "How fast" table: the floor, the floor sending
# overlayd's own data line (bench/frame.sh), overlayd (SQLite log) and overlayd's chat socket
# (bench/ws.sh) alternating twice, then nchan, each under the same three loads. Loopback only; needs ../shared/bench (SHARED_BENCH).
# JSON lines accumulate in $WORK/results-<label>.jsonl (WORK defaults to /tmp/sse-bench).
# Usage: [RUNS="1000:2000:0 10000:200:0 10000:60:5"] bench/sitting.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SHARED_BENCH="${SHARED_BENCH:-$(dirname "$here")/../shared/bench}"
export RUNS="${RUNS:-1000:2000:0 10000:200:0 10000:60:5}"
(cd "$(dirname "$here")" && cargo build --release --quiet --bin overlayd --example wsload)
# The load tool finds "seq" and "ts" in each frame it reads: in the floor's own frame they come
# first, in overlayd's after the event's envelope. The same bytes from both servers make its
# work per delivery the same, so what differs is the servers'.
ours="$("$here/frame.sh")"
for pass in 1 2; do
  echo "== floor, pass $pass" >&2
  LABEL=floor "$SHARED_BENCH/run-floor.sh"
  echo "== floor with overlayd's frame, pass $pass" >&2
  LABEL=floor-ourframe BODY="$ours" PAD=0 "$SHARED_BENCH/run-floor.sh"
  echo "== overlayd, pass $pass" >&2
  STORE=sqlite LABEL=overlayd-sqlite "$here/run.sh"
  echo "== overlayd's chat socket, pass $pass" >&2
  WORK="${WORK:-/tmp/sse-bench}/chat-ws" LABEL=overlayd-chat-ws "$here/ws.sh"
done
echo "== nchan" >&2
"$SHARED_BENCH/run-nchan.sh"
