// delta_rule and gated_delta_rule (scalar gate and per-key-channel KDA gate), their decode
// steps and the double reference: one family, one executable.
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/reference/delta_rule.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "snapshot_check.hpp"
#include "test_util.hpp"

using namespace seqmix;
using namespace seqmix_test;

namespace {

struct shape {
    index_t B, N, Hk, Hv, Dk, Dv;
};

enum class gate { none, scalar, vector };
const delta_form forms[] = {delta_form::chunkwise, delta_form::recurrent};
const char* form_name(delta_form f) { return f == delta_form::chunkwise ? "chunkwise" : "recurrent"; }
const char* gate_name(gate g) {
    return g == gate::none ? "no gate" : g == gate::scalar ? "scalar gate" : "vector gate";
}

// Inputs of one problem. Without qk_l2norm the keys are scaled to norm <= 1 row by row
// (beta |k|^2 <= 2 keeps the recurrence contracting, as the models' normalized keys do).
template <class T>
struct inputs {
    tensor<T, 4> q, k, v, g4;
    tensor<T, 3> g3, beta;
    inputs(const shape& s, unsigned seed, double gate_scale = 0.3, double beta_lo = 0.05, double beta_hi = 1.0)
        : q(random_tensor<T, 4>({s.B, s.N, s.Hk, s.Dk}, seed)),
          k(random_tensor<T, 4>({s.B, s.N, s.Hk, s.Dk}, seed + 1)),
          v(random_tensor<T, 4>({s.B, s.N, s.Hv, s.Dv}, seed + 2)),
          g4(random_tensor<T, 4>({s.B, s.N, s.Hv, s.Dk}, seed + 3, -gate_scale, 0)),
          g3(random_tensor<T, 3>({s.B, s.N, s.Hv}, seed + 4, -gate_scale, 0)),
          beta(random_tensor<T, 3>({s.B, s.N, s.Hv}, seed + 5, beta_lo, beta_hi)) {
        const T shrink = T(1) / std::sqrt(T(s.Dk));
        for (index_t i = 0; i < k.size(); ++i) k.data()[i] *= shrink;
    }
};

// Runs the fast operator (element type T) and the double reference on the same values;
// returns the largest relative error over the outputs and the final state.
template <class T>
double delta_error(const shape& s, gate gk, const delta_options& opt, unsigned seed, double gate_scale = 0.3) {
    inputs<T> in(s, seed, gate_scale);
    auto init = random_tensor<T, 4>({s.B, s.Hv, s.Dk, s.Dv}, seed + 9, -0.5, 0.5);
    tensor<T, 4> out({s.B, s.N, s.Hv, s.Dv}), fin({s.B, s.Hv, s.Dk, s.Dv});
    auto qd = convert<double>(in.q);
    auto kd = convert<double>(in.k);
    auto vd = convert<double>(in.v);
    auto bd = convert<double>(in.beta);
    auto id = convert<double>(init);
    auto g3d = convert<double>(in.g3);
    auto g4d = convert<double>(in.g4);
    tensor<double, 4> ref({s.B, s.N, s.Hv, s.Dv}), ref_fin({s.B, s.Hv, s.Dk, s.Dv});
    if (gk == gate::none) {
        delta_rule(in.q.view(), in.k.view(), in.v.view(), in.beta.view(), out.view(), opt, init.view(), fin.view());
        reference::delta_rule(qd.view(), kd.view(), vd.view(), bd.view(), ref.view(), opt, id.view(), ref_fin.view());
    } else if (gk == gate::scalar) {
        gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g3.view(), in.beta.view(), out.view(), opt,
                         init.view(), fin.view());
        reference::gated_delta_rule(qd.view(), kd.view(), vd.view(), g3d.view(), bd.view(), ref.view(), opt, id.view(),
                                    ref_fin.view());
    } else {
        gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g4.view(), in.beta.view(), out.view(), opt,
                         init.view(), fin.view());
        reference::gated_delta_rule(qd.view(), kd.view(), vd.view(), g4d.view(), bd.view(), ref.view(), opt, id.view(),
                                    ref_fin.view());
    }
    for (index_t i = 0; i < out.size(); ++i) REQUIRE(std::isfinite(double(out.data()[i])));
    return std::max(max_rel_error(out, ref), max_rel_error(fin, ref_fin));
}

// Token t of a [B,N,H,D] tensor as the [B,H,D] view of a decode step (g3 / beta: [B,H]).
template <class T>
tensor_view<const T, 3> token(const tensor<T, 4>& x, index_t t) {
    const auto v = x.view();
    return tensor_view<const T, 3>(v.ptr(0, t), {v.extent(0), v.extent(2), v.extent(3)},
                                   {v.stride(0), v.stride(2), v.stride(3)});
}
template <class T>
tensor_view<const T, 2> token(const tensor<T, 3>& x, index_t t) {
    const auto v = x.view();
    return tensor_view<const T, 2>(v.ptr(0, t), {v.extent(0), v.extent(2)}, {v.stride(0), v.stride(2)});
}

}  // namespace

TEST_CASE(
    "delta rule matches the double reference: awkward sizes, every gate, with and without qk_l2norm, both forms") {
    // Around the default chunk (16 for Dk <= 64, 32 above): N = 1, 15, 16, 17, 31, 33, 777;
    // Dk != Dv, D = 3, 64, 128, odd dims, grouped heads (Hv = 2 Hk).
    const std::vector<shape> shapes = {
        {1, 1, 1, 1, 3, 3},     {2, 5, 2, 4, 3, 5},      {1, 15, 1, 1, 64, 64},  {1, 16, 1, 2, 64, 64},
        {1, 17, 1, 2, 96, 32},  {1, 31, 2, 2, 128, 128}, {1, 33, 1, 1, 128, 64}, {1, 63, 1, 1, 17, 9},
        {1, 777, 1, 2, 32, 48}, {2, 100, 1, 1, 64, 128},
    };
    unsigned seed = 100;
    for (const auto& s : shapes)
        for (gate gk : {gate::none, gate::scalar, gate::vector})
            for (bool l2 : {false, true})
                for (delta_form form : forms) {
                    delta_options o;
                    o.qk_l2norm = l2;
                    o.form = form;
                    INFO("B" << s.B << " N" << s.N << " Hk" << s.Hk << " Hv" << s.Hv << " Dk" << s.Dk << " Dv" << s.Dv
                             << ", " << gate_name(gk) << (l2 ? ", qk_l2norm" : "") << ", " << form_name(form));
                    CHECK(delta_error<float>(s, gk, o, seed) < recurrent_accuracy);
                    CHECK(delta_error<double>(s, gk, o, seed) < 1e-12);
                    seed += 7;
                }
}

