// sliding_window_attention (and, with it, the band variants of the attention run): against
// the double reference, against softmax_attention at dilation 1, over every cache layout.
#include <seqmix/ops/sliding_window_attention.hpp>
#include <seqmix/reference/local_attention.hpp>
#include <seqmix/reference/softmax_attention.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "attention_caches.hpp"
#include "catch.hpp"
#include "test_util.hpp"

using namespace seqmix;
using namespace seqmix_test;

namespace {

struct shape {
    index_t B, Nq, Nk, Hq, Hkv, Dk, Dv;
};

template <class T>
double window_vs_reference(const shape& s, const window_options& opt, unsigned seed, double* lse_err) {
    auto q = random_tensor<T, 4>({s.B, s.Nq, s.Hq, s.Dk}, seed);
    auto k = random_tensor<T, 4>({s.B, s.Nk, s.Hkv, s.Dk}, seed + 1);
    auto v = random_tensor<T, 4>({s.B, s.Nk, s.Hkv, s.Dv}, seed + 2);
    tensor<T, 4> out({s.B, s.Nq, s.Hq, s.Dv}, T(99));
    tensor<T, 3> lse({s.B, s.Hq, s.Nq}, T(99));
    sliding_window_attention(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
    auto qd = convert<double>(q);
    auto kd = convert<double>(k);
    auto vd = convert<double>(v);
    tensor<double, 4> ref({s.B, s.Nq, s.Hq, s.Dv});
    tensor<double, 3> ref_lse({s.B, s.Hq, s.Nq});
    reference::sliding_window_attention(qd.view(), kd.view(), vd.view(), ref.view(), opt, ref_lse.view());
    *lse_err = max_rel_error(lse, ref_lse, 1.0);
    return max_rel_error(out, ref);
}

window_options window(int left, int right, bool causal, int dilation) {
    window_options o;
    o.window_left = left;
    o.window_right = right;
    o.causal = causal;
    o.dilation = dilation;
    return o;
}

}  // namespace

TEST_CASE("sliding_window_attention matches the double reference: windows, dilation, softcap, sinks, GQA") {
    const std::vector<shape> shapes = {
        {1, 1, 1, 1, 1, 1, 1},       {2, 7, 7, 2, 1, 3, 3},         {1, 200, 200, 4, 2, 64, 64},
        {1, 130, 300, 8, 2, 17, 24}, {1, 300, 130, 2, 2, 33, 16},   {1, 1, 1500, 8, 2, 64, 64},
        {2, 3, 700, 4, 4, 20, 36},   {1, 1000, 1000, 1, 1, 16, 16},
    };
    std::vector<float> sinks(8);
    for (std::size_t h = 0; h < sinks.size(); ++h) sinks[h] = float(h) * 0.5f - 1.5f;
    std::vector<window_options> options = {
        window(16, 16, false, 1), window(64, -1, true, 1),  window(0, 0, false, 1),  window(5, 3, false, 2),
        window(30, -1, true, 3),  window(100, 7, false, 5), window(-1, -1, true, 4), window(1, 1, false, 7),
    };
    options.push_back(window(40, 2, false, 2));
    options.back().softcap = 2.5;
    options.back().sinks = sinks.data();
    options.push_back(window(50, -1, true, 1));
    options.back().sinks = sinks.data();
    unsigned seed = 100;
    for (const auto& s : shapes)
        for (const auto& o : options) {
            INFO("shape B" << s.B << " Nq" << s.Nq << " Nk" << s.Nk << " Hq" << s.Hq << " Hkv" << s.Hkv << " Dk" << s.Dk
                           << " window " << o.window_left << "/" << o.window_right << " causal " << o.causal
                           << " dilation " << o.dilation << " softcap " << o.softcap << " sinks "
                           << (o.sinks != nullptr));
            double lse_err = 0;
            CHECK(window_vs_reference<float>(s, o, seed, &lse_err) < 2e-6);
            CHECK(lse_err < 2e-6);
            CHECK(window_vs_reference<double>(s, o, seed, &lse_err) < 1e-13);
            CHECK(lse_err < 1e-13);
            seed += 3;
        }
}

TEST_CASE(
    "sliding_window_attention at dilation 1 gives softmax_attention's bits; a window over everything equals dense") {
    for (const shape s :
         {shape{1, 500, 500, 8, 2, 64, 64}, shape{2, 1, 3000, 8, 2, 64, 64}, shape{1, 40, 900, 4, 1, 32, 32}})
        for (const window_options& w :
             {window(128, -1, true, 1), window(31, 12, false, 1), window(600, 600, false, 1)}) {
            INFO("Nq " << s.Nq << " Nk " << s.Nk << " window " << w.window_left << "/" << w.window_right);
            auto q = random_tensor<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, 1);
            auto k = random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, 2);
            auto v = random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, 3);
            tensor<float, 4> o1({s.B, s.Nq, s.Hq, s.Dv}), o2({s.B, s.Nq, s.Hq, s.Dv});
            tensor<float, 3> l1({s.B, s.Hq, s.Nq}), l2({s.B, s.Hq, s.Nq});
            sliding_window_attention(q.view(), k.view(), v.view(), o1.view(), w, l1.view());
            softmax_attention(q.view(), k.view(), v.view(), o2.view(), detail::band_options(w), l2.view());
            CHECK(bitwise_equal(o1, o2));
            CHECK(bitwise_equal(l1, l2));
        }
    // Windows at least as long as the sequence: dense attention (to float rounding: the query
    // blocks, and so the tiles' order, follow the band).
    auto q = random_tensor<float, 4>({1, 300, 4, 32}, 4);
    auto k = random_tensor<float, 4>({1, 300, 2, 32}, 5);
    tensor<float, 4> o1({1, 300, 4, 32}), o2({1, 300, 4, 32});
    sliding_window_attention(q.view(), k.view(), k.view(), o1.view(), window(300, 300, false, 1));
    softmax_attention(q.view(), k.view(), k.view(), o2.view());
    CHECK(max_rel_error(o1, o2) < 1e-6);
    sliding_window_attention(q.view(), k.view(), k.view(), o1.view(), window(1000, -1, true, 1));
    attention_options causal;
    causal.causal = true;
    softmax_attention(q.view(), k.view(), k.view(), o2.view(), causal);
    CHECK(max_rel_error(o1, o2) < 1e-6);
    // Window 0 on both sides: each query sees its diagonal key alone, out = v[diagonal].
    sliding_window_attention(q.view(), k.view(), k.view(), o1.view(), window(0, 0, false, 3));
    for (index_t i = 0; i < 300; ++i)
        for (index_t h = 0; h < 4; ++h)
            for (index_t e = 0; e < 32; ++e) REQUIRE(o1(0, i, h, e) == k(0, i, h / 2, e));
}

