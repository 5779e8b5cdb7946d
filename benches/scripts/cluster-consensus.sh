#!/usr/bin/env bash
# What consensus costs (issue 9, "How fast"; docs/consistency.md): on one 3-node cluster
# (N=3, all on this machine) started with --cluster-eventual-databases 1, in one run:
#
#   SET  in database 1 (eventual: last-writer-wins, one round trip)
#   SET  in database 0 (linearizable: a consensus round per write)
#   INCR in database 0 over 1M keys (-r: little contention)
#   INCR in database 0 on ONE key (every client on the same hot key)
#   INCR on a single kvd (no cluster), for reference
#
# Each with redis-benchmark -c C -n N -d 100 at -P 1, through node 1; prints throughput
# and p50/p99 (ms) as redis-benchmark reports them (--csv).
#
# Usage: benches/scripts/cluster-consensus.sh
# Settings (environment): N=20000 requests per test, C=50 clients, KVD=path to kvd
# (default: build the release binary), BASE_PORT=7500 (uses BASE_PORT..+3 and +10000),
# DIR=scratch dir (removed at the end unless KEEP=1).
# Needs redis-benchmark and redis-cli (apt-get install -y redis-tools).
set -euo pipefail

N=${N:-20000}
C=${C:-50}
BASE_PORT=${BASE_PORT:-7500}
KEEP=${KEEP:-0}
BENCH_NAME=kvd-consensus-bench
# shellcheck source=benches/scripts/common.sh
source "$(dirname "$0")/common.sh"

cluster_ok() { redis-cli -p "$1" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok'; }
pong() { [[ "$(redis-cli -p "$1" PING 2>/dev/null)" == PONG ]]; }

seeds=""
for i in 1 2 3; do seeds+="${seeds:+,}127.0.0.1:$((BASE_PORT + i + 10000))"; done
for i in 1 2 3; do
  port=$((BASE_PORT + i))
  "$KVD" --port "$port" --dir "$DIR/n$i" --appendfsync everysec \
    --cluster-enabled yes --cluster-port $((port + 10000)) --cluster-seeds "$seeds" \
    --cluster-bootstrap-expect 3 --cluster-eventual-databases 1 >"$DIR/n$i.log" 2>&1 &
  pids+=($!)
done
single=$((BASE_PORT + 4))
"$KVD" --port "$single" --dir "$DIR/single" --appendfsync everysec >"$DIR/single.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do wait_for "node $i forms the cluster" 60 cluster_ok $((BASE_PORT + i)); done
wait_for "the single kvd" 30 pong "$single"

# run LABEL PORT ARGS...: one redis-benchmark run; prints label, rps, p50, p99.
run() {
  local label=$1 port=$2
  shift 2
  local line
  line=$(redis-benchmark -p "$port" -c "$C" -n "$N" -d 100 -P 1 --csv "$@" | tail -1)
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  awk -F'","' -v l="$label" '{ gsub(/"/, "", $0); split($0, f, ","); printf "%-44s %10.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n", l, f[2], f[5], f[7] }' <<<"$line"
}

node1=$((BASE_PORT + 1))
echo "kvd: $KVD; N=$N C=$C; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
run "SET, eventual database (LWW)" "$node1" --dbnum 1 -r 1000000 -t set
run "SET, linearizable database (consensus)" "$node1" --dbnum 0 -r 1000000 -t set
run "INCR, linearizable, 1M keys" "$node1" --dbnum 0 -r 1000000 -t incr
run "INCR, linearizable, one hot key" "$node1" --dbnum 0 -t incr
run "INCR, single kvd" "$single" -r 1000000 -t incr
echo "consensus retries on node 1: $(redis-cli -p "$node1" CLUSTER INFO | grep kvd_consensus_retries | tr -d '\r')"
