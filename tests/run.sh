#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs every test in six builds
# that together cover the matrix (every build with -Wall -Wextra -Wpedantic -Wshadow -Werror):
#   1. g++, C++17, -march=native: every test, the examples' tests, the docs' snippets, the
#      installed-package consumer, -fno-exceptions (a death test), units without OpenMP;
#   2. clang++, C++20, -march=x86-64-v3 (AVX2) with -fsanitize=address,undefined: the operator
#      tests without the long-sequence cases, at -O1 with line tables only (the CI's time is
#      compile time: full debug info at -O2 took 23 min on a 2-core Xeon);
#   3. g++, C++17, -march=x86-64 (SSE2): the scalar-width SIMD fallbacks (operator tests, -O1);
#   4. aarch64 (Arm64, NEON through xsimd): cross-built with g++-aarch64-linux-gnu and run under
#      qemu-user-static, the operator tests without the long-sequence cases;
#   5. clang++ with -fsanitize=thread: the threaded cases ([threads]: OpenMP teams, an executor's
#      teams, calls from several std::threads at once). libomp loads its Archer tool, which
#      tells ThreadSanitizer about OpenMP's barriers and joins;
#   6. the catalog fuzzer (clang, libFuzzer + ASan + UBSan), 40000 inputs per operator family
#      from a fixed seed (about a minute each).
# Before builds 2-6, tests/static_analysis.sh runs clang-tidy and cppcheck over the headers and
# checks every C++ file's layout with clang-format.
# Usage: bash tests/run.sh        (SEQMIX_QUICK=1 runs only the first build)
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
seqmix_install_deps clang-14 libclang-rt-14-dev libomp-14-dev g++-aarch64-linux-gnu qemu-user-static \
  clang-tidy-14 cppcheck
launcher=$(seqmix_cmake_launcher || true)
# Sanitizer reports with their stacks; libomp's own allocations at exit are not leaks of ours.
export UBSAN_OPTIONS=print_stacktrace=1 LSAN_OPTIONS="suppressions=$PWD/tests/sanitizer/lsan.supp"
jobs=$(nproc)

run_build() {  # name, extra cmake args...   (TEST_TARGETS="a b": build and run only these)
  local dir=build/test-$1; shift
  local targets=${TEST_TARGETS:-}
  echo "=== seqmix tests: $dir ($*)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSEQMIX_BUILD_BENCH=OFF \
        -DSEQMIX_BUILD_EXAMPLES=OFF -DSEQMIX_WERROR=ON $launcher "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" ${targets:+--target $targets}
  # A hung test fails after 10 minutes instead of holding the CI.
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600 ${targets:+-R "^(${targets// /|})\$"})
}

run_build release -DSEQMIX_ARCH=native
if [ -z "${SEQMIX_QUICK:-}" ]; then
  echo "=== seqmix static analysis: clang-tidy, cppcheck"
  bash tests/static_analysis.sh
  run_build clang-cxx20-sanitize-avx2 -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_CXX_STANDARD=20 \
    -DSEQMIX_ARCH=x86-64-v3 -DSEQMIX_INSTALL=OFF -DSEQMIX_TEST_OPERATORS_ONLY=ON \
    "-DSEQMIX_TEST_SPEC=~[long]" "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  run_build sse2 -DSEQMIX_ARCH=x86-64 -DSEQMIX_INSTALL=OFF -DSEQMIX_TEST_OPERATORS_ONLY=ON \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG"
  run_build aarch64 -DCMAKE_TOOLCHAIN_FILE=tests/arm/toolchain.cmake -DSEQMIX_ARCH= -DSEQMIX_INSTALL=OFF \
    -DSEQMIX_TEST_OPERATORS_ONLY=ON "-DSEQMIX_TEST_SPEC=~[long]" "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG"
  TSAN_OPTIONS="ignore_noninstrumented_modules=1 halt_on_error=1" TEST_TARGETS="test_core test_hostile" \
    run_build clang-tsan -DCMAKE_CXX_COMPILER=clang++-14 -DSEQMIX_ARCH=native -DSEQMIX_INSTALL=OFF \
    -DSEQMIX_TEST_OPERATORS_ONLY=ON "-DSEQMIX_TEST_SPEC=[threads]" "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG" \
    -DCMAKE_CXX_FLAGS=-fsanitize=thread
  echo "=== seqmix fuzzing: 40000 inputs per operator family"
  bash tests/fuzz/run.sh 40000
fi
echo "seqmix: all test builds passed"
