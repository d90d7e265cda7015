#!/usr/bin/env bash
# Builds the catalog fuzzer with clang (libFuzzer + ASan + UBSan) and runs RUNS inputs per
# operator family from a fixed seed (the same inputs on every machine: about a minute per
# family on 2 cores), two families at a time; fails on the first finding (crash, sanitizer
# report, an error raised by only one of the operator and its reference, a tolerance miss).
# Usage: bash tests/fuzz/run.sh [RUNS=40000] [family ...]   (families: attention local sparse linear delta ssm)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-40000}
shift || true
families=("$@")
[ ${#families[@]} -gt 0 ] || families=(attention local sparse linear delta ssm)
dir=build/fuzz
launcher=$(command -v ccache >/dev/null && echo "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache" || true)
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++-14 -DSEQMIX_ARCH=x86-64-v3 \
      -DSEQMIX_BUILD_BENCH=OFF -DSEQMIX_BUILD_EXAMPLES=OFF -DSEQMIX_INSTALL=OFF -DSEQMIX_TEST_OPERATORS_ONLY=ON \
      -DSEQMIX_BUILD_FUZZERS=ON "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG" $launcher >/dev/null
cmake --build "$dir" -j "$(nproc)" --target fuzz_catalog
mkdir -p "$dir/findings"
run_family() {
  local f=$1 corpus="$dir/corpus/$1"
  mkdir -p "$corpus"
  local rc=0
  local start=$SECONDS
  SEQMIX_FUZZ_FAMILY=$f "$dir/tests/fuzz_catalog" -seed=1 -runs="$runs" -max_total_time=600 -max_len=4096 -timeout=20 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$dir/findings/$f-" "$corpus" \
    > "$dir/fuzz-$f.log" 2>&1 || rc=$?
  echo "fuzz $f: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$dir/fuzz-$f.log" | grep -o '[0-9]*$') executions in $((SECONDS - start)) s, exit $rc"
  [ $rc -eq 0 ] || { tail -30 "$dir/fuzz-$f.log"; return 1; }
}
status=0
for ((i = 0; i < ${#families[@]}; i += 2)); do
  pids=()
  for f in "${families[@]:i:2}"; do run_family "$f" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
done
exit $status
