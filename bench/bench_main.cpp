// seqmix_bench: the ceilings of BENCH.md first (FMA peak, triad; Eigen GEMM per shape),
// then every kernel benchmark, each reporting its rate next to the ceiling that bounds it.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "bench_registry.hpp"
#include "ceilings.hpp"

using namespace seqmix_bench;

namespace {
void ceiling_fma(benchmark::State& state, int threads) {
    for (auto _ : state) state.SetIterationTime(1.0);
    state.counters["GFLOPs"] = measured().fma[threads];
    state.counters["threads"] = threads;
}
void ceiling_bf16(benchmark::State& state, int threads) {
    for (auto _ : state) state.SetIterationTime(1.0);
    state.counters["GFLOPs"] = measured().bf16[threads];
    state.counters["threads"] = threads;
}
void ceiling_triad(benchmark::State& state, int threads) {
    for (auto _ : state) state.SetIterationTime(1.0);
    state.counters["GBs"] = measured().triad[threads];
    state.counters["threads"] = threads;
}
void ceiling_gemm(benchmark::State& state, int threads) {
    for (auto _ : state) state.SetIterationTime(1.0);
    state.counters["GFLOPs"] = gemm_gflops(2.0 * 1024.0 * 1024.0 * 1024.0, threads);
    state.counters["threads"] = threads;
}

void register_ceiling_benchmarks() {
    for (int t : {1, 2}) {
        const std::string s = "/threads:" + std::to_string(t);
        benchmark::RegisterBenchmark(("ceiling/fma_peak" + s).c_str(), ceiling_fma, t)->Iterations(1)->UseManualTime();
        benchmark::RegisterBenchmark(("ceiling/eigen_gemm_1024" + s).c_str(), ceiling_gemm, t)
            ->Iterations(1)
            ->UseManualTime();
        if (SEQMIX_HAS_BF16_DOT)
            benchmark::RegisterBenchmark(("ceiling/bf16_peak" + s).c_str(), ceiling_bf16, t)
                ->Iterations(1)
                ->UseManualTime();
        benchmark::RegisterBenchmark(("ceiling/triad" + s).c_str(), ceiling_triad, t)->Iterations(1)->UseManualTime();
    }
}

const registration ceilings(0, register_ceiling_benchmarks);
}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    for (int t : {1, 2}) {
        measured().fma[t] = fma_peak_gflops(t);
        measured().bf16[t] = bf16_peak_gflops(t);
        measured().triad[t] = triad_gbs(t);
        std::fprintf(stderr, "ceilings, %d thread(s): FMA peak %.1f GFLOP/s, bf16 peak %.1f GFLOP/s, triad %.1f GB/s\n",
                     t, measured().fma[t], measured().bf16[t], measured().triad[t]);
    }
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
