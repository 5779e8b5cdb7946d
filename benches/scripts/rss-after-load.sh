#!/usr/bin/env bash
# Resident memory of one or more kvd binaries after loading the same keys: for each binary,
# a fresh kvd (appendfsync everysec) gets KEYS keys `key:%012d` with 100-byte values
# through `redis-cli --pipe` (every reply checked), then GETS random GETs at -P 16; it
# prints VmRSS and VmHWM (peak) from /proc. Binaries run one after the other.
# Usage: benches/scripts/rss-after-load.sh target/release/kvd [/other/kvd ...]
# Settings (environment): KEYS=1000000 GETS=200000 PORT=7231. Needs python3, redis-cli,
# redis-benchmark.
set -euo pipefail
KEYS=${KEYS:-1000000}
GETS=${GETS:-200000}
port=${PORT:-7231}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 - "$KEYS" > "$scratch/load.resp" <<'PY'
import sys
out, value = sys.stdout.buffer, b"x" * 100
for i in range(int(sys.argv[1])):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(k), k, value))
PY
for bin in "$@"; do
  d="$scratch/data"
  "$bin" --port "$port" --dir "$d" --appendfsync everysec >"$scratch/kvd.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  result=$(redis-cli -p "$port" --pipe < "$scratch/load.resp" | tail -1)
  [ "$result" = "errors: 0, replies: $KEYS" ] || { echo "$bin: load failed: $result" >&2; kill "$pid"; exit 1; }
  redis-benchmark -p "$port" -t get -n "$GETS" -r "$KEYS" -c 4 -P 16 -q >/dev/null 2>&1
  echo "$bin: $(grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' ')"
  kill "$pid"
  wait "$pid" || true
  rm -rf "$d"
done
