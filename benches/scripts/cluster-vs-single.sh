#!/usr/bin/env bash
# Cost of replication (issue 8, "How fast"): one kvd against a 3-node cluster (N=3, W=2,
# R=2, all on this machine), in the same run.
#
# Part 1: redis-benchmark -t set, then -t get (-r 1000000 -d 100 -c 50 -n N) at each
# pipeline depth, against the single kvd and against node 1 of the cluster, alternating.
# Around every run it reads utime+stime of every kvd process of that side from
# /proc/PID/stat, and prints throughput, p99 and the CPU microseconds all kvd processes
# spent per operation, with the cluster/single ratio (targets: SET <= 3.5x, GET <= 2.5x).
# Each test runs alone (set, then get) so its CPU is its own; GET reads the keys the SET
# run left (about 18% of the 1M key space at N=200000 on both sides).
#
# Part 2: repair time. A second, fresh 3-node cluster with
# --cluster-anti-entropy-interval-ms 1000; node 3 is killed (-9), M distinct keys are
# written through node 1 (pipelined, in parallel), node 3 is restarted with the same
# command, and the script polls until all three nodes return identical CLUSTER MERKLE
# arrays. It prints the time from the restart to that point, and when hints drained.
#
# Usage: benches/scripts/cluster-vs-single.sh
# Settings (environment): N=200000 requests per test, PIPELINES="1 16", TESTS="set get"
# (redis-benchmark tests; mset too: CPU per MSET of 10 keys), M=1000000 keys
# missed by node 3 (M=0 skips part 2), REPAIR_TIMEOUT=1800 s, KVD=path (skips the build),
# BASE_PORT=7400 (uses BASE_PORT..+7 and +10000 for the buses), DIR=scratch dir (removed
# at the end unless KEEP=1; logs are there).
# CLUSTER_FLAGS: extra flags of every cluster node, default "--cluster-eventual-databases 0":
# database 0 is linearizable by default since consensus (issue 9), where every SET is a
# consensus round; this benchmark measures quorum replication (issue 8), so its cluster
# makes database 0 eventual (last-writer-wins at W). Consensus has its own benchmark,
# cluster-consensus.sh. CLUSTER_FLAGS= (empty) measures the linearizable default.
# Needs redis-benchmark and redis-cli (apt-get install -y redis-tools).
set -euo pipefail

CLUSTER_FLAGS=${CLUSTER_FLAGS-"--cluster-eventual-databases 0"}

N=${N:-200000}
PIPELINES=${PIPELINES:-"1 16"}
TESTS=${TESTS:-"set get"}
M=${M:-1000000}
REPAIR_TIMEOUT=${REPAIR_TIMEOUT:-1800}
BASE_PORT=${BASE_PORT:-7400}
KEEP=${KEEP:-0}
BENCH_NAME=kvd-cluster-bench
# shellcheck source=benches/scripts/common.sh
source "$(dirname "$0")/common.sh"
TICKS=$(getconf CLK_TCK)
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# cpu_ticks PID...: utime+stime of the processes, in clock ticks. The fields are counted
# after the last ')' so a command name with spaces cannot shift them.
cpu_ticks() {
  local total=0 p rest
  for p in "$@"; do
    rest=$(sed 's/.*) //' "/proc/$p/stat") || die "process $p is gone"
    set -- $rest
    # After "comm)": state is field 1, so utime (14) and stime (15) are fields 12 and 13.
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# start_kvd LOGNAME ARGS...: starts kvd in the background, sets $started to its pid.
start_kvd() {
  local log=$1
  shift
  "$KVD" "$@" >>"$DIR/$log.log" 2>&1 &
  started=$!
  pids+=("$started")
}

answers_ping() { [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]]; }

# cluster_args DIR PORT FIRST_PORT: the flags of one node of a 3-node cluster.
cluster_args() {
  local f=$3
  echo "--port $2 --dir $1 --cluster-enabled yes --cluster-port $(($2 + 10000))" \
    "--cluster-seeds 127.0.0.1:$((f + 10000)),127.0.0.1:$((f + 10001)),127.0.0.1:$((f + 10002))" \
    "--cluster-bootstrap-expect 3"
}

# start_cluster NAME FIRST_PORT EXTRA...: three nodes; their pids in cluster_pids.
start_cluster() {
  local name=$1 first=$2 i
  shift 2
  cluster_pids=()
  for i in 0 1 2; do
    # shellcheck disable=SC2046
    start_kvd "$name-n$((i + 1))" $(cluster_args "$DIR/$name/n$((i + 1))" $((first + i)) "$first") "$@"
    cluster_pids+=("$started")
  done
  for i in 0 1 2; do wait_for "node $((first + i)) answers PING" 60 answers_ping $((first + i)); done
  wait_for "cluster $name formed, all nodes up" 120 all_up "$first" $((first + 1)) $((first + 2))
}

