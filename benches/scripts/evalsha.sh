#!/usr/bin/env bash
# What a script costs (issue 14, "How fast"; docs/scripting.md): EVALSHA of a one-key
# INCR script against kvd (one node) and redis-server in the same run, beside plain
# INCR, at -P 1 and -P 16:
#
#   redis-benchmark -n N -c C -P p -r 1000000 -t incr
#   redis-benchmark -n N -c C -P p -r 1000000 evalsha <sha> 1 counter:__rand_int__
#
# where <sha> is `return redis.call('INCR', KEYS[1])` loaded with SCRIPT LOAD. Both
# servers log every write (kvd's WAL, redis-server's AOF) with appendfsync everysec.
# Prints ops/s and p50/p99 (ms) of each, and the kvd/redis ratio of each test.
#
# Usage: benches/scripts/evalsha.sh
# Settings (environment): N=200000 requests per test, C=50 clients, KVD=path to kvd
# (default: target/release/kvd, built by `cargo build --release --workspace --bins`),
# BASE_PORT=7600 (uses BASE_PORT+1 and +2), DIR=scratch dir (removed at the end unless
# KEEP=1). Needs redis-server, redis-benchmark and redis-cli (apt-get install -y
# redis-server redis-tools).
set -euo pipefail

N=${N:-200000}
C=${C:-50}
BASE_PORT=${BASE_PORT:-7600}
KEEP=${KEEP:-0}
BENCH_NAME=kvd-evalsha-bench
KVD=${KVD:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/kvd}
[[ -x "$KVD" ]] || { echo "error: no kvd at $KVD (cargo build --release --workspace --bins)" >&2; exit 1; }
# shellcheck source=benches/scripts/common.sh
source "$(dirname "$0")/common.sh"
command -v redis-server >/dev/null || die "redis-server is not installed"
command -v redis-benchmark >/dev/null || die "redis-benchmark is not installed"

pong() { [[ "$(redis-cli -p "$1" PING 2>/dev/null)" == PONG ]]; }

kvd_port=$((BASE_PORT + 1))
redis_port=$((BASE_PORT + 2))
"$KVD" --port "$kvd_port" --dir "$DIR/kvd" --appendfsync everysec >"$DIR/kvd.log" 2>&1 &
pids+=($!)
mkdir -p "$DIR/redis"
redis-server --port "$redis_port" --dir "$DIR/redis" --save '' --appendonly yes \
  --appendfsync everysec >"$DIR/redis.log" 2>&1 &
pids+=($!)
wait_for "kvd answers" 30 pong "$kvd_port"
wait_for "redis-server answers" 30 pong "$redis_port"

script="return redis.call('INCR', KEYS[1])"
sha_kvd=$(redis-cli -p "$kvd_port" SCRIPT LOAD "$script")
sha_redis=$(redis-cli -p "$redis_port" SCRIPT LOAD "$script")
[[ "$sha_kvd" == "$sha_redis" ]] || die "the servers disagree on the script's SHA-1: $sha_kvd $sha_redis"

# bench PORT PIPELINE ARGS...: one redis-benchmark run; prints "rps p50 p99".
bench() {
  local port=$1 pipeline=$2
  shift 2
  redis-benchmark -p "$port" -c "$C" -n "$N" -P "$pipeline" -r 1000000 --csv "$@" | tail -1 |
    awk '{ gsub(/"/, "", $0); split($0, f, ","); printf "%.0f %.3f %.3f\n", f[2], f[5], f[7] }'
}

echo "kvd: $KVD; redis: $(redis-server --version | awk '{print $3}'); N=$N C=$C; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-22s %10s %12s %9s %10s %12s %10s %12s\n' test "kvd ops/s" "redis ops/s" kvd/redis \
  "kvd p50" "redis p50" "kvd p99" "redis p99"
for p in 1 16; do
  for t in incr evalsha; do
    if [[ $t == incr ]]; then
      read -r k_rps k_p50 k_p99 <<<"$(bench "$kvd_port" "$p" -t incr)"
      read -r r_rps r_p50 r_p99 <<<"$(bench "$redis_port" "$p" -t incr)"
      label="INCR -P $p"
    else
      read -r k_rps k_p50 k_p99 <<<"$(bench "$kvd_port" "$p" evalsha "$sha_kvd" 1 'counter:__rand_int__')"
      read -r r_rps r_p50 r_p99 <<<"$(bench "$redis_port" "$p" evalsha "$sha_redis" 1 'counter:__rand_int__')"
      label="EVALSHA INCR -P $p"
    fi
    ratio=$(awk -v a="$k_rps" -v b="$r_rps" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-22s %10s %12s %9s %10s %12s %10s %12s\n' "$label" "$k_rps" "$r_rps" "$ratio" \
      "$k_p50" "$r_p50" "$k_p99" "$r_p99"
  done
done
