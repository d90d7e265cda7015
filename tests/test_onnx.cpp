// ONNX opset 27 LinearAttention and CausalConvWithState on seqmix, as docs/onnx.md maps them:
// every backend test case of the two operators (the same shapes, attributes and input
// ranges), through the mapping below, against the operators' specified semantics ported to
// double (the sequential recurrence of the spec, and its padded convolution).
#include <seqmix/ops/causal_conv1d.hpp>
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/linear_attention.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "test_util.hpp"

using namespace seqmix;
using namespace seqmix_test;

namespace {

// ---- The mapping (docs/onnx.md) ----

struct linear_attention_attributes {
    std::string update_rule = "gated_delta";
    float scale = 0;  // 0: 1/sqrt(d_k), as seqmix's scale 0
    index_t q_num_heads = 0, kv_num_heads = 0;
};

// [B, T, H*D] as the [B, T, H, D] view of the same memory; with step > 1 every step-th head
// from head `first` (the query heads of one KV head's group).
template <class E>
tensor_view<E, 4> heads(E* data, index_t B, index_t T, index_t H, index_t D, index_t first = 0, index_t step = 1) {
    return {data + first * D, {B, T, H, D}, {T * H * step * D, H * step * D, step * D, 1}};
}

// ONNX LinearAttention: one seqmix call per query head of a KV head's group (G = q_num_heads /
// kv_num_heads; the recurrence does not depend on q, so each call writes the same state).
template <class T, class S>
void onnx_linear_attention(const linear_attention_attributes& a, const tensor<T, 3>& query, const tensor<T, 3>& key,
                           const tensor<T, 3>& value, const tensor<S, 4>* past_state, const tensor<T, 3>* decay,
                           const tensor<T, 3>* beta, tensor<T, 3>& output, tensor<S, 4>& present_state) {
    const index_t B = query.shape()[0], Tn = query.shape()[1], Hq = a.q_num_heads, Hkv = a.kv_num_heads;
    const index_t dk = query.shape()[2] / Hq, dv = value.shape()[2] / Hkv, G = Hq / Hkv;
    const auto k = heads(key.data(), B, Tn, Hkv, dk);
    const auto v = heads(value.data(), B, Tn, Hkv, dv);
    const tensor_view<const S, 4> init =
        past_state ? tensor_view<const S, 4>(past_state->view()) : tensor_view<const S, 4>{};
    const tensor_view<S, 4> fin = present_state.view();
    // beta (B, T, H_kv), or (B, T, 1) shared by the heads: a stride-0 head axis.
    tensor_view<const T, 3> rate;
    if (beta)
        rate = {beta->data(), {B, Tn, Hkv}, {Tn * beta->shape()[2], beta->shape()[2], beta->shape()[2] == 1 ? 0 : 1}};
    for (index_t g = 0; g < G; ++g) {
        const auto q = heads(query.data(), B, Tn, Hkv, dk, g, G);
        const auto out = heads(output.data(), B, Tn, Hkv, dv, g, G);
        if (a.update_rule == "linear") {
            linear_attention_options o;
            o.scale = a.scale;
            linear_attention(q, k, v, out, o, init, fin);
        } else if (a.update_rule == "gated") {
            gla_options o;
            o.scale = a.scale;
            if (decay->shape()[2] == Hkv) gated_linear_attention(q, k, v, decay->view(), out, o, init, fin);
            else gated_linear_attention(q, k, v, heads(decay->data(), B, Tn, Hkv, dk), out, o, init, fin);
        } else {
            delta_options o;
            o.scale = a.scale;
            if (a.update_rule == "delta") delta_rule(q, k, v, rate, out, o, init, fin);
            else if (decay->shape()[2] == Hkv) gated_delta_rule(q, k, v, decay->view(), rate, out, o, init, fin);
            else gated_delta_rule(q, k, v, heads(decay->data(), B, Tn, Hkv, dk), rate, out, o, init, fin);
        }
    }
}

// ONNX CausalConvWithState: channels-first (B, C, L) as the permuted [B, L, C] view, the
// (C, 1, k) weight as [C, k]; the states are seqmix's [B, C, k - 1] (oldest first) as they are.
template <class T>
void onnx_causal_conv_with_state(const std::string& activation, const tensor<T, 3>& input, const tensor<T, 3>& weight,
                                 const std::vector<float>* bias, const tensor<T, 3>* past_state, tensor<T, 3>& output,
                                 tensor<T, 3>& present_state) {
    conv1d_options o;
    o.activation = activation == "silu" || activation == "swish" ? seqmix::activation::silu : seqmix::activation::none;
    o.bias = bias ? bias->data() : nullptr;  // the operator takes the bias as floats
    const tensor_view<const T, 2> w(weight.data(), {weight.shape()[0], weight.shape()[2]});
    const tensor_view<const T, 3> init =
        past_state ? tensor_view<const T, 3>(past_state->view()) : tensor_view<const T, 3>{};
    causal_conv1d(permute(input.view(), {0, 2, 1}), w, permute(output.view(), {0, 2, 1}), o, init,
                  present_state.view());
}

// ---- The specified semantics, in double ----

struct la_result {
    std::vector<double> output, state;
};

template <class T, class S>
la_result spec_linear_attention(const linear_attention_attributes& a, const tensor<T, 3>& query,
                                const tensor<T, 3>& key, const tensor<T, 3>& value, const tensor<S, 4>* past,
                                const tensor<T, 3>* decay, const tensor<T, 3>* beta) {
    const index_t B = query.shape()[0], Tn = query.shape()[1], Hq = a.q_num_heads, Hkv = a.kv_num_heads;
    const index_t dk = query.shape()[2] / Hq, dv = value.shape()[2] / Hkv, G = Hq / Hkv;
    const double s = a.scale != 0 ? double(a.scale) : 1.0 / std::sqrt(double(dk));
    const bool gated = a.update_rule == "gated" || a.update_rule == "gated_delta";
    const bool delta = a.update_rule == "delta" || a.update_rule == "gated_delta";
    la_result r{std::vector<double>(std::size_t(B * Tn * Hq * dv)),
                std::vector<double>(std::size_t(B * Hkv * dk * dv))};
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < Hkv; ++h) {
            std::vector<double> St(static_cast<std::size_t>(dk * dv), 0.0), u(static_cast<std::size_t>(dv));
            if (past)
                for (index_t i = 0; i < dk * dv; ++i)
                    St[std::size_t(i)] = double(past->data()[(b * Hkv + h) * dk * dv + i]);
            for (index_t t = 0; t < Tn; ++t) {
                auto k = [&](index_t i) { return double(key(b, t, h * dk + i)); };
                if (gated)
                    for (index_t i = 0; i < dk; ++i) {
                        const index_t w = decay->shape()[2];
                        const double a_t = std::exp(double((*decay)(b, t, w == Hkv ? h : h * dk + i)));
                        for (index_t j = 0; j < dv; ++j) St[std::size_t(i * dv + j)] *= a_t;
                    }
                for (index_t j = 0; j < dv; ++j) {
                    u[std::size_t(j)] = double(value(b, t, h * dv + j));
                    if (delta) {
                        double pred = 0;
                        for (index_t i = 0; i < dk; ++i) pred += St[std::size_t(i * dv + j)] * k(i);
                        const double bt = double((*beta)(b, t, beta->shape()[2] == 1 ? 0 : h));
                        u[std::size_t(j)] = bt * (u[std::size_t(j)] - pred);
                    }
                }
                for (index_t i = 0; i < dk; ++i)
                    for (index_t j = 0; j < dv; ++j) St[std::size_t(i * dv + j)] += k(i) * u[std::size_t(j)];
                for (index_t g = 0; g < G; ++g) {  // query head h G + g reads KV head h
                    const index_t hq = h * G + g;
                    for (index_t j = 0; j < dv; ++j) {
                        double o = 0;
                        for (index_t i = 0; i < dk; ++i)
                            o += double(query(b, t, hq * dk + i)) * St[std::size_t(i * dv + j)];
                        r.output[std::size_t(((b * Tn + t) * Hq + hq) * dv + j)] = s * o;
                    }
                }
            }
            std::copy(St.begin(), St.end(), r.state.begin() + (b * Hkv + h) * dk * dv);
        }
    return r;
}