TEST_CASE("delta rule: any chunk_size gives the reference's result") {
    const shape s{1, 200, 1, 2, 32, 16};
    for (int c : {1, 2, 7, 16, 37, 64, 256}) {
        delta_options o;
        o.chunk_size = c;
        o.qk_l2norm = true;
        for (gate gk : {gate::none, gate::scalar, gate::vector})
            for (delta_form form : forms) {
                o.form = form;
                INFO("chunk_size " << c << ", " << gate_name(gk) << ", " << form_name(form));
                CHECK(delta_error<double>(s, gk, o, 7) < 1e-12);
            }
    }
}

TEST_CASE("delta rule: gates from 0 to -20 per token, -inf, and extreme mixes stay exact") {
    const shape s{1, 150, 1, 1, 64, 32};
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<std::pair<const char*, std::function<double(index_t, index_t)>>> patterns = {
        {"0 to -20 per token", [](index_t t, index_t c) { return -20.0 * double((t * 7 + c * 3) % 11) / 10.0; }},
        {"-inf at some tokens",
         [inf](index_t t, index_t c) { return (t % 23 == 3 || (c == 1 && t % 9 == 0)) ? -inf : -0.1; }},
        {"-1e4 then -1e-2", [](index_t t, index_t) { return t % 32 == 0 ? -1e4 : -1e-2; }},
        {"-1e30 then -1", [](index_t t, index_t) { return t % 16 == 5 ? -1e30 : -1.0; }},
        {"0 and -inf mixed", [inf](index_t t, index_t c) { return (t + c) % 3 == 0 ? -inf : 0.0; }},
        {"0", [](index_t, index_t) { return 0.0; }},
    };
    for (const auto& [name, pattern] : patterns) {
        inputs<double> in(s, 11);
        for (index_t t = 0; t < s.N; ++t) {
            in.g3(0, t, 0) = pattern(t, 0);
            for (index_t c = 0; c < s.Dk; ++c) in.g4(0, t, 0, c) = pattern(t, c);
        }
        for (gate gk : {gate::scalar, gate::vector})
            for (int threads : {1, 2})
                for (delta_form form : forms) {
                    auto qf = convert<float>(in.q);
                    auto kf = convert<float>(in.k);
                    auto vf = convert<float>(in.v);
                    auto bf = convert<float>(in.beta);
                    auto g3f = convert<float>(in.g3);
                    auto g4f = convert<float>(in.g4);
                    tensor<float, 4> out({1, s.N, 1, s.Dv});
                    tensor<double, 4> ref({1, s.N, 1, s.Dv});
                    delta_options o;
                    o.num_threads = threads;
                    o.qk_l2norm = true;
                    o.form = form;
                    if (gk == gate::scalar) {
                        gated_delta_rule(qf.view(), kf.view(), vf.view(), g3f.view(), bf.view(), out.view(), o);
                        reference::gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g3.view(), in.beta.view(),
                                                    ref.view(), o);
                    } else {
                        gated_delta_rule(qf.view(), kf.view(), vf.view(), g4f.view(), bf.view(), out.view(), o);
                        reference::gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g4.view(), in.beta.view(),
                                                    ref.view(), o);
                    }
                    INFO(name << ", " << gate_name(gk) << ", " << threads << " threads, " << form_name(form));
                    for (index_t i = 0; i < out.size(); ++i) REQUIRE(std::isfinite(out.data()[i]));
                    CHECK(max_rel_error(out, ref) < 1e-5);
                }
    }
}

TEST_CASE("delta rule over N = 32768: beta near 0 and near 2 with normalized keys stays bounded, fp32 within 1e-5",
          "[long]") {
    const shape s{1, 32768, 1, 1, 32, 32};
    for (const auto& [lo, hi] : {std::pair<double, double>{1e-4, 1e-3}, {1.99, 2.0}, {0.05, 1.0}})
        for (gate gk : {gate::none, gate::scalar, gate::vector})
            for (delta_form form : forms) {
                inputs<float> in(s, 71, 0.05, lo, hi);
                tensor<float, 4> out({1, s.N, 1, s.Dv}), fin({1, 1, s.Dk, s.Dv});
                tensor<double, 4> ref({1, s.N, 1, s.Dv}), ref_fin({1, 1, s.Dk, s.Dv});
                auto qd = convert<double>(in.q);
                auto kd = convert<double>(in.k);
                auto vd = convert<double>(in.v);
                auto bd = convert<double>(in.beta);
                auto g3d = convert<double>(in.g3);
                auto g4d = convert<double>(in.g4);
                delta_options o;
                o.qk_l2norm = true;
                o.form = form;
                if (gk == gate::none) {
                    delta_rule(in.q.view(), in.k.view(), in.v.view(), in.beta.view(), out.view(), o, {}, fin.view());
                    reference::delta_rule(qd.view(), kd.view(), vd.view(), bd.view(), ref.view(), o, {},
                                          ref_fin.view());
                } else if (gk == gate::scalar) {
                    gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g3.view(), in.beta.view(), out.view(), o,
                                     {}, fin.view());
                    reference::gated_delta_rule(qd.view(), kd.view(), vd.view(), g3d.view(), bd.view(), ref.view(), o,
                                                {}, ref_fin.view());
                } else {
                    gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g4.view(), in.beta.view(), out.view(), o,
                                     {}, fin.view());
                    reference::gated_delta_rule(qd.view(), kd.view(), vd.view(), g4d.view(), bd.view(), ref.view(), o,
                                                {}, ref_fin.view());
                }
                // The fp32 recurrence itself, token by token (the decode step), for scale: with
                // beta = 2 and no gate each step is a reflection, nothing contracts, and fp32
                // rounding accumulates over the sequence in any evaluation order.
                tensor<float, 4> stepped({1, s.N, 1, s.Dv}), S({1, 1, s.Dk, s.Dv});
                delta_step_options so;
                so.qk_l2norm = true;
                for (index_t t = 0; t < s.N; ++t) {
                    const tensor_view<float, 3> o_t(stepped.view().ptr(0, t), {1, 1, s.Dv});
                    if (gk == gate::none)
                        delta_rule_step(token(in.q, t), token(in.k, t), token(in.v, t), token(in.beta, t), o_t,
                                        S.view(), so);
                    else if (gk == gate::scalar)
                        gated_delta_rule_step(token(in.q, t), token(in.k, t), token(in.v, t), token(in.g3, t),
                                              token(in.beta, t), o_t, S.view(), so);
                    else
                        gated_delta_rule_step(token(in.q, t), token(in.k, t), token(in.v, t), token(in.g4, t),
                                              token(in.beta, t), o_t, S.view(), so);
                }
                double largest = 0;
                for (index_t i = 0; i < fin.size(); ++i) largest = std::max(largest, std::abs(double(fin.data()[i])));
                const double err = std::max(max_rel_error(out, ref), max_rel_error(fin, ref_fin));
                const double step_err = std::max(max_rel_error(stepped, ref), max_rel_error(S, ref_fin));
                std::printf(
                    "N=32768 %s, %s, beta in [%g, %g]: fp32 vs double %.3g (decode steps %.3g), largest state entry "
                    "%.3g\n",
                    gate_name(gk), form_name(form), lo, hi, err, step_err, largest);
                INFO(gate_name(gk) << ", " << form_name(form) << ", beta in [" << lo << ", " << hi << "]: decode steps "
                                   << step_err);
                CHECK(largest < 100);  // bounded: a random walk of reflections at worst, O(sqrt(N)) = 181
                CHECK(err < std::max(1e-5, 2 * step_err));
                if (!(gk == gate::none && lo > 1.5)) CHECK(err < 1e-5);
            }
}

