#!/usr/bin/env bash
# Twitch chat in, through the real chat source (tests/chat.rs `irc_throughput`: a loopback IRC
# server sends a 50,000-line burst, then 2,000 lines at 500/s, read back from a chat overlay's
# event stream). One JSON line per run on stdout, also appended to $WORK/results-chat-in.jsonl.
# Usage: [RUNS=3] bench/chat-in.sh [LABEL=TEST_BINARY ...]
#   With no arguments, builds this checkout's test binary (release) and runs it RUNS times.
#   With several, alternates them RUNS times (copy each build's `target/release/deps/chat-*`
#   aside first), so that the machine's drift from minute to minute falls on every build alike.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
work="${WORK:-/tmp/chat-in}"
mkdir -p "$work"
builds=("$@")
if [ ${#builds[@]} -eq 0 ]; then
  binary="$(cd "$repo" && cargo test --release --test chat --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="chat" and m.get("executable"): print(m["executable"])' | tail -1)"
  builds=("$(cd "$repo" && git rev-parse --short HEAD)=$binary")
fi
for run in $(seq 1 "${RUNS:-3}"); do
  for build in "${builds[@]}"; do
    label="${build%%=*}"
    binary="${build#*=}"
    out="$(/usr/bin/time -f 'cpu %U %S' "$binary" --ignored --nocapture irc_throughput 2>&1)"
    LABEL="$label" RUN="$run" python3 -c '
import json, os, re, sys
text = sys.stdin.read()
m = re.search(r"burst of (\d+) lines in ([\d.]+) s = (\d+) lines/s; at (\d+) lines/s added latency p50 ([\d.]+) ms, p99 ([\d.]+) ms", text)
cpu = re.search(r"cpu ([\d.]+) ([\d.]+)", text)
if not m:
    sys.exit("no result in the test output:\n" + text[-2000:])
print(json.dumps({
    "tool": "irc_throughput", "label": os.environ["LABEL"], "run": int(os.environ["RUN"]),
    "burst_lines": int(m[1]), "burst_s": float(m[2]), "lines_per_s": int(m[3]),
    "steady_rate": int(m[4]), "steady_p50_ms": float(m[5]), "steady_p99_ms": float(m[6]),
    "test_user_plus_sys_cpu_s": round(float(cpu[1]) + float(cpu[2]), 2) if cpu else None,
}))' <<<"$out" | tee -a "$work/results-chat-in.jsonl"
  done
done
