#!/usr/bin/env bash
# Bounded fuzzing run of every target in fuzz/fuzz_targets (docs/security.md, "Fuzzing").
#
#   fuzz/run.sh [SECONDS_PER_TARGET [TOTAL_SECONDS]]     (.ci/run: 15 90)
#   fuzz/run.sh --build-only                              install, check, build; no run
#
# --build-only lets .ci/run build the instrumented targets niced in the background
# while the test suite runs (the tests leave about half of the CPU idle); the later
# run then finds them built.
#
# With TOTAL_SECONDS, each target gets less than SECONDS_PER_TARGET when the build
# left less than that for all of them (but at least 5 s), so that the whole run,
# build included, stays near TOTAL_SECONDS.
# Builds the targets once (release; `-a` turns on overflow checks and debug assertions,
# which `-O` alone leaves off; `-s none`: no sanitizer, as the code under test is safe
# Rust and that is what builds on a stable toolchain), then runs each
# for SECONDS_PER_TARGET starting from the committed corpus and regression inputs.
# New inputs go to a temporary directory, so the committed corpus never changes here.
# Exits non-zero on a crash (the input is kept and its path printed), and SKIPS LOUDLY
# (exit 0 with a banner) only when this machine has no toolchain that can build
# instrumented targets or cargo-fuzz cannot be installed.
set -euo pipefail
cd "$(dirname "$0")"
build_only=""
if [ "${1:-}" = "--build-only" ]; then build_only=1; shift; fi
seconds="${1:-20}"
total="${2:-}"
started=$(date +%s)

skip() {
  echo "!!! ================================================================ !!!"
  echo "!!! FUZZING SKIPPED: $1"
  echo "!!! The fuzz targets were NOT run. This is not a pass."
  echo "!!! ================================================================ !!!"
  exit 0
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz missing: cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked || skip "cargo-fuzz could not be installed"
fi

echo "== cargo fmt --check (fuzz workspace)"
cargo fmt --check

# Instrumented build. If it fails, a plain build tells a broken target (a failure)
# from a toolchain that cannot instrument (a skip). RUSTC_BOOTSTRAP=1 is the fallback
# for a cargo-fuzz that asks stable rustc for nightly flags.
build() { cargo fuzz build -O -a -s none "$@"; }
echo "== cargo fuzz build -O -a -s none"
if ! build; then
  if ! cargo check --bins --quiet; then
    echo "fuzz targets do not compile" >&2
    exit 1
  fi
  echo "instrumented build failed on $(rustc --version); retrying with RUSTC_BOOTSTRAP=1"
  RUSTC_BOOTSTRAP=1 build || skip "no toolchain here builds libFuzzer targets ($(rustc --version))"
  export RUSTC_BOOTSTRAP=1
fi
built=$(date +%s)
if [ -n "$build_only" ]; then
  echo "fuzz targets built in $((built - started))s (--build-only: not run)"
  exit 0
fi
targets=$(cargo fuzz list)
if [ -n "$total" ]; then
  left=$((total - (built - started)))
  share=$((left / $(echo "$targets" | wc -w)))
  if [ "$share" -lt "$seconds" ]; then seconds=$((share < 5 ? 5 : share)); fi
  echo "build took $((built - started))s of the ${total}s budget: ${seconds}s per target"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p artifacts
for target in $targets; do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "$scratch/$target" "corpus/$target" "regressions/$target"
  # First directory: where new inputs go; the others are read-only seeds.
  # -close_fd_mask=1 keeps kvtool's reports off the log (libFuzzer writes to stderr).
  if ! cargo fuzz run -O -a -s none "$target" "$scratch/$target" "corpus/$target" \
    "regressions/$target" -- -max_total_time="$seconds" -timeout=10 \
    -close_fd_mask=1 -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
    tail -n 60 "$scratch/$target.log"
    echo "FUZZ FAILURE in $target: input kept under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|^Done' \
    "$scratch/$target.log" | sed "s/^/  $target: /"
done
ended=$(date +%s)
echo "fuzzing passed: build $((built - started))s, fuzzing $((ended - built))s, total $((ended - started))s"
