// The drift of bf16 states (vLLM keeps its recurrent state pools in bf16) over a long
// decode: the same 32768 tokens through the decode step twice, once on a float state and
// once on a bf16 state (rounded after every token), inputs identical (bf16-rounded values in
// float). Counters: the largest relative error of any token's outputs (max |o_bf16 - o_f32|
// over max |o_f32| of that token) and of the last 1024 tokens, and the final states'.
// B=1, H=4, Dk=Dv=128; q and k unit norm, v in [-1, 1], log gates in [-0.1, 0], beta in
// [0.1, 0.9]. One iteration: this is a measurement of accuracy, its time is incidental.
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <string>

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
          const tensor<float, 3>& g4, const tensor<float, 2>& g2, const tensor<float, 2>& beta, tensor<float, 2>& out,
          tensor<St, 4>& S) {
    const index_t H = q.extent(1), D = q.extent(2);
    auto row3 = [&](const tensor<float, 3>& x) { return tensor_view<const float, 3>(x.data() + t * H * D, {1, H, D}); };
    auto row2 = [&](const tensor<float, 2>& x) { return tensor_view<const float, 2>(x.data() + t * H, {1, H}); };
    const tensor_view<float, 3> o_t(out.data(), {1, H, D});
    delta_step_options so;
    so.num_threads = 1;
    if (o == op::gla_scalar) gated_linear_attention_step(row3(q), row3(k), row3(v), row2(g2), o_t, S.view());
    else if (o == op::delta) delta_rule_step(row3(q), row3(k), row3(v), row2(beta), o_t, S.view(), so);
    else if (o == op::gated_delta_scalar)
        gated_delta_rule_step(row3(q), row3(k), row3(v), row2(g2), row2(beta), o_t, S.view(), so);
    else gated_delta_rule_step(row3(q), row3(k), row3(v), row3(g4), row2(beta), o_t, S.view(), so);
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
            for (index_t i = 0; i < D; ++i) row[i] = float(bf16(float(row[i] / std::sqrt(s))));
        }
    for (auto* x : {&v, &g4})
        for (index_t i = 0; i < x->size(); ++i) x->data()[i] = float(bf16(x->data()[i]));
    for (auto* x : {&g2, &beta})
        for (index_t i = 0; i < x->size(); ++i) x->data()[i] = float(bf16(x->data()[i]));
    double max_err = 0, tail_err = 0, state_err = 0;
    for (auto _ : state) {
        tensor<float, 4> Sf({1, H, D, D});
        tensor<bf16, 4> Sb({1, H, D, D});
        for (index_t i = 0; i < Sb.size(); ++i) Sb.data()[i] = bf16(0.0f);
        tensor<float, 2> of({H, D}), ob({H, D});
        for (index_t t = 0; t < n; ++t) {
            step(o, t, q, k, v, g4, g2, beta, of, Sf);
            step(o, t, q, k, v, g4, g2, beta, ob, Sb);
            const double e = rel_error(ob.data(), of.data(), H * D);
            max_err = std::max(max_err, e);
            if (t >= n - 1024) tail_err = std::max(tail_err, e);
        }
        const tensor<float, 4> Sbf = [&] {
            tensor<float, 4> x({1, H, D, D});
            for (index_t i = 0; i < x.size(); ++i) x.data()[i] = float(Sb.data()[i]);
            return x;
        }();
        state_err = rel_error(Sbf.data(), Sf.data(), Sf.size());
    }
    state.counters["max_out_rel_error"] = max_err;
    state.counters["last1024_out_rel_error"] = tail_err;
    state.counters["final_state_rel_error"] = state_err;
    state.counters["tokens"] = double(n);
}

void register_drift_benchmarks() {
    for (op o : {op::gla_scalar, op::delta, op::gated_delta_scalar, op::gated_delta_vector})
        for (index_t n : {2048, 32768}) {  // whether the error grows with the length
            const std::string name =
                std::string("state_drift/") + op_name(o) + "/state_bf16/H4/D128/N" + std::to_string(n);
            benchmark::RegisterBenchmark(name.c_str(), drift, o, n)
                ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
        }
}

const seqmix_bench::registration registered(35, register_drift_benchmarks);
}  // namespace
