#!/usr/bin/env bash
# Instructions per command of one or more kvd binaries, per command type, under valgrind's
# callgrind (exact and repeatable on a noisy machine, unlike wall-clock throughput).
# For each binary: start kvd under callgrind, zero the counters once it answers PING, then
# for each test of TESTS run `redis-benchmark -t TEST -n N -r R -d 100 -c C -P P` and dump
# the counters (callgrind_control --dump zeroes them), so each dump holds exactly one
# test's work (plus the idle server's background threads during it). Per command = the
# dump's total / N. Tests run in order on one server, so GET reads what SET wrote.
# Usage: benches/scripts/callgrind-commands.sh target/release/kvd [/other/kvd ...]
# Settings (environment): N=20000 R=10000 C=1 P=1 TESTS="set get incr" PORT=7211;
# KEEP=DIR keeps each test's profile as DIR/<binary name>.<test>.cg for callgrind_annotate.
# Needs valgrind, redis-cli and redis-benchmark.
set -euo pipefail
N=${N:-20000}
R=${R:-10000}
C=${C:-1}
P=${P:-1}
TESTS=${TESTS:-set get incr}
port=${PORT:-7211}
for tool in valgrind callgrind_control redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "callgrind-commands.sh: $tool is missing" >&2; exit 1; }
done
measure() { # bin
  local d pid i total
  d=$(mktemp -d)
  valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$1" --port "$port" --dir "$d/data" \
    --appendfsync everysec >/dev/null 2>"$d/vg.log" &
  pid=$!
  for _ in $(seq 1200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null || { echo "$1 did not start; see $d/vg.log" >&2; exit 1; }
  callgrind_control --zero "$pid" >/dev/null 2>&1
  local line="$1 (N=$N R=$R C=$C P=$P):"
  i=1
  for t in $TESTS; do
    redis-benchmark -p "$port" -t "$t" -n "$N" -r "$R" -d 100 -c "$C" -P "$P" -q >/dev/null 2>&1
    callgrind_control --dump="$t" "$pid" >/dev/null 2>&1
    total=$(grep -E "^(summary|totals):" "$d/cg.out.$i" | awk '{print $2}' | head -1)
    line="$line $t=$((total / N))"
    if [ -n "${KEEP:-}" ]; then
      mkdir -p "$KEEP" && cp "$d/cg.out.$i" "$KEEP/$(basename "$1").$t.cg"
    fi
    i=$((i + 1))
  done
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  echo "$line instructions per command"
  rm -rf "$d"
}
for bin in "$@"; do
  measure "$bin"
done
