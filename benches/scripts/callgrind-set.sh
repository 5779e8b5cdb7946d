#!/usr/bin/env bash
# Instructions per SET of one or more kvd binaries, under valgrind's callgrind (exact and
# repeatable on a noisy machine). Each binary runs two workloads of N1 and N2 pipelined
# SETs of new keys; per SET = (total(N2) - total(N1)) / (N2 - N1), so start-up cancels.
# Usage: benches/scripts/callgrind-set.sh target/release/kvd [/other/kvd ...]
# Needs valgrind, redis-cli and redis-benchmark.
set -euo pipefail
N1=${N1:-20000}
N2=${N2:-60000}
port=7201
total() { # bin n
  local d pid
  d=$(mktemp -d)
  valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$1" --port "$port" --dir "$d/data" \
    >/dev/null 2>"$d/vg.log" &
  pid=$!
  for _ in $(seq 600); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -p "$port" -t set -r 100000000 -d 100 -c 10 -n "$2" -P 16 -q >/dev/null 2>&1
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  grep -E "^(summary|totals):" "$d/cg.out" | awk '{print $2}' | head -1
  rm -rf "$d"
}
for bin in "$@"; do
  a=$(total "$bin" "$N1")
  b=$(total "$bin" "$N2")
  echo "$bin: total($N1)=$a total($N2)=$b per_set=$(( (b - a) / (N2 - N1) ))"
done
