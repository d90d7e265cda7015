// Local attention at the BENCH.md shapes: sliding window (B=1, H=8, D=64, N=8192, causal
// windows of 512 and 128 keys). FLOPs per BENCH.md, on the band: 4 * H * N * (window + 1) * D.
// Dense causal attention of the same shape runs in the softmax_attention rows of the same run.
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/sliding_window_attention.hpp>

#include <benchmark/benchmark.h>

#include <string>

#include "bench_registry.hpp"
#include "counters.hpp"

namespace {

using namespace seqmix;
using namespace seqmix_bench;

void sliding_window(benchmark::State& state, index_t h, index_t n, index_t d, int window, int dilation, int threads) {
    tensor<float, 4> q({1, n, h, d}), k({1, n, h, d}), v({1, n, h, d}, 0.5f), out({1, n, h, d});
    for (index_t i = 0; i < q.size(); ++i) q.data()[i] = float((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (index_t i = 0; i < k.size(); ++i) k.data()[i] = float((i * 104729) % 1000) * 1e-3f - 0.5f;
    window_options opt;
    opt.causal = true;
    opt.window_left = window;
    opt.dilation = dilation;
    opt.num_threads = threads;
    const double sec = time_loop(state, [&] { sliding_window_attention(q.view(), k.view(), v.view(), out.view(), opt); });
    const double flops = 4.0 * double(h) * double(n) * double(window / dilation + 1) * double(d);
    report_rate(state, flops, sec, "GFLOPs", measured().fma[threads], "fma_peak_GFLOPs", "of_fma_peak");
    state.counters["threads"] = threads;
}

void register_local_attention_benchmarks() {
    for (int threads : {1, 2})
        for (int window : {512, 128}) {
            const std::string name = "sliding_window_attention/H8/D64/N8192/causal/window" + std::to_string(window) +
                                     "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), sliding_window, 8, 8192, 64, window, 1, threads)
                ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
        }
}
const seqmix_bench::registration registered(15, register_local_attention_benchmarks);

}  // namespace