TEST_CASE(
    "sliding_window_attention: paged and head-major caches give the token-major bits; threads and batch do not "
    "matter") {
    const index_t B = 3, Nk = 700, Hkv = 2, Hq = 8, D = 48;
    const std::int32_t lens[] = {700, 0, 333};
    for (const index_t nq : {index_t(1), index_t(5), index_t(64)})
        for (const window_options& w0 : {window(100, -1, true, 1), window(90, 10, false, 3), window(-1, -1, true, 2)}) {
            INFO("Nq " << nq << " window " << w0.window_left << "/" << w0.window_right << " dilation " << w0.dilation);
            auto q = random_tensor<float, 4>({B, nq, Hq, D}, 11);
            auto k = random_tensor<float, 4>({B, Nk, Hkv, D}, 12);
            auto v = random_tensor<float, 4>({B, Nk, Hkv, D}, 13);
            window_options w = w0;
            w.seqlens_k = lens;
            w.num_threads = 1;
            tensor<float, 4> o1({B, nq, Hq, D}, 9.0f);
            tensor<float, 3> l1({B, Hq, nq});
            sliding_window_attention(q.view(), k.view(), v.view(), o1.view(), w, l1.view());
            for (index_t block_size : {index_t(1), index_t(7), index_t(16)}) {
                const paged_copy pc = page(k, v, block_size, unsigned(block_size));
                window_options paged = w;
                paged.block_table = pc.table.data();
                paged.max_blocks_per_seq = pc.max_blocks;
                paged.num_threads = int(block_size % 4) + 1;
                tensor<float, 4> o2({B, nq, Hq, D}, 7.0f);
                tensor<float, 3> l2({B, Hq, nq});
                sliding_window_attention(q.view(), pc.k.view(), pc.v.view(), o2.view(), paged, l2.view());
                CHECK(bitwise_equal(o1, o2));
                CHECK(bitwise_equal(l1, l2));
            }
            const auto kh = head_major(k), vh = head_major(v);
            for (int threads : {2, 3, 5}) {
                window_options t = w;
                t.num_threads = threads;
                tensor<float, 4> o3({B, nq, Hq, D}, 5.0f);
                sliding_window_attention(q.view(), permute(kh.view(), {0, 2, 1, 3}), permute(vh.view(), {0, 2, 1, 3}),
                                         o3.view(), t);
                CHECK(bitwise_equal(o1, o3));
            }
            for (index_t b = 0; b < B; ++b) {  // each sequence alone
                if (lens[b] == 0) continue;
                tensor<float, 4> o4({1, nq, Hq, D});
                window_options solo = w0;
                sliding_window_attention(slice(q.view(), 0, b, 1), slice(slice(k.view(), 0, b, 1), 1, 0, lens[b]),
                                         slice(slice(v.view(), 0, b, 1), 1, 0, lens[b]), o4.view(), solo);
                CHECK(bitwise_equal(slice(o1.view(), 0, b, 1), o4.view()));
            }
        }
}

