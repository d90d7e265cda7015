// softmax_attention at the BENCH.md shapes: prefill (B=1, H=8, D 64/128, N 512/2048/8192,
// causal or not, plus GQA 32/8) and decode (Nq=1, Nk 4096/32768, Hq=32, Hkv=8, D=128).
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/softmax_attention.hpp>

#include <benchmark/benchmark.h>

#include <string>

#include "bench_registry.hpp"
#include "counters.hpp"

namespace {

using namespace seqmix;
using namespace seqmix_bench;

void prefill(benchmark::State& state, index_t hq, index_t hkv, index_t n, index_t d, bool causal, int threads) {
    tensor<float, 4> q({1, n, hq, d}, 0.01f), k({1, n, hkv, d}, 0.02f), v({1, n, hkv, d}, 0.5f), out({1, n, hq, d});
    for (index_t i = 0; i < q.size(); ++i) q.data()[i] = float((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (index_t i = 0; i < k.size(); ++i) k.data()[i] = float((i * 104729) % 1000) * 1e-3f - 0.5f;
    attention_options opt;
    opt.causal = causal;
    opt.num_threads = threads;
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        softmax_attention(q.view(), k.view(), v.view(), out.view(), opt);
        benchmark::ClobberMemory();
    }
    const double secs = seconds_since(t0);
    const double flops = 4.0 * double(hq) * double(n) * double(n) * double(d) * (causal ? 0.5 : 1.0);
    // Fractions of the ceilings measured in this run: FMA peak and an Eigen GEMM of equal FLOPs.
    report_rate(state, flops, secs, "GFLOPs", measured().fma[threads], "fma_peak_GFLOPs", "of_fma_peak");
    report_rate(state, flops, secs, "GFLOPs", gemm_gflops(flops, threads), "gemm_GFLOPs", "of_gemm");
    state.counters["threads"] = threads;
}

void decode(benchmark::State& state, index_t nk, int threads) {
    const index_t hq = 32, hkv = 8, d = 128;
    tensor<float, 4> q({1, 1, hq, d}, 0.01f), k({1, nk, hkv, d}, 0.02f), v({1, nk, hkv, d}, 0.5f), out({1, 1, hq, d});
    attention_options opt;
    opt.num_threads = threads;
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        softmax_attention(q.view(), k.view(), v.view(), out.view(), opt);
        benchmark::ClobberMemory();
    }
    const double bytes = 2.0 * double(nk) * double(hkv) * double(d) * sizeof(float);
    report_rate(state, bytes, seconds_since(t0), "GBs", measured().triad[threads], "triad_GBs", "of_triad");
    state.counters["threads"] = threads;
}

}  // namespace

namespace {
void register_softmax_attention_benchmarks() {
    for (int threads : {1, 2}) {
        for (index_t d : {64, 128})
            for (index_t n : {512, 2048, 8192})
                for (bool causal : {false, true}) {
                    const std::string name = "softmax_attention/prefill/H8/D" + std::to_string(d) + "/N" +
                                             std::to_string(n) + (causal ? "/causal" : "/full") + "/threads:" +
                                             std::to_string(threads);
                    benchmark::RegisterBenchmark(name.c_str(), prefill, 8, 8, n, d, causal, threads)
                        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
                }
        for (bool causal : {false, true}) {
            const std::string name = std::string("softmax_attention/prefill/GQA32x8/D128/N2048") +
                                     (causal ? "/causal" : "/full") + "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), prefill, 32, 8, 2048, 128, causal, threads)
                ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
        }
        for (index_t nk : {4096, 32768}) {
            const std::string name = "softmax_attention/decode/Hq32/Hkv8/D128/Nk" + std::to_string(nk) +
                                     "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), decode, nk, threads)
                ->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(0.3);
        }
    }
}
const seqmix_bench::registration registered(10, register_softmax_attention_benchmarks);
}  // namespace
