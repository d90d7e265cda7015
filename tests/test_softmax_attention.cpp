#include <seqmix/ops/softmax_attention.hpp>
#include <seqmix/reference/softmax_attention.hpp>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <cstdio>
#include <random>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "attention_caches.hpp"
#include "test_util.hpp"

using namespace seqmix;
using namespace seqmix_test;

namespace {

struct shape {
    index_t B, Nq, Nk, Hq, Hkv, Dk, Dv;
};

struct named_options {
    const char* name;
    attention_options opt;
};

std::vector<float> slopes(index_t h) {
    std::vector<float> s(static_cast<std::size_t>(h));
    for (index_t i = 0; i < h; ++i) s[std::size_t(i)] = std::pow(2.0f, -8.0f * float(i + 1) / float(h));
    return s;
}

// Fast kernel in T vs the double reference on the same inputs; returns max relative error
// of out, and checks lse the same way.
template <class T>
double compare_with_reference(const shape& s, const attention_options& opt, unsigned seed, double* lse_err = nullptr) {
    auto q = random_tensor<T, 4>({s.B, s.Nq, s.Hq, s.Dk}, seed);
    auto k = random_tensor<T, 4>({s.B, s.Nk, s.Hkv, s.Dk}, seed + 1);
    auto v = random_tensor<T, 4>({s.B, s.Nk, s.Hkv, s.Dv}, seed + 2);
    tensor<T, 4> out({s.B, s.Nq, s.Hq, s.Dv}, T(99));
    tensor<T, 3> lse({s.B, s.Hq, s.Nq}, T(99));
    softmax_attention(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
    auto qd = convert<double>(q);
    auto kd = convert<double>(k);
    auto vd = convert<double>(v);
    tensor<double, 4> ref({s.B, s.Nq, s.Hq, s.Dv});
    tensor<double, 3> ref_lse({s.B, s.Hq, s.Nq});
    reference::softmax_attention(qd.view(), kd.view(), vd.view(), ref.view(), opt, ref_lse.view());
    if (lse_err) *lse_err = max_rel_error(lse, ref_lse, 1.0);
    return max_rel_error(out, ref);
}

}  // namespace

TEST_CASE("softmax_attention matches the double reference over awkward shapes and every option") {
    const std::vector<shape> shapes = {
        {1, 1, 1, 1, 1, 1, 1},
        {2, 7, 7, 2, 1, 3, 3},
        {1, 63, 64, 2, 2, 64, 64},
        {1, 64, 65, 8, 1, 80, 80},
        {1, 65, 63, 4, 2, 128, 128},
        {2, 7, 200, 8, 8, 17, 5},
        {1, 1, 1000, 8, 1, 64, 64},
        {1, 1000, 1000, 1, 1, 64, 64},
        {1, 3, 130, 2, 1, 256, 256},
        {1, 100, 37, 8, 2, 16, 24},
        {3, 1, 300, 16, 2, 128, 128},
        {1, 129, 129, 3, 1, 7, 9},
        // Split-KV (fewer units than the occupancy target): rows in lanes with several query
        // blocks, multi-query decode (32 heads over one), GQA decode and Nq = 2 with keys in lanes.
        {1, 150, 2100, 2, 1, 16, 24},
        {1, 1, 2000, 32, 1, 24, 40},
        {2, 1, 1500, 8, 2, 17, 5},
        {1, 2, 1100, 8, 4, 64, 64},
    };
    const std::vector<float> sl16 = slopes(16);
    std::vector<float> sl = sl16;
    sl.insert(sl.end(), sl16.begin(), sl16.end());  // 32 heads: the widest shape (multi-query decode)
    std::vector<float> sinks(32);
    for (std::size_t h = 0; h < sinks.size(); ++h) sinks[h] = float(int(h % 7) - 3) * 0.7f;  // -2.1 .. 2.1
    std::vector<named_options> options(9);
    options[0].name = "plain";
    options[1].name = "causal";
    options[1].opt.causal = true;
    options[2].name = "window 5/3";
    options[2].opt.window_left = 5;
    options[2].opt.window_right = 3;
    options[3].name = "causal window 17";
    options[3].opt.causal = true;
    options[3].opt.window_left = 17;
    options[4].name = "softcap + alibi";
    options[4].opt.softcap = 2.0;
    options[4].opt.alibi_slopes = sl.data();
    options[5].name = "scale + causal + alibi + softcap";
    options[5].opt.scale = 0.3;
    options[5].opt.causal = true;
    options[5].opt.alibi_slopes = sl.data();
    options[5].opt.softcap = 5.0;
    options[6].name = "window right only 0";
    options[6].opt.window_right = 0;
    options[7].name = "sinks";
    options[7].opt.sinks = sinks.data();
    options[8].name = "causal window 9 + sinks + softcap";
    options[8].opt.causal = true;
    options[8].opt.window_left = 9;
    options[8].opt.softcap = 3.0;
    options[8].opt.sinks = sinks.data();
    unsigned seed = 10;
    for (const auto& s : shapes)
        for (const auto& o : options) {
            INFO("shape B" << s.B << " Nq" << s.Nq << " Nk" << s.Nk << " Hq" << s.Hq << " Hkv" << s.Hkv << " Dk" << s.Dk
                           << " Dv" << s.Dv << " options: " << o.name);
            double lse_err = 0;
            const double err = compare_with_reference<float>(s, o.opt, seed, &lse_err);
            // ALiBi logits reach slope x distance: a logit of magnitude M carries an absolute
            // rounding error of about M 2^-24, which exp turns into a relative error of the
            // probabilities (distances near 100 at slope 0.7 gave 2.02e-6 on SSE2).
            const double max_bias = o.opt.alibi_slopes ? double(sl[0]) * double(s.Nq + s.Nk) : 0.0;
            CHECK(err < 2e-6 * std::max(1.0, max_bias / 32));
            CHECK(lse_err < 2e-6);
            const double err_d = compare_with_reference<double>(s, o.opt, seed, &lse_err);
            CHECK(err_d < 1e-13);
            CHECK(lse_err < 1e-13);
            seed += 3;
        }
}

TEST_CASE("fully masked rows give zeros and lse = -inf, never NaN") {
    // Causal with Nq > Nk: the first Nq - Nk rows see no key (bottom-right alignment).
    for (index_t nq : {3, 40}) {
        const index_t nk = 2;
        auto q = random_tensor<float, 4>({1, nq, 4, 8}, 1);
        auto k = random_tensor<float, 4>({1, nk, 2, 8}, 2);
        auto v = random_tensor<float, 4>({1, nk, 2, 8}, 3);
        tensor<float, 4> out({1, nq, 4, 8}, 5.0f);
        tensor<float, 3> lse({1, 4, nq}, 5.0f);
        attention_options opt;
        opt.causal = true;
        softmax_attention(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
        for (index_t i = 0; i < nq; ++i)
            for (index_t h = 0; h < 4; ++h) {
                const bool masked = i < nq - nk;
                for (index_t e = 0; e < 8; ++e) {
                    REQUIRE_FALSE(std::isnan(out(0, i, h, e)));
                    if (masked) REQUIRE(out(0, i, h, e) == 0.0f);
                }
                if (masked) REQUIRE(lse(0, h, i) == -std::numeric_limits<float>::infinity());
                else REQUIRE(std::isfinite(lse(0, h, i)));
            }
    }
    // An empty KV cache (seqlens_k = 0) masks every row.
    auto q = random_tensor<float, 4>({2, 5, 2, 8}, 4);
    auto k = random_tensor<float, 4>({2, 9, 2, 8}, 5);
    tensor<float, 4> out({2, 5, 2, 8}, 5.0f);
    const std::int32_t lens[] = {0, 9};
    attention_options opt;
    opt.seqlens_k = lens;
    softmax_attention(q.view(), k.view(), k.view(), out.view(), opt);
    for (index_t i = 0; i < 5; ++i)
        for (index_t e = 0; e < 8; ++e) REQUIRE(out(0, i, 1, e) == 0.0f);
}

TEST_CASE("attention sinks: a sink far above every score takes the row, an empty row gives zeros and lse = sink") {
    const index_t nq = 5, nk = 3, H = 2, D = 8;
    auto q = random_tensor<float, 4>({1, nq, H, D}, 61);
    auto k = random_tensor<float, 4>({1, nk, H, D}, 62);
    auto v = random_tensor<float, 4>({1, nk, H, D}, 63);
    const float sinks[] = {40.0f, -1.5f};
    attention_options opt;
    opt.causal = true;  // bottom-right: rows 0 and 1 see no key
    opt.sinks = sinks;
    tensor<float, 4> out({1, nq, H, D}, 7.0f);
    tensor<float, 3> lse({1, H, nq}, 7.0f);
    softmax_attention(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
    for (index_t i = 0; i < nq; ++i)
        for (index_t h = 0; h < H; ++h) {
            if (i < 2) REQUIRE(lse(0, h, i) == sinks[h]);
            for (index_t e = 0; e < D; ++e) {
                if (i < 2 || h == 0) REQUIRE(std::abs(out(0, i, h, e)) <= (i < 2 ? 0.0f : 1e-15f));
                REQUIRE(std::isfinite(out(0, i, h, e)));
            }
        }
    const float bad[] = {0.0f, std::numeric_limits<float>::infinity()};
    opt.sinks = bad;
    CHECK_THROWS_WITH(softmax_attention(q.view(), k.view(), v.view(), out.view(), opt),
                      Catch::Contains("'sinks': expected finite"));
}

TEST_CASE("batch invariance: each sequence of a batch or a mixed prefill + decode varlen call has its solo bits") {
    // Mixed varlen: decode rows (1 query over a long cache), a prefill, a chunk with a cached
    // prefix, an empty sequence; and the split-KV case (one long decode).
    const std::vector<index_t> lq = {1, 300, 40, 0, 1, 7}, lk = {2100, 300, 700, 5, 1, 1500};
    std::vector<std::int32_t> cq{0}, ck{0};
    for (std::size_t s = 0; s < lq.size(); ++s) {
        cq.push_back(cq.back() + std::int32_t(lq[s]));
        ck.push_back(ck.back() + std::int32_t(lk[s]));
    }
    const index_t H = 8, Hkv = 2, D = 40;
    auto q = random_tensor<float, 4>({1, cq.back(), H, D}, 71);
    auto k = random_tensor<float, 4>({1, ck.back(), Hkv, D}, 72);
    auto v = random_tensor<float, 4>({1, ck.back(), Hkv, D}, 73);
    for (bool causal : {false, true})
        for (int threads : {1, 3}) {
            INFO("causal " << causal << " threads " << threads);
            attention_options opt;
            opt.causal = causal;
            opt.num_threads = threads;
            opt.cu_seqlens_q = cq.data();
            opt.cu_seqlens_k = ck.data();
            opt.num_seqs = int(lq.size());
            tensor<float, 4> out({1, cq.back(), H, D});
            tensor<float, 3> lse({1, H, cq.back()});
            softmax_attention(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
            attention_options solo;
            solo.causal = causal;
            solo.num_threads = 2;
            for (std::size_t s = 0; s < lq.size(); ++s) {
                if (lq[s] == 0) continue;
                tensor<float, 4> o({1, lq[s], H, D});
                tensor<float, 3> l({1, H, lq[s]});
                softmax_attention(slice(q.view(), 1, cq[s], lq[s]), slice(k.view(), 1, ck[s], lk[s]),
                                  slice(v.view(), 1, ck[s], lk[s]), o.view(), solo, l.view());
                CHECK(bitwise_equal(slice(out.view(), 1, cq[s], lq[s]), o.view()));
                for (index_t h = 0; h < H; ++h)
                    for (index_t i = 0; i < lq[s]; ++i) REQUIRE(same_bits(lse(0, h, cq[s] + i), l(0, h, i)));
            }
        }
    // A padded batch of KV caches: each sequence alone over its own prefix.
    const index_t B = 3, Nk = 1800;
    const std::int32_t lens[] = {1800, 600, 33};
    auto qb = random_tensor<float, 4>({B, 1, H, D}, 74);
    auto kb = random_tensor<float, 4>({B, Nk, Hkv, D}, 75);
    auto vb = random_tensor<float, 4>({B, Nk, Hkv, D}, 76);
    attention_options cache;
    cache.seqlens_k = lens;
    tensor<float, 4> out({B, 1, H, D});
    softmax_attention(qb.view(), kb.view(), vb.view(), out.view(), cache);
    for (index_t b = 0; b < B; ++b) {
        tensor<float, 4> o({1, 1, H, D});
        softmax_attention(slice(qb.view(), 0, b, 1), slice(slice(kb.view(), 0, b, 1), 1, 0, lens[b]),
                          slice(slice(vb.view(), 0, b, 1), 1, 0, lens[b]), o.view());
        CHECK(bitwise_equal(slice(out.view(), 0, b, 1), o.view()));
    }
}

TEST_CASE("plan: decode at batch 1 deals at least as many items as threads, up to 64") {
    // Hq = 32 over Hkv = 8, Nk = 32768, D = 128: token-major (heads side by side), head-major, paged.
    const index_t Nk = 32768, Hkv = 8, D = 128;
    tensor<float, 4> q({1, 1, 32, D}), out({1, 1, 32, D});
    tensor<float, 4> k({1, Nk, Hkv, D});
    attention_options opt;
    for (int layout = 0; layout < 2; ++layout) {
        tensor_view<const float, 4> kv = k.view();
        if (layout == 1) kv = tensor_view<const float, 4>(k.data(), {1, Nk, Hkv, D}, {Nk * Hkv * D, D, Nk * D, 1});
        const auto a = detail::prepare_attention(q.view(), kv, kv, out.view(), tensor_view<float, 3>(), opt, "plan");
        const detail::softmax_variant<float> var(a, opt);
        for (int threads = 1; threads <= 64; ++threads) {
            const kernels::attention_plan plan = kernels::plan_attention(var, threads);
            INFO("layout " << layout << " threads " << threads);
            CHECK(plan.items >= threads);
            CHECK(plan.problems[0].splits == 8);  // the cut never follows the threads or the layout
        }
    }
    // Multi-query decode (one KV head): the keys alone make the items.
    tensor<float, 4> k1({1, Nk, 1, D});
    const auto a =
        detail::prepare_attention(q.view(), k1.view(), k1.view(), out.view(), tensor_view<float, 3>(), opt, "plan");
    const kernels::attention_plan plan = kernels::plan_attention(detail::softmax_variant<float>(a, opt), 64);
    CHECK(plan.items == 64);
    // The hostile catalog's "decode split KV" shape (its NaN / Inf class goes through the merge).
    tensor<float, 4> qh({2, 1, 4, 5}), kh({2, 1100, 2, 5}), vh({2, 1100, 2, 7}), oh({2, 1, 4, 7});
    const auto ah =
        detail::prepare_attention(qh.view(), kh.view(), vh.view(), oh.view(), tensor_view<float, 3>(), opt, "plan");
    for (int threads : {1, 2, 5})
        CHECK(kernels::plan_attention(detail::softmax_variant<float>(ah, opt), threads).problems[0].splits == 2);
}

TEST_CASE("results are bitwise identical for 1, 2, 3 and 5 threads (every engine, split or not)") {
    // Prefill; GQA decode (keys in lanes, split); multi-query decode (rows in lanes, split);
    // a few long rows-in-lanes units (split); Nq = 3 decode-like.
    const shape shapes[] = {{2, 130, 150, 8, 2, 64, 48},
                            {1, 1, 3000, 8, 2, 128, 128},
                            {1, 1, 4000, 32, 1, 64, 64},
                            {1, 70, 2600, 2, 1, 32, 32},
                            {2, 3, 1200, 4, 4, 20, 36}};
    for (const shape s : shapes) {
        auto q = random_tensor<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, 7);
        auto k = random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, 8);
        auto v = random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, 9);
        for (bool causal : {false, true}) {
            INFO("Nq " << s.Nq << " Nk " << s.Nk << " Hq " << s.Hq << " Hkv " << s.Hkv << " causal " << causal);
            attention_options opt;
            opt.causal = causal;
            opt.num_threads = 1;
            tensor<float, 4> o1({s.B, s.Nq, s.Hq, s.Dv});
            tensor<float, 3> l1({s.B, s.Hq, s.Nq});
            softmax_attention(q.view(), k.view(), v.view(), o1.view(), opt, l1.view());
            for (int threads : {2, 3, 5}) {
                opt.num_threads = threads;
                tensor<float, 4> o2({s.B, s.Nq, s.Hq, s.Dv});
                tensor<float, 3> l2({s.B, s.Hq, s.Nq});
                softmax_attention(q.view(), k.view(), v.view(), o2.view(), opt, l2.view());
                CHECK(bitwise_equal(o1, o2));
                CHECK(bitwise_equal(l1, l2));
            }
        }
    }
}

TEST_CASE("paged KV cache: the same bits as the contiguous cache, pages in any order") {
    const index_t B = 3, Nk = 700, Hkv = 2;
    const std::int32_t lens[] = {700, 0, 333};
    std::vector<float> sl = slopes(8);
    for (const index_t hq : {index_t(2), index_t(8)})
        for (const index_t nq : {index_t(1), index_t(3), index_t(40)})
            for (const index_t block_size : {index_t(1), index_t(5), index_t(16), index_t(64)}) {
                const index_t D = nq == 40 ? 24 : 64;
                auto q = random_tensor<float, 4>({B, nq, hq, D}, unsigned(40 + nq));
                auto k = random_tensor<float, 4>({B, Nk, Hkv, D}, 41);
                auto v = random_tensor<float, 4>({B, Nk, Hkv, D}, 42);
                const paged_copy pc = page(k, v, block_size, unsigned(block_size));
                for (int variant = 0; variant < 3; ++variant) {
                    INFO("Hq " << hq << " Nq " << nq << " block_size " << block_size << " variant " << variant);
                    attention_options opt;
                    opt.seqlens_k = lens;
                    opt.causal = variant >= 1;
                    if (variant == 2) {
                        opt.window_left = 50;
                        opt.softcap = 3.0;
                        opt.alibi_slopes = sl.data();
                    }
                    tensor<float, 4> o1({B, nq, hq, D}, 9.0f), o2({B, nq, hq, D}, 7.0f);
                    tensor<float, 3> l1({B, hq, nq}), l2({B, hq, nq});
                    softmax_attention(q.view(), k.view(), v.view(), o1.view(), opt, l1.view());
                    attention_options paged = opt;
                    paged.block_table = pc.table.data();
                    paged.max_blocks_per_seq = pc.max_blocks;
                    paged.num_threads = variant + 1;
                    softmax_attention(q.view(), pc.k.view(), pc.v.view(), o2.view(), paged, l2.view());
                    CHECK(bitwise_equal(o1, o2));
                    CHECK(bitwise_equal(l1, l2));
                    if (block_size == 5) {  // and the reference reads pages the same way
                        auto qd = convert<double>(q);
                        auto kd = convert<double>(pc.k);
                        auto vd = convert<double>(pc.v);
                        tensor<double, 4> ref({B, nq, hq, D});
                        reference::softmax_attention(qd.view(), kd.view(), vd.view(), ref.view(), paged);
                        CHECK(max_rel_error(o2, ref) < 2e-6);
                    }
                }
            }
}

TEST_CASE("paged KV cache with packed queries (a mixed prefill and decode batch): the bits of one call per sequence") {
    const index_t B = 4, Nk = 300, Hkv = 2, Hq = 4, D = 40;
    const std::int32_t kv_lens[] = {300, 7, 0, 129};
    const std::vector<index_t> q_lens{1, 7, 0, 33};  // a decode, a whole prefill, nothing, a prefill chunk
    std::vector<std::int32_t> cu{0};
    for (index_t n : q_lens) cu.push_back(cu.back() + std::int32_t(n));
    auto q = random_tensor<float, 4>({1, cu.back(), Hq, D}, 51);
    auto k = random_tensor<float, 4>({B, Nk, Hkv, D}, 52), v = random_tensor<float, 4>({B, Nk, Hkv, D}, 53);
    for (const index_t block_size : {index_t(1), index_t(16)}) {
        const paged_copy pc = page(k, v, block_size, unsigned(block_size + 5));
        for (int variant = 0; variant < 2; ++variant) {
            INFO("block_size " << block_size << " variant " << variant);
            attention_options o;
            o.causal = variant == 1;  // bottom-right: the new queries are each sequence's last tokens
            o.seqlens_k = kv_lens;
            o.block_table = pc.table.data();
            o.max_blocks_per_seq = pc.max_blocks;
            o.cu_seqlens_q = cu.data();
            o.num_seqs = int(B);
            tensor<float, 4> out({1, cu.back(), Hq, D}, 9.0f);
            tensor<float, 3> lse({1, Hq, cu.back()});
            softmax_attention(q.view(), pc.k.view(), pc.v.view(), out.view(), o, lse.view());
            for (int threads : {2, 3}) {
                attention_options ot = o;
                ot.num_threads = threads;
                tensor<float, 4> o2({1, cu.back(), Hq, D}, 9.0f);
                softmax_attention(q.view(), pc.k.view(), pc.v.view(), o2.view(), ot);
                REQUIRE(bitwise_equal(out, o2));
            }
            for (index_t s = 0; s < B; ++s) {
                const index_t n = q_lens[std::size_t(s)];
                if (n == 0) continue;
                attention_options one;
                one.causal = o.causal;
                one.seqlens_k = kv_lens + s;
                one.block_table = pc.table.data() + s * pc.max_blocks;
                one.max_blocks_per_seq = pc.max_blocks;
                tensor<float, 4> os({1, n, Hq, D});
                tensor<float, 3> ls({1, Hq, n});
                softmax_attention(slice(q.view(), 1, cu[std::size_t(s)], n), pc.k.view(), pc.v.view(), os.view(), one,
                                  ls.view());
                REQUIRE(bitwise_equal(os.view(), slice(out.view(), 1, cu[std::size_t(s)], n)));
                REQUIRE(bitwise_equal(ls.view(), slice(lse.view(), 2, cu[std::size_t(s)], n)));
            }
            const auto qd = convert<double>(q);
            const auto kd = convert<double>(pc.k);
            const auto vd = convert<double>(pc.v);
            tensor<double, 4> ref({1, cu.back(), Hq, D}, 9.0);
            reference::softmax_attention(qd.view(), kd.view(), vd.view(), ref.view(), o);
            CHECK(max_rel_error(out, ref) < 2e-6);
        }
    }
    // Packed keys (cu_seqlens_k) have no place next to a block table.
    attention_options bad;
    bad.seqlens_k = kv_lens;
    bad.cu_seqlens_q = bad.cu_seqlens_k = cu.data();
    bad.num_seqs = int(B);
    tensor<float, 4> out({1, cu.back(), Hq, D}, 9.0f);
    const paged_copy pc = page(k, v, 16, 3);
    bad.block_table = pc.table.data();
    bad.max_blocks_per_seq = pc.max_blocks;
    seqmix_test::expect_error([&] { softmax_attention(q.view(), pc.k.view(), pc.v.view(), out.view(), bad); },
                              "no cu_seqlens_k");
    for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 9.0f);
}