TEST_CASE("delta rule: whole sequence == pieces passing states == token-by-token decode steps in a pool") {
    const shape s{2, 77, 1, 2, 24, 20};
    inputs<double> in(s, 21);
    for (gate gk : {gate::none, gate::scalar, gate::vector})
        for (delta_form form : forms) {
            INFO(gate_name(gk) << ", " << form_name(form));
            delta_options o;
            o.qk_l2norm = true;
            o.form = form;
            auto call = [&](index_t t0, index_t n, tensor_view<const double, 4> init, tensor_view<double, 4> fin,
                            tensor<double, 4>& out) {
                auto q = slice(in.q.view(), 1, t0, n), k = slice(in.k.view(), 1, t0, n),
                     v = slice(in.v.view(), 1, t0, n);
                auto b = slice(in.beta.view(), 1, t0, n);
                auto ov = slice(out.view(), 1, t0, n);
                if (gk == gate::none) delta_rule(q, k, v, b, ov, o, init, fin);
                else if (gk == gate::scalar)
                    gated_delta_rule(q, k, v, slice(in.g3.view(), 1, t0, n), b, ov, o, init, fin);
                else gated_delta_rule(q, k, v, slice(in.g4.view(), 1, t0, n), b, ov, o, init, fin);
            };
            tensor<double, 4> whole({s.B, s.N, s.Hv, s.Dv}), fin_whole({s.B, s.Hv, s.Dk, s.Dv});
            call(0, s.N, {}, fin_whole.view(), whole);
            // Pieces of 30, 1, 46 tokens, each from the previous final state; the last in place.
            tensor<double, 4> split({s.B, s.N, s.Hv, s.Dv}), st1({s.B, s.Hv, s.Dk, s.Dv}), st2({s.B, s.Hv, s.Dk, s.Dv});
            call(0, 30, {}, st1.view(), split);
            call(30, 1, st1.view(), st2.view(), split);
            call(31, 46, st2.view(), st2.view(), split);
            CHECK(max_rel_error(split, whole) < 1e-12);
            CHECK(max_rel_error(st2, fin_whole) < 1e-12);
            // Token by token with the decode step, in a pool of 5 slots with permuted slots.
            tensor<double, 4> pool({5, s.Hv, s.Dk, s.Dv});
            const std::int32_t slots[] = {4, 1};
            tensor<double, 4> stepped({s.B, s.N, s.Hv, s.Dv});
            delta_step_options so;
            so.qk_l2norm = true;
            so.state_indices = slots;
            for (index_t t = 0; t < s.N; ++t) {
                const auto o_t = tensor_view<double, 3>(stepped.view().ptr(0, t), {s.B, s.Hv, s.Dv},
                                                        {stepped.view().stride(0), stepped.view().stride(2), 1});
                if (gk == gate::none)
                    delta_rule_step(token(in.q, t), token(in.k, t), token(in.v, t), token(in.beta, t), o_t, pool.view(),
                                    so);
                else if (gk == gate::scalar)
                    gated_delta_rule_step(token(in.q, t), token(in.k, t), token(in.v, t), token(in.g3, t),
                                          token(in.beta, t), o_t, pool.view(), so);
                else
                    gated_delta_rule_step(token(in.q, t), token(in.k, t), token(in.v, t), token(in.g4, t),
                                          token(in.beta, t), o_t, pool.view(), so);
            }
            CHECK(max_rel_error(stepped, whole) < 1e-12);
            for (index_t b = 0; b < s.B; ++b)
                for (index_t h = 0; h < s.Hv; ++h)
                    for (index_t d = 0; d < s.Dk; ++d)
                        for (index_t e = 0; e < s.Dv; ++e)
                            REQUIRE(pool(slots[b], h, d, e) == Approx(fin_whole(b, h, d, e)).margin(1e-10));
        }
}

TEST_CASE("delta rule: decode step on a state pool with strided columns equals the contiguous one") {
    const index_t B = 3, H = 2, Dk = 20, Dv = 12;
    auto q = random_tensor<float, 3>({B, H, Dk}, 1), k = random_tensor<float, 3>({B, H, Dk}, 2);
    auto v = random_tensor<float, 3>({B, H, Dv}, 3), g = random_tensor<float, 3>({B, H, Dk}, 4, -0.5, 0);
    auto beta = random_tensor<float, 2>({B, H}, 5, 0.1, 0.9);
    auto pool = random_tensor<float, 4>({B, H, Dk, Dv}, 6, -0.5, 0.5);
    // The same pool stored [B,H,Dv,Dk] and viewed as [B,H,Dk,Dv] (column stride Dk).
    tensor<float, 4> pool_t({B, H, Dv, Dk});
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t d = 0; d < Dk; ++d)
                for (index_t e = 0; e < Dv; ++e) pool_t(b, h, e, d) = pool(b, h, d, e);
    auto strided = permute(pool_t.view(), {0, 1, 3, 2});
    tensor<float, 3> o1({B, H, Dv}), o2({B, H, Dv});
    delta_step_options so;
    so.qk_l2norm = true;
    gated_delta_rule_step(q.view(), k.view(), v.view(), g.view(), beta.view(), o1.view(), pool.view(), so);
    gated_delta_rule_step(q.view(), k.view(), v.view(), g.view(), beta.view(), o2.view(), strided, so);
    CHECK(max_rel_error(o2, o1) < 1e-6);
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t d = 0; d < Dk; ++d)
                for (index_t e = 0; e < Dv; ++e) REQUIRE(strided(b, h, d, e) == Approx(pool(b, h, d, e)).margin(1e-6));
}

