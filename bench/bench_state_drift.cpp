// The drift of bf16 states (vLLM keeps its recurrent state pools in bf16) over a long
// decode: the same 32768 tokens through the decode step twice, once on a float state and
// once on a bf16 state (rounded after every token), inputs identical (bf16-rounded values in
// float). Counters: the largest relative error of any token's outputs (max |o_bf16 - o_f32|
// over max |o_f32| of that token) and of the last 1024 tokens, and the final states'.
// Matrix states: B=1, H=4, Dk=Dv=128; q and k unit norm, v in [-1, 1], log gates in
// [-0.1, 0], beta in [0.1, 0.9]; the scans below at Mamba's shapes. One iteration: this is
// a measurement of accuracy, its time is incidental.
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/selective_scan.hpp>
#include <seqmix/ops/ssd_scan.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "bench_inputs.hpp"
#include "bench_registry.hpp"

namespace {

using namespace seqmix;
using namespace seqmix_bench;

enum class op { gla_scalar, delta, gated_delta_scalar, gated_delta_vector };
const char* op_name(op o) {
    switch (o) {
        case op::gla_scalar: return "gated_linear_attention/scalar_gate";
        case op::delta: return "delta_rule";
        case op::gated_delta_scalar: return "gated_delta_rule/scalar_gate";
        default: return "gated_delta_rule/vector_gate";
    }
}

// max |a - b| / max |b| over n values.
double rel_error(const float* a, const float* b, index_t n) {
    double err = 0, mag = 0;
    for (index_t i = 0; i < n; ++i) {
        err = std::max(err, std::abs(double(a[i]) - double(b[i])));
        mag = std::max(mag, std::abs(double(b[i])));
    }
    return err / std::max(mag, 1e-30);
}

template <class St>
void step(op o, index_t t, const tensor<float, 3>& q, const tensor<float, 3>& k, const tensor<float, 3>& v,
          const tensor<float, 3>& g4, const tensor<float, 2>& g2, const tensor<float, 2>& beta, float* out,
          tensor<St, 4>& S) {
    const index_t H = q.extent(1), D = q.extent(2);
    auto row3 = [&](const tensor<float, 3>& x) { return tensor_view<const float, 3>(x.data() + t * H * D, {1, H, D}); };
    auto row2 = [&](const tensor<float, 2>& x) { return tensor_view<const float, 2>(x.data() + t * H, {1, H}); };
    const tensor_view<float, 3> o_t(out, {1, H, D});
    delta_step_options so;
    so.num_threads = 1;
    if (o == op::gla_scalar) gated_linear_attention_step(row3(q), row3(k), row3(v), row2(g2), o_t, S.view());
    else if (o == op::delta) delta_rule_step(row3(q), row3(k), row3(v), row2(beta), o_t, S.view(), so);
    else if (o == op::gated_delta_scalar)
        gated_delta_rule_step(row3(q), row3(k), row3(v), row2(g2), row2(beta), o_t, S.view(), so);
    else gated_delta_rule_step(row3(q), row3(k), row3(v), row3(g4), row2(beta), o_t, S.view(), so);
}

// Every element of x rounded to bf16 (kept in float): the inputs both runs read.
template <class X>
void round_to_bf16(X& x) {
    for (index_t i = 0; i < x.size(); ++i) x.data()[i] = float(bf16(x.data()[i]));
}

// The measurement: run(t, out, state) steps token t on a float and on a bf16 state of `shape`
// (zeros), the outputs (out_size floats) compared token by token, the final states at the end.
template <std::size_t R, class Run>
void measure(benchmark::State& state, index_t n, index_t out_size, const std::array<index_t, R>& shape, Run&& run) {
    double max_err = 0, tail_err = 0, state_err = 0;
    for (auto _ : state) {
        tensor<float, R> Sf(shape, 0.0f);
        tensor<bf16, R> Sb(shape, bf16(0.0f));
        std::vector<float> of(static_cast<std::size_t>(out_size)), ob(static_cast<std::size_t>(out_size));
        for (index_t t = 0; t < n; ++t) {
            run(t, of.data(), Sf);
            run(t, ob.data(), Sb);
            const double e = rel_error(ob.data(), of.data(), out_size);
            max_err = std::max(max_err, e);
            if (t >= n - 1024) tail_err = std::max(tail_err, e);
        }
        tensor<float, R> Sbf(shape);
        for (index_t i = 0; i < Sbf.size(); ++i) Sbf.data()[i] = float(Sb.data()[i]);
        state_err = rel_error(Sbf.data(), Sf.data(), Sf.size());
    }
    state.counters["max_out_rel_error"] = max_err;
    state.counters["last1024_out_rel_error"] = tail_err;
    state.counters["final_state_rel_error"] = state_err;
    state.counters["tokens"] = double(n);
}

void drift(benchmark::State& state, op o, index_t n) {
    const index_t H = 4, D = 128;
    tensor<float, 3> q({n, H, D}), k({n, H, D}), v({n, H, D}), g4({n, H, D});
    tensor<float, 2> g2({n, H}), beta({n, H});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(k, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    fill_uniform(g4, -0.1f, 0, 4);
    fill_uniform(g2, -0.1f, 0, 5);
    fill_uniform(beta, 0.1f, 0.9f, 6);
    for (tensor<float, 3>* x : {&q, &k})  // unit rows (the models' l2-normalized q and k)
        for (index_t r = 0; r < n * H; ++r) {
            float* row = x->data() + r * D;
            double s = 0;
            for (index_t i = 0; i < D; ++i) s += double(row[i]) * row[i];
            for (index_t i = 0; i < D; ++i) row[i] = float(row[i] / std::sqrt(s));
        }
    round_to_bf16(q), round_to_bf16(k), round_to_bf16(v), round_to_bf16(g4), round_to_bf16(g2), round_to_bf16(beta);
    measure<4>(state, n, H * D, {1, H, D, D},
               [&](index_t t, float* out, auto& S) { step(o, t, q, k, v, g4, g2, beta, out, S); });
}

// Mamba-2 (ssd_step: H = 8 heads of P = 64, S = 128) and Mamba-1 (selective_scan_step:
// Din = 512, S = 16) at their models' step sizes: softplus(dt + bias) with dt in [-4, 0],
// A in [-16, -1] (ssd) and [-8, -1] (selective scan), D and z on.
void drift_ssd(benchmark::State& state, index_t n) {
    const index_t H = 8, P = 64, S = 128;
    tensor<float, 3> x({n, H, P}), z({n, H, P}), B({n, 1, S}), C({n, 1, S});
    tensor<float, 2> dt({n, H});
    tensor<float, 1> A({H});
    fill_uniform(x, -1, 1, 1), fill_uniform(z, -2, 2, 2), fill_uniform(B, -1, 1, 3), fill_uniform(C, -1, 1, 4);
    fill_uniform(dt, -4, 0, 5), fill_uniform(A, -16, -1, 6);
    round_to_bf16(x), round_to_bf16(z), round_to_bf16(B), round_to_bf16(C), round_to_bf16(dt);
    const std::vector<float> D(std::size_t(H), 0.5f), bias(std::size_t(H), 0.1f);
    measure<4>(state, n, H * P, {1, H, P, S}, [&](index_t t, float* out, auto& st) {
        ssd_step_options<float> o;
        o.D = D.data();
        o.dt_bias = bias.data();
        o.dt_softplus = true;
        o.num_threads = 1;
        o.z = tensor_view<const float, 3>(z.data() + t * H * P, {1, H, P});
        ssd_step(tensor_view<const float, 3>(x.data() + t * H * P, {1, H, P}),
                 tensor_view<const float, 2>(dt.data() + t * H, {1, H}), A.view(),
                 tensor_view<const float, 3>(B.data() + t * S, {1, 1, S}),
                 tensor_view<const float, 3>(C.data() + t * S, {1, 1, S}), tensor_view<float, 3>(out, {1, H, P}),
                 st.view(), o);
    });
}

void drift_selective_scan(benchmark::State& state, index_t n) {
    const index_t Din = 512, S = 16;
    tensor<float, 2> u({n, Din}), delta({n, Din}), z({n, Din}), A({Din, S});
    tensor<float, 3> B({n, 1, S}), C({n, 1, S});
    fill_uniform(u, -1, 1, 1), fill_uniform(delta, -4, 0, 2), fill_uniform(z, -2, 2, 3);
    fill_uniform(A, -8, -1, 4), fill_uniform(B, -1, 1, 5), fill_uniform(C, -1, 1, 6);
    round_to_bf16(u), round_to_bf16(delta), round_to_bf16(z), round_to_bf16(B), round_to_bf16(C);
    const std::vector<float> D(std::size_t(Din), 0.5f), bias(std::size_t(Din), 0.1f);
    measure<3>(state, n, Din, {1, Din, S}, [&](index_t t, float* out, auto& st) {
        selective_scan_step_options<float> o;
        o.D = D.data();
        o.delta_bias = bias.data();
        o.delta_softplus = true;
        o.num_threads = 1;
        o.z = tensor_view<const float, 2>(z.data() + t * Din, {1, Din});
        selective_scan_step(tensor_view<const float, 2>(u.data() + t * Din, {1, Din}),
                            tensor_view<const float, 2>(delta.data() + t * Din, {1, Din}), A.view(),
                            tensor_view<const float, 3>(B.data() + t * S, {1, 1, S}),
                            tensor_view<const float, 3>(C.data() + t * S, {1, 1, S}),
                            tensor_view<float, 2>(out, {1, Din}), st.view(), o);
    });
}

void register_drift_benchmarks() {
    auto reg = [](const std::string& name, auto fn, auto... args) {
        benchmark::RegisterBenchmark(name.c_str(), fn, args...)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->Iterations(1);
    };
    for (index_t n : {2048, 32768}) {  // whether the error grows with the length
        const std::string tail = "/N" + std::to_string(n);
        for (op o : {op::gla_scalar, op::delta, op::gated_delta_scalar, op::gated_delta_vector})
            reg(std::string("state_drift/") + op_name(o) + "/state_bf16/H4/D128" + tail, drift, o, n);
        reg("state_drift/ssd_scan/state_bf16/H8/P64/S128" + tail, drift_ssd, n);
        reg("state_drift/selective_scan/state_bf16/Din512/S16" + tail, drift_selective_scan, n);
    }
}

const seqmix_bench::registration registered(35, register_drift_benchmarks);
}  // namespace