TEST_CASE("head-major caches ([B,H,N,D] as a permuted view) give the token-major bits") {
    for (const shape s : {shape{2, 1, 1300, 16, 4, 64, 64}, shape{1, 2, 900, 8, 8, 32, 48},
                          shape{1, 1, 3000, 32, 1, 64, 64}, shape{1, 100, 300, 4, 2, 32, 32}}) {
        auto q = random_tensor<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, 51);
        auto kt = random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, 52);
        auto vt = random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, 53);
        tensor<float, 4> kh({s.B, s.Hkv, s.Nk, s.Dk}), vh({s.B, s.Hkv, s.Nk, s.Dv});
        for (index_t b = 0; b < s.B; ++b)
            for (index_t j = 0; j < s.Nk; ++j)
                for (index_t h = 0; h < s.Hkv; ++h) {
                    for (index_t d = 0; d < s.Dk; ++d) kh(b, h, j, d) = kt(b, j, h, d);
                    for (index_t d = 0; d < s.Dv; ++d) vh(b, h, j, d) = vt(b, j, h, d);
                }
        for (bool causal : {false, true}) {
            INFO("Nq " << s.Nq << " Nk " << s.Nk << " Hq " << s.Hq << " Hkv " << s.Hkv << " causal " << causal);
            attention_options opt;
            opt.causal = causal;
            tensor<float, 4> o1({s.B, s.Nq, s.Hq, s.Dv}), o2({s.B, s.Nq, s.Hq, s.Dv});
            softmax_attention(q.view(), kt.view(), vt.view(), o1.view(), opt);
            softmax_attention(q.view(), permute(kh.view(), {0, 2, 1, 3}), permute(vh.view(), {0, 2, 1, 3}), o2.view(),
                              opt);
            CHECK(bitwise_equal(o1, o2));
        }
    }
}

