// The state-space scans at the BENCH.md shapes, as Mamba runs them (softplus steps with a
// bias, the D skip and the z gate on):
//   selective_scan  B=1, Din=1536, S=16, N in {512, 2048, 8192}; Din=5120, N=2048; token-major
//                   and Mamba's channel-major [B, Din, L]; next to a straightforward scalar loop
//   ssd_scan        B=1, H=24, P=64, S=128, G=1, N in {2048, 8192}
//   causal_conv1d   B=1, C=1536, N=2048, W in {2, 3, 4, 8}
// and their decode steps on state pools beyond the L3.
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/causal_conv1d.hpp>
#include <seqmix/ops/selective_scan.hpp>
#include <seqmix/ops/ssd_scan.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench_inputs.hpp"
#include "bench_registry.hpp"
#include "counters.hpp"

namespace {

using namespace seqmix;
using namespace seqmix_bench;

std::string tag(const char* name, index_t v) { return "/" + std::string(name) + std::to_string(v); }

// Memory-bound counters: bytes moved once per call, against the triad of the same run.
void report_bytes(benchmark::State& state, double bytes, double seconds, int threads) {
    report_rate(state, bytes, seconds, "GBs", measured().triad[threads], "triad_GBs", "of_triad");
    state.counters["threads"] = threads;
}

// ---------------------------------------------------------------- selective_scan

// E: the storage type of u, delta, z, B, C and out (float, or bf16 with float arithmetic); A float.
template <class E = float>
struct scan_inputs {
    index_t n, din, s;
    tensor<E, 3> u, delta, z, out;
    tensor<float, 2> A;
    tensor<E, 4> B, C;
    std::vector<float> D, bias;
    // channel_major: u, delta, z, out stored [1, Din, N] and B, C [1, 1, S, N] (Mamba's layout).
    scan_inputs(index_t n_, index_t din_, index_t s_, bool channel_major)
        : n(n_),
          din(din_),
          s(s_),
          u(channel_major ? std::array<index_t, 3>{1, din_, n_} : std::array<index_t, 3>{1, n_, din_}),
          delta(u.shape()),
          z(u.shape()),
          out(u.shape()),
          A({din_, s_}),
          B(channel_major ? std::array<index_t, 4>{1, 1, s_, n_} : std::array<index_t, 4>{1, n_, 1, s_}),
          C(B.shape()),
          D(std::size_t(din_), 0.5f),
          bias(std::size_t(din_), 0.1f) {
        fill_uniform(u, -1, 1, 1);
        fill_uniform(delta, -4, 0, 2);
        fill_uniform(z, -2, 2, 3);
        fill_uniform(A, -16, -1, 4);
        fill_uniform(B, -1, 1, 5);
        fill_uniform(C, -1, 1, 6);
    }
    template <class T, std::size_t R>
    static tensor_view<T, R> as_token_major(T* data, const std::array<index_t, R>& stored, bool channel_major) {
        if (!channel_major) return {data, stored};
        const tensor_view<T, R> v(data, stored);
        if constexpr (R == 3) return permute(v, {0, 2, 1});
        else return permute(v, {0, 3, 1, 2});
    }
    double bytes() const {  // u, delta, z read, out written, B and C read
        return 4.0 * double(sizeof(E)) * double(n * din) + 2.0 * sizeof(E) * double(n * s);
    }
};

template <class E = float>
void scan(benchmark::State& state, index_t n, index_t din, index_t s, bool channel_major, int threads) {
    scan_inputs<E> in(n, din, s, channel_major);
    auto tm3 = [&](tensor<E, 3>& t) { return scan_inputs<E>::as_token_major(t.data(), t.shape(), channel_major); };
    auto tm4 = [&](tensor<E, 4>& t) { return scan_inputs<E>::as_token_major(t.data(), t.shape(), channel_major); };
    selective_scan_options<E> o;
    o.D = in.D.data();
    o.delta_bias = in.bias.data();
    o.delta_softplus = true;
    o.z = tm3(in.z);
    o.num_threads = threads;
    const tensor_view<const E, 3> u = tm3(in.u), d = tm3(in.delta);
    const tensor_view<const E, 4> B = tm4(in.B), C = tm4(in.C);
    const auto out = tm3(in.out);
    const double sec = time_loop(state, [&] { selective_scan(u, d, in.A.view(), B, C, out, o); });
    report_bytes(state, in.bytes(), sec, threads);
    state.counters["tokens_per_s"] = double(n) * double(state.iterations()) / sec;
    state.counters["ns_per_elem"] = sec * 1e9 / (double(state.iterations()) * double(n * din * s));
}

// The straightforward loop the issue compares against: one channel at a time, std::exp.
void scan_scalar_loop(benchmark::State& state, index_t n, index_t din, index_t s) {
    scan_inputs in(n, din, s, false);
    std::vector<float> h(static_cast<std::size_t>(s));
    const double sec = time_loop(state, [&] {
        for (index_t c = 0; c < din; ++c) {
            std::fill(h.begin(), h.end(), 0.0f);
            for (index_t t = 0; t < n; ++t) {
                const float raw = in.delta(0, t, c) + in.bias[std::size_t(c)];
                const float d = raw > 20.0f ? raw : std::log1p(std::exp(raw));
                const float x = in.u(0, t, c);
                float y = 0;
                for (index_t j = 0; j < s; ++j) {
                    h[std::size_t(j)] = std::exp(d * in.A(c, j)) * h[std::size_t(j)] + d * x * in.B(0, t, 0, j);
                    y += in.C(0, t, 0, j) * h[std::size_t(j)];
                }
                y += in.D[std::size_t(c)] * x;
                const float zz = in.z(0, t, c);
                in.out(0, t, c) = y * zz / (1.0f + std::exp(-zz));
            }
        }
    });
    report_bytes(state, in.bytes(), sec, 1);
    state.counters["tokens_per_s"] = double(n) * double(state.iterations()) / sec;
    state.counters["ns_per_elem"] = sec * 1e9 / (double(state.iterations()) * double(n * din * s));
}

// ---------------------------------------------------------------- ssd_scan

// E: the storage type of x, z, B, C and out (float, or bf16); dt and A float.
template <class E = float>
void ssd(benchmark::State& state, index_t n, index_t h, index_t p, index_t s, int threads, int chunk) {
    tensor<E, 4> x({1, n, h, p}), z({1, n, h, p}), out({1, n, h, p}), B({1, n, 1, s}), C({1, n, 1, s});
    tensor<float, 3> dt({1, n, h});
    tensor<float, 1> A({h});
    fill_uniform(x, -1, 1, 1);
    fill_uniform(z, -2, 2, 2);
    fill_uniform(B, -1, 1, 3);
    fill_uniform(C, -1, 1, 4);
    fill_uniform(dt, -4, 0, 5);
    fill_uniform(A, -16, -1, 6);
    std::vector<float> D(std::size_t(h), 0.5f), bias(std::size_t(h), 0.1f);
    ssd_options<E> o;
    o.D = D.data();
    o.dt_bias = bias.data();
    o.dt_softplus = true;
    o.z = z.view();
    o.chunk_size = chunk;
    o.num_threads = threads;
    const double sec =
        time_loop(state, [&] { ssd_scan(x.view(), dt.view(), A.view(), B.view(), C.view(), out.view(), o); });
    report_rate(state, 4.0 * double(n * h * p * s), sec, "GFLOPs", measured().fma[threads], "fma_peak_GFLOPs",
                "of_fma_peak");
    state.counters["tokens_per_s"] = double(n) * double(state.iterations()) / sec;
    state.counters["threads"] = threads;
}

// ---------------------------------------------------------------- causal_conv1d

void conv(benchmark::State& state, index_t n, index_t c, index_t w, bool channel_major, int threads) {
    const std::array<index_t, 3> stored =
        channel_major ? std::array<index_t, 3>{1, c, n} : std::array<index_t, 3>{1, n, c};
    tensor<float, 3> x(stored), out(stored);
    tensor<float, 2> weight({c, w});
    fill_uniform(x, -1, 1, 1);
    fill_uniform(weight, -0.5f, 0.5f, 2);
    std::vector<float> bias(std::size_t(c), 0.1f);
    conv1d_options o;
    o.bias = bias.data();
    o.activation = activation::silu;
    o.num_threads = threads;
    auto tm = [&](tensor<float, 3>& t) { return channel_major ? permute(t.view(), {0, 2, 1}) : t.view(); };
    const tensor_view<const float, 3> xv = tm(x);
    const auto ov = tm(out);
    const double sec = time_loop(state, [&] { causal_conv1d(xv, weight.view(), ov, o); });
    report_bytes(state, 2.0 * sizeof(float) * double(n * c), sec, threads);
    state.counters["tokens_per_s"] = double(n) * double(state.iterations()) / sec;
}

// ---------------------------------------------------------------- decode steps

// Counted traffic: the state pool read and written once per step.
// St: the pool's storage type (float, or bf16 as vLLM keeps it).
template <class St = float>
void scan_step(benchmark::State& state, index_t b, index_t din, index_t s, int threads) {
    tensor<float, 2> u({b, din}), d({b, din}), z({b, din}), out({b, din}), A({din, s});
    tensor<float, 3> B({b, 1, s}), C({b, 1, s});
    tensor<St, 3> pool({b, din, s});
    fill_uniform(u, -1, 1, 1);
    fill_uniform(d, -4, 0, 2);
    fill_uniform(z, -2, 2, 3);
    fill_uniform(A, -16, -1, 4);
    fill_uniform(B, -1, 1, 5);
    fill_uniform(C, -1, 1, 6);
    fill_uniform(pool, -1, 1, 7);
    std::vector<float> D(std::size_t(din), 0.5f), bias(std::size_t(din), 0.1f);
    selective_scan_step_options<float> o;
    o.D = D.data();
    o.delta_bias = bias.data();
    o.delta_softplus = true;
    o.z = z.view();
    o.num_threads = threads;
    const double sec = time_loop(state, [&] {
        selective_scan_step(u.view(), d.view(), A.view(), B.view(), C.view(), out.view(), pool.view(), o);
    });
    report_bytes(state, 2.0 * sizeof(St) * double(pool.size()), sec, threads);
}

template <class St = float>
void ssd_step_bench(benchmark::State& state, index_t b, index_t h, index_t p, index_t s, int threads) {
    tensor<float, 3> x({b, h, p}), z({b, h, p}), out({b, h, p}), B({b, 1, s}), C({b, 1, s});
    tensor<float, 2> dt({b, h});
    tensor<float, 1> A({h});
    tensor<St, 4> pool({b, h, p, s});
    fill_uniform(x, -1, 1, 1);
    fill_uniform(z, -2, 2, 2);
    fill_uniform(B, -1, 1, 3);
    fill_uniform(C, -1, 1, 4);
    fill_uniform(dt, -4, 0, 5);
    fill_uniform(A, -16, -1, 6);
    fill_uniform(pool, -1, 1, 7);
    std::vector<float> D(std::size_t(h), 0.5f), bias(std::size_t(h), 0.1f);
    ssd_step_options<float> o;
    o.D = D.data();
    o.dt_bias = bias.data();
    o.dt_softplus = true;
    o.z = z.view();
    o.num_threads = threads;
    const double sec = time_loop(
        state, [&] { ssd_step(x.view(), dt.view(), A.view(), B.view(), C.view(), out.view(), pool.view(), o); });
    report_bytes(state, 2.0 * sizeof(St) * double(pool.size()), sec, threads);
}

void conv_step(benchmark::State& state, index_t b, index_t c, index_t w, int threads) {
    tensor<float, 2> x({b, c}), out({b, c}), weight({c, w});
    tensor<float, 3> pool({b, c, w - 1});
    fill_uniform(x, -1, 1, 1);
    fill_uniform(weight, -0.5f, 0.5f, 2);
    fill_uniform(pool, -1, 1, 3);
    conv1d_step_options o;
    o.activation = activation::silu;
    o.num_threads = threads;
    const double sec =
        time_loop(state, [&] { causal_conv1d_step(x.view(), weight.view(), out.view(), pool.view(), o); });
    report_bytes(state, 2.0 * sizeof(float) * double(pool.size()), sec, threads);
}

void register_state_space_benchmarks() {
    auto reg = [](const std::string& name, auto fn, auto... args) {
        benchmark::RegisterBenchmark(name.c_str(), fn, args...)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(0.2);
    };
    for (int threads : {1, 2}) {
        const std::string th = "/threads:" + std::to_string(threads);
        for (index_t n : {512, 2048, 8192})
            reg("selective_scan/token_major/Din1536/S16" + tag("N", n) + th, scan<float>, n, index_t(1536), index_t(16),
                false, threads);
        reg("selective_scan/token_major/Din5120/S16/N2048" + th, scan<float>, index_t(2048), index_t(5120), index_t(16),
            false, threads);
        for (index_t n : {2048, 8192})
            reg("selective_scan/channel_major/Din1536/S16" + tag("N", n) + th, scan<float>, n, index_t(1536),
                index_t(16), true, threads);
        for (index_t n : {2048, 8192})
            reg("ssd_scan/H24/P64/S128/G1" + tag("N", n) + th, ssd<float>, n, index_t(24), index_t(64), index_t(128),
                threads, 0);
        for (index_t w : {2, 3, 4, 8})
            reg("causal_conv1d/token_major/C1536" + tag("W", w) + "/N2048" + th, conv, index_t(2048), index_t(1536), w,
                false, threads);
        reg("causal_conv1d/channel_major/C1536/W4/N2048" + th, conv, index_t(2048), index_t(1536), index_t(4), true,
            threads);
        // Pools beyond the 32 MiB L3: 80, 96 and 72 MiB; and one inside it.
        reg("decode_step/selective_scan/B256/Din5120/S16" + th, scan_step<float>, index_t(256), index_t(5120),
            index_t(16), threads);
        reg("decode_step/ssd/B128/H24/P64/S128" + th, ssd_step_bench<float>, index_t(128), index_t(24), index_t(64),
            index_t(128), threads);
        reg("decode_step/ssd/B16/H24/P64/S128" + th, ssd_step_bench<float>, index_t(16), index_t(24), index_t(64),
            index_t(128), threads);
        reg("decode_step/causal_conv1d/B4096/C1536/W4" + th, conv_step, index_t(4096), index_t(1536), index_t(4),
            threads);
        // 16-bit storage beside the float rows: bf16 inputs and outputs, bf16 state pools.
        reg("selective_scan/token_major/Din1536/S16/N8192/bf16" + th, scan<bf16>, index_t(8192), index_t(1536),
            index_t(16), false, threads);
        reg("ssd_scan/H24/P64/S128/G1/N8192/bf16" + th, ssd<bf16>, index_t(8192), index_t(24), index_t(64),
            index_t(128), threads, 0);
        reg("decode_step/selective_scan/B256/Din5120/S16/state_bf16" + th, scan_step<bf16>, index_t(256), index_t(5120),
            index_t(16), threads);
        reg("decode_step/ssd/B128/H24/P64/S128/state_bf16" + th, ssd_step_bench<bf16>, index_t(128), index_t(24),
            index_t(64), index_t(128), threads);
    }
    reg("selective_scan/scalar_loop/Din1536/S16/N8192/threads:1", scan_scalar_loop, index_t(8192), index_t(1536),
        index_t(16));
}

// SSD chunk-length sweep, only when asked for by filter.
void register_ssd_sweep() {
    for (int c : {16, 32, 64, 128})
        benchmark::RegisterBenchmark(("sweep/ssd_scan/H24/P64/S128/N8192/chunk" + std::to_string(c)).c_str(),
                                     ssd<float>, index_t(8192), index_t(24), index_t(64), index_t(128), 1, c)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(0.2);
}

const seqmix_bench::registration registered(40, register_state_space_benchmarks);
const seqmix_bench::registration sweep(41, register_ssd_sweep);
}  // namespace