TEST_CASE("delta rule: varlen (cu_seqlens) equals separate calls, with per-sequence states") {
    const std::vector<index_t> lens = {5, 0, 70, 1, 64};
    std::vector<std::int32_t> cu{0};
    for (auto n : lens) cu.push_back(cu.back() + std::int32_t(n));
    const shape s{1, cu.back(), 2, 2, 16, 8};
    inputs<double> in(s, 31);
    const index_t S = index_t(lens.size());
    for (gate gk : {gate::none, gate::scalar, gate::vector})
        for (delta_form form : forms) {
            INFO(gate_name(gk) << ", " << form_name(form));
            tensor<double, 4> out({1, s.N, s.Hv, s.Dv}), fin({S, s.Hv, s.Dk, s.Dv});
            auto init = random_tensor<double, 4>({S, s.Hv, s.Dk, s.Dv}, 5, -0.5, 0.5);
            auto run = [&](index_t t0, index_t n, const delta_options& o, tensor_view<const double, 4> st0,
                           tensor_view<double, 4> st1, tensor_view<double, 4> ov) {
                auto q = slice(in.q.view(), 1, t0, n), k = slice(in.k.view(), 1, t0, n),
                     v = slice(in.v.view(), 1, t0, n);
                auto b = slice(in.beta.view(), 1, t0, n);
                if (gk == gate::none) delta_rule(q, k, v, b, ov, o, st0, st1);
                else if (gk == gate::scalar)
                    gated_delta_rule(q, k, v, slice(in.g3.view(), 1, t0, n), b, ov, o, st0, st1);
                else gated_delta_rule(q, k, v, slice(in.g4.view(), 1, t0, n), b, ov, o, st0, st1);
            };
            delta_options var, one;
            var.cu_seqlens = cu.data();
            var.num_seqs = int(S);
            var.form = one.form = form;
            run(0, s.N, var, init.view(), fin.view(), out.view());
            for (index_t q = 0; q < S; ++q) {
                const index_t t0 = cu[std::size_t(q)], n = lens[std::size_t(q)];
                tensor<double, 4> o({1, std::max<index_t>(n, 1), s.Hv, s.Dv}), f({1, s.Hv, s.Dk, s.Dv});
                run(t0, n, one, slice(init.view(), 0, q, 1), f.view(), slice(o.view(), 1, 0, n));
                for (index_t t = 0; t < n; ++t)
                    for (index_t h = 0; h < s.Hv; ++h)
                        for (index_t e = 0; e < s.Dv; ++e)
                            REQUIRE(out(0, t0 + t, h, e) == Approx(o(0, t, h, e)).margin(1e-12));
                for (index_t h = 0; h < s.Hv; ++h)
                    for (index_t d = 0; d < s.Dk; ++d)
                        for (index_t e = 0; e < s.Dv; ++e)
                            REQUIRE(fin(q, h, d, e) == Approx(f(0, h, d, e)).margin(1e-12));
            }
        }
}

TEST_CASE("delta rule: bitwise identical for 1, 2, 3 and 5 threads (head groups, value split, segments)") {
    // B*H = 1 with Dv = 64 or 96 runs the value split; Dv = 8 (one column block) the
    // segments; B*H = 8 the head groups.
    for (const shape s : {shape{1, 700, 1, 1, 64, 64}, shape{1, 333, 1, 1, 40, 96}, shape{1, 500, 1, 1, 16, 8},
                          shape{2, 300, 2, 4, 32, 40}}) {
        inputs<float> in(s, 41);
        auto init = random_tensor<float, 4>({s.B, s.Hv, s.Dk, s.Dv}, 43, -0.5, 0.5);
        for (gate gk : {gate::none, gate::scalar, gate::vector})
            for (delta_form form : forms) {
                tensor<float, 4> o1, f1;
                for (int threads : {1, 2, 3, 5}) {
                    tensor<float, 4> o({s.B, s.N, s.Hv, s.Dv}), f({s.B, s.Hv, s.Dk, s.Dv});
                    delta_options d;
                    d.num_threads = threads;
                    d.qk_l2norm = true;
                    d.form = form;
                    if (gk == gate::none)
                        delta_rule(in.q.view(), in.k.view(), in.v.view(), in.beta.view(), o.view(), d, init.view(),
                                   f.view());
                    else if (gk == gate::scalar)
                        gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g3.view(), in.beta.view(), o.view(),
                                         d, init.view(), f.view());
                    else
                        gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g4.view(), in.beta.view(), o.view(),
                                         d, init.view(), f.view());
                    if (threads == 1) {
                        o1 = std::move(o);
                        f1 = std::move(f);
                        continue;
                    }
                    INFO("B" << s.B << " N" << s.N << " Hv" << s.Hv << " Dv" << s.Dv << ", " << gate_name(gk) << ", "
                             << form_name(form) << ", " << threads << " threads");
                    CHECK(bitwise_equal(o, o1));
                    CHECK(bitwise_equal(f, f1));
                }
            }
    }
}

