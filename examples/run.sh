#!/usr/bin/env bash
# Quick start: installs what is missing, builds the examples and the benchmarks (Release,
# -march=native), runs every example, then a short benchmark summary.
# Usage: bash examples/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
seqmix_install_deps python3-matplotlib
launcher=$(seqmix_cmake_launcher || true)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSEQMIX_BUILD_TESTS=OFF $launcher >/dev/null
cmake --build build/release -j "$(nproc)"
# Every model-block demo on a seeded random model (--checkpoint DIR runs a Hugging Face one;
# docs/examples.md): BERT over a padded batch, the recurrent blocks with their last 32 tokens
# decoded one at a time over state pools.
build/release/examples/bert --repeat 3
for demo in gated_deltanet gla mamba mamba2; do
  echo
  "build/release/examples/$demo" --batch 2 --tokens 1024 --decode 32 --repeat 3
done
echo
# Continuous batching: mixed prefill + decode steps over state pools and a paged KV cache,
# every request checked against running it alone.
build/release/examples/serving
echo
echo "=== benchmark summary (short; bash bench/run.sh for the full run and docs/performance.md)"
build/release/bench/seqmix_bench --benchmark_min_time=0.1 \
  --benchmark_filter='ceiling|prefill/H8/D(64|128)/N2048/(full|causal)|decode/.*Nk4096|chunk/.*N2048/|decode_step|(token_major|ssd_scan).*N2048/|window512|neighborhood_attention_2d|block_sparse|topk|dense_for/sparse' \
  --benchmark_out=build/release/summary.json --benchmark_out_format=json
"$(test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)" bench/report.py build/release/summary.json --out build/release/report >/dev/null
echo "report: build/release/report/performance.md"