TEST_CASE("sliding_window_attention varlen equals separate calls, bitwise") {
    const std::vector<index_t> lq = {5, 0, 170, 64, 1}, lk = {9, 3, 170, 300, 1};
    std::vector<std::int32_t> cq{0}, ck{0};
    for (std::size_t s = 0; s < lq.size(); ++s) {
        cq.push_back(cq.back() + std::int32_t(lq[s]));
        ck.push_back(ck.back() + std::int32_t(lk[s]));
    }
    const index_t H = 4, Hkv = 2, D = 24;
    auto q = random_tensor<float, 4>({1, cq.back(), H, D}, 21);
    auto k = random_tensor<float, 4>({1, ck.back(), Hkv, D}, 22);
    auto v = random_tensor<float, 4>({1, ck.back(), Hkv, D}, 23);
    for (const window_options& w0 : {window(20, -1, true, 1), window(33, 9, false, 2)}) {
        window_options w = w0;
        w.cu_seqlens_q = cq.data();
        w.cu_seqlens_k = ck.data();
        w.num_seqs = int(lq.size());
        tensor<float, 4> out({1, cq.back(), H, D});
        sliding_window_attention(q.view(), k.view(), v.view(), out.view(), w);
        for (std::size_t s = 0; s < lq.size(); ++s) {
            if (lq[s] == 0) continue;
            tensor<float, 4> o({1, lq[s], H, D});
            sliding_window_attention(slice(q.view(), 1, cq[s], lq[s]), slice(k.view(), 1, ck[s], lk[s]),
                                     slice(v.view(), 1, ck[s], lk[s]), o.view(), w0);
            CHECK(bitwise_equal(slice(out.view(), 1, cq[s], lq[s]), o.view()));
        }
    }
}

TEST_CASE("sliding_window_attention: non-finite values outside the band never reach a row") {
    auto q = random_tensor<float, 4>({1, 200, 2, 16}, 31);
    auto k = random_tensor<float, 4>({1, 200, 2, 16}, 32);
    auto v = random_tensor<float, 4>({1, 200, 2, 16}, 33);
    for (index_t e = 0; e < 16; ++e) {
        v(0, 150, 1, e) = std::numeric_limits<float>::infinity();
        k(0, 151, 0, e) = std::numeric_limits<float>::quiet_NaN();
    }
    tensor<float, 4> out({1, 200, 2, 16});
    sliding_window_attention(q.view(), k.view(), v.view(), out.view(), window(20, -1, true, 1));
    for (index_t i = 0; i < 200; ++i)
        for (index_t e = 0; e < 16; ++e) {
            REQUIRE(std::isfinite(out(0, i, 1, e)) == !(i >= 150 && i <= 170));
            REQUIRE(std::isnan(out(0, i, 0, e)) == (i >= 151 && i <= 171));
        }
}

