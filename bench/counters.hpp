#pragma once
// Rate and fraction-of-ceiling counters: every kernel benchmark reports its rate next to
// the ceiling measured in the same run (BENCH.md), and the fraction of it.
#include <benchmark/benchmark.h>

#include <chrono>

#include "ceilings.hpp"

namespace seqmix_bench {

// Seconds of the benchmark loop over call() (results kept from being optimized away).
template <class F>
double time_loop(benchmark::State& state, F&& call) {
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        call();
        benchmark::ClobberMemory();
    }
    return seconds_since(t0);
}

// work: FLOP or bytes per iteration; seconds: wall time of the whole benchmark loop.
inline void report_rate(benchmark::State& state, double work, double seconds, const char* rate_name, double ceiling,
                        const char* ceiling_name, const char* fraction_name) {
    const double rate = work * double(state.iterations()) / seconds * 1e-9;
    state.counters[rate_name] = rate;
    state.counters[ceiling_name] = ceiling;
    if (ceiling > 0) state.counters[fraction_name] = rate / ceiling;
}

// A recurrent kernel over h heads of n tokens with Dk = Dv = d: recurrent-equivalent
// GFLOP/s (4 h n d^2 per pass) against the FMA peak, and tokens per second.
inline void report_recurrent(benchmark::State& state, double h, double n, double d, int threads, double seconds) {
    report_rate(state, 4.0 * h * n * d * d, seconds, "GFLOPs", measured().fma[threads], "fma_peak_GFLOPs",
                "of_fma_peak");
    state.counters["tokens_per_s"] = n * double(state.iterations()) / seconds;
    state.counters["threads"] = threads;
}

}  // namespace seqmix_bench
