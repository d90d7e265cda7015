// linear_attention and gated_linear_attention (one family, one executable).
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/linear_attention.hpp>
#include <seqmix/reference/gated_linear_attention.hpp>
#include <seqmix/reference/linear_attention.hpp>

#include <cmath>
#include <cstdio>
#include <string>
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

// N around the default chunk (32) and the sub-chunk (16), around two chunks, long.
const std::vector<shape> awkward = {
    {1, 1, 1, 1, 3, 3},    {2, 5, 2, 4, 3, 5},      {1, 15, 1, 1, 64, 64},    {1, 17, 1, 2, 96, 32},
    {1, 31, 1, 2, 64, 64}, {1, 32, 2, 2, 64, 48},   {1, 33, 1, 1, 64, 64},    {1, 63, 1, 1, 17, 9},
    {1, 65, 2, 2, 32, 32}, {1, 1000, 1, 1, 16, 24}, {1, 130, 1, 1, 128, 128},
};

template <class T>
struct inputs {
    tensor<T, 4> q, k, v, gv;
    tensor<T, 3> gs;
    inputs(const shape& s, unsigned seed, double gate_scale = 0.3)
        : q(random_tensor<T, 4>({s.B, s.N, s.Hk, s.Dk}, seed)),
          k(random_tensor<T, 4>({s.B, s.N, s.Hk, s.Dk}, seed + 1)),
          v(random_tensor<T, 4>({s.B, s.N, s.Hv, s.Dv}, seed + 2)),
          gv(random_tensor<T, 4>({s.B, s.N, s.Hv, s.Dk}, seed + 3, -gate_scale, 0)),
          gs(random_tensor<T, 3>({s.B, s.N, s.Hv}, seed + 4, -gate_scale, 0)) {}
};

std::vector<float> decays(index_t h) {
    std::vector<float> d;
    for (index_t i = 0; i < h; ++i) d.push_back(-0.5f * float(i) / float(h));
    return d;
}

template <class T>
double la_error(const shape& s, const linear_attention_options& opt, unsigned seed) {
    inputs<T> in(s, seed);
    const index_t dphi = feature_dim(opt.feature_map, s.Dk), dvs = s.Dv + (opt.normalize ? 1 : 0);
    auto init = random_tensor<T, 4>({s.B, s.Hv, dphi, dvs}, seed + 9, 0, 0.5);
    tensor<T, 4> out({s.B, s.N, s.Hv, s.Dv}), fin({s.B, s.Hv, dphi, dvs});
    linear_attention(in.q.view(), in.k.view(), in.v.view(), out.view(), opt, init.view(), fin.view());
    auto qd = convert<double>(in.q);
    auto kd = convert<double>(in.k);
    auto vd = convert<double>(in.v);
    auto id = convert<double>(init);
    tensor<double, 4> ref({s.B, s.N, s.Hv, s.Dv}), ref_fin({s.B, s.Hv, dphi, dvs});
    reference::linear_attention(qd.view(), kd.view(), vd.view(), ref.view(), opt, id.view(), ref_fin.view());
    return std::max(max_rel_error(out, ref), max_rel_error(fin, ref_fin));
}

template <class T>
double gla_error(const shape& s, bool vector_gate, const gla_options& opt, unsigned seed, double gate_scale = 0.3) {
    inputs<T> in(s, seed, gate_scale);
    auto init = random_tensor<T, 4>({s.B, s.Hv, s.Dk, s.Dv}, seed + 9);
    tensor<T, 4> out({s.B, s.N, s.Hv, s.Dv}), fin({s.B, s.Hv, s.Dk, s.Dv});
    auto qd = convert<double>(in.q);
    auto kd = convert<double>(in.k);
    auto vd = convert<double>(in.v);
    auto id = convert<double>(init);
    tensor<double, 4> ref({s.B, s.N, s.Hv, s.Dv}), ref_fin({s.B, s.Hv, s.Dk, s.Dv});
    if (vector_gate) {
        gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gv.view(), out.view(), opt, init.view(),
                               fin.view());
        auto gd = convert<double>(in.gv);
        reference::gated_linear_attention(qd.view(), kd.view(), vd.view(), gd.view(), ref.view(), opt, id.view(),
                                          ref_fin.view());
    } else {
        gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gs.view(), out.view(), opt, init.view(),
                               fin.view());
        auto gd = convert<double>(in.gs);
        reference::gated_linear_attention(qd.view(), kd.view(), vd.view(), gd.view(), ref.view(), opt, id.view(),
                                          ref_fin.view());
    }
    for (index_t i = 0; i < out.size(); ++i) REQUIRE(std::isfinite(double(out.data()[i])));
    return std::max(max_rel_error(out, ref), max_rel_error(fin, ref_fin));
}

}  // namespace

TEST_CASE("linear_attention matches the reference: every feature map, normalize, decay, causal or not") {
    const std::vector<float> dec = decays(4);
    unsigned seed = 100;
    for (const auto& s : awkward)
        for (auto fm : {feature_map::identity, feature_map::elu_plus_one, feature_map::relu, feature_map::taylor2})
            for (int variant = 0; variant < 4; ++variant) {
                if (fm == feature_map::taylor2 && s.Dk > 16) continue;  // phi dim 1 + D + D^2
                // Normalizing is only well conditioned for positive feature maps (z . phi(q) > 0).
                if ((variant & 1) && fm == feature_map::identity) continue;
                linear_attention_options opt;
                opt.feature_map = fm;
                opt.normalize = variant & 1;
                if (variant == 2) opt.log_decay = dec.data();
                if (variant == 3) opt.causal = false;
                if (fm != feature_map::identity && s.N > 200 && variant != 1) continue;  // keep the grid lean
                INFO("B" << s.B << " N" << s.N << " Hk" << s.Hk << " Hv" << s.Hv << " Dk" << s.Dk << " Dv" << s.Dv
                         << " map " << int(fm) << " variant " << variant);
                CHECK(la_error<float>(s, opt, seed) < recurrent_accuracy);
                CHECK(la_error<double>(s, opt, seed) < 1e-12);
                seed += 5;
            }
}

