#!/usr/bin/env bash
# One sitting against the floor, as the README's "How fast" table: the floor and overlayd (SQLite
# log) alternating twice, then nchan, each under the same three loads. Loopback only; needs
# ../shared/bench (SHARED_BENCH). JSON lines accumulate in $WORK/results-<label>.jsonl
# (WORK defaults to /tmp/sse-bench).
# Usage: [RUNS="1000:2000:0 10000:200:0 10000:60:5"] bench/sitting.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SHARED_BENCH="${SHARED_BENCH:-$(dirname "$here")/../shared/bench}"
export RUNS="${RUNS:-1000:2000:0 10000:200:0 10000:60:5}"
for pass in 1 2; do
  echo "== floor, pass $pass" >&2
  LABEL=floor "$SHARED_BENCH/run-floor.sh"
  echo "== overlayd, pass $pass" >&2
  STORE=sqlite LABEL=overlayd-sqlite "$here/run.sh"
done
echo "== nchan" >&2
"$SHARED_BENCH/run-nchan.sh"