TEST_CASE("sliding_window_attention: bad inputs give seqmix::error and leave out untouched") {
    auto q = random_tensor<float, 4>({1, 8, 4, 16}, 1);
    auto k = random_tensor<float, 4>({1, 10, 2, 16}, 2);
    tensor<float, 4> out({1, 8, 4, 16}, 42.0f);
    auto untouched = [&] {
        for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 42.0f);
    };
    window_options w;
    w.dilation = 0;
    expect_error([&] { sliding_window_attention(q.view(), k.view(), k.view(), out.view(), w); },
                 "'dilation': expected >= 1");
    untouched();
    w.dilation = 1;
    w.window_left = -3;
    expect_error([&] { sliding_window_attention(q.view(), k.view(), k.view(), out.view(), w); }, "'window_left'");
    untouched();
    w.window_left = 4;
    auto k3 = random_tensor<float, 4>({1, 10, 3, 16}, 3);
    expect_error([&] { sliding_window_attention(q.view(), k3.view(), k3.view(), out.view(), w); },
                 "sliding_window_attention: argument 'k'");
    untouched();
    const float sinks[] = {0, 1, std::numeric_limits<float>::quiet_NaN(), 0};
    w.sinks = sinks;
    expect_error([&] { sliding_window_attention(q.view(), k.view(), k.view(), out.view(), w); }, "'sinks'");
    untouched();
    w.sinks = nullptr;
    w.dilation = 0;
    CHECK_THROWS_AS(reference::sliding_window_attention(q.view(), k.view(), k.view(), out.view(), w), seqmix::error);
}

// ---- neighborhood attention (1-D, 2-D, 3-D) ----

#include <seqmix/ops/neighborhood_attention.hpp>

namespace {

struct image_case {
    std::vector<index_t> extent;  // spatial axes
    index_t B, Hq, Hkv, Dk, Dv;
    neighborhood_options opt;
    const char* name;
};

template <class T, std::size_t R>
seqmix::tensor<T, R> image(std::vector<index_t> spatial, index_t B, index_t H, index_t D, unsigned seed) {
    std::array<index_t, R> shape{};
    shape[0] = B;
    for (std::size_t a = 0; a < spatial.size(); ++a) shape[1 + a] = spatial[a];
    shape[R - 2] = H;
    shape[R - 1] = D;
    return random_tensor<T, R>(shape, seed);
}

// Fast kernel in T against the double reference; max relative errors of out and lse.
template <class T, std::size_t Rank>
std::pair<double, double> na_vs_reference(const image_case& c, unsigned seed) {
    constexpr std::size_t R = Rank + 3;
    auto q = image<T, R>(c.extent, c.B, c.Hq, c.Dk, seed);
    auto k = image<T, R>(c.extent, c.B, c.Hkv, c.Dk, seed + 1);
    auto v = image<T, R>(c.extent, c.B, c.Hkv, c.Dv, seed + 2);
    auto out = image<T, R>(c.extent, c.B, c.Hq, c.Dv, seed + 3);
    std::array<index_t, R - 1> ls{};
    for (std::size_t a = 0; a + 1 < R - 1; ++a) ls[a] = out.shape()[a];
    ls[R - 2] = c.Hq;
    tensor<T, R - 1> lse(ls);
    auto qd = convert<double>(q);
    auto kd = convert<double>(k);
    auto vd = convert<double>(v);
    tensor<double, R> ref(out.shape());
    tensor<double, R - 1> ref_lse(ls);
    if constexpr (Rank == 1) {
        neighborhood_attention_1d(q.view(), k.view(), v.view(), out.view(), c.opt, lse.view());
        reference::neighborhood_attention_1d(qd.view(), kd.view(), vd.view(), ref.view(), c.opt, ref_lse.view());
    } else if constexpr (Rank == 2) {
        neighborhood_attention_2d(q.view(), k.view(), v.view(), out.view(), c.opt, lse.view());
        reference::neighborhood_attention_2d(qd.view(), kd.view(), vd.view(), ref.view(), c.opt, ref_lse.view());
    } else {
        neighborhood_attention_3d(q.view(), k.view(), v.view(), out.view(), c.opt, lse.view());
        reference::neighborhood_attention_3d(qd.view(), kd.view(), vd.view(), ref.view(), c.opt, ref_lse.view());
    }
    return {max_rel_error(out, ref), max_rel_error(lse, ref_lse, 1.0)};
}

neighborhood_options na(per_axis<int> kernel, per_axis<int> dilation, per_axis<bool> causal) {
    neighborhood_options o;
    o.kernel_size = kernel;
    o.dilation = dilation;
    o.causal = causal;
    return o;
}

}  // namespace