TEST_CASE("gated_linear_attention matches the reference: vector and scalar gates") {
    unsigned seed = 300;
    for (const auto& s : awkward)
        for (bool vec : {true, false}) {
            INFO("B" << s.B << " N" << s.N << " Hk" << s.Hk << " Hv" << s.Hv << " Dk" << s.Dk << " Dv" << s.Dv
                     << (vec ? " vector gate" : " scalar gate"));
            CHECK(gla_error<float>(s, vec, {}, seed) < recurrent_accuracy);
            CHECK(gla_error<double>(s, vec, {}, seed) < 1e-12);
            seed += 5;
        }
}

TEST_CASE("chunk sizes: any chunk_size gives the same result") {
    const shape s{1, 200, 1, 2, 32, 16};
    for (int c : {1, 16, 37, 64, 128, 256}) {
        INFO("chunk_size " << c);
        gla_options g;
        g.chunk_size = c;
        CHECK(gla_error<double>(s, true, g, 7) < 1e-12);
        CHECK(gla_error<double>(s, false, g, 8) < 1e-12);
        linear_attention_options l;
        l.chunk_size = c;
        l.normalize = true;
        l.feature_map = feature_map::elu_plus_one;
        CHECK(la_error<double>(s, l, 9) < 1e-12);
    }
}

TEST_CASE("extreme gates: cumulative log gates of -1e4 in a chunk, g = 0, mixed: no inf, no NaN, exact") {
    const shape s{1, 150, 1, 1, 32, 32};
    for (double per_token : {300.0, 1e4 / 64, 40.0, 3.0, 0.0}) {
        INFO("gate magnitude " << per_token);
        inputs<double> in(s, 11, 1.0);
        // Strong gates on some channels and tokens, zero on others.
        for (index_t i = 0; i < in.gv.size(); ++i) in.gv.data()[i] = (i % 3 == 0) ? 0.0 : -per_token * ((i / 7) % 2);
        for (index_t i = 0; i < in.gs.size(); ++i) in.gs.data()[i] = (i % 5 == 0) ? 0.0 : -per_token;
        for (int variant = 0; variant < 2; ++variant) {
            auto qf = convert<float>(in.q);
            auto kf = convert<float>(in.k);
            auto vf = convert<float>(in.v);
            auto gvf = convert<float>(in.gv);
            auto gsf = convert<float>(in.gs);
            tensor<float, 4> out({1, s.N, 1, s.Dv});
            tensor<double, 4> ref({1, s.N, 1, s.Dv});
            if (variant == 0) {
                gated_linear_attention(qf.view(), kf.view(), vf.view(), gvf.view(), out.view());
                reference::gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gv.view(), ref.view());
            } else {
                gated_linear_attention(qf.view(), kf.view(), vf.view(), gsf.view(), out.view());
                reference::gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gs.view(), ref.view());
            }
            for (index_t i = 0; i < out.size(); ++i) REQUIRE(std::isfinite(out.data()[i]));
            CHECK(max_rel_error(out, ref) < recurrent_accuracy);
        }
    }
}

TEST_CASE("strong random vector gates: the diagonal blocks halved and factored, or pair by pair, stay exact") {
    // Per-channel gates uniform in [-scale, 0]: sub-chunk decay ranges from about 4 scale
    // (fits the factored form) to 8 scale (halved once or more), with spikes of -1e4 that
    // leave single pairs in log space.
    for (const shape s : {shape{1, 150, 1, 1, 32, 32}, shape{1, 77, 2, 2, 40, 24}, shape{2, 64, 1, 1, 64, 64}})
        for (double scale : {4.0, 8.0, 20.0, 60.0, 150.0})
            for (bool spikes : {false, true}) {
                INFO("Dk " << s.Dk << ", gates in [-" << scale << ", 0]" << (spikes ? " with spikes" : ""));
                inputs<double> in(s, 17, scale);
                if (spikes)
                    for (index_t i = 0; i < in.gv.size(); i += 97) in.gv.data()[i] = -1e4;
                auto qf = convert<float>(in.q);
                auto kf = convert<float>(in.k);
                auto vf = convert<float>(in.v);
                auto gf = convert<float>(in.gv);
                tensor<float, 4> out({s.B, s.N, s.Hv, s.Dv});
                tensor<double, 4> ref({s.B, s.N, s.Hv, s.Dv});
                gated_linear_attention(qf.view(), kf.view(), vf.view(), gf.view(), out.view());
                reference::gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gv.view(), ref.view());
                for (index_t i = 0; i < out.size(); ++i) REQUIRE(std::isfinite(out.data()[i]));
                CHECK(max_rel_error(out, ref) < recurrent_accuracy);
            }
}

TEST_CASE("long sequences: fp32 within 1e-5 of the double reference at N = 32768") {
    const shape s{1, 32768, 1, 1, 32, 32};
    linear_attention_options decay;
    const float ld[] = {-0.001f};
    decay.log_decay = ld;
    const double la = la_error<float>(s, decay, 71);
    const double gv = gla_error<float>(s, true, {}, 72, 0.05);
    const double gs = gla_error<float>(s, false, {}, 73, 0.05);
    std::printf("N=32768 fp32 vs double: linear (decay) %.3g, GLA vector %.3g, GLA scalar %.3g\n", la, gv, gs);
    CHECK(la < 1e-5);
    CHECK(gv < 1e-5);
    CHECK(gs < 1e-5);
}

