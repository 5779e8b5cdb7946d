#!/usr/bin/env bash
# End-to-end test of the compose deployment (docs/deploy.md, "Testing"): builds the
# FROM-scratch image from the kvd binary, starts docker-compose.yml's three nodes, writes
# keys through node 1, stops node 2, and reads the keys through node 3 over RESP and
# HTTP. Tears everything down (containers, network, volumes, image) on success and on
# failure. Prints "COMPOSE TEST SKIPPED: <why>" and exits 0 when no Docker engine or
# compose answers; any other failure exits 1 with the nodes' logs.
#
# Usage: deploy/compose-test.sh
# Environment: KVD_BIN (default target/debug/kvd, else target/debug/kvd-test-server,
# else built), KVD_SUBNET and
# KVD_RESP_PORT_n / KVD_HTTP_PORT_n (default: a random /24 and free random ports, so
# parallel runs do not collide), KEYS=200 keys written.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
KEYS=${KEYS:-200}
started=$(date +%s)

skip() { echo "COMPOSE TEST SKIPPED: $*"; exit 0; }
fail() { echo "COMPOSE TEST FAILED: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || skip "no docker command"
docker info >/dev/null 2>&1 || skip "no Docker engine answers (docker info failed)"
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  skip "neither 'docker compose' nor docker-compose is installed"
fi
command -v redis-cli >/dev/null 2>&1 || skip "redis-cli not installed (apt-get install redis-tools)"

# The binary: KVD_BIN, else target/debug/kvd, else the test suite's kvd-test-server (the
# same entry point, kv_server::cli::main, that `cargo test --workspace` builds), else a
# fresh build. After the test suite in .ci/run the third is there: building `kvd` itself
# would compile every workspace crate again under the dev profile, which differs from
# the test profile (opt-level), and took 3 minutes of CI.
bin=${KVD_BIN:-$root/target/debug/kvd}
if [[ -z "${KVD_BIN:-}" && ! -x "$bin" && -x "$root/target/debug/kvd-test-server" ]]; then
  bin="$root/target/debug/kvd-test-server"
fi
if [[ ! -x "$bin" ]]; then
  cargo build --workspace --bins
fi
echo "== kvd binary: $bin"

work=$(mktemp -d /tmp/kvd-compose-test.XXXXXX)
project="kvdtest$$r$RANDOM"
image="kvd:$project"

# free_port: a random port in 20000-29999 that nothing on this host listens on.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 10000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  fail "no free port found"
}

{
  echo "KVD_CLUSTER_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
  echo "KVD_PASSWORD=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  echo "KVD_IMAGE=$image"
  # compose v1 checks the build path on every command, down included.
  echo "KVD_BUILD_CONTEXT=$work/context"
  echo "KVD_SUBNET=${KVD_SUBNET:-172.$((24 + RANDOM % 8)).$((RANDOM % 256))}"
  for n in 1 2 3; do
    resp_var="KVD_RESP_PORT_$n" http_var="KVD_HTTP_PORT_$n"
    echo "$resp_var=${!resp_var:-$(free_port)}"
    echo "$http_var=${!http_var:-$(free_port)}"
  done
} >"$work/test.env"
# shellcheck disable=SC1091
source "$work/test.env"
dc() { "${compose[@]}" -p "$project" --env-file "$work/test.env" -f "$root/docker-compose.yml" "$@"; }

cleanup() {
  local rc=$?
  if ((rc != 0)); then
    echo "---- node logs ($project) ----" >&2
    dc logs --no-color --tail 60 >&2 2>&1 || true
  fi
  if ! dc down -v --remove-orphans >/dev/null 2>&1; then
    # compose itself failed: remove what carries the project's label by hand.
    local label="label=com.docker.compose.project=$project"
    docker ps -aq --filter "$label" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker network ls -q --filter "$label" | xargs -r docker network rm >/dev/null 2>&1 || true
    docker volume ls -q --filter "$label" | xargs -r docker volume rm >/dev/null 2>&1 || true
  fi
  docker image rm -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

echo "== compose test: project $project, subnet $KVD_SUBNET.0/24, RESP $KVD_RESP_PORT_1/$KVD_RESP_PORT_2/$KVD_RESP_PORT_3, HTTP $KVD_HTTP_PORT_1/$KVD_HTTP_PORT_2/$KVD_HTTP_PORT_3"
deploy/make-context.sh "$bin" "$work/context"
docker build -q -t "$image" "$work/context" >/dev/null || fail "docker build"
dc up -d --no-build || fail "compose up"

cli() { redis-cli -p "$1" -a "$KVD_PASSWORD" --no-auth-warning "${@:2}"; }

# wait_until SECONDS COMMAND...: polls COMMAND until it succeeds; 1 past the deadline.
wait_until() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.5
  done
}
write_ok() { [[ "$(cli "$KVD_RESP_PORT_1" SET compose:probe ok)" == OK ]]; }
wait_until 120 write_ok || fail "no write through node 1 succeeded within 120 s (cluster not formed?)"

# Writes through node 1, one redis-cli session.
for i in $(seq 1 "$KEYS"); do echo "SET compose:key:$i value-$i"; done >"$work/writes"
oks=$(cli "$KVD_RESP_PORT_1" <"$work/writes" | grep -c '^OK$' || true)
((oks == KEYS)) || fail "only $oks of $KEYS writes through node 1 answered OK"

dc stop kvd2 >/dev/null 2>&1 || fail "compose stop kvd2"
[[ "$(docker inspect -f '{{.State.Running}}' "$(dc ps -q kvd2)")" == false ]] ||
  fail "kvd2 still running after compose stop"

# Reads through node 3 with node 2 down: every value as written (a quorum of 2 of 3).
for i in $(seq 1 "$KEYS"); do echo "GET compose:key:$i"; done >"$work/reads"
for i in $(seq 1 "$KEYS"); do echo "value-$i"; done >"$work/want"
read_all() { cli "$KVD_RESP_PORT_3" <"$work/reads" >"$work/got" && cmp -s "$work/want" "$work/got"; }
if ! wait_until 60 read_all; then
  diff "$work/want" "$work/got" | head >&2
  fail "keys read through node 3 with node 2 stopped differ from those written (diff above)"
fi

# The same through node 3's HTTP port (password as a Bearer token).
if command -v curl >/dev/null 2>&1; then
  got=$(curl -sf -H "Authorization: Bearer $KVD_PASSWORD" -H 'Accept: application/octet-stream' \
    "http://127.0.0.1:$KVD_HTTP_PORT_3/kv/compose:key:$KEYS") || fail "HTTP GET through node 3"
  [[ "$got" == "value-$KEYS" ]] || fail "HTTP GET through node 3 gave '$got'"
else
  echo "compose test: curl not installed; HTTP read skipped"
fi

echo "COMPOSE TEST PASSED: $KEYS keys written through kvd1, read through kvd3 with kvd2 stopped ($(($(date +%s) - started)) s)"
