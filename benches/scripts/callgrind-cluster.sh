#!/usr/bin/env bash
# Instructions per operation of a 3-node cluster (N=3, W=2, R=2) against one kvd, under
# valgrind's callgrind: the repeatable counterpart of cluster-vs-single.sh, whose CPU
# seconds move by 15-20% between runs on this shared 2-core machine (issue 8, "How fast").
#
# Starts a single kvd and three cluster nodes, every one under callgrind; once the cluster
# has formed, for each test of TESTS it zeroes the single kvd's counters, runs
# `redis-benchmark -t TEST -n N -r R -d 100 -c C -P P` through it and dumps them, then
# does the same with all three nodes' counters and node 1. It prints, per test, the instructions per
# operation of the single kvd, of each node (node 1 coordinates every request and is one of
# the three replicas; nodes 2 and 3 are replicas) and of the whole cluster, with the ratio.
# Each dump also holds what the processes did in the background meanwhile (gossip,
# folding, flushes), as cluster-vs-single.sh's CPU times do.
#
# Instructions are not time: a skiplist search's cache misses cost time callgrind does not
# count. Use it to compare builds and to find where the instructions go (KEEP=DIR keeps each
# dump as DIR/<label>.<test>.<node>.cg for callgrind_annotate), and cluster-vs-single.sh for
# the CPU seconds the targets are stated in.
#
# Usage: benches/scripts/callgrind-cluster.sh /path/to/kvd [/other/kvd ...]
# Settings (environment): N=20000 R=10000 C=4 P=1 TESTS="set get" BASE_PORT=7700 (uses
# BASE_PORT..+3 and +10000 for the buses), CLUSTER_FLAGS (default
# "--cluster-eventual-databases 0", as in cluster-vs-single.sh), KEEP=DIR.
# Needs valgrind, redis-cli and redis-benchmark.
set -euo pipefail

N=${N:-20000}
R=${R:-10000}
C=${C:-4}
P=${P:-1}
TESTS=${TESTS:-"set get"}
BASE_PORT=${BASE_PORT:-7700}
CLUSTER_FLAGS=${CLUSTER_FLAGS-"--cluster-eventual-databases 0"}
for tool in valgrind callgrind_control redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "callgrind-cluster.sh: $tool is missing" >&2; exit 1; }
done
(($# > 0)) || { echo "usage: $0 /path/to/kvd [/other/kvd ...]" >&2; exit 1; }

KEEP_DIR=${KEEP:-}
KEEP=0 # common.sh's KEEP=1 keeps its scratch directory; here KEEP names where profiles go
KVD=$1 # common.sh builds kvd only without it
BENCH_NAME=kvd-callgrind-cluster
# shellcheck source=benches/scripts/common.sh
source "$(dirname "$0")/common.sh"

# under_callgrind NAME ARGS...: starts kvd ARGS under callgrind; its pid in $started.
# The slow log is off: valgrind runs kvd some fifty times slower, so a grouped round of
# pipelined writes passes the 10 ms threshold it never reaches natively, and the log's
# copies of each command's arguments (about 800 instructions per SET on node 1) would be
# counted as the cluster's cost.
under_callgrind() {
  local name=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$scratch/$name.cg" "$kvd" "$@" \
    --slowlog-log-slower-than=-1 \
    >"$scratch/$name.log" 2>&1 &
  started=$!
  pids+=("$started")
}

# instructions FILE: the total of one callgrind dump.
instructions() { grep -E "^(summary|totals):" "$1" | awk '{ print $2 }' | head -1; }

# dump LABEL TEST NAME PID: dumps PID's counters, keeps them if asked, prints the total.
dump_count() {
  local label=$1 test=$2 name=$3 pid=$4 file
  callgrind_control --dump="$test" "$pid" >/dev/null 2>&1
  # Each dump is written as NAME.cg.<n>; the newest is this one.
  file=$(ls -t "$scratch/$name.cg".* | head -1)
  if [[ -n "$KEEP_DIR" ]]; then
    mkdir -p "$KEEP_DIR" && cp "$file" "$KEEP_DIR/$label.$test.$name.cg"
  fi
  instructions "$file"
}

measure() { # kvd
  kvd=$1
  scratch=$(mktemp -d "$DIR/run.XXXXXX")
  pids=()
  local single=$BASE_PORT first=$((BASE_PORT + 1)) seeds i node_pids=() label
  label=$(basename "$(dirname "$kvd")").$(basename "$kvd")
  seeds="127.0.0.1:$((first + 10000)),127.0.0.1:$((first + 10001)),127.0.0.1:$((first + 10002))"
  under_callgrind single --port "$single" --dir "$scratch/single" --appendfsync everysec
  local single_pid=$started
  for i in 0 1 2; do
    # shellcheck disable=SC2086
    under_callgrind "n$((i + 1))" --port $((first + i)) --dir "$scratch/n$((i + 1))" \
      --appendfsync everysec --cluster-enabled yes --cluster-port $((first + i + 10000)) \
      --cluster-seeds "$seeds" --cluster-bootstrap-expect 3 $CLUSTER_FLAGS
    node_pids+=("$started")
  done
  for i in 0 1 2 3; do wait_for "port $((single + i)) answers PING" 600 pong $((single + i)); done
  wait_for "the cluster formed, all nodes up" 600 all_up "$first" $((first + 1)) $((first + 2))

  echo "$kvd (N=$N R=$R C=$C P=$P), instructions per operation:"
  printf '%-5s %10s %10s %10s %10s %12s %8s\n' test single "node 1" "node 2" "node 3" cluster ratio
  for t in $TESTS; do
    local s n1 n2 n3 out
    # Zeroed right before each run, so a dump holds the run and not the other side's.
    callgrind_control --zero "$single_pid" >/dev/null 2>&1
    out=$(redis-benchmark -p "$single" -t "$t" -n "$N" -r "$R" -d 100 -c "$C" -P "$P" --csv 2>&1) ||
      die "redis-benchmark on the single kvd failed: $out"
    s=$(dump_count "$label" "$t" single "$single_pid")
    for p in "${node_pids[@]}"; do callgrind_control --zero "$p" >/dev/null 2>&1; done
    out=$(redis-benchmark -p "$first" -t "$t" -n "$N" -r "$R" -d 100 -c "$C" -P "$P" --csv 2>&1) ||
      die "redis-benchmark on node 1 failed: $out"
    n1=$(dump_count "$label" "$t" n1 "${node_pids[0]}")
    n2=$(dump_count "$label" "$t" n2 "${node_pids[1]}")
    n3=$(dump_count "$label" "$t" n3 "${node_pids[2]}")
    awk -v t="${t^^}" -v n="$N" -v s="$s" -v a="$n1" -v b="$n2" -v c="$n3" 'BEGIN {
      printf "%-5s %10.0f %10.0f %10.0f %10.0f %12.0f %7.2fx\n", t, s / n, a / n, b / n, c / n,
        (a + b + c) / n, (a + b + c) / s
    }'
  done
  {
    for p in "${pids[@]}"; do kill -9 "$p" || true; done
    wait || true
  } 2>/dev/null # bash reports each killed job; that is expected here
  pids=()
  rm -rf "$scratch"
}

for bin in "$@"; do
  measure "$bin"
done