TEST_CASE("whole sequence == pieces passing states == token-by-token decode steps") {
    const shape s{2, 77, 1, 2, 24, 20};
    inputs<double> in(s, 21);
    const std::vector<float> dec = decays(2);
    auto pieces = [&](auto&& run_range) {
        tensor<double, 4> out({s.B, s.N, s.Hv, s.Dv});
        run_range(out);
        return out;
    };
    for (int op = 0; op < 3; ++op) {
        const char* what = op == 0   ? "linear_attention (normalize, decay, elu+1)"
                           : op == 1 ? "GLA vector gate"
                                     : "GLA scalar gate";
        INFO(what);
        linear_attention_options lo;
        lo.normalize = true;
        lo.log_decay = dec.data();
        lo.feature_map = feature_map::elu_plus_one;
        const index_t dvs = op == 0 ? s.Dv + 1 : s.Dv;
        auto call = [&](index_t t0, index_t n, tensor_view<const double, 4> init, tensor_view<double, 4> fin,
                        tensor<double, 4>& out) {
            auto q = slice(in.q.view(), 1, t0, n), k = slice(in.k.view(), 1, t0, n), v = slice(in.v.view(), 1, t0, n);
            auto o = slice(out.view(), 1, t0, n);
            if (op == 0) linear_attention(q, k, v, o, lo, init, fin);
            else if (op == 1)
                gated_linear_attention(q, k, v, slice(in.gv.view(), 1, t0, n), o, gla_options{}, init, fin);
            else gated_linear_attention(q, k, v, slice(in.gs.view(), 1, t0, n), o, gla_options{}, init, fin);
        };
        tensor<double, 4> whole({s.B, s.N, s.Hv, s.Dv}), fin_whole({s.B, s.Hv, s.Dk, dvs});
        call(0, s.N, {}, fin_whole.view(), whole);
        // Pieces of 30, 1, 46 tokens, each starting from the previous final state.
        tensor<double, 4> st1({s.B, s.Hv, s.Dk, dvs}), st2({s.B, s.Hv, s.Dk, dvs}), st3({s.B, s.Hv, s.Dk, dvs});
        auto split = pieces([&](tensor<double, 4>& out) {
            call(0, 30, {}, st1.view(), out);
            call(30, 1, st1.view(), st2.view(), out);
            call(31, 46, st2.view(), st3.view(), out);
        });
        CHECK(max_rel_error(split, whole) < 1e-12);
        CHECK(max_rel_error(st3, fin_whole) < 1e-12);
        // Token by token with the decode step, in a state pool with permuted slots.
        tensor<double, 4> pool({3 * s.B, s.Hv, s.Dk, dvs});
        const std::int32_t slots[] = {4, 1};
        tensor<double, 4> stepped({s.B, s.N, s.Hv, s.Dv});
        for (index_t t = 0; t < s.N; ++t) {
            auto q = tensor_view<const double, 3>(in.q.view().ptr(0, t), {s.B, s.Hk, s.Dk},
                                                  {in.q.view().stride(0), in.q.view().stride(2), 1});
            auto k = tensor_view<const double, 3>(in.k.view().ptr(0, t), {s.B, s.Hk, s.Dk},
                                                  {in.k.view().stride(0), in.k.view().stride(2), 1});
            auto v = tensor_view<const double, 3>(in.v.view().ptr(0, t), {s.B, s.Hv, s.Dv},
                                                  {in.v.view().stride(0), in.v.view().stride(2), 1});
            auto o = tensor_view<double, 3>(stepped.view().ptr(0, t), {s.B, s.Hv, s.Dv},
                                            {stepped.view().stride(0), stepped.view().stride(2), 1});
            if (op == 0) {
                linear_attention_step_options so;
                so.normalize = true;
                so.log_decay = dec.data();
                so.feature_map = feature_map::elu_plus_one;
                so.state_indices = slots;
                linear_attention_step(q, k, v, o, pool.view(), so);
            } else if (op == 1) {
                gla_step_options so;
                so.state_indices = slots;
                auto g = tensor_view<const double, 3>(in.gv.view().ptr(0, t), {s.B, s.Hv, s.Dk},
                                                      {in.gv.view().stride(0), in.gv.view().stride(2), 1});
                gated_linear_attention_step(q, k, v, g, o, pool.view(), so);
            } else {
                gla_step_options so;
                so.state_indices = slots;
                auto g = tensor_view<const double, 2>(in.gs.view().ptr(0, t), {s.B, s.Hv}, {in.gs.view().stride(0), 1});
                gated_linear_attention_step(q, k, v, g, o, pool.view(), so);
            }
        }
        CHECK(max_rel_error(stepped, whole) < 1e-12);
        for (index_t b = 0; b < s.B; ++b)
            for (index_t h = 0; h < s.Hv; ++h)
                for (index_t d = 0; d < s.Dk; ++d)
                    for (index_t e = 0; e < dvs; ++e)
                        REQUIRE(pool(slots[b], h, d, e) == Approx(fin_whole(b, h, d, e)).margin(1e-10));
    }
}

TEST_CASE("varlen (cu_seqlens) equals separate calls, with per-sequence states") {
    const std::vector<index_t> lens = {5, 0, 70, 1, 64};
    std::vector<std::int32_t> cu{0};
    for (auto n : lens) cu.push_back(cu.back() + std::int32_t(n));
    const shape s{1, cu.back(), 2, 2, 16, 8};
    inputs<double> in(s, 31);
    const index_t S = index_t(lens.size());
    for (int op = 0; op < 2; ++op) {
        tensor<double, 4> out({1, s.N, s.Hv, s.Dv}), fin({S, s.Hv, s.Dk, s.Dv});
        auto init = random_tensor<double, 4>({S, s.Hv, s.Dk, s.Dv}, 5);
        linear_attention_options lo;
        lo.cu_seqlens = cu.data();
        lo.num_seqs = int(S);
        gla_options go;
        go.cu_seqlens = cu.data();
        go.num_seqs = int(S);
        if (op == 0) linear_attention(in.q.view(), in.k.view(), in.v.view(), out.view(), lo, init.view(), fin.view());
        else
            gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gv.view(), out.view(), go, init.view(),
                                   fin.view());
        for (index_t q = 0; q < S; ++q) {
            const index_t t0 = cu[std::size_t(q)], n = lens[std::size_t(q)];
            tensor<double, 4> o({1, std::max<index_t>(n, 1), s.Hv, s.Dv}), f({1, s.Hv, s.Dk, s.Dv});
            auto o_v = slice(o.view(), 1, 0, n);
            auto init_q = slice(init.view(), 0, q, 1);
            if (op == 0) {
                linear_attention(slice(in.q.view(), 1, t0, n), slice(in.k.view(), 1, t0, n),
                                 slice(in.v.view(), 1, t0, n), o_v, linear_attention_options{}, init_q, f.view());
            } else {
                gated_linear_attention(slice(in.q.view(), 1, t0, n), slice(in.k.view(), 1, t0, n),
                                       slice(in.v.view(), 1, t0, n), slice(in.gv.view(), 1, t0, n), o_v, gla_options{},
                                       init_q, f.view());
            }
            for (index_t t = 0; t < n; ++t)
                for (index_t h = 0; h < s.Hv; ++h)
                    for (index_t e = 0; e < s.Dv; ++e)
                        REQUIRE(out(0, t0 + t, h, e) == Approx(o(0, t, h, e)).margin(1e-12));
            for (index_t h = 0; h < s.Hv; ++h)
                for (index_t d = 0; d < s.Dk; ++d)
                    for (index_t e = 0; e < s.Dv; ++e) REQUIRE(fin(q, h, d, e) == Approx(f(0, h, d, e)).margin(1e-12));
        }
    }
}

