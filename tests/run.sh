#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs every test in
#   1. a Release build for this machine (-march=native), with the installed-package consumer,
#   2. a build with -fsanitize=address,undefined,
#   3. builds for plain x86-64 (SSE2) and for AVX2 (haswell): the SIMD fallbacks (operator
#      tests only: the examples' tests and the two-target program run in the builds above;
#      at -O1, which halves their compile time, the CI's cost, and runs the tests as fast).
# Usage: bash tests/run.sh        (SEQMIX_QUICK=1 runs only the first build)
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
seqmix_install_deps
launcher=$(seqmix_cmake_launcher || true)
jobs=$(nproc)

run_build() {  # name, extra cmake args...
  local dir=build/test-$1; shift
  echo "=== seqmix tests: $dir ($*)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSEQMIX_BUILD_BENCH=OFF \
        -DSEQMIX_BUILD_EXAMPLES=OFF $launcher "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs")
}

run_build release -DSEQMIX_ARCH=native
if [ -z "${SEQMIX_QUICK:-}" ]; then
  run_build sanitize -DSEQMIX_ARCH=native -DSEQMIX_INSTALL=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS=-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  fallback=(-DSEQMIX_INSTALL=OFF -DSEQMIX_TEST_OPERATORS_ONLY=ON "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG")
  run_build sse2 -DSEQMIX_ARCH=x86-64 "${fallback[@]}"
  run_build avx2 -DSEQMIX_ARCH=haswell "${fallback[@]}"
fi
echo "seqmix: all test builds passed"