TEST_CASE("varlen (cu_seqlens) equals separate calls per sequence") {
    const std::vector<index_t> lq = {5, 0, 17, 64, 1}, lk = {9, 3, 17, 70, 1};
    std::vector<std::int32_t> cq{0}, ck{0};
    for (std::size_t s = 0; s < lq.size(); ++s) {
        cq.push_back(cq.back() + std::int32_t(lq[s]));
        ck.push_back(ck.back() + std::int32_t(lk[s]));
    }
    const index_t H = 4, Hkv = 2, D = 24;
    auto q = random_tensor<float, 4>({1, cq.back(), H, D}, 11);
    auto k = random_tensor<float, 4>({1, ck.back(), Hkv, D}, 12);
    auto v = random_tensor<float, 4>({1, ck.back(), Hkv, D}, 13);
    for (bool causal : {false, true}) {
        attention_options opt;
        opt.causal = causal;
        opt.cu_seqlens_q = cq.data();
        opt.cu_seqlens_k = ck.data();
        opt.num_seqs = int(lq.size());
        tensor<float, 4> out({1, cq.back(), H, D});
        tensor<float, 3> lse({1, H, cq.back()});
        softmax_attention(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
        attention_options single;
        single.causal = causal;
        for (std::size_t s = 0; s < lq.size(); ++s) {
            if (lq[s] == 0) continue;
            auto qs = slice(q.view(), 1, cq[s], lq[s]);
            auto ks = slice(k.view(), 1, ck[s], lk[s]);
            auto vs = slice(v.view(), 1, ck[s], lk[s]);
            tensor<float, 4> o({1, lq[s], H, D});
            tensor<float, 3> l({1, H, lq[s]});
            softmax_attention(qs, ks, vs, o.view(), single, l.view());
            for (index_t i = 0; i < lq[s]; ++i)
                for (index_t h = 0; h < H; ++h) {
                    for (index_t e = 0; e < D; ++e)
                        REQUIRE(out(0, cq[s] + i, h, e) == Approx(o(0, i, h, e)).margin(1e-6));
                    REQUIRE(lse(0, h, cq[s] + i) == Approx(l(0, h, i)).margin(1e-5));
                }
        }
    }
}

TEST_CASE("seqlens_k (partly filled KV cache) equals attention over the filled prefix") {
    const index_t B = 3, Nq = 4, Nk = 50, H = 8, Hkv = 2, D = 32;
    const std::int32_t lens[] = {50, 17, 1};
    auto q = random_tensor<float, 4>({B, Nq, H, D}, 21);
    auto k = random_tensor<float, 4>({B, Nk, Hkv, D}, 22);
    auto v = random_tensor<float, 4>({B, Nk, Hkv, D}, 23);
    for (index_t nq : {index_t(1), Nq}) {
        attention_options opt;
        opt.causal = true;
        opt.seqlens_k = lens;
        auto qv = slice(q.view(), 1, 0, nq);
        tensor<float, 4> out({B, nq, H, D});
        softmax_attention(qv, k.view(), v.view(), out.view(), opt);
        attention_options plain;
        plain.causal = true;
        for (index_t b = 0; b < B; ++b) {
            tensor<float, 4> o({1, nq, H, D});
            softmax_attention(slice(slice(qv, 0, b, 1), 1, 0, nq), slice(slice(k.view(), 0, b, 1), 1, 0, lens[b]),
                              slice(slice(v.view(), 0, b, 1), 1, 0, lens[b]), o.view(), plain);
            for (index_t i = 0; i < nq; ++i)
                for (index_t h = 0; h < H; ++h)
                    for (index_t e = 0; e < D; ++e) REQUIRE(out(b, i, h, e) == Approx(o(0, i, h, e)).margin(1e-6));
        }
    }
}

TEST_CASE("strided views: [B,H,N,D] buffers, non-unit last stride, rank-3 input") {
    const index_t B = 2, N = 70, H = 4, D = 20;
    // q, k, v stored as [B,H,N,D] and passed permuted to [B,N,H,D].
    auto qb = random_tensor<float, 4>({B, H, N, D}, 31);
    auto kb = random_tensor<float, 4>({B, H, N, 2 * D}, 32);  // every other element used
    auto vb = random_tensor<float, 4>({B, H, N, D}, 33);
    auto q = permute(qb.view(), {0, 2, 1, 3});
    tensor_view<float, 4> k(kb.data(), {B, N, H, D}, {H * N * 2 * D, 2 * D, N * 2 * D, 2});
    auto v = permute(vb.view(), {0, 2, 1, 3});
    tensor<float, 4> qc({B, N, H, D}), kc({B, N, H, D}), vc({B, N, H, D});
    for (index_t b = 0; b < B; ++b)
        for (index_t n = 0; n < N; ++n)
            for (index_t h = 0; h < H; ++h)
                for (index_t d = 0; d < D; ++d) {
                    qc(b, n, h, d) = q(b, n, h, d);
                    kc(b, n, h, d) = k(b, n, h, d);
                    vc(b, n, h, d) = v(b, n, h, d);
                }
    for (index_t nq : {index_t(1), N}) {
        attention_options opt;
        opt.causal = true;
        tensor<float, 4> o1({B, nq, H, D}), o2({B, nq, H, D});
        softmax_attention(slice(q, 1, 0, nq), k, v, o1.view(), opt);
        softmax_attention(slice(qc.view(), 1, 0, nq), kc.view(), vc.view(), o2.view(), opt);
        CHECK(max_rel_error(o1, o2) < 1e-6);
    }
    // Rank-3 views are one unbatched sequence.
    tensor<float, 3> o3({N, H, D});
    tensor<float, 4> o4({1, N, H, D});
    auto q3 = tensor_view<const float, 3>(qc.data(), {N, H, D});
    auto k3 = tensor_view<const float, 3>(kc.data(), {N, H, D});
    auto v3 = tensor_view<const float, 3>(vc.data(), {N, H, D});
    softmax_attention(q3, k3, v3, o3.view());
    softmax_attention(slice(qc.view(), 0, 0, 1), slice(kc.view(), 0, 0, 1), slice(vc.view(), 0, 0, 1), o4.view());
    CHECK(std::memcmp(o3.data(), o4.data(), sizeof(float) * std::size_t(o3.size())) == 0);
}

TEST_CASE("long sequence accuracy: N = 8192 within 1e-5 of the double reference", "[long]") {
    const shape s{1, 8192, 8192, 1, 1, 16, 16};
    attention_options opt;
    const double err = compare_with_reference<float>(s, opt, 77);
    std::printf("softmax_attention N=8192 D=16: max relative error vs double reference %.3g\n", err);
    CHECK(err < attention_accuracy);
}

namespace {
// Runs f, expects seqmix::error mentioning `needle`, and that out stayed untouched.
template <class F>
void expect_error(F&& f, const std::string& needle, const tensor<float, 4>& out) {
    seqmix_test::expect_error(f, "softmax_attention");
    seqmix_test::expect_error(f, needle);
    for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 42.0f);
}
}  // namespace