TEST_CASE(
    "neighborhood_attention 1-D, 2-D, 3-D match the double reference: kernels, dilation, causal axes, GQA, sinks") {
    std::vector<float> sinks(8);
    for (std::size_t h = 0; h < sinks.size(); ++h) sinks[h] = float(h) * 0.6f - 2.0f;
    std::vector<image_case> cases = {
        {{1}, 1, 1, 1, 1, 1, na(1, 1, false), "1-D one pixel"},
        {{37}, 2, 4, 2, 17, 9, na(7, 1, false), "1-D"},
        {{37}, 1, 2, 2, 16, 16, na(5, 3, false), "1-D dilated"},
        {{40}, 1, 3, 1, 8, 24, na(9, 2, true), "1-D causal dilated"},
        {{1, 1}, 1, 2, 1, 3, 3, na(1, 1, false), "2-D one pixel"},
        {{13, 11}, 2, 4, 2, 33, 16, na(7, 1, false), "2-D"},
        {{13, 11}, 1, 2, 1, 16, 16, na({5, 3}, {2, 3}, {false, false}), "2-D per-axis kernel and dilation"},
        {{12, 17}, 1, 8, 2, 32, 32, na(3, 1, {true, false}), "2-D causal rows"},
        {{9, 9}, 1, 4, 4, 5, 7, na(9, 1, {true, true}), "2-D causal, kernel = image"},
        {{7, 9}, 1, 1, 1, 64, 64, na(7, 1, false), "2-D kernel = height"},
        {{5, 6, 7}, 1, 2, 1, 16, 8, na(3, 1, false), "3-D"},
        {{6, 7, 9}, 2, 4, 2, 12, 12, na({3, 3, 5}, {2, 1, 1}, {true, false, false}), "3-D video: causal time, dilated"},
    };
    cases[5].opt.sinks = sinks.data();
    cases.push_back(cases[10]);
    cases.back().opt.sinks = sinks.data();
    cases.back().opt.scale = 0.7;
    cases.back().name = "3-D sinks and scale";
    unsigned seed = 500;
    for (const auto& c : cases) {
        INFO(c.name);
        std::pair<double, double> f, d;
        if (c.extent.size() == 1) {
            f = na_vs_reference<float, 1>(c, seed);
            d = na_vs_reference<double, 1>(c, seed);
        } else if (c.extent.size() == 2) {
            f = na_vs_reference<float, 2>(c, seed);
            d = na_vs_reference<double, 2>(c, seed);
        } else {
            f = na_vs_reference<float, 3>(c, seed);
            d = na_vs_reference<double, 3>(c, seed);
        }
        CHECK(f.first < 2e-6);
        CHECK(f.second < 2e-6);
        CHECK(d.first < 1e-13);
        CHECK(d.second < 1e-13);
        seed += 4;
    }
}