TEST_CASE("delta rule: bad inputs give seqmix::error naming the argument, nothing written") {
    const shape s{2, 10, 2, 4, 8, 6};
    inputs<float> in(s, 51);
    tensor<float, 4> out({2, 10, 4, 6}, 42.0f);
    const auto q = in.q.view();
    const auto k = in.k.view();
    const auto v = in.v.view();
    auto beta_bad = convert<float>(in.beta);
    beta_bad(1, 3, 2) = 2.5f;
    expect_error([&] { delta_rule(q, k, v, beta_bad.view(), out.view()); },
                 "'beta': expected values in [0, 2], given 2.5 at [1,3,2]");
    beta_bad(1, 3, 2) = -0.1f;
    expect_error([&] { delta_rule(q, k, v, beta_bad.view(), out.view()); }, "'beta': expected values in [0, 2]");
    beta_bad(1, 3, 2) = std::nanf("");
    expect_error([&] { delta_rule(q, k, v, beta_bad.view(), out.view()); },
                 "'beta': expected values in [0, 2], given nan");
    auto beta_shape = random_tensor<float, 3>({2, 10, 2}, 1, 0, 1);
    expect_error([&] { delta_rule(q, k, v, beta_shape.view(), out.view()); }, "'beta': expected shape [2,10,4]");
    auto g_bad = random_tensor<float, 4>({2, 10, 4, 7}, 2, -1, 0);
    expect_error([&] { gated_delta_rule(q, k, v, g_bad.view(), in.beta.view(), out.view()); },
                 "'g': expected shape [2,10,4,8]");
    auto g_pos = convert<float>(in.g3);
    g_pos(0, 4, 1) = 0.25f;
    expect_error([&] { gated_delta_rule(q, k, v, g_pos.view(), in.beta.view(), out.view()); },
                 "log forget gates <= 0, given 0.25 at [0,4,1]");
    tensor<float, 4> st_bad({2, 4, 8, 5});
    expect_error([&] { delta_rule(q, k, v, in.beta.view(), out.view(), {}, st_bad.view()); },
                 "'initial_state': expected shape [2,4,8,6]");
    delta_options cs;
    cs.chunk_size = 2000;
    expect_error([&] { delta_rule(q, k, v, in.beta.view(), out.view(), cs); }, "'chunk_size'");
    // A bf16 initial state and an fp16 final state over the same bytes are not an in-place update.
    tensor<bf16, 4> st16({2, 4, 8, 6});
    const tensor_view<fp16, 4> st16_as_fp16(reinterpret_cast<fp16*>(st16.data()), {2, 4, 8, 6});
    expect_error([&] { delta_rule(q, k, v, in.beta.view(), out.view(), {}, st16.view(), st16_as_fp16); },
                 "'final_state': expected exactly the view of 'initial_state' (in-place update) or memory disjoint");
    // Steps: beta of the wrong shape, a slot out of range, a bad beta value.
    auto qs = random_tensor<float, 3>({2, 2, 8}, 8), ks = random_tensor<float, 3>({2, 2, 8}, 9);
    auto vs = random_tensor<float, 3>({2, 4, 6}, 10);
    tensor<float, 3> os({2, 4, 6}, 42.0f);
    tensor<float, 4> pool({3, 4, 8, 6}, 0.5f);
    auto bs = random_tensor<float, 2>({2, 4}, 11, 0, 1);
    auto bs_bad = random_tensor<float, 2>({2, 3}, 12, 0, 1);
    const std::int32_t good[] = {2, 0}, idx[] = {0, 3};
    delta_step_options ok, so;
    ok.state_indices = good;
    so.state_indices = idx;
    expect_error([&] { delta_rule_step(qs.view(), ks.view(), vs.view(), bs_bad.view(), os.view(), pool.view(), ok); },
                 "'beta': expected shape [2,4]");
    expect_error([&] { delta_rule_step(qs.view(), ks.view(), vs.view(), bs.view(), os.view(), pool.view(), so); },
                 "'state_indices': expected pad_slot (-1) or 0 <= state_indices[1] < 3");
    bs(1, 1) = 3.0f;
    auto gs = random_tensor<float, 2>({2, 4}, 13, -1, 0);
    expect_error(
        [&] {
            gated_delta_rule_step(qs.view(), ks.view(), vs.view(), gs.view(), bs.view(), os.view(), pool.view(), ok);
        },
        "'beta': expected values in [0, 2], given 3 at [1,1]");
    for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 42.0f);
    for (index_t i = 0; i < os.size(); ++i) REQUIRE(os.data()[i] == 42.0f);
    for (index_t i = 0; i < pool.size(); ++i) REQUIRE(pool.data()[i] == 0.5f);
    CHECK_THROWS_AS(reference::delta_rule(q, k, v, beta_bad.view(), out.view()), seqmix::error);
}

// ---- 16-bit storage: q, k, v, g, beta, out and states as bf16 / fp16 ----