# bench PORT TEST PIPELINE PID...: one redis-benchmark run; prints "rps p99 cpu_us_per_op".
bench() {
  local port=$1 test=$2 pipeline=$3 before after out
  shift 3
  before=$(cpu_ticks "$@")
  # redis-benchmark 7 exits non-zero on the first error reply, so a run that printed a row
  # succeeded on every request.
  out=$(redis-benchmark -h 127.0.0.1 -p "$port" -t "$test" -r 1000000 -d 100 -c 50 -n "$N" \
    -P "$pipeline" --csv 2>&1) || die "redis-benchmark -t $test -P $pipeline on port $port failed: $out"
  after=$(cpu_ticks "$@")
  # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  awk -F'"' -v t="${test^^}" -v d="$((after - before))" -v hz="$TICKS" -v n="$N" \
    'index($2, t) == 1 { printf "%s %s %.1f\n", $4, $14, d * 1e6 / hz / n; found = 1 }
     END { if (!found) exit 1 }' <<<"$out" || die "no $test row in redis-benchmark output: $out"
}

echo "kvd: $KVD"
echo "machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- Part 1: single vs cluster ----
single_port=$BASE_PORT
cluster_port=$((BASE_PORT + 1))
start_kvd single --port "$single_port" --dir "$DIR/single"
single_pid=$started
wait_for "single kvd answers PING" 60 answers_ping "$single_port"
# shellcheck disable=SC2086
start_cluster bench "$cluster_port" $CLUSTER_FLAGS
bench_pids=("${cluster_pids[@]}")

# Background cost of an idle cluster (gossip, failure detection), to read the rest against.
idle_before=$(cpu_ticks "${bench_pids[@]}")
sleep 5
idle_after=$(cpu_ticks "${bench_pids[@]}")
echo "idle cluster: $(awk -v d="$((idle_after - idle_before))" -v hz="$TICKS" \
  'BEGIN { printf "%.1f", d * 1e3 / hz / 5 }') ms of CPU per second, all 3 nodes"
echo

for pipeline in $PIPELINES; do
  echo "redis-benchmark -t {${TESTS// /|}} -r 1000000 -d 100 -c 50 -n $N -P $pipeline"
  printf '%-5s %12s %12s %8s %13s %13s %16s %17s %8s %7s\n' test "single ops/s" "cluster ops/s" ratio \
    "single p99 ms" "cluster p99 ms" "single CPU us/op" "cluster CPU us/op" "CPU x" target
  for test in $TESTS; do
    # Assigned first so a failed run stops the script (set -e sees the substitution's status).
    single_row=$(bench "$single_port" "$test" "$pipeline" "$single_pid")
    cluster_row=$(bench "$cluster_port" "$test" "$pipeline" "${bench_pids[@]}")
    read -r s_rps s_p99 s_cpu <<<"$single_row"
    read -r c_rps c_p99 c_cpu <<<"$cluster_row"
    limit=3.5
    [[ "$test" == get ]] && limit=2.5 # a write (set, mset) 3.5
    awk -v t="${test^^}" -v sr="$s_rps" -v cr="$c_rps" -v sp="$s_p99" -v cp="$c_p99" \
      -v sc="$s_cpu" -v cc="$c_cpu" -v lim="$limit" 'BEGIN {
        x = cc / sc
        printf "%-5s %12.0f %13.0f %7.2fx %13s %14s %16.1f %17.1f %7.2fx %s\n", t, sr, cr, cr / sr,
          sp, cp, sc, cc, x, (x <= lim ? "met (<= " lim "x)" : "missed (> " lim "x)")
      }'
  done
  echo
done

{
  for p in "${pids[@]}"; do kill -9 "$p" || true; done
  wait || true
} 2>/dev/null # bash reports each killed job; that is expected here
pids=()

# ---- Part 2: repair time ----
((M > 0)) || exit 0
repair_port=$((BASE_PORT + 4))
echo "repair: node 3 misses $M writes (anti-entropy every 1000 ms)"
# shellcheck disable=SC2086
start_cluster repair "$repair_port" --cluster-anti-entropy-interval-ms 1000 $CLUSTER_FLAGS
n3_pid=${cluster_pids[2]}
n3_args=$(cluster_args "$DIR/repair/n3" $((repair_port + 2)) "$repair_port")
{
  kill -9 "$n3_pid"
  wait "$n3_pid" || true
} 2>/dev/null
pids=("${cluster_pids[@]:0:2}")

