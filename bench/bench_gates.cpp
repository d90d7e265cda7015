// The recurrent operators at the gates real models produce, where decays reach the subnormal
// range, each timed call by call in two modes, alternately: as a caller runs them, and with
// flush-to-zero and denormals-are-zero set on every thread of the process. The library flushes
// subnormals in its own threads (docs/api.md), so the two should match: the counter ftz_ratio
// (the plain calls' time over the flushed calls') above 1 means some work escaped the flush.
// Alternating the calls makes the ratio immune to the slow drifts of a shared machine, which
// moved separate runs of the two modes by up to 30%.
//   ssd_scan H24 P64 S128: Mamba-2's initialisation, A = -U(1, 16), dt = softplus(raw + dt_bias)
//     in [1e-3, 0.1] (dt_bias the inverse softplus of a log-uniform dt)
//   selective_scan Din1536 S16: Mamba's, A = -(1..16) per state, dt in [1e-3, 0.1]
//   gated_linear_attention (vector gate) D64: gk = logsigmoid(raw) / 16 (GLA), and strong
//     gates in [-8, 0]
//   gated_delta_rule (scalar gate) D128: strong gates in [-8, 0] with beta in [0, 0.05]
#include <seqmix/core/float_mode.hpp>
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/selective_scan.hpp>
#include <seqmix/ops/ssd_scan.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "bench_inputs.hpp"
#include "bench_registry.hpp"
#include "counters.hpp"

namespace {

using namespace seqmix;
using namespace seqmix_bench;

// FTZ and DAZ on the calling thread and on every OpenMP worker while it lives: the mode a
// user's process could set itself (the reference point of the ratio).
class process_flush_to_zero {
public:
    explicit process_flush_to_zero(bool on) : on_(on) {
        if (on_) set(true);
    }
    ~process_flush_to_zero() {
        if (on_) set(false);
    }

private:
    static void set(bool flush) {
#if SEQMIX_HAS_MXCSR
        constexpr unsigned bits = subnormals_flushed::flags;  // the library's own FTZ | DAZ
        auto apply = [flush] { _mm_setcsr(flush ? _mm_getcsr() | bits : _mm_getcsr() & ~bits); };
#if defined(_OPENMP)
#pragma omp parallel num_threads(omp_get_max_threads())
        apply();
#endif
        apply();
#else
        (void)flush;
#endif
    }
    bool on_;
};

std::string suffix(int threads) { return "/threads:" + std::to_string(threads); }

// Times `call` alternately as the caller runs it and under process_flush_to_zero; the
// benchmark's time is the plain calls' (manual time), the returned seconds too.
template <class F>
double time_both_modes(benchmark::State& state, F&& call) {
    double plain = 0, flushed = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        call();
        benchmark::ClobberMemory();
        const double s = seconds_since(t0);
        plain += s;
        state.SetIterationTime(s);
        const process_flush_to_zero mode(true);
        const auto t1 = std::chrono::steady_clock::now();
        call();
        benchmark::ClobberMemory();
        flushed += seconds_since(t1);
    }
    state.counters["ftz_ratio"] = flushed > 0 ? plain / flushed : 0;
    return plain;
}

// Values f(u) of a uniform u in [0, 1) per element.
template <class X, class F>
void fill_mapped(X&& x, unsigned salt, F&& f) {
    fill_uniform(x, 0, 1, salt);
    for (std::int64_t i = 0; i < std::int64_t(x.size()); ++i) x.data()[i] = f(x.data()[i]);
}

float inverse_softplus(float y) { return y + std::log(-std::expm1(-y)); }

void ssd_mamba2_init(benchmark::State& state, index_t n, int threads) {
    const index_t h = 24, p = 64, s = 128;
    tensor<float, 4> x({1, n, h, p}), out({1, n, h, p}), B({1, n, 1, s}), C({1, n, 1, s});
    tensor<float, 3> dt({1, n, h});
    tensor<float, 1> A({h});
    fill_uniform(x, -1, 1, 1);
    fill_uniform(B, -1, 1, 3);
    fill_uniform(C, -1, 1, 4);
    fill_uniform(dt, -0.1f, 0.1f, 5);
    fill_mapped(A, 6, [](float u) { return -(1 + 15 * u); });
    std::vector<float> D(static_cast<std::size_t>(h), 1.0f), bias(static_cast<std::size_t>(h));
    for (index_t i = 0; i < h; ++i)
        bias[std::size_t(i)] = inverse_softplus(std::exp(std::log(1e-3f) + float(i) / float(h - 1) * std::log(100.0f)));
    ssd_options<float> o;
    o.D = D.data();
    o.dt_bias = bias.data();
    o.dt_softplus = true;
    o.num_threads = threads;
    const double sec =
        time_both_modes(state, [&] { ssd_scan(x.view(), dt.view(), A.view(), B.view(), C.view(), out.view(), o); });
    report_rate(state, 4.0 * double(n * h * p * s), sec, "GFLOPs", measured().fma[threads], "fma_peak_GFLOPs",
                "of_fma_peak");
    state.counters["threads"] = threads;
}