namespace {

// Runs gated_delta_rule (or delta_rule for gate::none) on views of any element types.
template <class QV, class GV3, class GV4, class BV, class OV, class SIV, class SOV>
void run_delta(gate gk, const QV& q, const QV& k, const QV& v, const GV3& g3, const GV4& g4, const BV& beta,
               const OV& out, const delta_options& opt, const SIV& init, const SOV& fin) {
    if (gk == gate::none) delta_rule(q, k, v, beta, out, opt, init, fin);
    else if (gk == gate::scalar) gated_delta_rule(q, k, v, g3, beta, out, opt, init, fin);
    else gated_delta_rule(q, k, v, g4, beta, out, opt, init, fin);
}

template <class QV, class GV3, class GV4, class BV, class OV, class S>
void step_delta(gate gk, const QV& q, const QV& k, const QV& v, const GV3& g3, const GV4& g4, const BV& beta,
                const OV& out, const tensor_view<S, 4>& pool, const delta_step_options& opt) {
    if (gk == gate::none) delta_rule_step(q, k, v, beta, out, pool, opt);
    else if (gk == gate::scalar) gated_delta_rule_step(q, k, v, g3, beta, out, pool, opt);
    else gated_delta_rule_step(q, k, v, g4, beta, out, pool, opt);
}

// q, k, v stored as In, gates as G, beta as Bt, out as O, states as S: the bits of the float
// operator on the same values, outputs and states rounded once at the end (3 threads against 1,
// both forms, every gate); decode steps on a pool of S states: the float step with its state
// rounded into S after every token.
template <class In, class G, class Bt, class O, class S>
void check_stored_delta(const char* name) {
    INFO(name);
    for (const shape s : {shape{2, 70, 2, 4, 40, 24},
                          shape{1, 40, 1, 2, 64, 64}}) {  // D not a multiple of the vector width; full column blocks
        INFO("Dk " << s.Dk << " Dv " << s.Dv);
        const inputs<float> in(s, 61);
        const auto q = convert<In>(in.q);
        const auto k = convert<In>(in.k);
        const auto v = convert<In>(in.v);
        const auto g3 = convert<G>(in.g3);
        const auto g4 = convert<G>(in.g4);
        const auto beta = convert<Bt>(in.beta);
        const auto qf = convert<float>(q);
        const auto kf = convert<float>(k);
        const auto vf = convert<float>(v);
        const auto g3f = convert<float>(g3);
        const auto g4f = convert<float>(g4);
        const auto bf = convert<float>(beta);
        const auto init = convert<S>(random_tensor<float, 4>({s.B, s.Hv, s.Dk, s.Dv}, 69, -0.5, 0.5));
        const auto initf = convert<float>(init);
        for (gate gk : {gate::none, gate::scalar, gate::vector})
            for (delta_form form : forms) {
                INFO(gate_name(gk) << ", " << form_name(form));
                delta_options opt;
                opt.form = form;
                opt.num_threads = 1;
                tensor<float, 4> of({s.B, s.N, s.Hv, s.Dv}), ff({s.B, s.Hv, s.Dk, s.Dv});
                run_delta(gk, qf.view(), kf.view(), vf.view(), g3f.view(), g4f.view(), bf.view(), of.view(), opt,
                          initf.view(), ff.view());
                opt.num_threads = 3;
                tensor<O, 4> os({s.B, s.N, s.Hv, s.Dv});
                tensor<S, 4> fs({s.B, s.Hv, s.Dk, s.Dv});
                run_delta(gk, q.view(), k.view(), v.view(), g3.view(), g4.view(), beta.view(), os.view(), opt,
                          init.view(), fs.view());
                CHECK(stores_rounded(os, of));
                CHECK(stores_rounded(fs, ff));
                // The float operator is float accurate: so is this one on the rounded inputs.
                if (form == delta_form::recurrent) {
                    tensor<double, 4> ref({s.B, s.N, s.Hv, s.Dv}), ref_fin({s.B, s.Hv, s.Dk, s.Dv});
                    const auto qd = convert<double>(qf);
                    const auto kd = convert<double>(kf);
                    const auto vd = convert<double>(vf);
                    const auto g3d = convert<double>(g3f);
                    const auto g4d = convert<double>(g4f);
                    const auto bd = convert<double>(bf);
                    const auto id = convert<double>(initf);
                    run_delta(gk, qd.view(), kd.view(), vd.view(), g3d.view(), g4d.view(), bd.view(), ref.view(), opt,
                              id.view(), ref_fin.view());
                    CHECK(max_rel_error(of, ref) < 1e-5);
                }
                // Decode steps, slots permuted in a pool of 3.
                tensor<S, 4> pool({3, s.Hv, s.Dk, s.Dv});
                tensor<float, 4> poolf({3, s.Hv, s.Dk, s.Dv});
                const std::int32_t slots[] = {2, 0};
                for (index_t b = 0; b < s.B; ++b)
                    for (index_t h = 0; h < s.Hv; ++h)
                        for (index_t d = 0; d < s.Dk; ++d)
                            for (index_t e = 0; e < s.Dv; ++e) {
                                pool(slots[b], h, d, e) = init(b, h, d, e);
                                poolf(slots[b], h, d, e) = initf(b, h, d, e);
                            }
                delta_step_options so;
                so.state_indices = slots;
                so.num_threads = 2;
                for (index_t t = 0; t < 6; ++t) {
                    tensor<O, 3> o_s({s.B, s.Hv, s.Dv});
                    tensor<float, 3> o_f({s.B, s.Hv, s.Dv});
                    step_delta(gk, token(q, t), token(k, t), token(v, t), token(g3, t), token(g4, t), token(beta, t),
                               o_s.view(), pool.view(), so);
                    step_delta(gk, token(qf, t), token(kf, t), token(vf, t), token(g3f, t), token(g4f, t), token(bf, t),
                               o_f.view(), poolf.view(), so);
                    CHECK(stores_rounded(o_s, o_f));
                    CHECK(stores_rounded(pool, poolf));
                    poolf = convert<float>(convert<S>(poolf));  // the state as the pool keeps it
                }
            }
    }
}

}  // namespace

TEST_CASE(
    "delta rule in 16-bit storage: the float operator's bits on the same "
    "values rounded once; steps on 16-bit state pools") {
    check_stored_delta<bf16, bf16, bf16, bf16, float>("bf16 inputs and out, float states");
    check_stored_delta<bf16, float, bf16, float, bf16>("bf16 q, k, v, beta; float gates and out; bf16 states (vLLM)");
    check_stored_delta<fp16, fp16, float, fp16, fp16>("fp16 everything but beta");
}

// ---- State pools in the full operators (state_indices, has_initial_state, pad_slot) ----

TEST_CASE(
    "delta rule on a state pool: gathering, the dense call and scattering, bitwise; pad rows and other slots "
    "untouched") {
    const shape s{3, 45, 2, 4, 24, 20};
    const inputs<float> in(s, 81);
    const index_t slots = 6, per_slot = s.Hv * s.Dk * s.Dv;
    const auto pool0 = random_tensor<float, 4>({slots, s.Hv, s.Dk, s.Dv}, 82, -0.5, 0.5);
    const std::int32_t idx[] = {4, pad_slot, 1};
    const std::uint8_t has[] = {1, 1, 0};  // the third starts from zeros
    for (gate gk : {gate::none, gate::scalar, gate::vector})
        for (delta_form form : forms)
            for (int threads : {1, 2, 3, 5}) {
                INFO(gate_name(gk) << ", " << form_name(form) << ", " << threads << " threads");
                delta_options o;
                o.form = form;
                o.num_threads = threads;
                // Dense: the pool's slots gathered (zeros where has_initial_state is 0).
                tensor<float, 4> init({s.B, s.Hv, s.Dk, s.Dv}), fin({s.B, s.Hv, s.Dk, s.Dv}),
                    dense({s.B, s.N, s.Hv, s.Dv});
                for (index_t b = 0; b < s.B; ++b)
                    if (idx[b] != pad_slot && has[b])
                        std::copy(pool0.data() + idx[b] * per_slot, pool0.data() + (idx[b] + 1) * per_slot,
                                  init.data() + b * per_slot);
                run_delta(gk, in.q.view(), in.k.view(), in.v.view(), in.g3.view(), in.g4.view(), in.beta.view(),
                          dense.view(), o, init.view(), fin.view());
                // The pool, updated in place.
                tensor<float, 4> pool = convert<float>(pool0);
                tensor<float, 4> out({s.B, s.N, s.Hv, s.Dv}, 7.0f);
                o.state_indices = idx;
                o.has_initial_state = has;
                run_delta(gk, in.q.view(), in.k.view(), in.v.view(), in.g3.view(), in.g4.view(), in.beta.view(),
                          out.view(), o, pool.view(), pool.view());
                const index_t per_row = s.N * s.Hv * s.Dv;
                for (index_t b = 0; b < s.B; ++b)
                    for (index_t i = 0; i < per_row; ++i) {
                        const float want = idx[b] == pad_slot ? 7.0f : dense.data()[b * per_row + i];
                        REQUIRE(same_bits(out.data()[b * per_row + i], want));
                    }
                for (index_t slot = 0; slot < slots; ++slot) {
                    const index_t b = slot == 4 ? 0 : slot == 1 ? 2 : -1;  // the row written to it, or none
                    for (index_t i = 0; i < per_slot; ++i) {
                        const float want = b >= 0 ? fin.data()[b * per_slot + i] : pool0.data()[slot * per_slot + i];
                        REQUIRE(same_bits(pool.data()[slot * per_slot + i], want));
                    }
                }
            }
    // Bad pools: nothing written.
    tensor<float, 4> pool = convert<float>(pool0), other = convert<float>(pool0);
    tensor<float, 4> out({s.B, s.N, s.Hv, s.Dv}, 7.0f);
    delta_options o;
    const std::int32_t dup[] = {1, 3, 1}, far[] = {0, 6, 2};
    auto call = [&](const std::int32_t* indices, tensor_view<const float, 4> init, tensor_view<float, 4> fin) {
        o.state_indices = indices;
        delta_rule(in.q.view(), in.k.view(), in.v.view(), in.beta.view(), out.view(), o, init, fin);
    };
    expect_error([&] { call(dup, pool.view(), pool.view()); },
                 "'state_indices': expected distinct slots, given slot 1 at rows 0 and 2");
    expect_error([&] { call(far, pool.view(), pool.view()); },
                 "'state_indices': expected pad_slot (-1) or 0 <= state_indices[1] < 6, given 6");
    expect_error([&] { call(idx, other.view(), pool.view()); }, "'initial_state': expected the view of final_state");
    expect_error([&] { call(idx, pool.view(), {}); }, "'final_state': expected the state pool (state_indices given)");
    tensor<float, 4> small({slots, s.Hv, s.Dk, s.Dv + 1});
    expect_error([&] { call(idx, small.view(), small.view()); }, "'final_state': expected shape [6,4,24,20]");
    for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 7.0f);
    CHECK(bitwise_equal(pool, pool0));
}