template <class T>
la_result spec_causal_conv(const std::string& activation, const tensor<T, 3>& input, const tensor<T, 3>& weight,
                           const std::vector<float>* bias, const tensor<T, 3>* past) {
    const index_t B = input.shape()[0], C = input.shape()[1], L = input.shape()[2], k = weight.shape()[2];
    la_result r{std::vector<double>(std::size_t(B * C * L)), std::vector<double>(std::size_t(B * C * (k - 1)))};
    for (index_t b = 0; b < B; ++b)
        for (index_t c = 0; c < C; ++c) {
            std::vector<double> P;  // concat(past or zeros, input)
            for (index_t i = 0; i < k - 1; ++i) P.push_back(past ? double((*past)(b, c, i)) : 0.0);
            for (index_t t = 0; t < L; ++t) P.push_back(double(input(b, c, t)));
            for (index_t t = 0; t < L; ++t) {
                double y = bias ? double((*bias)[std::size_t(c)]) : 0.0;
                for (index_t j = 0; j < k; ++j) y += double(weight(c, 0, j)) * P[std::size_t(t + j)];
                if (activation == "silu" || activation == "swish") y = y / (1 + std::exp(-y));
                r.output[std::size_t((b * C + c) * L + t)] = y;
            }
            for (index_t i = 0; i < k - 1; ++i) r.state[std::size_t((b * C + c) * (k - 1) + i)] = P[std::size_t(L + i)];
        }
    return r;
}

