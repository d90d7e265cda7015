#pragma once
// Rate and fraction-of-ceiling counters: every kernel benchmark reports its rate next to
// the ceiling measured in the same run (BENCH.md), and the fraction of it.
#include <benchmark/benchmark.h>

#include <chrono>

#include "ceilings.hpp"

namespace seqmix_bench {

// work: FLOP or bytes per iteration; seconds: wall time of the whole benchmark loop.
inline void report_rate(benchmark::State& state, double work, double seconds, const char* rate_name,
                        double ceiling, const char* ceiling_name, const char* fraction_name) {
    const double rate = work * double(state.iterations()) / seconds * 1e-9;
    state.counters[rate_name] = rate;
    state.counters[ceiling_name] = ceiling;
    if (ceiling > 0) state.counters[fraction_name] = rate / ceiling;
}

}  // namespace seqmix_bench