TEST_CASE("strided inputs: reversed head dim, [B,H,N,D] buffers, broadcast gates") {
    const shape s{1, 90, 2, 2, 16, 8};
    inputs<double> in(s, 61);
    // q with its head dim stored backwards (negative stride), v from a [B,H,N,D] buffer,
    // the scalar gate broadcast over heads (stride 0).
    tensor<double, 4> q_rev({1, s.N, s.Hk, s.Dk});
    for (index_t n = 0; n < s.N; ++n)
        for (index_t h = 0; h < s.Hk; ++h)
            for (index_t d = 0; d < s.Dk; ++d) q_rev(0, n, h, s.Dk - 1 - d) = in.q(0, n, h, d);
    auto qv = q_rev.view();
    tensor_view<const double, 4> q_strided(qv.ptr(0, 0, 0, s.Dk - 1), {1, s.N, s.Hk, s.Dk},
                                           {qv.stride(0), qv.stride(1), qv.stride(2), -1});
    tensor<double, 4> v_bhnd({1, s.Hv, s.N, s.Dv});
    for (index_t n = 0; n < s.N; ++n)
        for (index_t h = 0; h < s.Hv; ++h)
            for (index_t e = 0; e < s.Dv; ++e) v_bhnd(0, h, n, e) = in.v(0, n, h, e);
    auto v_strided = permute(tensor_view<const double, 4>(v_bhnd.view()), {0, 2, 1, 3});
    tensor<double, 3> g_row({1, s.N, 1});
    for (index_t n = 0; n < s.N; ++n) g_row(0, n, 0) = in.gs(0, n, 0);
    tensor_view<const double, 3> g_bcast(g_row.data(), {1, s.N, s.Hv}, {s.N, 1, 0});
    tensor<double, 3> g_full({1, s.N, s.Hv});
    for (index_t n = 0; n < s.N; ++n)
        for (index_t h = 0; h < s.Hv; ++h) g_full(0, n, h) = g_row(0, n, 0);
    tensor<double, 4> o1({1, s.N, s.Hv, s.Dv}), o2({1, s.N, s.Hv, s.Dv});
    gated_linear_attention(q_strided, in.k.view(), v_strided, g_bcast, o1.view());
    gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), g_full.view(), o2.view());
    CHECK(max_rel_error(o1, o2) < 1e-13);
    linear_attention(q_strided, in.k.view(), v_strided, o1.view());
    linear_attention(in.q.view(), in.k.view(), in.v.view(), o2.view());
    CHECK(max_rel_error(o1, o2) < 1e-13);
}

TEST_CASE("bitwise identical for 1 to 64 threads (head groups, value split, segments, bidirectional)") {
    // B*H = 1 with D = 64 and 96 runs the value split (2-6 column blocks); Dv = 8 has one
    // column block and runs the segments; B*H = 8 the head groups.
    for (const shape s : {shape{1, 700, 1, 1, 64, 64}, shape{1, 333, 1, 1, 40, 96}, shape{1, 500, 1, 1, 16, 8},
                          shape{2, 300, 2, 2, 32, 40}, shape{1, 600, 2, 4, 16, 16}}) {
        inputs<float> in(s, 41);
        for (int op = 0; op < 5; ++op) {
            tensor<float, 4> o1({s.B, s.N, s.Hv, s.Dv}), f1({s.B, s.Hv, s.Dk, s.Dv + (op == 4 ? 1 : 0)});
            auto init = random_tensor<float, 4>({s.B, s.Hv, s.Dk, s.Dv + (op == 4 ? 1 : 0)}, 43, 0, 0.5);
            for (int threads : {1, 2, 3, 5, 8, 16, 64}) {
                tensor<float, 4> o({s.B, s.N, s.Hv, s.Dv}), f({s.B, s.Hv, s.Dk, s.Dv + (op == 4 ? 1 : 0)});
                if (op == 0 || op == 3 || op == 4) {
                    linear_attention_options lo;
                    lo.num_threads = threads;
                    lo.causal = op != 3;     // op 3: bidirectional
                    lo.normalize = op == 4;  // op 4: normalized (no value split)
                    if (op == 4) lo.feature_map = feature_map::elu_plus_one;
                    linear_attention(in.q.view(), in.k.view(), in.v.view(), o.view(), lo, init.view(), f.view());
                } else {
                    gla_options go;
                    go.num_threads = threads;
                    if (op == 1)
                        gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gv.view(), o.view(), go,
                                               init.view(), f.view());
                    else
                        gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gs.view(), o.view(), go,
                                               init.view(), f.view());
                }
                if (threads == 1) {
                    o1 = std::move(o);
                    f1 = std::move(f);
                    continue;
                }
                INFO("shape B" << s.B << " N" << s.N << " Hv" << s.Hv << " Dv" << s.Dv << ", op " << op << ", "
                               << threads << " threads");
                CHECK(bitwise_equal(o, o1));
                CHECK(bitwise_equal(f, f1));
            }
        }
    }
}