template <class T, std::size_t R>
double rel_error(const tensor<T, R>& got, const std::vector<double>& want) {
    double err = 0, mag = 1e-30;
    for (index_t i = 0; i < got.size(); ++i) {
        err = std::max(err, std::abs(double(got.data()[i]) - want[std::size_t(i)]));
        mag = std::max(mag, std::abs(want[std::size_t(i)]));
    }
    return err / mag;
}

// Random tensors as the backend tests draw them: randn, rand, -|randn| * 0.1.
template <class T, std::size_t R>
tensor<T, R> drawn(const std::array<index_t, R>& shape, unsigned seed, int kind) {
    tensor<T, R> t(shape);
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> n(0, 1);
    std::uniform_real_distribution<double> u(0, 1);
    for (index_t i = 0; i < t.size(); ++i) {
        const double x = kind == 0 ? n(gen) : kind == 1 ? u(gen) : -std::abs(n(gen)) * 0.1;
        t.data()[i] = T(float(x));
    }
    return t;
}

// Keys of the delta rules, l2-normalized per head as the backend tests make them.
template <class T>
void normalize_heads(tensor<T, 3>& key, index_t dk) {
    for (index_t r = 0; r < key.size() / dk; ++r) {
        double n = 0;
        for (index_t i = 0; i < dk; ++i) n += double(key.data()[r * dk + i]) * double(key.data()[r * dk + i]);
        n = std::max(std::sqrt(n), 1e-6);
        for (index_t i = 0; i < dk; ++i) key.data()[r * dk + i] = T(float(double(key.data()[r * dk + i]) / n));
    }
}

struct la_case {
    const char* name;
    std::string rule;
    index_t b = 2, t = 4, hq = 4, hkv = 4, dk = 8, dv = 8;
    bool per_head_decay = false, beta_shared = false, past = false, zero_past = false;
    float scale = 0;
};

template <class T>
void run_la_case(const la_case& c, double tol) {
    INFO(c.name);
    linear_attention_attributes a;
    a.update_rule = c.rule;
    a.q_num_heads = c.hq;
    a.kv_num_heads = c.hkv;
    a.scale = c.scale;
    auto query = drawn<T, 3>({c.b, c.t, c.hq * c.dk}, 1, 0);
    auto key = drawn<T, 3>({c.b, c.t, c.hkv * c.dk}, 2, 0);
    auto value = drawn<T, 3>({c.b, c.t, c.hkv * c.dv}, 3, 0);
    const bool gated = c.rule == "gated" || c.rule == "gated_delta",
               delta = c.rule == "delta" || c.rule == "gated_delta";
    if (delta) normalize_heads(key, c.dk);
    auto decay = drawn<T, 3>({c.b, c.t, c.per_head_decay ? c.hkv : c.hkv * c.dk}, 4, 2);
    auto beta = drawn<T, 3>({c.b, c.t, c.beta_shared ? 1 : c.hkv}, 5, 1);
    auto past = drawn<T, 4>({c.b, c.hkv, c.dk, c.dv}, 6, 0);
    for (index_t i = 0; i < past.size(); ++i)
        past.data()[i] = c.zero_past ? T(0.0f) : T(float(double(past.data()[i]) * 0.1));
    tensor<T, 3> output({c.b, c.t, c.hq * c.dv});
    tensor<T, 4> present({c.b, c.hkv, c.dk, c.dv});
    const tensor<T, 4>* p = c.past ? &past : nullptr;
    onnx_linear_attention(a, query, key, value, p, gated ? &decay : nullptr, delta ? &beta : nullptr, output, present);
    const la_result want =
        spec_linear_attention(a, query, key, value, p, gated ? &decay : nullptr, delta ? &beta : nullptr);
    CHECK(rel_error(output, want.output) < tol);
    CHECK(rel_error(present, want.state) < tol);
    if (c.zero_past) {  // explicit zeros equal the omitted past, bit for bit
        tensor<T, 3> o2({c.b, c.t, c.hq * c.dv});
        tensor<T, 4> s2({c.b, c.hkv, c.dk, c.dv});
        onnx_linear_attention(a, query, key, value, static_cast<const tensor<T, 4>*>(nullptr), gated ? &decay : nullptr,
                              delta ? &beta : nullptr, o2, s2);
        CHECK(bitwise_equal(convert<float>(o2), convert<float>(output)));
    }
}

