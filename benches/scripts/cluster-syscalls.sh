#!/usr/bin/env bash
# System calls and CPU of a cluster's coordinator and one replica per request: a 3-node
# cluster (N=3, W=2, database 0 eventual) for each kvd binary in turn,
# `redis-benchmark -t TEST -n N -r 1000000 -d 100 -c 50 -P P` through node 1, and
# `perf stat` on nodes 1 and 2 during the run: write(2) (WAL appends), writev(2) (replica
# link frames), sendto(2) (client replies), recvfrom(2), epoll_wait(2), futex(2) and
# task-clock (as CPU µs per request). Instruction counts (callgrind-cluster.sh) miss the kernel's share; these
# counts show it. List a pair twice to alternate them.
# Usage: benches/scripts/cluster-syscalls.sh OLD/kvd NEW/kvd OLD/kvd NEW/kvd
# Settings (environment): TEST=set N=100000 P=1 BASE_PORT=7500 (and +10000 for buses).
# Needs redis-benchmark, redis-cli, perf.
set -euo pipefail
TEST=${TEST:-set}
N=${N:-100000}
P=${P:-1}
first=${BASE_PORT:-7500}
KEEP=0
KVD=$1 # common.sh builds kvd only without it
BENCH_NAME=kvd-cluster-syscalls
# shellcheck source=benches/scripts/common.sh
source "$(dirname "$0")/common.sh"
command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
events=syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendto
events+=,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,task-clock
seeds="127.0.0.1:$((first + 10000)),127.0.0.1:$((first + 10001)),127.0.0.1:$((first + 10002))"
run=0
for bin in "$@"; do
  run=$((run + 1))
  nodes=()
  for i in 0 1 2; do
    port=$((first + i))
    "$bin" --port "$port" --dir "$DIR/run$run/n$i" --cluster-enabled yes \
      --cluster-port $((port + 10000)) --cluster-seeds "$seeds" --cluster-bootstrap-expect 3 \
      --cluster-eventual-databases 0 >"$DIR/run$run-n$i.log" 2>&1 &
    pids+=($!)
    nodes+=($!)
  done
  for i in 0 1 2; do wait_for "node $((first + i)) answers PING" 60 pong $((first + i)); done
  wait_for "cluster formed, all nodes up" 120 all_up "$first" $((first + 1)) $((first + 2))
  perf stat -e "$events" -x, -o "$DIR/perf1" -p "${nodes[0]}" &
  perf1=$!
  perf stat -e "$events" -x, -o "$DIR/perf2" -p "${nodes[1]}" &
  perf2=$!
  sleep 0.3 # perf attaches before the load starts
  csv=$(redis-benchmark -p "$first" -t "$TEST" -n "$N" -r 1000000 -d 100 -c 50 -P "$P" --csv 2>/dev/null | tail -1)
  kill -INT "$perf1" "$perf2"
  wait "$perf1" "$perf2" 2>/dev/null || true
  for n in "${nodes[@]}"; do kill "$n" 2>/dev/null || true; done
  wait "${nodes[@]}" 2>/dev/null || true
  echo "$bin: $TEST -P $P: $csv"
  for n in 1 2; do
    # perf's CSV: count,unit,event,...; calls per request, task-clock (ms) as µs.
    awk -F, -v n="$n" -v reqs="$N" '
      /^[0-9]/ && $3 == "task-clock" { line = line sprintf(" cpu_us=%.1f", $1 * 1000 / reqs); next }
      /^[0-9]/ { sub(/^syscalls:sys_enter_/, "", $3); line = line sprintf(" %s=%.2f", $3, $1 / reqs) }
      END { print "  node " n " per request:" line }' "$DIR/perf$n"
  done
done
