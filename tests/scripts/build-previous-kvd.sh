#!/usr/bin/env bash
# Builds the kvd binary of an older git revision, for the mixed-build rolling upgrade
# test (tests/tests/cluster_mixed_upgrade.rs, docs/operations.md "Rolling restart and
# rolling upgrade"):
#
#   tests/scripts/build-previous-kvd.sh [REV] [OUT]
#   KVD_PREVIOUS_BIN=OUT CARGO_INCREMENTAL=0 cargo test --workspace \
#       --test cluster_mixed_upgrade -- --nocapture
#
# REV defaults to f56c732, the last commit of 2026-12-02: the "previous release" whose
# formats really differ from today's (no layout tags or bus version in Hello, no
# Publish / PartitionSizes / Propose RPCs, records of format 1 only, 16-byte promise
# entries without the copy mark, layouts of format 1 only). OUT defaults to
# target/previous-kvd/kvd-<REV>; the script prints its path last.
#
# How: `git worktree add --detach` of REV in a temporary directory, then
# `cargo build --profile test -p kv-server --bin kvd` there (the test profile, as the
# current build the tests run) with CARGO_TARGET_DIR pointing at a temporary copy of this
# checkout's target/debug libraries, build-script outputs and fingerprints: the
# dependencies REV shares with HEAD (same versions, features and profile) are then fresh
# and only REV's own crates and the dependencies that differ are compiled. The copy is
# used and thrown away rather than building in target/ itself, because the old build
# would replace target/debug/kvd and the old crates' artifacts would pile up there.
# Both temporary directories are removed at the end, also on failure.
#
# Cost, measured on the shared 2-core build box (2026-12-03 14:44 UTC, other engineers
# compiling, load average 2 to 8) with target/debug warm from `cargo test --workspace`:
# seeding the copy 8 s, building 797 s (13 min 43 s in all; 6.5 min of CPU). 61 crates
# are compiled: REV's four (kv-engine, kv-keyspace, kv-cluster, kv-server) and 57
# dependencies (tokio, syn, serde, hyper, tonic, clap, ...), most likely because a build
# of one package unifies features over that package alone, not over the workspace and
# its dev-dependencies as the test build did (not verified crate by crate). Far above
# what CI can add (.ci/run does not run this script). Keep OUT between runs: the test
# needs only the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

rev=${1:-f56c732}
full=$(git rev-parse --verify "$rev^{commit}")
short=$(git rev-parse --short "$full")
out=${2:-$repo/target/previous-kvd/kvd-$short}
seed=$repo/target/debug

work=$(mktemp -d "${TMPDIR:-/tmp}/previous-kvd.XXXXXX")
cleanup() {
  git -C "$repo" worktree remove --force "$work/src" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
git worktree add --detach --quiet "$work/src" "$full"

# Seed: libraries (rlib, rmeta, proc-macro .so), dep-info, build scripts and their
# outputs, fingerprints; not the executables (test binaries, kvd), which are most of the
# size and never reused.
mkdir -p "$work/target/debug/deps"
if [ -d "$seed/deps" ]; then
  find "$seed/deps" -maxdepth 1 -type f \( -name '*.rlib' -o -name '*.rmeta' -o -name '*.so' -o -name '*.d' \) \
    -exec cp -p -t "$work/target/debug/deps" {} +
  for d in build .fingerprint; do
    [ -d "$seed/$d" ] && cp -pr "$seed/$d" "$work/target/debug/$d"
  done
else
  echo "build-previous-kvd.sh: no $seed/deps to reuse: every dependency is compiled" >&2
fi
seeded=$(date +%s)

(cd "$work/src" && CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$work/target" \
  cargo build --locked --profile test -p kv-server --bin kvd)
built=$(date +%s)

mkdir -p "$(dirname "$out")"
cp "$work/target/debug/kvd" "$out.tmp"
mv "$out.tmp" "$out"
echo "build-previous-kvd.sh: kvd of $short ($(git log -1 --format=%cd --date=iso "$full")):" \
  "seeding $((seeded - start)) s, building $((built - seeded)) s" >&2
echo "$out"