TEST_CASE(
    "plans for 1 to 128 threads: work for every thread where the shapes allow, the busiest thread as light as can be") {
    using kernels::chunk_schedule;
    struct problem {
        index_t seqs, heads, chunks, vectors;  // vectors: SIMD vectors per state row
        bool causal, column_split;
    };
    // Many heads; a few heads of a wide state; one long sequence with and without the value
    // split; ragged varlen; bidirectional.
    for (const problem pr :
         {problem{8, 16, 64, 4, true, true}, problem{1, 4, 512, 8, true, true}, problem{1, 1, 2048, 4, true, true},
          problem{1, 1, 2048, 1, true, false}, problem{3, 5, 100, 2, true, true}, problem{2, 8, 300, 8, false, true},
          problem{1, 24, 64, 4, true, true}, problem{1, 2, 300, 6, true, true}, problem{1, 1, 300, 3, true, true}}) {
        const index_t units = pr.seqs * pr.heads;
        const std::vector<index_t> chunks(static_cast<std::size_t>(units), pr.chunks);
        for (int team = 1; team <= 128; ++team) {
            INFO("seqs " << pr.seqs << " heads " << pr.heads << " vectors " << pr.vectors << ", " << team
                         << " threads");
            const auto p = kernels::plan_chunk_schedule(units, pr.heads, chunks, pr.vectors, pr.causal, pr.column_split,
                                                        team, 128);
            switch (p.schedule) {
                case chunk_schedule::bidirectional:
                    CHECK(p.items == units * ((pr.chunks + kernels::chunks_per_pass - 1) / kernels::chunks_per_pass));
                    break;
                case chunk_schedule::head_groups:  // every head in exactly one group, no empty group
                    CHECK(p.items >= team);
                    CHECK(p.groups_per_seq * p.group_size >= pr.heads);
                    CHECK((p.groups_per_seq - 1) * p.group_size < pr.heads);
                    break;
                case chunk_schedule::value_split: {  // equal blocks; the busiest thread as light as can be
                    CHECK(pr.vectors % p.col_blocks == 0);
                    const index_t busiest = (p.items + team - 1) / team * (pr.vectors / p.col_blocks);
                    CHECK(busiest == (units * pr.vectors + team - 1) / team);
                    break;
                }
                case chunk_schedule::segments: CHECK(p.items >= team); break;
            }
            CHECK((p.schedule == chunk_schedule::bidirectional) == !pr.causal);
        }
    }
    // Segments never outnumber the processors (each repeats a prefix pass).
    const std::vector<index_t> one{2048};
    CHECK(kernels::plan_chunk_schedule(1, 1, one, 1, true, false, 64, 2).items == 2);
    CHECK(kernels::plan_chunk_schedule(1, 1, one, 1, true, false, 64, 64).items == 64);
}

TEST_CASE("bad inputs give seqmix::error naming the argument") {
    const shape s{2, 10, 2, 4, 8, 6};
    inputs<float> in(s, 51);
    tensor<float, 4> out({2, 10, 4, 6}, 42.0f);
    const auto q = in.q.view();
    const auto k = in.k.view();
    const auto v = in.v.view();
    // Wrong gate shape, positive log gate, rank-2 gate.
    auto g_bad = random_tensor<float, 4>({2, 10, 4, 7}, 1, -1, 0);
    expect_error([&] { gated_linear_attention(q, k, v, g_bad.view(), out.view()); }, "'g': expected shape [2,10,4,8]");
    auto g_pos = random_tensor<float, 3>({2, 10, 4}, 2, -1, 0);
    g_pos(1, 3, 2) = 0.5f;
    expect_error([&] { gated_linear_attention(q, k, v, g_pos.view(), out.view()); },
                 "log forget gates <= 0, given 0.5 at [1,3,2]");
    auto g2 = random_tensor<float, 2>({10, 4}, 3, -1, 0);
    expect_error([&] { gated_linear_attention(q, k, v, g2.view(), out.view()); }, "'g': expected rank 4");
    // State shape mismatch.
    tensor<float, 4> st_bad({2, 4, 8, 5});
    expect_error([&] { gated_linear_attention(q, k, v, in.gv.view(), out.view(), {}, st_bad.view()); },
                 "'initial_state': expected shape [2,4,8,6]");
    linear_attention_options norm;
    norm.normalize = true;
    tensor<float, 4> st_la({2, 4, 8, 6});
    expect_error([&] { linear_attention(q, k, v, out.view(), norm, {}, st_la.view()); },
                 "'final_state': expected shape [2,4,8,7]");
    // eps = 0 with normalize (0 / 0 for a query whose features are all 0), in the call and the step.
    linear_attention_options eps0;
    eps0.normalize = true;
    eps0.eps = 0;
    expect_error([&] { linear_attention(q, k, v, out.view(), eps0); }, "'eps': expected a value > 0 with normalize");
    // Bad cu_seqlens.
    auto q1 = random_tensor<float, 4>({1, 10, 2, 8}, 4), k1 = random_tensor<float, 4>({1, 10, 2, 8}, 5);
    auto v1 = random_tensor<float, 4>({1, 10, 4, 6}, 6);
    tensor<float, 4> out1({1, 10, 4, 6});
    const std::int32_t cu_bad[] = {0, 6, 4, 10};
    linear_attention_options var;
    var.cu_seqlens = cu_bad;
    var.num_seqs = 3;
    expect_error([&] { linear_attention(q1.view(), k1.view(), v1.view(), out1.view(), var); },
                 "'cu_seqlens': expected non-decreasing");
    // Decay: positive, or with bidirectional; chunk size; grouped heads; out aliasing v.
    const float pos[] = {-0.1f, 0.2f, 0.0f, -1.0f};
    linear_attention_options ld;
    ld.log_decay = pos;
    expect_error([&] { linear_attention(q, k, v, out.view(), ld); },
                 "'log_decay': expected values <= 0, given log_decay[1]");
    const float ok[] = {-0.1f, -0.2f, 0.0f, -1.0f};
    linear_attention_options bi;
    bi.causal = false;
    bi.log_decay = ok;
    expect_error([&] { linear_attention(q, k, v, out.view(), bi); },
                 "'log_decay': expected nullptr when causal = false");
    linear_attention_options cs;
    cs.chunk_size = -4;
    expect_error([&] { linear_attention(q, k, v, out.view(), cs); }, "'chunk_size'");
    auto v3 = random_tensor<float, 4>({2, 10, 3, 6}, 7);
    tensor<float, 4> out3({2, 10, 3, 6});
    expect_error([&] { linear_attention(q, k, v3.view(), out3.view()); },
                 "'v': expected a head count that is a multiple");
    tensor<float, 4> vv({2, 10, 4, 6});
    expect_error([&] { linear_attention(q, k, tensor_view<const float, 4>(vv.view()), vv.view()); },
                 "'out': expected memory disjoint from 'v'");
    // Decode steps: state slot out of range, wrong state shape.
    auto qs = random_tensor<float, 3>({2, 2, 8}, 8), ks = random_tensor<float, 3>({2, 2, 8}, 9);
    auto vs = random_tensor<float, 3>({2, 4, 6}, 10);
    tensor<float, 3> os({2, 4, 6});
    tensor<float, 4> pool({3, 4, 8, 6});
    const std::int32_t idx[] = {0, 3};
    gla_step_options so;
    so.state_indices = idx;
    auto gs = random_tensor<float, 2>({2, 4}, 11, -1, 0);
    expect_error(
        [&] { gated_linear_attention_step(qs.view(), ks.view(), vs.view(), gs.view(), os.view(), pool.view(), so); },
        "'state_indices': expected pad_slot (-1) or 0 <= state_indices[1] < 3");
    linear_attention_step_options step_eps0;
    step_eps0.normalize = true;
    step_eps0.eps = 0;
    tensor<float, 4> pool_n({2, 4, 8, 7});
    expect_error([&] { linear_attention_step(qs.view(), ks.view(), vs.view(), os.view(), pool_n.view(), step_eps0); },
                 "'eps': expected a value > 0 with normalize");
    tensor<float, 4> small({2, 4, 8, 5});
    expect_error([&] { linear_attention_step(qs.view(), ks.view(), vs.view(), os.view(), small.view()); },
                 "'state': expected shape [slots,4,8,6]");
    for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 42.0f);
    CHECK_THROWS_AS(reference::gated_linear_attention(q, k, v, g_bad.view(), out.view()), seqmix::error);
}

