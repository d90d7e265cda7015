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
    auto qd = convert<double>(q), kd = convert<double>(k), vd = convert<double>(v);
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
        {1, 1, 1, 1, 1, 1, 1},       {2, 7, 7, 2, 1, 3, 3},        {1, 200, 200, 4, 2, 64, 64},
        {1, 130, 300, 8, 2, 17, 24}, {1, 300, 130, 2, 2, 33, 16},  {1, 1, 1500, 8, 2, 64, 64},
        {2, 3, 700, 4, 4, 20, 36},   {1, 1000, 1000, 1, 1, 16, 16},
    };
    std::vector<float> sinks(8);
    for (std::size_t h = 0; h < sinks.size(); ++h) sinks[h] = float(h) * 0.5f - 1.5f;
    std::vector<window_options> options = {
        window(16, 16, false, 1), window(64, -1, true, 1), window(0, 0, false, 1), window(5, 3, false, 2),
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
                           << " dilation " << o.dilation << " softcap " << o.softcap << " sinks " << (o.sinks != nullptr));
            double lse_err = 0;
            CHECK(window_vs_reference<float>(s, o, seed, &lse_err) < 2e-6);
            CHECK(lse_err < 2e-6);
            CHECK(window_vs_reference<double>(s, o, seed, &lse_err) < 1e-13);
            CHECK(lse_err < 1e-13);
            seed += 3;
        }
}

TEST_CASE("sliding_window_attention at dilation 1 gives softmax_attention's bits; a window over everything equals dense") {
    for (const shape s : {shape{1, 500, 500, 8, 2, 64, 64}, shape{2, 1, 3000, 8, 2, 64, 64}, shape{1, 40, 900, 4, 1, 32, 32}})
        for (const window_options w : {window(128, -1, true, 1), window(31, 12, false, 1), window(600, 600, false, 1)}) {
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

TEST_CASE("sliding_window_attention: paged and head-major caches give the token-major bits; threads and batch do not matter") {
    const index_t B = 3, Nk = 700, Hkv = 2, Hq = 8, D = 48;
    const std::int32_t lens[] = {700, 0, 333};
    for (const index_t nq : {index_t(1), index_t(5), index_t(64)})
        for (const window_options w0 : {window(100, -1, true, 1), window(90, 10, false, 3), window(-1, -1, true, 2)}) {
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
    for (const window_options w0 : {window(20, -1, true, 1), window(33, 9, false, 2)}) {
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
    expect_error([&] { sliding_window_attention(q.view(), k.view(), k.view(), out.view(), w); }, "'dilation': expected >= 1");
    untouched();
    w.dilation = 1;
    w.window_left = -3;
    expect_error([&] { sliding_window_attention(q.view(), k.view(), k.view(), out.view(), w); }, "'window_left'");
    untouched();
    w.window_left = 4;
    auto k3 = random_tensor<float, 4>({1, 10, 3, 16}, 3);
    expect_error([&] { sliding_window_attention(q.view(), k3.view(), k3.view(), out.view(), w); }, "sliding_window_attention: argument 'k'");
    untouched();
    const float sinks[] = {0, 1, std::numeric_limits<float>::quiet_NaN(), 0};
    w.sinks = sinks;
    expect_error([&] { sliding_window_attention(q.view(), k.view(), k.view(), out.view(), w); }, "'sinks'");
    untouched();
    w.sinks = nullptr;
    w.dilation = 0;
    CHECK_THROWS_AS(reference::sliding_window_attention(q.view(), k.view(), k.view(), out.view(), w), seqmix::error);
}
