#!/usr/bin/env bash
# Static analysis of the headers, failing on any finding (part of the test command):
#   1. clang-tidy (.clang-tidy) on one translation unit that includes every header of
#      include/seqmix, for the x86-64 baseline and for the native target (their SIMD paths);
#   2. clang-tidy on the docs' snippets (gathered by tests/docs_snippets.cmake): they call every
#      operator, so the templates are instantiated; findings are in the headers or the snippets;
#   3. cppcheck on every header;
#   4. clang-format (.clang-format): every C++ file of the repository laid out as it says.
# Usage: bash tests/static_analysis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
seqmix_install_deps clang-tidy-14 clang-format-14 cppcheck libomp-14-dev
work=build/static-analysis
mkdir -p "$work"
(cd include && find seqmix -name '*.hpp' | sort | sed 's|.*|#include <&>|') > "$work/every_header.cpp"
cmake -DSOURCE_DIR="$PWD" -DOUT="$work/docs_snippets.cpp" -P tests/docs_snippets.cmake >/dev/null
flags=(-std=c++17 "-I$PWD/include" -fopenmp -xc++)

# Each job writes its findings to a log; the script prints the logs of those that failed.
pids=() logs=()
start() {  # log name, command...
  local log=$work/$1.log; shift
  "$@" >"$log" 2>&1 &
  pids+=($!) logs+=("$log")
}
tidy=(clang-tidy-14 --quiet --config-file=.clang-tidy)
start tidy-x86-64 "${tidy[@]}" "$work/every_header.cpp" -- "${flags[@]}" -march=x86-64
start tidy-native "${tidy[@]}" "$work/every_header.cpp" -- "${flags[@]}" -march=native
# A snippet's main() is an ordinary function in its namespace and may throw, and snippets
# declare views only to show them.
start tidy-snippets "${tidy[@]}" --checks=-bugprone-exception-escape,-clang-analyzer-deadcode.DeadStores \
  "$work/docs_snippets.cpp" -- "${flags[@]}" -march=native -Wno-return-type
# Plain loops are the house style (the references above all), so useStlAlgorithm is off.
start cppcheck cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c++17 --language=c++ \
  --enable=warning,style,performance,portability --suppress=missingIncludeSystem --suppress=useStlAlgorithm \
  --suppress=toomanyconfigs -Iinclude "$work/every_header.cpp"
start clang-format bash -c "git ls-files -- '*.hpp' '*.cpp' | xargs clang-format-14 --dry-run -Werror"

failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "=== static analysis: ${logs[$i]} found:"
    cat "${logs[$i]}"
    failed=1
  fi
done
[ "$failed" = 0 ] && echo "static analysis: clang-tidy and cppcheck found nothing"
exit "$failed"