// ---- 16-bit storage: q, k, v, g, out and states as bf16 / fp16 ----

namespace {

// Token t of a [B,N,H,D] tensor as the [B,H,D] view of a decode step, and of a [B,N,H] gate.
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

// op 0: linear_attention (elu+1, normalize, decay); 1: GLA vector gate; 2: GLA scalar gate.
template <class QV, class GV4, class GV3, class OV, class SIV, class SOV>
void run_family(int op, const QV& q, const QV& k, const QV& v, const GV4& g4, const GV3& g3, const OV& out,
                const linear_attention_options& lo, int threads, const SIV& init, const SOV& fin) {
    gla_options go;
    static_cast<state_pool_options&>(go) = lo;  // the same pool, if any
    go.num_threads = threads;
    linear_attention_options l = lo;
    l.num_threads = threads;
    if (op == 0) linear_attention(q, k, v, out, l, init, fin);
    else if (op == 1) gated_linear_attention(q, k, v, g4, out, go, init, fin);
    else gated_linear_attention(q, k, v, g3, out, go, init, fin);
}

template <class QV, class GV4, class GV3, class OV, class S>
void step_family(int op, const QV& q, const QV& k, const QV& v, const GV4& g4, const GV3& g3, const OV& out,
                 const tensor_view<S, 4>& pool, const linear_attention_options& lo, const std::int32_t* slots) {
    if (op == 0) {
        linear_attention_step_options so;
        so.normalize = lo.normalize;
        so.log_decay = lo.log_decay;
        so.feature_map = lo.feature_map;
        so.state_indices = slots;
        so.num_threads = 2;
        linear_attention_step(q, k, v, out, pool, so);
    } else {
        gla_step_options so;
        so.state_indices = slots;
        so.num_threads = 2;
        if (op == 1) gated_linear_attention_step(q, k, v, g4, out, pool, so);
        else gated_linear_attention_step(q, k, v, g3, out, pool, so);
    }
}

// q, k, v stored as In, gates as G, out as O, states as S: the bits of the float operator on
// the same values, outputs and states rounded once at the end (3 threads against 1); decode
// steps on a pool of S states: the float step with its state rounded into S after each token.
template <class In, class G, class O, class S>
void check_stored_family(const char* name) {
    INFO(name);
    for (const shape s : {shape{2, 75, 2, 4, 40, 24},
                          shape{1, 40, 1, 2, 64, 64}}) {  // D not a multiple of the vector width; full column blocks
        INFO("Dk " << s.Dk << " Dv " << s.Dv);
        const inputs<float> in(s, 71);
        const std::vector<float> dec = decays(s.Hv);
        const auto q = convert<In>(in.q);
        const auto k = convert<In>(in.k);
        const auto v = convert<In>(in.v);
        const auto g4 = convert<G>(in.gv);
        const auto g3 = convert<G>(in.gs);
        const auto qf = convert<float>(q);
        const auto kf = convert<float>(k);
        const auto vf = convert<float>(v);
        const auto g4f = convert<float>(g4);
        const auto g3f = convert<float>(g3);
        for (int op = 0; op < 3; ++op) {
            INFO((op == 0   ? "linear_attention (elu+1, normalize, decay)"
                  : op == 1 ? "GLA vector gate"
                            : "GLA scalar gate"));
            linear_attention_options lo;
            lo.normalize = op == 0;
            lo.log_decay = dec.data();
            lo.feature_map = feature_map::elu_plus_one;
            const index_t dvs = op == 0 ? s.Dv + 1 : s.Dv;
            const auto init = convert<S>(random_tensor<float, 4>({s.B, s.Hv, s.Dk, dvs}, 79, 0, 0.5));
            const auto initf = convert<float>(init);
            tensor<float, 4> of({s.B, s.N, s.Hv, s.Dv}), ff({s.B, s.Hv, s.Dk, dvs});
            run_family(op, qf.view(), kf.view(), vf.view(), g4f.view(), g3f.view(), of.view(), lo, 1, initf.view(),
                       ff.view());
            tensor<O, 4> os({s.B, s.N, s.Hv, s.Dv});
            tensor<S, 4> fs({s.B, s.Hv, s.Dk, dvs});
            run_family(op, q.view(), k.view(), v.view(), g4.view(), g3.view(), os.view(), lo, 3, init.view(),
                       fs.view());
            CHECK(stores_rounded(os, of));
            CHECK(stores_rounded(fs, ff));
            // The float operator is float accurate: so is this one on the rounded inputs.
            tensor<double, 4> ref({s.B, s.N, s.Hv, s.Dv}), ref_fin({s.B, s.Hv, s.Dk, dvs});
            const auto qd = convert<double>(qf);
            const auto kd = convert<double>(kf);
            const auto vd = convert<double>(vf);
            const auto g4d = convert<double>(g4f);
            const auto g3d = convert<double>(g3f);
            const auto id = convert<double>(initf);
            run_family(op, qd.view(), kd.view(), vd.view(), g4d.view(), g3d.view(), ref.view(), lo, 1, id.view(),
                       ref_fin.view());
            CHECK(max_rel_error(of, ref) < recurrent_accuracy);
            // Decode steps, slots permuted in a pool of 3.
            tensor<S, 4> pool({3, s.Hv, s.Dk, dvs});
            tensor<float, 4> poolf({3, s.Hv, s.Dk, dvs});
            const std::int32_t slots[] = {2, 0};
            for (index_t b = 0; b < s.B; ++b)
                for (index_t h = 0; h < s.Hv; ++h)
                    for (index_t d = 0; d < s.Dk; ++d)
                        for (index_t e = 0; e < dvs; ++e) {
                            pool(slots[b], h, d, e) = init(b, h, d, e);
                            poolf(slots[b], h, d, e) = initf(b, h, d, e);
                        }
            for (index_t t = 0; t < 6; ++t) {
                tensor<O, 3> o_s({s.B, s.Hv, s.Dv});
                tensor<float, 3> o_f({s.B, s.Hv, s.Dv});
                step_family(op, token(q, t), token(k, t), token(v, t), token(g4, t), token(g3, t), o_s.view(),
                            pool.view(), lo, slots);
                step_family(op, token(qf, t), token(kf, t), token(vf, t), token(g4f, t), token(g3f, t), o_f.view(),
                            poolf.view(), lo, slots);
                CHECK(stores_rounded(o_s, o_f));
                CHECK(stores_rounded(pool, poolf));
                poolf = convert<float>(convert<S>(poolf));  // the state as the pool keeps it
            }
        }
    }
}

}  // namespace

