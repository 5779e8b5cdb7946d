#!/usr/bin/env bash
# Throughput, p99 and kvd's CPU time per request for one redis-benchmark test, for one or
# more kvd binaries in turn (list a pair twice to alternate them): each gets a fresh
# data directory (appendfsync everysec) pinned to CPU 0, `redis-benchmark -t TEST -n N
# -r 1000000 -d 100 -c 50 -P P` runs pinned to CPU 1, and kvd's task-clock comes from
# `perf stat -p` around the run. CPU per request is the number instruction counts miss:
# cache misses, page walks, the kernel's share, other threads on the core.
# Usage: benches/scripts/cpu-per-op.sh OLD/kvd NEW/kvd OLD/kvd NEW/kvd
# Settings (environment): TEST=set N=300000 P=1 PORT=7233; PRE="SET ttlkey v EX 100000"
# runs one command before the benchmark (that one makes the expiry sweep run). Needs
# redis-benchmark, redis-cli, taskset, perf.
set -euo pipefail
TEST=${TEST:-set}
N=${N:-300000}
P=${P:-1}
port=${PORT:-7233}
KEEP=0
KVD=$1 # common.sh builds kvd only without it
BENCH_NAME=kvd-cpu-per-op
# shellcheck source=benches/scripts/common.sh
source "$(dirname "$0")/common.sh"
command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
for bin in "$@"; do
  rm -rf "$DIR/data"
  taskset -c 0 "$bin" --port "$port" --dir "$DIR/data" --appendfsync everysec >"$DIR/kvd.log" 2>&1 &
  pids+=($!)
  pid=${pids[-1]}
  wait_for "$bin to answer PING" 30 pong "$port"
  if [[ -n "${PRE:-}" ]]; then
    # shellcheck disable=SC2086 # PRE is a command line, split on purpose
    redis-cli -p "$port" $PRE >/dev/null
  fi
  perf stat -e task-clock -x, -o "$DIR/perf" -p "$pid" &
  perf_pid=$!
  sleep 0.2 # perf attaches before the load starts
  csv=$(taskset -c 1 redis-benchmark -p "$port" -t "$TEST" -n "$N" -r 1000000 -d 100 -c 50 -P "$P" --csv 2>/dev/null | tail -1)
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  ms=$(grep task-clock "$DIR/perf" | cut -d, -f1)
  [[ -n "$csv" && -n "$ms" ]] || die "$bin: no benchmark result or no CPU time"
  # redis-benchmark's CSV: "test","rps","avg_latency_ms","min","p50","p95","p99","max"
  echo "$csv" | tr -d '"' | awk -F, -v bin="$bin" -v ms="$ms" -v n="$N" -v p="$P" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
    '{printf "%s %s -P %s: %.0f ops/s, p99 %.2f ms, kvd CPU %.2f us per request (load %s)\n", bin, $1, p, $2, $7, ms * 1000 / n, load}'
done