TEST_CASE("neighborhood_attention: a kernel over the whole image is dense attention; causal 1-D is a causal window") {
    const index_t Hh = 6, Ww = 5, H = 4, D = 16;
    auto q = random_tensor<float, 5>({2, Hh, Ww, H, D}, 1);
    auto k = random_tensor<float, 5>({2, Hh, Ww, 2, D}, 2);
    auto v = random_tensor<float, 5>({2, Hh, Ww, 2, D}, 3);
    // Kernel 5 over a 5 x 5 crop: every query sees every pixel.
    auto crop = [](const tensor<float, 5>& t) { return slice(t.view(), 1, 0, 5); };
    tensor<float, 5> o2({2, 5, Ww, H, D});
    neighborhood_attention_2d(crop(q), crop(k), crop(v), o2.view(), na(5, 1, false));
    tensor<float, 4> o3({2, 5 * Ww, H, D});
    auto flat = [](const auto& t) {
        return tensor_view<const float, 4>(t.data(), {t.extent(0), t.extent(1) * t.extent(2), t.extent(3), t.extent(4)},
                                           {t.stride(0), t.stride(2), t.stride(3), t.stride(4)});
    };
    softmax_attention(flat(crop(q)), flat(crop(k)), flat(crop(v)), o3.view());
    for (index_t b = 0; b < 2; ++b)
        for (index_t p = 0; p < 5 * Ww; ++p)
            for (index_t h = 0; h < H; ++h)
                for (index_t e = 0; e < D; ++e) REQUIRE(std::abs(o2(b, p / Ww, p % Ww, h, e) - o3(b, p, h, e)) < 2e-6);
    // 1-D causal kernel K is the causal window of K - 1 keys back.
    auto q1 = random_tensor<float, 4>({1, 300, 4, 32}, 4);
    auto k1 = random_tensor<float, 4>({1, 300, 2, 32}, 5);
    tensor<float, 4> n1({1, 300, 4, 32}), w1({1, 300, 4, 32});
    neighborhood_attention_1d(q1.view(), k1.view(), k1.view(), n1.view(), na(33, 1, true));
    window_options w;
    w.window_left = 32;
    w.causal = true;
    sliding_window_attention(q1.view(), k1.view(), k1.view(), w1.view(), w);
    CHECK(max_rel_error(n1, w1) < 1e-6);
}

TEST_CASE("neighborhood_attention: bitwise for 1, 2, 3, 5 threads and an image alone or in a batch") {
    auto q = random_tensor<float, 5>({3, 20, 18, 4, 32}, 7);
    auto k = random_tensor<float, 5>({3, 20, 18, 2, 32}, 8);
    auto v = random_tensor<float, 5>({3, 20, 18, 2, 32}, 9);
    for (const neighborhood_options& o0 : {na(7, 1, false), na(5, 2, {true, false})}) {
        tensor<float, 5> o1({3, 20, 18, 4, 32});
        tensor<float, 4> l1({3, 20, 18, 4});
        neighborhood_options o = o0;
        o.num_threads = 1;
        neighborhood_attention_2d(q.view(), k.view(), v.view(), o1.view(), o, l1.view());
        for (int t : {2, 3, 5}) {
            o.num_threads = t;
            tensor<float, 5> o2({3, 20, 18, 4, 32});
            tensor<float, 4> l2({3, 20, 18, 4});
            neighborhood_attention_2d(q.view(), k.view(), v.view(), o2.view(), o, l2.view());
            CHECK(bitwise_equal(o1, o2));
            CHECK(bitwise_equal(l1, l2));
        }
        tensor<float, 5> solo({1, 20, 18, 4, 32});
        neighborhood_attention_2d(slice(q.view(), 0, 2, 1), slice(k.view(), 0, 2, 1), slice(v.view(), 0, 2, 1),
                                  solo.view(), o0);
        CHECK(bitwise_equal(slice(o1.view(), 0, 2, 1), solo.view()));
    }
}