TEST_CASE("bad inputs give seqmix::error naming the argument and leave out untouched") {
    auto q = random_tensor<float, 4>({2, 8, 4, 16}, 1);
    auto k = random_tensor<float, 4>({2, 10, 2, 16}, 2);
    auto v = random_tensor<float, 4>({2, 10, 2, 12}, 3);
    tensor<float, 4> out({2, 8, 4, 12}, 42.0f);
    const auto qv = q.view();
    const auto kv = k.view();
    const auto vv = v.view();
    const auto ov = out.view();
    // 1. wrong rank
    tensor<float, 2> flat({8, 16});
    expect_error([&] { softmax_attention(flat.view(), kv, vv, ov); }, "'q': expected rank 4", out);
    // 2. k heads do not divide q heads
    auto k3 = random_tensor<float, 4>({2, 10, 3, 16}, 4);
    auto v3 = random_tensor<float, 4>({2, 10, 3, 12}, 4);
    expect_error([&] { softmax_attention(qv, k3.view(), v3.view(), ov); }, "'k'", out);
    // 3. head dim mismatch between q and k
    auto k_d = random_tensor<float, 4>({2, 10, 2, 15}, 5);
    expect_error([&] { softmax_attention(qv, k_d.view(), vv, ov); }, "'k': expected head dim", out);
    // 4. batch mismatch
    auto k_b = random_tensor<float, 4>({1, 10, 2, 16}, 6);
    expect_error([&] { softmax_attention(qv, k_b.view(), vv, ov); }, "'k': expected batch", out);
    // 5. v length differs from k
    auto v_n = random_tensor<float, 4>({2, 11, 2, 12}, 7);
    expect_error([&] { softmax_attention(qv, kv, v_n.view(), ov); }, "'v': expected sequence length", out);
    // 6. v heads differ from k
    auto v_h = random_tensor<float, 4>({2, 10, 4, 12}, 8);
    expect_error([&] { softmax_attention(qv, kv, v_h.view(), ov); }, "'v': expected heads", out);
    // 7. out of the wrong shape
    tensor<float, 4> out_bad({2, 8, 4, 16}, 42.0f);
    expect_error([&] { softmax_attention(qv, kv, vv, out_bad.view()); }, "'out': expected shape [2,8,4,12]", out_bad);
    // 8. negative window
    attention_options neg;
    neg.window_left = -2;
    expect_error([&] { softmax_attention(qv, kv, vv, ov, neg); }, "'window_left'", out);
    // 9. out aliasing q
    tensor<float, 4> qq({2, 8, 4, 12}, 42.0f);
    expect_error(
        [&] {
            softmax_attention(tensor_view<const float, 4>(qq.data(), {2, 8, 4, 12}),
                              random_tensor<float, 4>({2, 10, 2, 12}, 9).view(), vv, qq.view());
        },
        "'out': expected memory disjoint from 'q'", qq);
    // 10. bad cu_seqlens (decreasing), 11. not ending at the total, 12. varlen with batch 2
    auto q1 = random_tensor<float, 4>({1, 8, 4, 16}, 10);
    auto k1 = random_tensor<float, 4>({1, 10, 2, 16}, 11);
    auto v1 = random_tensor<float, 4>({1, 10, 2, 12}, 12);
    tensor<float, 4> out1({1, 8, 4, 12}, 42.0f);
    const std::int32_t cq_bad[] = {0, 5, 3, 8}, cq[] = {0, 3, 5, 8}, ck_short[] = {0, 3, 5, 9};
    const std::int32_t ck[] = {0, 4, 4, 10};
    attention_options var;
    var.num_seqs = 3;
    var.cu_seqlens_q = cq_bad;
    var.cu_seqlens_k = ck;
    expect_error([&] { softmax_attention(q1.view(), k1.view(), v1.view(), out1.view(), var); },
                 "'cu_seqlens_q': expected non-decreasing", out1);
    var.cu_seqlens_q = cq;
    var.cu_seqlens_k = ck_short;
    expect_error([&] { softmax_attention(q1.view(), k1.view(), v1.view(), out1.view(), var); },
                 "'cu_seqlens_k': expected last offset", out1);
    var.cu_seqlens_k = ck;
    expect_error([&] { softmax_attention(qv, kv, vv, ov, var); }, "expected batch 1 with cu_seqlens", out);
    // 13. cu_seqlens without num_seqs, 14. only one of the two cu_seqlens
    attention_options no_count;
    no_count.cu_seqlens_q = cq;
    no_count.cu_seqlens_k = ck;
    expect_error([&] { softmax_attention(q1.view(), k1.view(), v1.view(), out1.view(), no_count); }, "'num_seqs'",
                 out1);
    no_count.cu_seqlens_k = nullptr;
    expect_error([&] { softmax_attention(q1.view(), k1.view(), v1.view(), out1.view(), no_count); }, "'cu_seqlens_k'",
                 out1);
    // 15. seqlens_k beyond the cache
    const std::int32_t lens[] = {3, 11};
    attention_options cache;
    cache.seqlens_k = lens;
    expect_error([&] { softmax_attention(qv, kv, vv, ov, cache); }, "'seqlens_k'", out);
    // 16. negative softcap, 17. non-finite scale, 18. negative thread count
    attention_options cap;
    cap.softcap = -1;
    expect_error([&] { softmax_attention(qv, kv, vv, ov, cap); }, "'softcap'", out);
    attention_options sc;
    sc.scale = std::numeric_limits<double>::quiet_NaN();
    expect_error([&] { softmax_attention(qv, kv, vv, ov, sc); }, "'scale'", out);
    attention_options th;
    th.num_threads = -1;
    expect_error([&] { softmax_attention(qv, kv, vv, ov, th); }, "'num_threads'", out);
    // 19. lse of the wrong shape, 20. an empty (not given) q
    tensor<float, 3> lse_bad({2, 8, 4});
    expect_error([&] { softmax_attention(qv, kv, vv, ov, {}, lse_bad.view()); }, "'lse': expected shape [2,4,8]", out);
    expect_error([&] { softmax_attention(tensor_view<const float, 4>(), kv, vv, ov); },
                 "'q': expected a non-empty view", out);
    // 21-26. paged caches: no seqlens_k, no max_blocks_per_seq, a block id out of range,
    // too few blocks for a length, cu_seqlens with a block table, v with other blocks than k.
    auto kp = random_tensor<float, 4>({5, 4, 2, 16}, 13);  // 5 blocks of 4 keys
    auto vp = random_tensor<float, 4>({5, 4, 2, 12}, 14);
    const std::int32_t table[] = {4, 0, 2, 1, 3, -1}, bad_table[] = {4, 5, 2, 1, 3, 0}, plens[] = {9, 5};
    attention_options pg;
    pg.block_table = table;
    pg.max_blocks_per_seq = 3;
    expect_error([&] { softmax_attention(qv, kp.view(), vp.view(), ov, pg); }, "'seqlens_k': expected the valid length",
                 out);
    pg.seqlens_k = plens;
    pg.max_blocks_per_seq = 0;
    expect_error([&] { softmax_attention(qv, kp.view(), vp.view(), ov, pg); }, "'max_blocks_per_seq'", out);
    pg.max_blocks_per_seq = 3;
    pg.block_table = bad_table;
    expect_error([&] { softmax_attention(qv, kp.view(), vp.view(), ov, pg); },
                 "'block_table': expected block ids in [0, 5)", out);
    pg.block_table = table;
    const std::int32_t long_lens[] = {13, 5};
    pg.seqlens_k = long_lens;
    expect_error([&] { softmax_attention(qv, kp.view(), vp.view(), ov, pg); }, "seqlens_k[0] <= 12", out);
    pg.seqlens_k = plens;
    attention_options pg_var = pg;
    pg_var.cu_seqlens_q = cq;
    pg_var.cu_seqlens_k = ck;
    pg_var.num_seqs = 3;
    expect_error([&] { softmax_attention(q1.view(), kp.view(), vp.view(), out1.view(), pg_var); }, "'block_table'",
                 out1);
    auto vp_short = random_tensor<float, 4>({4, 4, 2, 12}, 15);
    expect_error([&] { softmax_attention(qv, kp.view(), vp_short.view(), ov, pg); }, "'v': expected blocks like k",
                 out);
    CHECK_THROWS_AS(reference::softmax_attention(qv, kp.view(), vp.view(), ov, pg_var), seqmix::error);
    // The same paged call is valid once the block table is right.
    tensor<float, 4> out_ok({2, 8, 4, 12});
    softmax_attention(qv, kp.view(), vp.view(), out_ok.view(), pg);
    // The reference rejects the same inputs.
    CHECK_THROWS_AS(reference::softmax_attention(qv, k3.view(), v3.view(), ov), seqmix::error);
}

