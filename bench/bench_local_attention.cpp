// Local and sparse attention at the BENCH.md shapes, FLOPs counted on the keys each query
// visits (4 * H * D per query and key), with dense attention of the same shapes in the same run:
//   - sliding window: B=1, H=8, D=64, N=8192, causal windows of 512 and 128 keys;
//   - neighborhood 2-D: 64 x 64 image, kernel 7, H=4, D=32 (dense: N = 4096, same heads);
//     3-D: 16 x 32 x 32, kernel 5;
//   - block sparse: N=8192, block 64, 8 top + 1 local, causal (MoBA selection included);
//   - top-k: N=4096, top_k=64, causal (selection included).
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/neighborhood_attention.hpp>
#include <seqmix/ops/sliding_window_attention.hpp>
#include <seqmix/ops/softmax_attention.hpp>
#include <seqmix/ops/sparse_attention.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
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
    const double sec =
        time_loop(state, [&] { sliding_window_attention(q.view(), k.view(), v.view(), out.view(), opt); });
    const double flops = 4.0 * double(h) * double(n) * double(window / dilation + 1) * double(d);
    report_rate(state, flops, sec, "GFLOPs", measured().fma[threads], "fma_peak_GFLOPs", "of_fma_peak");
    state.counters["threads"] = threads;
}

// Pseudo-random values in [-0.5, 0.5) (a 64-bit mix of the index): no periodic repeats, so
// scores have no exact ties, as real ones (top-k selection costs more with many ties).
template <std::size_t R>
void fill(tensor<float, R>& t, index_t seed) {
    for (index_t i = 0; i < t.size(); ++i) {
        std::uint64_t x = std::uint64_t(i) * 0x9E3779B97F4A7C15ull + std::uint64_t(seed);
        x = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        t.data()[i] = float(x >> 40) * (1.0f / 16777216.0f) - 0.5f;
    }
}

// q, k, v (hashed values) and out of one shape: every attention benchmark's inputs.
template <std::size_t R>
struct qkvo {
    tensor<float, R> q, k, v, out;
    explicit qkvo(const std::array<index_t, R>& shape) : q(shape), k(shape), v(shape), out(shape) {
        fill(q, 7919);
        fill(k, 104729);
        fill(v, 31);
    }
};

void report(benchmark::State& state, double flops, double sec, int threads) {
    report_rate(state, flops, sec, "GFLOPs", measured().fma[threads], "fma_peak_GFLOPs", "of_fma_peak");
    state.counters["threads"] = threads;
}

// Dense attention over [1, n, h, d] (causal or not): the FLOP rate the sparse rows compare to.
void dense(benchmark::State& state, index_t h, index_t n, index_t d, bool causal, int threads) {
    qkvo<4> a({1, n, h, d});
    attention_options opt;
    opt.causal = causal;
    opt.num_threads = threads;
    const double sec =
        time_loop(state, [&] { softmax_attention(a.q.view(), a.k.view(), a.v.view(), a.out.view(), opt); });
    report(state, 4.0 * double(h) * double(n) * double(n) * double(d) * (causal ? 0.5 : 1.0), sec, threads);
}

void neighborhood_2d(benchmark::State& state, index_t side, int kernel, index_t h, index_t d, int threads) {
    qkvo<5> a({1, side, side, h, d});
    neighborhood_options opt;
    opt.kernel_size = kernel;
    opt.num_threads = threads;
    const double sec =
        time_loop(state, [&] { neighborhood_attention_2d(a.q.view(), a.k.view(), a.v.view(), a.out.view(), opt); });
    report(state, 4.0 * double(h) * double(side * side) * double(kernel * kernel) * double(d), sec, threads);
}

void neighborhood_3d(benchmark::State& state, index_t depth, index_t side, int kernel, index_t h, index_t d,
                     int threads) {
    qkvo<6> a({1, depth, side, side, h, d});
    neighborhood_options opt;
    opt.kernel_size = kernel;
    opt.num_threads = threads;
    const double sec =
        time_loop(state, [&] { neighborhood_attention_3d(a.q.view(), a.k.view(), a.v.view(), a.out.view(), opt); });
    report(state, 4.0 * double(h) * double(depth * side * side) * double(kernel * kernel * kernel) * double(d), sec,
           threads);
}

void block_sparse(benchmark::State& state, index_t h, index_t n, index_t d, int block, int top, int threads) {
    qkvo<4> a({1, n, h, d});
    block_sparse_options opt;
    opt.causal = true;
    opt.block_size = block;
    opt.top_blocks = top;
    opt.local_blocks = 1;
    opt.num_threads = threads;
    const double sec =
        time_loop(state, [&] { block_sparse_attention(a.q.view(), a.k.view(), a.v.view(), a.out.view(), opt); });
    double keys = 0;  // visited: min(qb, top) whole blocks before the query's, and its diagonal part
    for (index_t i = 0; i < n; ++i) keys += double(std::min<index_t>(i / block, top) * block + i % block + 1);
    report(state, 4.0 * double(h) * double(d) * keys, sec, threads);
}

void topk(benchmark::State& state, index_t h, index_t n, index_t d, int top_k, int threads) {
    qkvo<4> a({1, n, h, d});
    topk_options opt;
    opt.causal = true;
    opt.top_k = top_k;
    opt.num_threads = threads;
    const double sec = time_loop(state, [&] { topk_attention(a.q.view(), a.k.view(), a.v.view(), a.out.view(), opt); });
    // Counted as the dense causal attention it replaces, so its rate compares as time.
    report(state, 4.0 * double(h) * double(n) * double(n) * double(d) * 0.5, sec, threads);
}

void register_local_attention_benchmarks() {
    for (int threads : {1, 2}) {
        const std::string t = "/threads:" + std::to_string(threads);
        auto add = [](const std::string& name, auto&&... args) {
            benchmark::RegisterBenchmark(name.c_str(), args...)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.3);
        };
        add("neighborhood_attention_2d/H4/D32/64x64/kernel7" + t, neighborhood_2d, 64, 7, 4, 32, threads);
        add("softmax_attention/dense_for/neighborhood/H4/D32/N4096/full" + t, dense, 4, 4096, 32, false, threads);
        add("neighborhood_attention_3d/H4/D32/16x32x32/kernel5" + t, neighborhood_3d, 16, 32, 5, 4, 32, threads);
        add("block_sparse_attention/H8/D64/N8192/block64/top8+local1/causal" + t, block_sparse, 8, 8192, 64, 64, 8,
            threads);
        add("softmax_attention/dense_for/sparse/H8/D64/N8192/causal" + t, dense, 8, 8192, 64, true, threads);
        add("topk_attention/H8/D64/N4096/top64/causal" + t, topk, 8, 4096, 64, 64, threads);
        add("softmax_attention/dense_for/sparse/H8/D64/N4096/causal" + t, dense, 8, 4096, 64, true, threads);
    }
    for (int threads : {1, 2})
        for (int window : {512, 128}) {
            const std::string name = "sliding_window_attention/H8/D64/N8192/causal/window" + std::to_string(window) +
                                     "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), sliding_window, 8, 8192, 64, window, 1, threads)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.3);
        }
}
const seqmix_bench::registration registered(15, register_local_attention_benchmarks);

}  // namespace