void scan_mamba_init(benchmark::State& state, index_t n, int threads) {
    const index_t din = 1536, s = 16;
    tensor<float, 3> u({1, n, din}), delta({1, n, din}), out({1, n, din});
    tensor<float, 2> A({din, s});
    tensor<float, 4> B({1, n, 1, s}), C({1, n, 1, s});
    fill_uniform(u, -1, 1, 1);
    fill_mapped(delta, 2, [](float r) { return inverse_softplus(std::exp(std::log(1e-3f) + r * std::log(100.0f))); });
    for (index_t c = 0; c < din; ++c)
        for (index_t j = 0; j < s; ++j) A(c, j) = -float(j + 1);
    fill_uniform(B, -1, 1, 5);
    fill_uniform(C, -1, 1, 6);
    selective_scan_options<float> o;
    o.delta_softplus = true;
    o.num_threads = threads;
    const double sec = time_both_modes(
        state, [&] { selective_scan(u.view(), delta.view(), A.view(), B.view(), C.view(), out.view(), o); });
    state.counters["tokens_per_s"] = double(n) * double(state.iterations()) / sec;
    state.counters["ns_per_elem"] = sec * 1e9 / (double(state.iterations()) * double(n * din * s));
    state.counters["threads"] = threads;
}

enum class gla_gates { logsigmoid16, strong };

void gla_gated(benchmark::State& state, gla_gates gates, index_t n, int threads) {
    const index_t h = 4, d = 64;
    tensor<float, 4> q({1, n, h, d}), k({1, n, h, d}), v({1, n, h, d}), g({1, n, h, d}), out({1, n, h, d});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(k, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    if (gates == gla_gates::logsigmoid16)
        fill_mapped(g, 4, [](float u) { return -std::log1p(std::exp(-(8 * u - 3))) / 16; });  // raw in [-3, 5)
    else fill_uniform(g, -8, 0, 4);
    gla_options o;
    o.num_threads = threads;
    const double sec =
        time_both_modes(state, [&] { gated_linear_attention(q.view(), k.view(), v.view(), g.view(), out.view(), o); });
    report_recurrent(state, double(h), double(n), double(d), threads, sec);
}

void gated_delta_strong(benchmark::State& state, index_t n, int threads) {
    const index_t h = 4, d = 128;
    tensor<float, 4> q({1, n, h, d}), k({1, n, h, d}), v({1, n, h, d}), out({1, n, h, d});
    tensor<float, 3> g({1, n, h}), beta({1, n, h});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(k, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    fill_uniform(g, -8, 0, 4);
    fill_uniform(beta, 0, 0.05f, 5);
    delta_options o;
    o.qk_l2norm = true;
    o.num_threads = threads;
    const double sec = time_both_modes(
        state, [&] { gated_delta_rule(q.view(), k.view(), v.view(), g.view(), beta.view(), out.view(), o); });
    report_recurrent(state, double(h), double(n), double(d), threads, sec);
}

void register_gate_benchmarks() {
    auto reg = [](const std::string& name, auto fn, auto... args) {
        benchmark::RegisterBenchmark(name.c_str(), fn, args...)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime()
            ->MinTime(0.2);
    };
    for (int threads : {1, 2}) {
        reg("gates/ssd_scan/mamba2_init/H24/P64/S128/N2048" + suffix(threads), ssd_mamba2_init, index_t(2048), threads);
        reg("gates/selective_scan/mamba_init/Din1536/S16/N2048" + suffix(threads), scan_mamba_init, index_t(2048),
            threads);
        reg("gates/gated_linear_attention/vector_gate/logsigmoid16/H4/D64/N2048" + suffix(threads), gla_gated,
            gla_gates::logsigmoid16, index_t(2048), threads);
        reg("gates/gated_linear_attention/vector_gate/strong/H4/D64/N2048" + suffix(threads), gla_gated,
            gla_gates::strong, index_t(2048), threads);
        reg("gates/gated_delta_rule/scalar_gate/strong_small_beta/H4/D128/N2048" + suffix(threads), gated_delta_strong,
            index_t(2048), threads);
    }
}

const seqmix_bench::registration registered(45, register_gate_benchmarks);
}  // namespace