// ---- Reduced-precision storage: q, k, v, out as bf16 / fp16, k, v as fp8_e4m3 ----

namespace {

// The operator on q, k, v, out stored as Q, K, V, O gives the bits of the float operator on
// the same values, rounded once into O at the end: for every engine (prefill, decode, split),
// a paged cache, and 3 threads against 1.
template <class Q, class K, class V, class O>
void check_stored_bits(const char* name, bf16_products products = bf16_products::automatic) {
    INFO(name);
    const shape shapes[] = {{2, 1, 1100, 8, 2, 64, 64},    // GQA decode, keys split
                            {1, 70, 90, 4, 2, 40, 24},     // prefill, D not a multiple of the vector width
                            {2, 3, 200, 4, 4, 20, 36},     // a few queries per head
                            {1, 1, 3000, 32, 1, 64, 64}};  // multi-query decode: rows in lanes, split
    for (const shape s : shapes)
        for (bool causal : {false, true}) {
            INFO("Nq " << s.Nq << " Nk " << s.Nk << " Hq " << s.Hq << " Hkv " << s.Hkv << " Dk " << s.Dk << " causal "
                       << causal);
            const auto q = convert<Q>(random_tensor<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, 11, -2, 2));
            const auto k = convert<K>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, 12, -2, 2));
            const auto v = convert<V>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, 13, -2, 2));
            const auto qf = convert<float>(q);
            const auto kf = convert<float>(k);
            const auto vf = convert<float>(v);
            attention_options opt;
            opt.causal = causal;
            opt.num_threads = 1;
            tensor<float, 4> of({s.B, s.Nq, s.Hq, s.Dv});
            tensor<float, 3> lf({s.B, s.Hq, s.Nq});
            softmax_attention(qf.view(), kf.view(), vf.view(), of.view(), opt, lf.view());
            opt.num_threads = 3;
            opt.products = products;
            tensor<O, 4> os({s.B, s.Nq, s.Hq, s.Dv});
            tensor<float, 3> ls({s.B, s.Hq, s.Nq});
            softmax_attention(q.view(), k.view(), v.view(), os.view(), opt, ls.view());
            // bf16 queries, keys and values on AVX512-BF16 with bf16 dot products: float accurate
            // (tested against the reference below), not the float operator's bits.
            const bool bf16_dot = SEQMIX_HAS_BF16_DOT && std::is_same_v<Q, bf16> && std::is_same_v<K, bf16> &&
                                  std::is_same_v<V, bf16> &&
                                  (products == bf16_products::bf16_dot ||
                                   (products == bf16_products::automatic && kernels::bf16_dot_products_pay()));
            if (bf16_dot) {
                CHECK(max_rel_error(convert<float>(os), of) < 0x1p-8);
            } else {
                CHECK(bitwise_equal(lf, ls));
                CHECK(stores_rounded(os, of));
            }
            // A paged cache of the same stored values.
            const paged_copy pc = page(kf, vf, 16, 5);
            const auto pk = convert<K>(pc.k);
            const auto pv = convert<V>(pc.v);
            std::vector<std::int32_t> lens(std::size_t(s.B), std::int32_t(s.Nk));
            attention_options paged = opt;
            paged.seqlens_k = lens.data();
            paged.block_table = pc.table.data();
            paged.max_blocks_per_seq = pc.max_blocks;
            tensor<O, 4> op({s.B, s.Nq, s.Hq, s.Dv});
            softmax_attention(q.view(), pk.view(), pv.view(), op.view(), paged);
            CHECK(bitwise_equal(op, os));  // a paged cache: the same bits
        }
}

}  // namespace