// ---- Snapshots (snapshot_interval, snapshot_indices): speculative decoding, prefix caching ----

TEST_CASE("delta rule snapshots: equal the reference and a call that ends there; restarts give the rest; any threads") {
    // Chunks of 8: snapshots every 1 and 3 tokens cut chunks, 20 cuts them unevenly, 32 falls
    // on chunk boundaries. Dv = 24 is three double vectors (AVX-512): one long sequence takes
    // the value split.
    for (const auto& lens : {std::vector<index_t>{5, 9, 37, 2, 0, 70, 8}, std::vector<index_t>{77}}) {
        index_t N = 0;
        for (index_t n : lens) N += n;
        const shape s{1, N, 2, 4, 16, 24};
        const inputs<double> in(s, 91);
        for (gate gk : {gate::none, gate::scalar, gate::vector})
            for (delta_form form : forms) {
                INFO(gate_name(gk) << ", " << form_name(form));
                delta_options base;
                base.form = form;
                base.chunk_size = 8;
                check_snapshots<4, 4>(base, lens, {s.Hv, s.Dk, s.Dv}, {s.Hv, s.Dv}, {1, 3, 20, 32},
                                      [&](bool ref, const delta_options& o, index_t t0, index_t n,
                                          tensor_view<double, 4> pool, tensor_view<double, 4> out) {
                                          const auto q = slice(in.q.view(), 1, t0, n), k = slice(in.k.view(), 1, t0, n),
                                                     v = slice(in.v.view(), 1, t0, n);
                                          const auto b = slice(in.beta.view(), 1, t0, n);
                                          const auto g3 = slice(in.g3.view(), 1, t0, n);
                                          const auto g4 = slice(in.g4.view(), 1, t0, n);
                                          if (gk == gate::none) {
                                              if (ref) reference::delta_rule(q, k, v, b, out, o, pool, pool);
                                              else delta_rule(q, k, v, b, out, o, pool, pool);
                                          } else if (gk == gate::scalar) {
                                              if (ref) reference::gated_delta_rule(q, k, v, g3, b, out, o, pool, pool);
                                              else gated_delta_rule(q, k, v, g3, b, out, o, pool, pool);
                                          } else {
                                              if (ref) reference::gated_delta_rule(q, k, v, g4, b, out, o, pool, pool);
                                              else gated_delta_rule(q, k, v, g4, b, out, o, pool, pool);
                                          }
                                      });
            }
    }
}

TEST_CASE(
    "delta rule: the automatic form is the one the host's tuning names; snapshots within a chunk take the recurrence") {
    // Dk = Dv = 128: a 64 KiB state, beyond the L1 of the Intel hosts (chunkwise there).
    for (index_t d : {16, 128}) {
        INFO("Dk = Dv = " << d);
        const shape s{1, 40, 2, 2, d, d};
        const inputs<float> in(s, 5);
        const std::int32_t slot[] = {0}, snapshots[] = {1, 2, 3, 4};
        auto run = [&](delta_form form, int interval) {
            tensor<float, 4> pool({5, s.Hv, s.Dk, s.Dv}), out({s.B, s.N, s.Hv, s.Dv});
            delta_options o;
            o.form = form;
            o.chunk_size = 16;
            o.state_indices = slot;
            o.snapshot_interval = interval;
            o.snapshot_indices = interval > 0 ? snapshots : nullptr;
            o.max_snapshots = interval > 0 ? 4 : 0;
            gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g3.view(), in.beta.view(), out.view(), o,
                             pool.view(), pool.view());
            return std::make_pair(std::move(out), std::move(pool));
        };
        const bool recurrent = kernels::delta_recurrence_pays(std::size_t(d * d) * sizeof(float));
        const auto automatic = run(delta_form::automatic, 0);
        const auto named = run(recurrent ? delta_form::recurrent : delta_form::chunkwise, 0);
        CHECK(bitwise_equal(automatic.first, named.first));
        CHECK(bitwise_equal(automatic.second, named.second));
        const auto cut = run(delta_form::automatic, 10), cut_recurrent = run(delta_form::recurrent, 10);
        CHECK(bitwise_equal(cut.first, cut_recurrent.first));
        CHECK(bitwise_equal(cut.second, cut_recurrent.second));
    }
}

// ---- Gates projected in the kernel (A_log, dt_bias, beta_sigmoid) ----

