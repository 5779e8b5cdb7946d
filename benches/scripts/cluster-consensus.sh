#!/usr/bin/env bash
# What consensus costs (issue 9, "How fast"; docs/consistency.md): on one 3-node cluster
# (N=3, all on this machine) started with --cluster-eventual-databases 1, in one run:
#
#   SET     in database 1 (eventual: last-writer-wins, one round trip)
#   SET     in database 0 (linearizable: a consensus round per write)
#   INCR    in database 0 over 1M keys (-r 1000000: hardly any contention)
#   INCR    in database 0 over HOT keys (-r HOT, default 4: every client on a few keys)
#   SET NX  in database 0 over 1M keys, then over HOT keys (after a key's first SET NX
#           every later one finds it held and writes nothing)
#   INCR    on a single kvd (no cluster), for reference
#
# Every cluster workload runs through ALL nodes at once: one redis-benchmark per node in
# parallel, C clients in all (split over the nodes) and N requests in all, -d 100 -P 1.
# Per workload it prints the aggregate throughput (all requests over the slowest node's
# time) and the p50 and p99 of the node with the highest ones (redis-benchmark --csv
# reports percentiles per run, which cannot be merged exactly), then each node's own.
# redis-benchmark ends at the first error reply; such a workload prints the error (a
# consensus TIMEOUT on an overloaded machine, say) and the run goes on.
#
# Usage: benches/scripts/cluster-consensus.sh
# Settings (environment): N=20000 requests per workload, C=50 clients, HOT=4 hot keys,
# KVD_FLAGS=extra flags for the three cluster nodes (e.g. "--cluster-forward-consensus
# no" to let every node propose, for comparison),
# KVD=path to kvd (default: build the release binary), BASE_PORT=7500 (uses
# BASE_PORT..+4 and +10000), DIR=scratch dir (removed at the end unless KEEP=1).
# Needs redis-benchmark and redis-cli (apt-get install -y redis-tools).
set -euo pipefail

N=${N:-20000}
C=${C:-50}
HOT=${HOT:-4}
read -r -a EXTRA <<<"${KVD_FLAGS:-}"
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
    --cluster-bootstrap-expect 3 --cluster-eventual-databases 1 "${EXTRA[@]}" >"$DIR/n$i.log" 2>&1 &
  pids+=($!)
done
single=$((BASE_PORT + 4))
"$KVD" --port "$single" --dir "$DIR/single" --appendfsync everysec >"$DIR/single.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do wait_for "node $i forms the cluster" 60 cluster_ok $((BASE_PORT + i)); done
wait_for "the single kvd" 30 pong "$single"

# csv_fields FILE: "rps p50 p99" of the last line of a redis-benchmark --csv output:
# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
csv_fields() {
  tail -1 "$1" | tr -d '"' | awk -F, '{ print $2, $5, $7 }'
}

# report LABEL RPS P50 P99: one result line.
report() {
  printf "%-46s %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms\n" "$@"
}

# one_node LABEL PORT ARGS...: one redis-benchmark run of C clients and N requests.
one_node() {
  local label=$1 port=$2 out="$DIR/bench.csv"
  shift 2
  if ! redis-benchmark -p "$port" -c "$C" -n "$N" -d 100 -P 1 --csv "$@" >"$out" 2>"$out.err"; then
    printf "%-46s ENDED BY AN ERROR REPLY: %s\n" "$label" "$(grep -m1 'Error' "$out.err")"
    return 0
  fi
  # shellcheck disable=SC2046
  report "$label" $(csv_fields "$out")
}

# all_nodes LABEL ARGS...: one redis-benchmark per cluster node at once, C clients and N
# requests split over them; prints the aggregate line, then each node's.
all_nodes() {
  local label=$1 i
  shift
  local bench_pids=()
  for i in 1 2 3; do
    # Node i's share: C/3 and N/3, the remainders to the first nodes.
    local c=$((C / 3 + (i <= C % 3 ? 1 : 0))) n=$((N / 3 + (i <= N % 3 ? 1 : 0)))
    echo "$n" >"$DIR/bench-$i.n"
    redis-benchmark -p $((BASE_PORT + i)) -c "$c" -n "$n" -d 100 -P 1 --csv "$@" >"$DIR/bench-$i.csv" 2>"$DIR/bench-$i.err" &
    bench_pids+=($!)
  done
  # redis-benchmark stops at the first error reply (a TIMEOUT under overload, say):
  # that workload is reported as such and the run goes on with the next one.
  local failed=""
  for i in 1 2 3; do
    wait "${bench_pids[$((i - 1))]}" || failed+=" node $i: $(grep -m1 'Error' "$DIR/bench-$i.err")"
  done
  if [[ -n "$failed" ]]; then
    printf "%-46s ENDED BY AN ERROR REPLY:%s\n" "$label" "$failed"
    return 0
  fi
  local lines=""
  for i in 1 2 3; do
    lines+="$(cat "$DIR/bench-$i.n") $(csv_fields "$DIR/bench-$i.csv")"$'\n'
  done
  # Aggregate: all requests over the longest run (each run took n/rps seconds); the
  # highest p50 and p99 of the three.
  # shellcheck disable=SC2046
  report "$label" $(awk 'NF == 4 { total += $1; t = $1 / $2; if (t > slowest) slowest = t;
      if ($3 > p50) p50 = $3; if ($4 > p99) p99 = $4 }
      END { print total / slowest, p50, p99 }' <<<"$lines")
  awk 'NF == 4 { printf "    node %d: %6d requests %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms\n", NR, $1, $2, $3, $4 }' <<<"$lines"
}

value=$(head -c 100 /dev/zero | tr '\0' v)
echo "kvd: $KVD ${KVD_FLAGS:-}; N=$N C=$C HOT=$HOT; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cluster workloads through all 3 nodes at once (aggregate req/s; p50/p99 of the worst node):"
all_nodes "SET, eventual database (LWW)" --dbnum 1 -r 1000000 -t set
all_nodes "SET, linearizable database (consensus)" --dbnum 0 -r 1000000 -t set
all_nodes "INCR, linearizable, 1M keys" --dbnum 0 -r 1000000 -t incr
all_nodes "INCR, linearizable, $HOT hot keys" --dbnum 0 -r "$HOT" -t incr
all_nodes "SET NX, linearizable, 1M keys" --dbnum 0 -r 1000000 SET nx:__rand_int__ "$value" NX
all_nodes "SET NX, linearizable, $HOT hot keys" --dbnum 0 -r "$HOT" SET hotnx:__rand_int__ "$value" NX
one_node "INCR, single kvd (no cluster)" "$single" -r 1000000 -t incr
for i in 1 2 3; do
  echo "node $i: $(redis-cli -p $((BASE_PORT + i)) CLUSTER INFO | grep -E 'kvd_consensus_(retries|forwarded|forwards_served)' | tr -d '\r' | tr '\n' ' ')"
done