TEST_CASE("16- and 8-bit storage: the bits of the float operator on the same values, every engine and cache") {
    check_stored_bits<bf16, bf16, bf16, bf16>("bf16");
    check_stored_bits<bf16, bf16, bf16, bf16>("bf16, bf16 dot products", bf16_products::bf16_dot);
    check_stored_bits<bf16, bf16, bf16, bf16>("bf16, widened", bf16_products::widened);
    check_stored_bits<fp16, fp16, fp16, fp16>("fp16");
    check_stored_bits<float, bf16, bf16, float>("float q and out, bf16 cache");
    check_stored_bits<float, fp8_e4m3, fp8_e4m3, float>("float q and out, fp8 cache");
    check_stored_bits<fp16, bf16, fp8_e4m3, bf16>("fp16 q, bf16 k, fp8 v, bf16 out");
}

TEST_CASE("bf16 inputs match the double reference on the rounded inputs within 1e-5 (bf16 dot products or widened)") {
    const shape shapes[] = {{1, 200, 200, 8, 8, 128, 128},
                            {2, 70, 90, 4, 2, 41, 24},
                            {1, 1, 3000, 32, 1, 64, 64},
                            {2, 1, 1100, 8, 2, 64, 64}};
    for (const shape s : shapes)
        for (bool causal : {false, true})
            for (bf16_products products : {bf16_products::bf16_dot, bf16_products::widened}) {
                INFO("Nq " << s.Nq << " Nk " << s.Nk << " Dk " << s.Dk << " causal " << causal << " bf16 dot "
                           << (products == bf16_products::bf16_dot));
                const auto q = convert<bf16>(random_tensor<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, 41));
                const auto k = convert<bf16>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, 42));
                const auto v = convert<bf16>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, 43));
                attention_options opt;
                opt.causal = causal;
                opt.products = products;
                tensor<float, 4> out({s.B, s.Nq, s.Hq, s.Dv});
                tensor<float, 3> lse({s.B, s.Hq, s.Nq});
                softmax_attention(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
                tensor<double, 4> ref({s.B, s.Nq, s.Hq, s.Dv});
                tensor<double, 3> ref_lse({s.B, s.Hq, s.Nq});
                reference::softmax_attention(convert<double>(q).view(), convert<double>(k).view(),
                                             convert<double>(v).view(), ref.view(), opt, ref_lse.view());
                CHECK(max_rel_error(out, ref) < attention_accuracy);
                CHECK(max_rel_error(lse, ref_lse, 1.0) < attention_accuracy);
                opt.num_threads = 3;  // and the same bits on any number of threads
                tensor<float, 4> out3({s.B, s.Nq, s.Hq, s.Dv});
                softmax_attention(q.view(), k.view(), v.view(), out3.view(), opt);
                CHECK(bitwise_equal(out, out3));
            }
}

