#!/usr/bin/env bash
# The full benchmark run at the BENCH.md shapes: writes docs/performance.md and the plots.
# Medians of 3 repetitions; takes about 10 minutes on 2 cores. Usage: bash bench/run.sh [extra benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
seqmix_install_deps python3-matplotlib
launcher=$(seqmix_cmake_launcher || true)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSEQMIX_BUILD_TESTS=OFF $launcher >/dev/null
cmake --build build/release -j "$(nproc)" --target seqmix_bench
build/release/bench/seqmix_bench --benchmark_filter=-sweep --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true \
  --benchmark_context=cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1) (family $(lscpu | sed -n 's/^CPU family: *//p' | head -1) model $(lscpu | sed -n 's/^Model: *//p' | head -1))" \
  --benchmark_out=build/release/full.json --benchmark_out_format=json "$@"
"$(test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)" bench/report.py build/release/full.json --out docs