struct conv_case {
    const char* name;
    index_t b = 2, c = 4, l = 8, k = 4;
    bool bias = false, past = false;
    std::string activation = "none";
};

template <class T>
void run_conv_case(const conv_case& c, double tol, int input_kind = 0) {
    INFO(c.name);
    const auto input = drawn<T, 3>({c.b, c.c, c.l}, 11, input_kind);
    const auto weight = drawn<T, 3>({c.c, 1, c.k}, 12, input_kind);
    const auto past = drawn<T, 3>({c.b, c.c, c.k - 1}, 13, 0);
    std::vector<float> bias;
    for (index_t i = 0; i < c.c; ++i) bias.push_back(float(0.25 * double(i) - 0.4));
    tensor<T, 3> output({c.b, c.c, c.l}), present({c.b, c.c, c.k - 1});
    onnx_causal_conv_with_state(c.activation, input, weight, c.bias ? &bias : nullptr, c.past ? &past : nullptr, output,
                                present);
    const la_result want =
        spec_causal_conv(c.activation, input, weight, c.bias ? &bias : nullptr, c.past ? &past : nullptr);
    CHECK(rel_error(output, want.output) < tol);
    CHECK(rel_error(present, want.state) == 0);  // the raw inputs, copied
}

}  // namespace

TEST_CASE("ONNX LinearAttention: every backend test case through the mapping equals the specified recurrence") {
    std::vector<la_case> cases = {
        {"linear", "linear"},
        {"gated", "gated"},
        {"gated_per_head_decay", "gated", 2, 4, 4, 4, 8, 8, true},
        {"delta", "delta"},
        {"gated_delta", "gated_delta"},
        {"gated_delta_beta_scalar", "gated_delta", 2, 4, 4, 4, 8, 8, false, true},
        {"gated_delta_gqa", "gated_delta", 2, 4, 8, 4},
        {"gated_delta_mqa", "gated_delta", 2, 4, 8, 1, 8, 8, false, true},
        {"decode_step", "gated_delta", 2, 1, 4, 4, 8, 8, false, false, true},
        {"prefill_with_past", "gated_delta", 2, 4, 4, 4, 8, 8, false, false, true},
        {"no_past_explicit_zeros", "gated_delta", 2, 4, 4, 4, 8, 8, false, false, true, true},
        {"explicit_scale", "gated_delta", 2, 4, 4, 4, 8, 8, false, false, false, false, 0.25f},
        {"linear_t1_no_past", "linear", 2, 1},
        // Beyond the backend tests: longer sequences over several chunks, odd head dims, GQA
        // with past states, every rule.
        {"long gated_delta gqa", "gated_delta", 1, 150, 6, 2, 24, 20, false, false, true},
        {"long gated per-head", "gated", 2, 70, 4, 4, 17, 9, true, false, true},
        {"long delta shared beta", "delta", 1, 90, 3, 3, 16, 40, false, true, true},
        {"long linear mqa", "linear", 1, 65, 4, 1, 32, 32, false, false, true},
    };
    for (const auto& c : cases) run_la_case<float>(c, 1e-5);
    // test_linear_attention_fp16: fp16 activations, so (no past_state) an fp16 present_state.
    run_la_case<fp16>({"fp16", "gated_delta", 2, 4, 8, 4}, 2e-3);
    run_la_case<bf16>({"bf16 (not a backend case)", "gated_delta", 2, 4, 8, 4}, 1e-2);
}

TEST_CASE("ONNX CausalConvWithState: every backend test case through the mapping equals the specified convolution") {
    const std::vector<conv_case> cases = {
        {"basic"},
        {"with_bias", 2, 4, 8, 4, true},
        {"with_past_state", 2, 4, 8, 4, false, true},
        {"silu", 2, 4, 8, 4, false, false, "silu"},
        {"swish_alias", 2, 4, 8, 4, false, false, "swish"},
        {"decode_step", 2, 4, 1, 4, true, true},
        {"kernel_size_one", 2, 4, 8, 1},
        {"with_bias_and_past_state", 2, 4, 8, 4, true, true},
        {"silu_with_past_state", 2, 4, 8, 4, false, true, "silu"},
        {"b1_c1_degenerate", 1, 1, 6, 4},
        {"short_input_no_past_state", 2, 4, 2, 5},
        {"short input with past (not a backend case)", 2, 40, 2, 5, true, true, "silu"},
    };
    for (const auto& c : cases) run_conv_case<float>(c, 1e-6);
    run_conv_case<fp16>({"fp16", 2, 4, 8, 4}, 2e-3, 1);
    run_conv_case<fp16>({"silu_fp16", 2, 4, 8, 4, false, false, "silu"}, 2e-3, 1);
}