namespace {
// bf16 q and k in [-2, 2], v in the default range, from seeds seed, seed + 1, seed + 2.
struct bf16_qkv_tensors {
    tensor<bf16, 4> q, k, v;
};
bf16_qkv_tensors bf16_qkv(const shape& s, unsigned seed) {
    return {convert<bf16>(random_tensor<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, seed, -2, 2)),
            convert<bf16>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, seed + 1, -2, 2)),
            convert<bf16>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, seed + 2))};
}
}  // namespace

TEST_CASE("round_probabilities: P rounded to bf16 stays within its documented error; off, float accuracy") {
    const shape s{1, 150, 150, 4, 2, 64, 64};
    const auto [q, k, v] = bf16_qkv(s, 51);
    tensor<double, 4> ref({s.B, s.Nq, s.Hq, s.Dv});
    reference::softmax_attention(convert<double>(q).view(), convert<double>(k).view(), convert<double>(v).view(),
                                 ref.view());
    attention_options opt;
    opt.round_probabilities = true;
    opt.products = bf16_products::bf16_dot;
    tensor<float, 4> rounded({s.B, s.Nq, s.Hq, s.Dv}), exact({s.B, s.Nq, s.Hq, s.Dv});
    softmax_attention(q.view(), k.view(), v.view(), rounded.view(), opt);
    attention_options exact_opt;
    exact_opt.products = bf16_products::bf16_dot;
    softmax_attention(q.view(), k.view(), v.view(), exact.view(), exact_opt);
    const double err = max_rel_error(rounded, ref);
    std::printf("round_probabilities: max relative error %.3g (float-accurate default %.3g)\n", err,
                max_rel_error(exact, ref));
    CHECK(err < 0x1p-9);  // each probability within 2^-9: so is their weighted mean of values
    CHECK(max_rel_error(exact, ref) < attention_accuracy);
    if (!SEQMIX_HAS_BF16_DOT) CHECK(bitwise_equal(rounded, exact));  // no bf16 dot products: no effect
    // Widened rows never round the probabilities.
    opt.products = exact_opt.products = bf16_products::widened;
    softmax_attention(q.view(), k.view(), v.view(), rounded.view(), opt);
    softmax_attention(q.view(), k.view(), v.view(), exact.view(), exact_opt);
    CHECK(bitwise_equal(rounded, exact));
}

