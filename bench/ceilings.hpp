#pragma once
// The machine's ceilings, measured in the same run as the kernels (BENCH.md): FMA peak,
// an Eigen GEMM of a given FLOP count, and STREAM-like triad bandwidth.
#include <seqmix/core/aligned_buffer.hpp>
#include <seqmix/core/parallel.hpp>
#include <seqmix/kernels/bf16_dot.hpp>
#include <seqmix/simd/vec.hpp>

#include <Eigen/Dense>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <utility>

namespace seqmix_bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best of `reps` timings of f() (seconds).
template <class F>
double best_time(F&& f, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(best, seconds_since(t0));
    }
    return best;
}

// fp32 FMA throughput: 12 independent vector accumulators per thread (covers latency x ports).
inline double fma_peak_gflops(int threads) {
    using V = seqmix::simd::vec<float>;
    constexpr int acc_n = 12;
    const long iters = 20'000'000;
    double secs = best_time(
        [&] {
            seqmix::parallel_for(threads, threads, [&](std::int64_t, int) {
                V acc[acc_n];
                for (int i = 0; i < acc_n; ++i) acc[i] = V(float(i) * 1e-3f);
                const V x(0.999999f), y(1e-7f);
                for (long it = 0; it < iters; ++it)
                    for (int i = 0; i < acc_n; ++i) acc[i] = seqmix::simd::fma(acc[i], x, y);
                V s(0.0f);
                for (int i = 0; i < acc_n; ++i) s = s + acc[i];
                volatile float sink = seqmix::simd::hsum(s);
                (void)sink;
            });
        },
        10);  // a peak is the best the machine does: 10 trials (~1 s) ride out slow phases of a shared host
    return 2.0 * acc_n * double(V::size) * double(iters) * threads / secs * 1e-9;
}

// bf16 dot-product throughput (AVX512-BF16 vdpbf16ps: 32 multiply-adds per instruction), 20
// independent accumulators per thread; 0 where the target has no bf16 dot products.
inline double bf16_peak_gflops(int threads) {
#if SEQMIX_HAS_BF16_DOT
    const long iters = 10'000'000;
    double secs = best_time(
        [&] {
            seqmix::parallel_for(threads, threads, [&](std::int64_t, int) {
                // 20 named accumulators, kept in registers by the empty asm (an array of them was
                // kept in memory: 225 against 540 GFLOP/s on Zen 5).
                __m512 a0 = _mm512_set1_ps(1e-3f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                       a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0, a16 = a0, a17 = a0,
                       a18 = a0, a19 = a0;
                const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F803F80), y = (__m512bh)_mm512_set1_epi32(0x33803380);
                for (long it = 0; it < iters; ++it) {
#define SEQMIX_DP(a) a = _mm512_dpbf16_ps(a, x, y)
                    SEQMIX_DP(a0);
                    SEQMIX_DP(a1);
                    SEQMIX_DP(a2);
                    SEQMIX_DP(a3);
                    SEQMIX_DP(a4);
                    SEQMIX_DP(a5);
                    SEQMIX_DP(a6);
                    SEQMIX_DP(a7);
                    SEQMIX_DP(a8);
                    SEQMIX_DP(a9);
                    SEQMIX_DP(a10);
                    SEQMIX_DP(a11);
                    SEQMIX_DP(a12);
                    SEQMIX_DP(a13);
                    SEQMIX_DP(a14);
                    SEQMIX_DP(a15);
                    SEQMIX_DP(a16);
                    SEQMIX_DP(a17);
                    SEQMIX_DP(a18);
                    SEQMIX_DP(a19);
#undef SEQMIX_DP
                    __asm__(""
                            : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7), "+v"(a8),
                              "+v"(a9));
                    __asm__(""
                            : "+v"(a10), "+v"(a11), "+v"(a12), "+v"(a13), "+v"(a14), "+v"(a15), "+v"(a16), "+v"(a17),
                              "+v"(a18), "+v"(a19));
                }
                const __m512 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15 +
                                 a16 + a17 + a18 + a19;
                volatile float sink = _mm512_reduce_add_ps(s);
                (void)sink;
            });
        },
        5);
    return 64.0 * 20 * double(iters) * threads / secs * 1e-9;
#else
    (void)threads;
    return 0;
#endif
}

// One square Eigen::MatrixXf product with (about) the given FLOP count.
inline double gemm_gflops(double flops, int threads) {
    static std::map<std::pair<long, int>, double> cache;
    const long n = std::max(64L, long(std::cbrt(flops / 2.0)) / 16 * 16);
    auto key = std::make_pair(n, threads);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    Eigen::setNbThreads(threads);
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
    c.noalias() = a * b;  // warm-up
    const int reps = n <= 1024 ? 5 : 3;
    double secs = best_time([&] { c.noalias() = a * b; }, reps);
    volatile float sink = c(0, 0);
    (void)sink;
    return cache[key] = 2.0 * double(n) * double(n) * double(n) / secs * 1e-9;
}

// STREAM triad a = b + s c over three 64 MiB arrays; bytes counted 3 per element-word.
inline double triad_gbs(int threads) {
    const std::int64_t n = 16 << 20;
    seqmix::aligned_buffer<float> a{std::size_t(n)}, b{std::size_t(n)}, c{std::size_t(n)};
    const std::int64_t blocks = 64, per = n / blocks;
    auto triad = [&](float s) {
        seqmix::parallel_for(blocks, threads, [&](std::int64_t blk, int) {
            float* pa = a.data() + blk * per;
            const float* pb = b.data() + blk * per;
            const float* pc = c.data() + blk * per;
            for (std::int64_t i = 0; i < per; ++i) pa[i] = pb[i] + s * pc[i];
        });
    };
    // First touch from the same static partition the timed runs use.
    seqmix::parallel_for(blocks, threads, [&](std::int64_t blk, int) {
        for (std::int64_t i = blk * per; i < (blk + 1) * per; ++i) a.data()[i] = b.data()[i] = c.data()[i] = 1.0f;
    });
    double secs = best_time([&] { triad(1.5f); }, 5);
    return 3.0 * 4.0 * double(n) / secs * 1e-9;
}

struct ceilings {
    double fma[3] = {0, 0, 0};    // GFLOP/s for 1 and 2 threads (index = threads)
    double bf16[3] = {0, 0, 0};   // GFLOP/s of bf16 dot products (0: none on this target)
    double triad[3] = {0, 0, 0};  // GB/s
};

inline ceilings& measured() {
    static ceilings c;
    return c;
}

}  // namespace seqmix_bench