TEST_CASE("neighborhood_attention: bad inputs give seqmix::error and leave out untouched") {
    auto q = random_tensor<float, 5>({1, 6, 8, 2, 16}, 1);
    tensor<float, 5> out({1, 6, 8, 2, 16}, 42.0f);
    auto untouched = [&] {
        for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 42.0f);
    };
    auto call = [&](const neighborhood_options& o) {
        neighborhood_attention_2d(q.view(), q.view(), q.view(), out.view(), o);
    };
    expect_error([&] { call(na(7, 1, false)); }, "expected kernel_size * dilation <= the image extent on axis 0 (6)");
    untouched();
    expect_error([&] { call(na({3, 3}, {1, 3}, false)); }, "on axis 1 (8), given 3 * 3");
    untouched();
    expect_error([&] { call(na(4, 1, false)); }, "'kernel_size': expected an odd size");
    untouched();
    expect_error([&] { call(na({3, 3, 3}, 1, false)); }, "expected 1 or 2 values");
    untouched();
    expect_error([&] { call(na(3, 0, false)); }, "'dilation'");
    untouched();
    auto k3 = random_tensor<float, 5>({1, 6, 7, 2, 16}, 2);
    expect_error([&] { neighborhood_attention_2d(q.view(), k3.view(), k3.view(), out.view(), na(3, 1, false)); },
                 "neighborhood_attention_2d: argument 'k'");
    untouched();
    CHECK_THROWS_AS(reference::neighborhood_attention_2d(q.view(), q.view(), q.view(), out.view(), na(7, 1, false)),
                    seqmix::error);
}

TEST_CASE("local attention over bf16 / fp16 / fp8 storage: the float operator's bits on the same values") {
    // Sliding window (dilated, 3 threads, a paged fp8 cache) and 2-D neighbourhood attention.
    {
        const index_t B = 2, Nq = 90, Nk = 120, Hq = 4, Hkv = 2, D = 40;
        const auto q = convert<bf16>(random_tensor<float, 4>({B, Nq, Hq, D}, 61));
        const auto k = convert<fp8_e4m3>(random_tensor<float, 4>({B, Nk, Hkv, D}, 62, -4, 4));
        const auto v = convert<fp8_e4m3>(random_tensor<float, 4>({B, Nk, Hkv, D}, 63, -4, 4));
        const auto qf = convert<float>(q);
        const auto kf = convert<float>(k);
        const auto vf = convert<float>(v);
        window_options o;
        o.window_left = 17;
        o.window_right = 5;
        o.dilation = 2;
        o.num_threads = 1;
        tensor<float, 4> of({B, Nq, Hq, D});
        sliding_window_attention(qf.view(), kf.view(), vf.view(), of.view(), o);
        o.num_threads = 3;
        tensor<bf16, 4> os({B, Nq, Hq, D});
        sliding_window_attention(q.view(), k.view(), v.view(), os.view(), o);
        CHECK(stores_rounded(os, of));
        const paged_copy pc = page(kf, vf, 16, 3);
        const auto pk = convert<fp8_e4m3>(pc.k);
        const auto pv = convert<fp8_e4m3>(pc.v);
        const std::int32_t lens[] = {std::int32_t(Nk), std::int32_t(Nk)};
        window_options paged = o;
        paged.seqlens_k = lens;
        paged.block_table = pc.table.data();
        paged.max_blocks_per_seq = pc.max_blocks;
        tensor<bf16, 4> op({B, Nq, Hq, D});
        sliding_window_attention(q.view(), pk.view(), pv.view(), op.view(), paged);
        CHECK(stores_rounded(op, of));
    }
    {
        const auto q = convert<fp16>(random_tensor<float, 5>({2, 13, 11, 4, 24}, 64));
        const auto k = convert<fp16>(random_tensor<float, 5>({2, 13, 11, 2, 24}, 65));
        const auto v = convert<bf16>(random_tensor<float, 5>({2, 13, 11, 2, 24}, 66));
        const auto qf = convert<float>(q);
        const auto kf = convert<float>(k);
        const auto vf = convert<float>(v);
        for (const neighborhood_options& o : {na(5, 1, false), na(3, 2, {true, false})}) {
            tensor<float, 5> of({2, 13, 11, 4, 24});
            tensor<float, 4> lf({2, 13, 11, 4}), ls({2, 13, 11, 4});
            neighborhood_attention_2d(qf.view(), kf.view(), vf.view(), of.view(), o, lf.view());
            tensor<fp16, 5> os({2, 13, 11, 4, 24});
            neighborhood_attention_2d(q.view(), k.view(), v.view(), os.view(), o, ls.view());
            CHECK(stores_rounded(os, of));
            CHECK(bitwise_equal(lf, ls));
        }
    }
}