TEST_CASE(
    "gated delta rule with gates projected in the kernel: the reference's, the bits of precomputed gates, steps") {
    const shape s{2, 45, 2, 4, 24, 20};
    const inputs<float> in(s, 121);
    auto a = random_tensor<float, 3>({s.B, s.N, s.Hv}, 122, -6, 6),
         b = random_tensor<float, 3>({s.B, s.N, s.Hv}, 123, -8, 8);
    a(0, 3, 1) = -INFINITY, a(1, 7, 2) = INFINITY, a(0, 9, 0) = 40, b(1, 2, 3) = -INFINITY, b(0, 5, 0) = INFINITY;
    const std::vector<float> A_log{-1.5f, 0.3f, -80.0f, 2.0f}, dt_bias{0.5f, -1.0f, 0.0f, 0.25f};
    // The gates the kernel computes, precomputed with the same float expressions.
    tensor<float, 3> g({s.B, s.N, s.Hv}), beta({s.B, s.N, s.Hv});
    const seqmix::detail::gate_projection project{A_log.data(), dt_bias.data()};
    seqmix::detail::delta_gates rate;
    rate.beta_sigmoid = true;
    for (index_t i = 0; i < g.size(); ++i) {
        g.data()[i] = project(a.data()[i], i % s.Hv);
        beta.data()[i] = rate.rate(b.data()[i]);
    }
    auto init = random_tensor<float, 4>({s.B, s.Hv, s.Dk, s.Dv}, 124, -0.5, 0.5);
    for (delta_form form : forms) {
        INFO(form_name(form));
        delta_options fused;
        fused.form = form;
        fused.qk_l2norm = true;
        fused.A_log = A_log.data();
        fused.dt_bias = dt_bias.data();
        fused.beta_sigmoid = true;
        delta_options plain = fused;
        plain.A_log = plain.dt_bias = nullptr;
        plain.beta_sigmoid = false;
        tensor<float, 4> out({s.B, s.N, s.Hv, s.Dv}), fin({s.B, s.Hv, s.Dk, s.Dv});
        gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), a.view(), b.view(), out.view(), fused, init.view(),
                         fin.view());
        for (int threads : {1, 2, 3, 5}) {
            INFO(threads << " threads");
            tensor<float, 4> o2({s.B, s.N, s.Hv, s.Dv}), f2({s.B, s.Hv, s.Dk, s.Dv});
            plain.num_threads = threads;
            gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), g.view(), beta.view(), o2.view(), plain,
                             init.view(), f2.view());
            REQUIRE(bitwise_equal(out, o2));
            REQUIRE(bitwise_equal(fin, f2));
        }
        // The double reference projects the gates itself.
        tensor<double, 4> ref({s.B, s.N, s.Hv, s.Dv}), ref_fin({s.B, s.Hv, s.Dk, s.Dv});
        const auto qd = convert<double>(in.q);
        const auto kd = convert<double>(in.k);
        const auto vd = convert<double>(in.v);
        const auto ad = convert<double>(a);
        const auto bd = convert<double>(b);
        const auto id = convert<double>(init);
        reference::gated_delta_rule(qd.view(), kd.view(), vd.view(), ad.view(), bd.view(), ref.view(), fused, id.view(),
                                    ref_fin.view());
        CHECK(max_rel_error(out, ref) < recurrent_accuracy);
        CHECK(max_rel_error(fin, ref_fin) < recurrent_accuracy);
    }
    // The decode steps project the same way: token by token they follow the full operator.
    delta_step_options so;
    so.qk_l2norm = true;
    so.A_log = A_log.data();
    so.dt_bias = dt_bias.data();
    so.beta_sigmoid = true;
    tensor<float, 4> pool = convert<float>(init), out({s.B, s.N, s.Hv, s.Dv}), fin({s.B, s.Hv, s.Dk, s.Dv});
    delta_options fused;
    fused.qk_l2norm = true;
    fused.A_log = A_log.data();
    fused.dt_bias = dt_bias.data();
    fused.beta_sigmoid = true;
    gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), a.view(), b.view(), out.view(), fused, init.view(),
                     fin.view());
    for (index_t t = 0; t < s.N; ++t) {
        tensor<float, 3> o({s.B, s.Hv, s.Dv});
        gated_delta_rule_step(token(in.q, t), token(in.k, t), token(in.v, t), token(a, t), token(b, t), o.view(),
                              pool.view(), so);
        for (index_t bb = 0; bb < s.B; ++bb)
            for (index_t h = 0; h < s.Hv; ++h)
                for (index_t e = 0; e < s.Dv; ++e)
                    REQUIRE(o(bb, h, e) == Approx(out(bb, t, h, e)).margin(recurrent_accuracy));
    }
    CHECK(max_rel_error(pool, fin) < recurrent_accuracy);
    // Bad projections: errors, nothing written.
    tensor<float, 4> o3({s.B, s.N, s.Hv, s.Dv}, 7.0f);
    auto call = [&](const delta_options& o, const tensor<float, 3>& gv, const tensor<float, 3>& bv) {
        gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), gv.view(), bv.view(), o3.view(), o);
    };
    delta_options bad = fused;
    const std::vector<float> huge{1.0f, 81.0f, 0.0f, 0.0f};
    bad.A_log = huge.data();
    expect_error([&] { call(bad, a, b); }, "'A_log': expected finite values in [-80, 80], given A_log[1] = 81");
    bad = fused;
    bad.A_log = nullptr;
    expect_error([&] { call(bad, a, b); }, "'dt_bias': expected nullptr without A_log");
    auto nan_a = convert<float>(a);
    auto nan_b = convert<float>(b);
    nan_a(1, 4, 2) = NAN;
    nan_b(0, 6, 1) = NAN;
    expect_error([&] { call(fused, nan_a, b); }, "'g': expected no NaN (a raw projection), given nan at [1,4,2]");
    expect_error([&] { call(fused, a, nan_b); }, "'beta': expected no NaN (a raw projection), given nan at [0,6,1]");
    expect_error(
        [&] { gated_delta_rule(in.q.view(), in.k.view(), in.v.view(), in.g4.view(), b.view(), o3.view(), fused); },
        "'A_log': expected nullptr with a per-key-channel gate");
    expect_error([&] { delta_rule(in.q.view(), in.k.view(), in.v.view(), b.view(), o3.view(), fused); },
                 "'A_log': expected nullptr without a gate");
    for (index_t i = 0; i < o3.size(); ++i) REQUIRE(o3.data()[i] == 7.0f);
}