TEST_CASE("bf16 products: automatic takes bf16 dot products where the host runs them fast, widened rows elsewhere") {
    const shape s{1, 100, 100, 4, 2, 64, 64};
    const auto [q, k, v] = bf16_qkv(s, 61);
    tensor<float, 4> automatic({s.B, s.Nq, s.Hq, s.Dv}), chosen({s.B, s.Nq, s.Hq, s.Dv});
    softmax_attention(q.view(), k.view(), v.view(), automatic.view());
    attention_options opt;
    opt.products = kernels::bf16_dot_products_pay() ? bf16_products::bf16_dot : bf16_products::widened;
    softmax_attention(q.view(), k.view(), v.view(), chosen.view(), opt);
    CHECK(bitwise_equal(automatic, chosen));
    std::printf("bf16 products on this host: %s\n", kernels::bf16_dot_products_pay() ? "bf16 dot" : "widened");
}

TEST_CASE("fp8 caches with per-head scales match the double reference on the dequantized values") {
    const shape shapes[] = {{2, 1, 1100, 8, 2, 64, 64}, {1, 37, 60, 4, 2, 40, 24}};
    const std::vector<float> k_scale = {0.05f, 0.5f}, v_scale = {0.25f, 7.5f};
    for (const shape s : shapes) {
        INFO("Nq " << s.Nq << " Nk " << s.Nk);
        const auto q = convert<bf16>(random_tensor<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, 21, -2, 2));
        const auto k = convert<fp8_e4m3>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, 22, -8, 8));
        const auto v = convert<fp8_e4m3>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, 23, -8, 8));
        attention_options opt;
        opt.causal = true;
        opt.k_scale = k_scale.data();
        opt.v_scale = v_scale.data();
        tensor<float, 4> out({s.B, s.Nq, s.Hq, s.Dv});
        tensor<float, 3> lse({s.B, s.Hq, s.Nq});
        softmax_attention(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
        tensor<double, 4> ref({s.B, s.Nq, s.Hq, s.Dv});
        tensor<double, 3> ref_lse({s.B, s.Hq, s.Nq});
        const auto qd = convert<double>(q);
        tensor<double, 4> kd({s.B, s.Nk, s.Hkv, s.Dk}), vd({s.B, s.Nk, s.Hkv, s.Dv});
        for (index_t i = 0; i < kd.size(); ++i)
            kd.data()[i] = double(k.data()[i]) * k_scale[std::size_t(i / s.Dk % s.Hkv)];
        for (index_t i = 0; i < vd.size(); ++i)
            vd.data()[i] = double(v.data()[i]) * v_scale[std::size_t(i / s.Dv % s.Hkv)];
        attention_options plain = opt;
        plain.k_scale = plain.v_scale = nullptr;
        reference::softmax_attention(qd.view(), kd.view(), vd.view(), ref.view(), plain, ref_lse.view());
        CHECK(max_rel_error(out, ref) < attention_accuracy);
        CHECK(max_rel_error(lse, ref_lse, 1.0) < attention_accuracy);
        // The reference reads the stored values and scales the same way.
        tensor<float, 4> ref2({s.B, s.Nq, s.Hq, s.Dv});
        reference::softmax_attention(q.view(), k.view(), v.view(), ref2.view(), opt);
        CHECK(max_rel_error(ref2, ref) < 1e-7);
    }
}

TEST_CASE("16-bit outputs: within one rounding of the double reference") {
    const shape s{1, 20, 300, 4, 1, 64, 64};
    const auto q = convert<fp16>(random_tensor<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, 31));
    const auto k = convert<fp16>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, 32));
    const auto v = convert<fp16>(random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, 33));
    tensor<fp16, 4> out({s.B, s.Nq, s.Hq, s.Dv});
    softmax_attention(q.view(), k.view(), v.view(), out.view());
    tensor<double, 4> ref({s.B, s.Nq, s.Hq, s.Dv});
    reference::softmax_attention(convert<double>(q).view(), convert<double>(k).view(), convert<double>(v).view(),
                                 ref.view());
    for (index_t i = 0; i < out.size(); ++i) {
        const double r = ref.data()[i], x = double(out.data()[i]);
        REQUIRE(std::abs(x - r) <= std::abs(r) * 0x1p-11 + 1e-7);  // half an fp16 ulp, and the float error
    }
}

TEST_CASE("cache scales: only for fp8 caches, finite and positive; nothing written otherwise") {
    const auto q = convert<bf16>(random_tensor<float, 4>({1, 1, 4, 16}, 1));
    const auto k8 = convert<fp8_e4m3>(random_tensor<float, 4>({1, 8, 2, 16}, 2));
    const auto k16 = convert<bf16>(random_tensor<float, 4>({1, 8, 2, 16}, 2));
    tensor<bf16, 4> out({1, 1, 4, 16}, bf16(5.0f));
    const std::vector<float> good = {1.0f, 2.0f}, negative = {1.0f, -2.0f}, nan = {NAN, 1.0f};
    auto untouched = [&] {
        for (index_t i = 0; i < out.size(); ++i)
            if (out.data()[i].bits != bf16(5.0f).bits) return false;
        return true;
    };
    attention_options opt;
    opt.k_scale = good.data();
    expect_error([&] { softmax_attention(q.view(), k16.view(), k16.view(), out.view(), opt); }, "k_scale");
    CHECK(untouched());
    opt.k_scale = nullptr;
    opt.v_scale = good.data();
    expect_error([&] { softmax_attention(q.view(), k8.view(), k16.view(), out.view(), opt); }, "v_scale");
    CHECK(untouched());
    opt.v_scale = nullptr;
    opt.k_scale = negative.data();
    expect_error([&] { softmax_attention(q.view(), k8.view(), k8.view(), out.view(), opt); }, "k_scale[1] = -2");
    opt.k_scale = nan.data();
    expect_error([&] { softmax_attention(q.view(), k8.view(), k8.view(), out.view(), opt); }, "k_scale[0]");
    CHECK(untouched());
    opt.k_scale = good.data();
    softmax_attention(q.view(), k8.view(), k8.view(), out.view(), opt);
    CHECK(!untouched());
}