TEST_CASE(
    "16-bit storage: the float operator's bits on the same values "
    "rounded once; steps on 16-bit state pools") {
    check_stored_family<bf16, bf16, bf16, float>("bf16 inputs and out, float states");
    check_stored_family<bf16, float, float, bf16>("bf16 q, k, v; float gates and out; bf16 states");
    check_stored_family<fp16, fp16, fp16, fp16>("fp16 everything");
}

// ---- State pools in the full operators (state_indices, has_initial_state, pad_slot) ----

TEST_CASE(
    "linear attention and GLA on a state pool: gathering, the dense call and scattering, bitwise; pad rows and other "
    "slots untouched") {
    const shape s{3, 45, 2, 4, 24, 20};
    const inputs<float> in(s, 83);
    const std::vector<float> dec = decays(s.Hv);
    const std::int32_t idx[] = {4, pad_slot, 1};
    const std::uint8_t has[] = {1, 1, 0};  // the third starts from zeros
    for (int op = 0; op < 3; ++op)
        for (int threads : {1, 2, 3, 5}) {
            INFO("op " << op << ", " << threads << " threads");
            linear_attention_options lo;
            lo.normalize = op == 0;
            lo.log_decay = dec.data();
            lo.feature_map = feature_map::elu_plus_one;
            const index_t dvs = op == 0 ? s.Dv + 1 : s.Dv, slots = 6, per_slot = s.Hv * s.Dk * dvs;
            const auto pool0 = random_tensor<float, 4>({slots, s.Hv, s.Dk, dvs}, 84, 0, 0.5);
            tensor<float, 4> init({s.B, s.Hv, s.Dk, dvs}), fin({s.B, s.Hv, s.Dk, dvs}), dense({s.B, s.N, s.Hv, s.Dv});
            for (index_t b = 0; b < s.B; ++b)
                if (idx[b] != pad_slot && has[b])
                    std::copy(pool0.data() + idx[b] * per_slot, pool0.data() + (idx[b] + 1) * per_slot,
                              init.data() + b * per_slot);
            run_family(op, in.q.view(), in.k.view(), in.v.view(), in.gv.view(), in.gs.view(), dense.view(), lo, threads,
                       init.view(), fin.view());
            tensor<float, 4> pool = convert<float>(pool0);
            tensor<float, 4> out({s.B, s.N, s.Hv, s.Dv}, 7.0f);
            lo.state_indices = idx;
            lo.has_initial_state = has;
            run_family(op, in.q.view(), in.k.view(), in.v.view(), in.gv.view(), in.gs.view(), out.view(), lo, threads,
                       pool.view(), pool.view());
            const index_t per_row = s.N * s.Hv * s.Dv;
            for (index_t b = 0; b < s.B; ++b)
                for (index_t i = 0; i < per_row; ++i)
                    REQUIRE(same_bits(out.data()[b * per_row + i],
                                      idx[b] == pad_slot ? 7.0f : dense.data()[b * per_row + i]));
            for (index_t slot = 0; slot < slots; ++slot) {
                const index_t b = slot == 4 ? 0 : slot == 1 ? 2 : -1;
                for (index_t i = 0; i < per_slot; ++i)
                    REQUIRE(same_bits(pool.data()[slot * per_slot + i],
                                      b >= 0 ? fin.data()[b * per_slot + i] : pool0.data()[slot * per_slot + i]));
            }
        }
}

// ---- Snapshots (snapshot_interval, snapshot_indices): speculative decoding, prefix caching ----

