#!/usr/bin/env bash
# Streaming partitions to a joining node (issue 10, "How fast"; docs/cluster.md,
# "Changing the layout"), in one run on this machine:
#
#   1. three nodes (N=3, W=R=2), database 0 eventual (plain SETs, one round trip);
#      KEYS keys of 100-byte values loaded through node 1 (redis-cli --pipe);
#   2. client load BEFORE: redis-benchmark SET and GET (-c C -n REQS -d 100, random keys
#      among KEYS) through node 1;
#   3. a fourth node joins (CLUSTER LAYOUT ASSIGN, PLAN, APPLY); while it streams its
#      incoming partitions, the same redis-benchmark runs again and again (DURING);
#   4. the time from APPLY until the joiner reports its partitions copied (snapshot and
#      Merkle catch-up) and until the change ended, the bytes and records streamed, and
#      the throughput; then the client load AFTER.
#
# Usage: benches/scripts/layout-stream.sh
# Settings (environment): KEYS=1000000, REQS=50000 requests per redis-benchmark run,
# C=50 clients, RATE=52428800 (--cluster-stream-bytes-per-sec; 0 = unlimited),
# KVD=path to kvd (default: build the release binary), BASE_PORT=7600 (uses
# BASE_PORT+1..+4 and +10000), DIR=scratch dir (removed at the end unless KEEP=1).
# Needs redis-benchmark and redis-cli (apt-get install -y redis-tools).
set -euo pipefail

KEYS=${KEYS:-1000000}
REQS=${REQS:-50000}
C=${C:-50}
RATE=${RATE:-52428800}
BASE_PORT=${BASE_PORT:-7600}
KEEP=${KEEP:-0}
BENCH_NAME=kvd-stream-bench
# shellcheck source=benches/scripts/common.sh
source "$(dirname "$0")/common.sh"

info() { redis-cli -p "$1" CLUSTER INFO 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
now_ms() { date +%s%3N; }

seeds=""
for i in 1 2 3 4; do seeds+="${seeds:+,}127.0.0.1:$((BASE_PORT + i + 10000))"; done
start_node() {
  local i=$1 port=$((BASE_PORT + $1))
  "$KVD" --port "$port" --dir "$DIR/n$i" --appendfsync everysec \
    --cluster-enabled yes --cluster-port $((port + 10000)) --cluster-seeds "$seeds" \
    --cluster-bootstrap-expect 3 --cluster-eventual-databases 0 \
    --cluster-stream-bytes-per-sec "$RATE" >"$DIR/n$i.log" 2>&1 &
  pids+=($!)
}
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do wait_for "node $i forms the cluster" 60 cluster_ok $((BASE_PORT + i)); done
node1=$((BASE_PORT + 1))
joiner=$((BASE_PORT + 4))

echo "kvd: $KVD; KEYS=$KEYS REQS=$REQS C=$C RATE=$RATE; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(date -u +%Y-%m-%dT%H:%MZ)"

# Load: one SET per key, 100-byte values, pipelined through node 1.
value=$(printf 'v%.0s' $(seq 100))
t0=$(now_ms)
awk -v n="$KEYS" -v v="$value" 'BEGIN {
  for (i = 0; i < n; i++) { k = "key:" i; printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n", length(k), k, v }
}' | redis-cli -p "$node1" --pipe >"$DIR/load.txt" || true # non-zero when some SET timed out
t1=$(now_ms)
echo "loaded $KEYS keys in $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s: $(tail -1 "$DIR/load.txt")"

# run LABEL: one redis-benchmark SET,GET run through node 1; prints rps and p99 per test.
# redis-benchmark stops at the first error reply (a SET that timed out on an overloaded
# machine): that is reported and the benchmark goes on.
run() {
  redis-benchmark -p "$node1" -c "$C" -n "$REQS" -d 100 -r "$KEYS" -P 1 --csv -t set,get |
    awk -F'","' -v l="$1" 'NR > 1 { gsub(/"/, "", $0); split($0, f, ","); printf "%-8s %-4s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n", l, f[1], f[2], f[5], f[7] }' ||
    echo "$1: redis-benchmark stopped on an error reply"
}
run before

start_node 4
wait_for "the joiner" 30 pong "$joiner"
joiner_bus="127.0.0.1:$((joiner + 10000))"
wait_for "node 1 meets the joiner" 60 bash -c "redis-cli -p $node1 CLUSTER LAYOUT SHOW | grep -q 'bus=$joiner_bus'"
redis-cli -p "$node1" CLUSTER LAYOUT ASSIGN "$joiner_bus" >/dev/null
plan=$(redis-cli -p "$node1" CLUSTER LAYOUT PLAN | tr -d '\r')
grep -E '^(next_version|moved_assignments|bytes_to_move|keys_to_move|partitions_unmeasured):' <<<"$plan"
next=$(sed -n 's/^next_version://p' <<<"$plan")
# APPLY is a consensus round on the layout register: on an overloaded machine it can
# time out having committed, so it is retried until node 1 holds the version.
applied=$(now_ms)
applied_ok() { [[ "$(info "$node1" kvd_layout_version)" -ge "$next" ]]; }
until applied_ok; do
  redis-cli -p "$node1" CLUSTER LAYOUT APPLY "$next" || true
  applied_ok || sleep 1
done

# Follow the joiner: the last streamed figures before the change ends, and when it
# reported its partitions copied. Client runs go on meanwhile.
(
  streamed_keys=0 streamed_bytes=0 stream_rate=0 synced_at=""
  while true; do
    transition=$(info "$joiner" kvd_layout_transition)
    version=$(info "$joiner" kvd_layout_version)
    # The figures are per layout version: the change's second version (reads moved)
    # starts them again at 0, so the largest seen is the stream's.
    if [[ "$transition" != none ]]; then
      k=$(info "$joiner" kvd_layout_streamed_keys)
      if [[ "${k:-0}" -gt "$streamed_keys" ]]; then
        streamed_keys=$k
        streamed_bytes=$(info "$joiner" kvd_layout_streamed_bytes)
        # Since copying began (after every node acknowledged), at the latest page seen.
        stream_rate=$(info "$joiner" kvd_layout_stream_bytes_per_sec)
      fi
    fi
    synced=$(info "$joiner" kvd_layout_synced)
    if [[ -z "$synced_at" && "${synced:-0}" -ge "$next" ]]; then synced_at=$(now_ms); fi
    if [[ "$transition" == none && "${version:-0}" -gt "$next" ]]; then
      echo "$streamed_keys $streamed_bytes ${synced_at:-$(now_ms)} $(now_ms) $stream_rate" >"$DIR/ended"
      exit 0
    fi
    sleep 0.2
  done
) &
follower=$!
while [[ ! -f "$DIR/ended" ]]; do run during; done
wait "$follower"
read -r keys bytes synced_at ended_at stream_rate <"$DIR/ended"
copy_s=$(awk -v a="$applied" -v b="$synced_at" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
end_s=$(awk -v a="$applied" -v b="$ended_at" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
echo "joiner streamed $keys records, $bytes bytes; copied (snapshot + catch-up) ${copy_s} s after APPLY, change ended ${end_s} s after APPLY"
awk -v k="$keys" -v b="$bytes" -v s="$copy_s" 'BEGIN { printf "throughput: %.0f records/s, %.1f MiB/s\n", k / s, b / s / 1048576 }'
awk -v r="$stream_rate" 'BEGIN { printf "stream rate on the joiner (from when copying began, after every node acknowledged, to its last page): %.1f MiB/s\n", r / 1048576 }'
echo "joiner keys_copied: $(info "$joiner" kvd_layout_keys_copied)"
run after
