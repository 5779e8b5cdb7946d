#!/usr/bin/env bash
# HTTP beside RESP on one 3-node cluster (issue 12, "How fast"; docs/performance.md), in
# one run, all through node 1, database 0 (linearizable: a write is a consensus round,
# a read a quorum read), 1000 keys, 100-byte values:
#
#   GET and PUT over HTTP  wrk -c C (keep-alive), a Lua script picking random keys;
#                          throughput and p50/p99/p99.9 from wrk's latency histogram
#   GET and SET over RESP  redis-benchmark -c C, the same keys; p50/p99/p99.9 from its
#                          percentile distribution
#   failover               benches/scripts/http-failover-load.py: C connections spread
#                          over the three HTTP ports, half PUT half GET, retrying on the
#                          next node; node 2 is killed (SIGKILL) after KILL_AT seconds
#                          and restarted RESTART_AFTER seconds later; prints the share
#                          of operations that succeeded
#
# Usage: benches/scripts/http-vs-resp.sh
# Settings (environment): C=200 connections, D=15 seconds per wrk run, N=100000 requests
# per redis-benchmark test, FAILOVER_S=40, KILL_AT=10, RESTART_AFTER=10,
# KVD=path to kvd (default target/release/kvd; built with `cargo build --release
# --workspace --bins` if missing), BASE_PORT=7600 (uses BASE_PORT+1..3, +10001..3 for
# the bus, +1001..3 for HTTP), DIR=scratch dir (removed unless KEEP=1).
# Needs wrk (apt-get install wrk), redis-benchmark and redis-cli (redis-tools), python3.
set -euo pipefail

C=${C:-200}
D=${D:-15}
N=${N:-100000}
FAILOVER_S=${FAILOVER_S:-40}
KILL_AT=${KILL_AT:-10}
RESTART_AFTER=${RESTART_AFTER:-10}
BASE_PORT=${BASE_PORT:-7600}
KEEP=${KEEP:-0}
BENCH_NAME=kvd-http-bench
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z "${KVD:-}" ]]; then
  KVD="$here/../../target/release/kvd"
  [[ -x "$KVD" ]] || (cd "$here/../.." && cargo build --release --workspace --bins)
fi
# shellcheck source=benches/scripts/common.sh
source "$here/common.sh"
for tool in wrk redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk redis-tools python3)"
done

cluster_ok() { redis-cli -p "$1" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok'; }
resp_port() { echo $((BASE_PORT + $1)); }
http_port() { echo $((BASE_PORT + 1000 + $1)); }

seeds=""
for i in 1 2 3; do seeds+="${seeds:+,}127.0.0.1:$((BASE_PORT + i + 10000))"; done
# start_node I: starts node I in the background (its pid in node_pid[I]).
declare -A node_pid
start_node() {
  local i=$1 port
  port=$(resp_port "$i")
  "$KVD" --port "$port" --http-port "$(http_port "$i")" --dir "$DIR/n$i" \
    --appendfsync everysec --cluster-enabled yes --cluster-port $((port + 10000)) \
    --cluster-seeds "$seeds" --cluster-bootstrap-expect 3 >>"$DIR/n$i.log" 2>&1 &
  node_pid[$i]=$!
  pids+=($!)
}
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do wait_for "node $i forms the cluster" 60 cluster_ok "$(resp_port "$i")"; done

node1=$(resp_port 1)
# The keys both protocols read: key:000000000000 .. key:000000000999.
redis-benchmark -p "$node1" -c 50 -n 20000 -r 1000 -d 100 -t set -q >/dev/null
cat >"$DIR/get.lua" <<'EOF'
request = function()
  return wrk.format("GET", string.format("/kv/key:%012d", math.random(0, 999)))
end
done = function(summary, latency, requests)
  io.write(string.format("WRKSTATS %d %d %.2f %.3f %.3f %.3f\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000))
end
EOF
sed -e 's|return wrk.format("GET", |return wrk.format("PUT", |' \
    -e 's|math.random(0, 999)))|math.random(0, 999)), {["Content-Type"] = "application/octet-stream"}, string.rep("v", 100))|' \
    "$DIR/get.lua" >"$DIR/put.lua"

# http LABEL SCRIPT: one wrk run against node 1's HTTP port.
http() {
  local label=$1 script=$2 stats
  stats=$(wrk -t 2 -c "$C" -d "${D}s" --timeout 10s -s "$script" "http://127.0.0.1:$(http_port 1)" |
    grep '^WRKSTATS') || die "wrk $label failed"
  read -r _ reqs errs rps p50 p99 p999 <<<"$stats"
  printf "%-28s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  (%d requests, %d errors or non-2xx)\n" \
    "$label" "$rps" "$p50" "$p99" "$p999" "$reqs" "$errs"
}

# resp LABEL TEST: one redis-benchmark test (set or get) against node 1.
resp() {
  local label=$1 test=$2 out
  out=$(redis-benchmark -p "$node1" -c "$C" -n "$N" -r 1000 -d 100 -t "$test" --precision 3)
  awk -v l="$label" '
    /throughput summary:/ { rps = $3 }
    /^ *[0-9.]+% <= [0-9.]+ milliseconds/ {
      pct = $1; sub("%", "", pct); ms = $3
      if (p50 == "" && pct + 0 >= 50) p50 = ms
      if (p99 == "" && pct + 0 >= 99) p99 = ms
      if (p999 == "" && pct + 0 >= 99.9) p999 = ms
    }
    END { printf "%-28s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms\n", l, rps, p50, p99, p999 }
  ' <<<"$out"
}

echo "kvd: $KVD; C=$C connections, wrk ${D}s, redis-benchmark N=$N; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "all through node 1, database 0 (linearizable), 1000 keys, 100-byte values"
http "HTTP GET /kv (wrk)" "$DIR/get.lua"
resp "RESP GET (redis-benchmark)" get
http "HTTP PUT /kv (wrk)" "$DIR/put.lua"
resp "RESP SET (redis-benchmark)" set

echo "failover: ${FAILOVER_S}s of HTTP load on all three nodes, retrying on the next node;"
echo "          node 2 killed (SIGKILL) at ${KILL_AT}s, restarted ${RESTART_AFTER}s later"
python3 "$here/http-failover-load.py" "$FAILOVER_S" "$C" \
  "$(http_port 1)" "$(http_port 2)" "$(http_port 3)" >"$DIR/failover.out" &
load=$!
sleep "$KILL_AT"
kill -9 "${node_pid[2]}"
wait "${node_pid[2]}" 2>/dev/null || true # reaped here, so bash does not report it
echo "          node 2 killed at $(date -u +%T)"
sleep "$RESTART_AFTER"
start_node 2
echo "          node 2 restarted at $(date -u +%T)"
wait "$load" || die "the failover load generator failed (output in $DIR/failover.out)"
sed 's/^/          /' "$DIR/failover.out"