TEST_CASE(
    "linear attention and GLA snapshots: equal the reference and a call that ends there; restarts give the rest; any "
    "threads") {
    // Chunks of 8 (snapshots every 1 and 3 tokens cut them, 20 unevenly, 32 on boundaries);
    // one long sequence takes the value split (GLA) and segments (the normalizer keeps its
    // columns together).
    for (const auto& lens : {std::vector<index_t>{5, 9, 37, 2, 0, 70, 8}, std::vector<index_t>{77}}) {
        index_t N = 0;
        for (index_t n : lens) N += n;
        const shape s{1, N, 2, 4, 16, 24};
        const inputs<double> in(s, 93);
        const std::vector<float> dec = decays(s.Hv);
        for (int op = 0; op < 3; ++op) {
            INFO("op " << op);
            linear_attention_options base;
            base.normalize = op == 0;
            base.log_decay = op == 0 ? dec.data() : nullptr;
            base.feature_map = op == 0 ? feature_map::elu_plus_one : feature_map::identity;
            base.chunk_size = 8;
            const index_t dvs = op == 0 ? s.Dv + 1 : s.Dv;
            check_snapshots<4, 4>(base, lens, {s.Hv, s.Dk, dvs}, {s.Hv, s.Dv}, {1, 3, 20, 32},
                                  [&](bool ref, const linear_attention_options& o, index_t t0, index_t n,
                                      tensor_view<double, 4> pool, tensor_view<double, 4> out) {
                                      const auto q = slice(in.q.view(), 1, t0, n), k = slice(in.k.view(), 1, t0, n),
                                                 v = slice(in.v.view(), 1, t0, n);
                                      const auto g4 = slice(in.gv.view(), 1, t0, n);
                                      const auto g3 = slice(in.gs.view(), 1, t0, n);
                                      gla_options go;
                                      static_cast<state_pool_options&>(go) = o;
                                      go.cu_seqlens = o.cu_seqlens;
                                      go.num_seqs = o.num_seqs;
                                      go.num_threads = o.num_threads;
                                      go.chunk_size = o.chunk_size;
                                      if (op == 0) {
                                          if (ref) reference::linear_attention(q, k, v, out, o, pool, pool);
                                          else linear_attention(q, k, v, out, o, pool, pool);
                                      } else if (op == 1) {
                                          if (ref) reference::gated_linear_attention(q, k, v, g4, out, go, pool, pool);
                                          else gated_linear_attention(q, k, v, g4, out, go, pool, pool);
                                      } else {
                                          if (ref) reference::gated_linear_attention(q, k, v, g3, out, go, pool, pool);
                                          else gated_linear_attention(q, k, v, g3, out, go, pool, pool);
                                      }
                                  });
        }
    }
}

// ---- A per-head gate projected in the kernel (A_log, dt_bias) ----

TEST_CASE("GLA with its per-head gate projected in the kernel: the reference's, the bits of precomputed gates, steps") {
    const shape s{2, 45, 2, 4, 24, 20};
    const inputs<float> in(s, 131);
    auto a = random_tensor<float, 3>({s.B, s.N, s.Hv}, 132, -6, 6);
    a(0, 3, 1) = -INFINITY, a(1, 7, 2) = INFINITY;
    const std::vector<float> A_log{-1.5f, 0.3f, -80.0f, 2.0f}, dt_bias{0.5f, -1.0f, 0.0f, 0.25f};
    tensor<float, 3> g({s.B, s.N, s.Hv});
    const seqmix::detail::gate_projection project{A_log.data(), dt_bias.data()};
    for (index_t i = 0; i < g.size(); ++i) g.data()[i] = project(a.data()[i], i % s.Hv);
    auto init = random_tensor<float, 4>({s.B, s.Hv, s.Dk, s.Dv}, 134, -0.5, 0.5);
    gla_options fused;
    fused.A_log = A_log.data();
    fused.dt_bias = dt_bias.data();
    tensor<float, 4> out({s.B, s.N, s.Hv, s.Dv}), fin({s.B, s.Hv, s.Dk, s.Dv});
    gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), a.view(), out.view(), fused, init.view(), fin.view());
    for (int threads : {1, 3}) {
        gla_options plain;
        plain.num_threads = threads;
        tensor<float, 4> o2({s.B, s.N, s.Hv, s.Dv}), f2({s.B, s.Hv, s.Dk, s.Dv});
        gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), g.view(), o2.view(), plain, init.view(),
                               f2.view());
        REQUIRE(bitwise_equal(out, o2));
        REQUIRE(bitwise_equal(fin, f2));
    }
    tensor<double, 4> ref({s.B, s.N, s.Hv, s.Dv}), ref_fin({s.B, s.Hv, s.Dk, s.Dv});
    const auto qd = convert<double>(in.q);
    const auto kd = convert<double>(in.k);
    const auto vd = convert<double>(in.v);
    const auto ad = convert<double>(a);
    const auto id = convert<double>(init);
    reference::gated_linear_attention(qd.view(), kd.view(), vd.view(), ad.view(), ref.view(), fused, id.view(),
                                      ref_fin.view());
    CHECK(max_rel_error(out, ref) < recurrent_accuracy);
    CHECK(max_rel_error(fin, ref_fin) < recurrent_accuracy);
    gla_step_options so;
    so.A_log = A_log.data();
    so.dt_bias = dt_bias.data();
    tensor<float, 4> pool = convert<float>(init);
    for (index_t t = 0; t < s.N; ++t) {
        tensor<float, 3> o({s.B, s.Hv, s.Dv});
        gated_linear_attention_step(token(in.q, t), token(in.k, t), token(in.v, t), token(a, t), o.view(), pool.view(),
                                    so);
        for (index_t b = 0; b < s.B; ++b)
            for (index_t h = 0; h < s.Hv; ++h)
                for (index_t e = 0; e < s.Dv; ++e)
                    REQUIRE(o(b, h, e) == Approx(out(b, t, h, e)).margin(recurrent_accuracy));
    }
    CHECK(max_rel_error(pool, fin) < recurrent_accuracy);
    tensor<float, 4> o3({s.B, s.N, s.Hv, s.Dv}, 7.0f);
    expect_error([&] { gated_linear_attention(in.q.view(), in.k.view(), in.v.view(), in.gv.view(), o3.view(), fused); },
                 "'A_log': expected nullptr with a per-key-channel gate");
    for (index_t i = 0; i < o3.size(); ++i) REQUIRE(o3.data()[i] == 7.0f);
}