# M distinct keys (key:%012d, 100-byte values) through node 1 over 8 pipelined connections.
write_start=$(now)
value=$(printf 'v%.0s' $(seq 100))
loaders=()
for part in 0 1 2 3 4 5 6 7; do
  awk -v part="$part" -v m="$M" -v v="$value" 'BEGIN {
      for (i = part; i < m; i += 8) {
        k = sprintf("key:%012d", i)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
      }
    }' | redis-cli -p "$repair_port" --pipe >"$DIR/load-$part.log" 2>&1 &
  loaders+=($!)
done
for l in "${loaders[@]}"; do wait "$l" || die "loader failed: $(cat "$DIR"/load-*.log)"; done
replies=$(grep -h "errors:" "$DIR"/load-*.log | awk '$2 != "0," { bad = 1 } { r += $4 } END { print (bad ? -1 : r) }')
[[ "$replies" == "$M" ]] || die "writes failed or went missing: $(cat "$DIR"/load-*.log)"
write_end=$(now)
echo "wrote $M keys through node 1 in $(elapsed "$write_start" "$write_end") s" \
  "(hints pending on node 1: $(info_field "$repair_port" kvd_hints_pending)," \
  "dropped: $(info_field "$repair_port" kvd_hints_dropped);" \
  "node 2: $(info_field $((repair_port + 1)) kvd_hints_pending), dropped: $(info_field $((repair_port + 1)) kvd_hints_dropped))"

merkle() { redis-cli -p "$1" cluster merkle 2>/dev/null | md5sum; }
converged() {
  local a b c
  a=$(merkle "$repair_port")
  b=$(merkle $((repair_port + 1)))
  c=$(merkle $((repair_port + 2)))
  [[ "$a" == "$b" && "$b" == "$c" ]] && answers_ping $((repair_port + 2))
}
hints_drained() {
  [[ "$(info_field "$repair_port" kvd_hints_pending)" == 0 ]] &&
    [[ "$(info_field $((repair_port + 1)) kvd_hints_pending)" == 0 ]]
}

restart=$(now)
# shellcheck disable=SC2086
start_kvd repair-n3-restart $n3_args --cluster-anti-entropy-interval-ms 1000 $CLUSTER_FLAGS
wait_for "restarted node 3 answers PING" 120 answers_ping $((repair_port + 2))
echo "node 3 answers PING $(elapsed "$restart" "$(now)") s after its restart"
# equal_partitions: how many of node 3's Merkle roots equal node 2's (256 when repaired).
equal_partitions() {
  paste -d' ' <(redis-cli -p $((repair_port + 1)) cluster merkle 2>/dev/null) \
    <(redis-cli -p $((repair_port + 2)) cluster merkle 2>/dev/null) |
    awk '$1 == $2 { e++ } END { print e + 0 }'
}
progress() { # one line of repair progress, every 30 s
  local p line="  $(elapsed "$restart" "$(now)") s: partitions equal on nodes 2 and 3: $(equal_partitions);"
  for p in "$repair_port" $((repair_port + 1)) $((repair_port + 2)); do
    line+=" node $p hints pending $(info_field "$p" kvd_hints_pending)"
    line+=" delivered $(info_field "$p" kvd_hints_delivered)"
    line+=" AE rounds $(info_field "$p" kvd_anti_entropy_rounds)"
    line+=" AE keys $(info_field "$p" kvd_anti_entropy_keys_repaired);"
  done
  echo "$line"
}
drained=""
deadline=$(($(date +%s) + REPAIR_TIMEOUT))
next_progress=$(($(date +%s) + 30))
until converged; do
  if [[ -z "$drained" ]] && hints_drained; then
    drained=$(elapsed "$restart" "$(now)")
    echo "hints drained on nodes 1 and 2 $drained s after the restart"
  fi
  if (($(date +%s) >= next_progress)); then
    progress
    next_progress=$((next_progress + 30))
  fi
  (($(date +%s) < deadline)) || die "no convergence within ${REPAIR_TIMEOUT}s (logs in $DIR)"
  sleep 0.5
done
done_at=$(now)
echo "repaired: identical CLUSTER MERKLE on all 3 nodes $(elapsed "$restart" "$done_at") s after restarting node 3"
for p in "$repair_port" $((repair_port + 1)) $((repair_port + 2)); do
  echo "  node $p: hints delivered $(info_field "$p" kvd_hints_delivered)," \
    "dropped $(info_field "$p" kvd_hints_dropped), anti-entropy keys repaired" \
    "$(info_field "$p" kvd_anti_entropy_keys_repaired), rounds $(info_field "$p" kvd_anti_entropy_rounds)"
done
