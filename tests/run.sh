#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs every test in
#   1. a Release build for this machine (-march=native), with the installed-package consumer,
#   2. a build for AVX2 (haswell) with -fsanitize=address,undefined: the AVX2 SIMD path under
#      the sanitizers (operator tests without the long-sequence cases; -O1 with line tables
#      only: full debug info at -O2 made it the CI's longest step, 23 min on a 2-core Xeon),
#   3. a build for plain x86-64 (SSE2): the scalar-width SIMD fallbacks (operator tests, at
#      -O1, which halves the compile time, the CI's cost, and runs the tests as fast).
# The examples' tests and the two-target program run in the first build.
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
  run_build sanitize-avx2 -DSEQMIX_ARCH=haswell -DSEQMIX_INSTALL=OFF -DSEQMIX_TEST_OPERATORS_ONLY=ON \
    "-DSEQMIX_TEST_SPEC=~[long]" "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  run_build sse2 -DSEQMIX_ARCH=x86-64 -DSEQMIX_INSTALL=OFF -DSEQMIX_TEST_OPERATORS_ONLY=ON \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG"
fi
echo "seqmix: all test builds passed"
