# Shared by the benchmark scripts (source it after setting KEEP and, optionally, KVD and
# DIR): builds kvd unless KVD names one, makes the scratch directory DIR (mktemp with
# the prefix in BENCH_NAME), kills the processes in `pids` and removes DIR on exit
# (unless KEEP=1), and defines die, wait_for, cluster_ok, pong, info_field and all_up.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -z "${KVD:-}" ]]; then
  (cd "$root" && cargo build --release -p kv-server)
  KVD="$root/target/release/kvd"
fi
DIR=${DIR:-$(mktemp -d "/tmp/${BENCH_NAME:-kvd-bench}.XXXXXX")}
mkdir -p "$DIR"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ "$KEEP" != 1 ]]; then rm -rf "$DIR"; else echo "kept $DIR"; fi
}
trap cleanup EXIT

die() { echo "error: $*" >&2; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local what=$1 secs=$2 deadline
  shift 2
  deadline=$(($(date +%s) + secs))
  until "$@"; do
    (($(date +%s) < deadline)) || die "timed out after ${secs}s waiting for: $what (logs in $DIR)"
    sleep 0.2
  done
}

# cluster_ok PORT: the kvd at PORT reports cluster_state:ok. pong PORT: it answers PING.
cluster_ok() { redis-cli -p "$1" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok'; }
pong() { [[ "$(redis-cli -p "$1" PING 2>/dev/null)" == PONG ]]; }

# info_field PORT FIELD: one field of CLUSTER INFO of the kvd at PORT.
info_field() {
  redis-cli -p "$1" cluster info 2>/dev/null | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

# all_up PORT...: every node sees a formed cluster with no peer suspect or down.
all_up() {
  local p
  for p in "$@"; do
    [[ "$(info_field "$p" cluster_state)" == ok ]] || return 1
    [[ "$(info_field "$p" kvd_nodes_suspect)" == 0 ]] || return 1
    [[ "$(info_field "$p" kvd_nodes_down)" == 0 ]] || return 1
  done
}
