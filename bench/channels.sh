#!/usr/bin/env bash
# Many channels on one instance (examples/channels.rs): for each count, a SQLite log seeded with
# COUNT channels x EVENTS chat events (kept in $WORK between runs: seeding 10 million takes a
# few minutes and 5 GB), a fresh release server on it, and one JSON line of figures.
# Usage: [COUNTS="1 100 1000 10000"] [EVENTS=1000] bench/channels.sh
#        SOAK=1800 [RATE=200] [COUNTS=1000] bench/channels.sh   (RSS over a long run)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
work="${WORK:-/tmp/overlayd-channels}"
(cd "$repo" && cargo build --release --quiet --bin overlayd --example channels)
for n in ${COUNTS:-1 100 1000 10000}; do
  sample=$(( n < 100 ? n : 100 ))
  if [ -n "${SOAK:-}" ]; then
    "$repo/target/release/examples/channels" --channels "$n" --events "${EVENTS:-1000}" \
      --sample "$sample" --dir "$work" --server "$repo/target/release/overlayd" \
      --soak "$SOAK" --rate "${RATE:-200}" --every "${EVERY:-60}"
  else
    "$repo/target/release/examples/channels" --channels "$n" --events "${EVENTS:-1000}" \
      --sample "$sample" --dir "$work" --server "$repo/target/release/overlayd"
  fi
done
