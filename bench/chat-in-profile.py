#!/usr/bin/env python3
"""Where a chat line's CPU goes in the chat-in test's burst, from `perf script` text.

Usage (what produced bench/results/2026-12-07-chat-in-burst-profile.jsonl):
  CARGO_TARGET_DIR=/tmp/fp-target RUSTFLAGS="-C force-frame-pointers=yes" \\
    cargo test --release --test chat --no-run
  perf record -F 1999 --call-graph fp -o chat.perf \\
    /tmp/fp-target/release/deps/chat-<hash> --ignored --nocapture irc_throughput
  perf script -i chat.perf > chat.txt        # once per run; then:
  bench/chat-in-profile.py chat1.txt chat2.txt

Only the burst is counted: the longest run of 100 ms windows at least 60 % as busy as the
busiest (the server's start and the 500 lines/s phase after it are far less busy). Each sample
goes to the first part below whose frames are on its stack; µs per line = samples / 1999 Hz /
50,000 lines. Prints a Markdown table, a range over the runs given.
"""
import collections
import re
import sys

HZ = 1999
LINES = 50_000


def load(path):
    samples, stamps, current = [], [], None
    with open(path) as f:
        for line in f:
            if not line.strip():
                if current:
                    samples.append(current)
                current = None
            elif not line.startswith(("\t", " ")):
                current = [line.split()[0]]
                stamps.append(float(re.search(r" (\d+\.\d+): ", line)[1]))
            elif current is not None:
                frame = line.strip().split(" ", 1)
                current.append(re.sub(r"\+0x[0-9a-f]+ \(.*$", "", frame[1] if len(frame) > 1 else ""))
    if current:
        samples.append(current)
    start = min(stamps)
    bins = collections.Counter(int((t - start) * 10) for t in stamps)
    busiest, best, run = max(bins.values()), (0, 0), None
    for b in range(max(bins) + 2):
        if bins.get(b, 0) >= 0.6 * busiest:
            run = b if run is None else run
            if b + 1 - run > best[1] - best[0]:
                best = (run, b + 1)
        else:
            run = None
    kept = [s for s, t in zip(samples, stamps) if best[0] <= int((t - start) * 10) < best[1]]
    print(f"{path}: burst {best[1] - best[0]} x 100 ms, {len(kept)} of {len(samples)} samples", file=sys.stderr)
    return kept


def part(sample):
    comm, frames = sample[0], sample[1:]

    def on(name):
        return any(name in f for f in frames)

    if on("chat::run_lines") or on("chat::fake_irc") or comm.startswith("irc_throughput"):
        return "test harness (loopback IRC server, SSE reader)"
    if on("twitch_irc"):
        return "twitch-irc (read, parse, its channels)"
    if comm.startswith("overlayd-log-ch"):
        return "SQLite checkpoints (own thread)"
    if on("EventLog>::append_all"):
        return "store: data to JSON text" if on("serde_json") or on("serde_core") else "SQLite insert + commit"
    if on("Theme::render"):
        return "handlebars render (theme template, helpers)" if on("handlebars::") else "render: context freed"
    if on("overlay::context"):
        return "render context (copies of the data tree)"
    if on("frame::event"):
        return "frame: event JSON"
    if on("Mapper::map"):
        return "IRC message -> event (data tree)"
    if on("Hot::put"):
        return "bus: oldest events freed"
    if on("publish_all_or_log"):
        return "bus, observers (stats, widgets, alerts)"
    if comm.startswith("overlayd-writer"):
        return "fan-out writes (writer threads)"
    return "other (runtime, kernel, socket I/O)"


def main(paths):
    runs = []
    for path in paths:
        samples = load(path)
        runs.append((len(samples), collections.Counter(part(s) for s in samples)))
    parts = sorted({p for _, c in runs for p in c}, key=lambda p: -sum(c[p] for _, c in runs))
    print("| part | share of CPU | µs per line |\n|---|---|---|")
    for p in parts:
        share = [c[p] / n * 100 for n, c in runs]
        us = [c[p] / HZ / LINES * 1e6 for _, c in runs]
        print(f"| {p} | {min(share):.1f}–{max(share):.1f} % | {min(us):.1f}–{max(us):.1f} |")
    total = [n / HZ / LINES * 1e6 for n, _ in runs]
    print(f"| total | | {min(total):.0f}–{max(total):.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
