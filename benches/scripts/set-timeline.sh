#!/usr/bin/env bash
# SET throughput over time across memtable switches, for one or more kvd binaries: each
# gets a fresh data directory (appendfsync everysec), pinned to CPU 0, and
# `redis-benchmark -t set -n N -r 100000000 -d 100 -c 50 -P P` pinned to CPU 1; the
# benchmark's running report (every 250 ms) is printed as k ops/s per interval, then the
# mean, the slowest interval and how many intervals fell below half the fastest one
# (the windows where writes leave kvd's async worker or a flush takes the core).
# Usage: benches/scripts/set-timeline.sh target/release/kvd [/other/kvd ...]
# Settings (environment): N=800000 P=1 PORT=7232. Needs redis-benchmark, taskset.
set -euo pipefail
N=${N:-800000}
P=${P:-1}
port=${PORT:-7232}
KEEP=0
KVD=$1 # common.sh builds kvd only without it
BENCH_NAME=kvd-set-timeline
# shellcheck source=benches/scripts/common.sh
source "$(dirname "$0")/common.sh"
for bin in "$@"; do
  rm -rf "$DIR/data"
  taskset -c 0 "$bin" --port "$port" --dir "$DIR/data" --appendfsync everysec >"$DIR/kvd.log" 2>&1 &
  pids+=($!)
  wait_for "$bin to answer PING" 30 pong "$port"
  rates=$(taskset -c 1 redis-benchmark -p "$port" -t set -n "$N" -r 100000000 -d 100 -c 50 -P "$P" 2>/dev/null \
    | tr '\r' '\n' | grep -o 'rps=[0-9.]*' | cut -d= -f2 | awk '$1 > 0 {printf "%d ", $1 / 1000}')
  [[ -n "$rates" ]] || die "$bin: redis-benchmark reported no rate"
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  echo "$bin (load $(cut -d' ' -f1 /proc/loadavg)): $rates"
  echo "$rates" | tr ' ' '\n' | awk 'NF {n++; s += $1; v[n] = $1; if ($1 > max) max = $1}
    END {min = max; for (i = 1; i <= n; i++) { if (v[i] < min) min = v[i]; if (v[i] < max / 2) low++ }
         printf "  mean %.0fk ops/s, fastest %dk, slowest %dk, %d of %d intervals below half the fastest\n", s / n, max, min, low + 0, n}'
done
