// topk_attention and block_sparse_attention: against the double reference on integer-valued
// queries and keys (scores exact, so selections and their ties are exact), the selecting forms
// against the given-list forms, dense limits, caches, threads, varlen and bad inputs.
#include <seqmix/ops/softmax_attention.hpp>
#include <seqmix/ops/sparse_attention.hpp>
#include <seqmix/reference/sparse_attention.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
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

// Integers in [-2, 2]: scores (scale 1/8) are exact in float, and many tie.
template <class T, std::size_t R>
tensor<T, R> integers(const std::array<index_t, R>& s, unsigned seed) {
    tensor<T, R> t(s);
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> d(-2, 2);
    for (index_t i = 0; i < t.size(); ++i) t.data()[i] = T(d(gen));
    return t;
}

struct qkv {
    tensor<float, 4> q, k, v;
};
qkv make(const shape& s, unsigned seed) {
    return {integers<float, 4>({s.B, s.Nq, s.Hq, s.Dk}, seed), integers<float, 4>({s.B, s.Nk, s.Hkv, s.Dk}, seed + 1),
            random_tensor<float, 4>({s.B, s.Nk, s.Hkv, s.Dv}, seed + 2)};
}

template <class T, class Opt, class Fast, class Ref>
std::pair<double, double> vs_reference(const shape& s, const Opt& opt, const qkv& in, Fast&& fast, Ref&& ref) {
    const auto q = convert<T>(in.q);
    const auto k = convert<T>(in.k);
    const auto v = convert<T>(in.v);
    tensor<T, 4> out({s.B, s.Nq, s.Hq, s.Dv}, T(99));
    tensor<T, 3> lse({s.B, s.Hq, s.Nq}, T(99));
    fast(q.view(), k.view(), v.view(), out.view(), opt, lse.view());
    auto qd = convert<double>(in.q);
    auto kd = convert<double>(in.k);
    auto vd = convert<double>(in.v);
    tensor<double, 4> r({s.B, s.Nq, s.Hq, s.Dv});
    tensor<double, 3> rl({s.B, s.Hq, s.Nq});
    ref(qd.view(), kd.view(), vd.view(), r.view(), opt, rl.view());
    return {max_rel_error(out, r), max_rel_error(lse, rl, 1.0)};
}

const auto topk_fast = [](const auto& q, const auto& k, const auto& v, const auto& o, const topk_options& opt,
                          const auto& l) { topk_attention(q, k, v, o, opt, l); };
const auto topk_ref = [](const auto& q, const auto& k, const auto& v, const auto& o, const topk_options& opt,
                         const auto& l) { reference::topk_attention(q, k, v, o, opt, l); };
const auto block_fast = [](const auto& q, const auto& k, const auto& v, const auto& o, const block_sparse_options& opt,
                           const auto& l) { block_sparse_attention(q, k, v, o, opt, l); };
const auto block_ref = [](const auto& q, const auto& k, const auto& v, const auto& o, const block_sparse_options& opt,
                          const auto& l) { reference::block_sparse_attention(q, k, v, o, opt, l); };

const std::vector<shape> shapes = {
    {1, 1, 1, 1, 1, 1, 1},      {2, 7, 7, 2, 1, 3, 5},     {1, 100, 100, 4, 2, 16, 16}, {1, 130, 300, 2, 2, 17, 24},
    {1, 300, 130, 4, 1, 32, 8}, {2, 1, 900, 8, 2, 64, 64}, {1, 200, 200, 3, 3, 20, 36},
};

}  // namespace

TEST_CASE("topk_attention matches the double reference, selected indices included (integer scores, exact ties)") {
    unsigned seed = 10;
    for (const auto& s : shapes)
        for (int top_k : {1, 5, 64, 5000})
            for (bool causal : {false, true}) {
                INFO("B" << s.B << " Nq" << s.Nq << " Nk" << s.Nk << " Hq" << s.Hq << " Hkv" << s.Hkv << " Dk" << s.Dk
                         << " top_k " << top_k << " causal " << causal);
                const qkv in = make(s, seed);
                topk_options o;
                o.top_k = top_k;
                o.causal = causal;
                o.scale = 0.125;
                const auto f = vs_reference<float>(s, o, in, topk_fast, topk_ref);
                CHECK(f.first < 2e-6);
                CHECK(f.second < 2e-6);
                const auto d = vs_reference<double>(s, o, in, topk_fast, topk_ref);
                CHECK(d.first < 1e-13);
                CHECK(d.second < 1e-13);
                // The selection itself, exactly.
                tensor<std::int32_t, 4> ix({s.B, s.Nq, s.Hq, top_k}, 7), rix({s.B, s.Nq, s.Hq, top_k}, 8);
                tensor<float, 4> out({s.B, s.Nq, s.Hq, s.Dv});
                tensor<double, 4> rout({s.B, s.Nq, s.Hq, s.Dv});
                topk_options so = o;
                so.indices_out = ix.view();
                topk_attention(in.q.view(), in.k.view(), in.v.view(), out.view(), so);
                so.indices_out = rix.view();
                const auto qd = convert<double>(in.q);
                const auto kd = convert<double>(in.k);
                const auto vd = convert<double>(in.v);
                reference::topk_attention(qd.view(), kd.view(), vd.view(), rout.view(), so);
                CHECK(bitwise_equal(ix, rix));
                // The given-list form on the selected lists gives the selecting form's bits
                // (one list per query head: Hq == Hkv).
                if (s.Hq == s.Hkv) {
                    tensor<float, 4> out2({s.B, s.Nq, s.Hq, s.Dv});
                    topk_options go;
                    go.scale = 0.125;
                    go.indices = ix.view();
                    topk_attention(in.q.view(), in.k.view(), in.v.view(), out2.view(), go);
                    CHECK(bitwise_equal(out, out2));
                }
                // The same selection at scales that are not powers of two (the default
                // 1/sqrt(Dk), and 0.1): products that tie still tie, and the lower key wins
                // (found by the fuzzer: a query scaled before its products broke such ties).
                for (double scale : {0.0, 0.1}) {
                    INFO("scale " << scale);
                    so.scale = scale;
                    so.indices_out = ix.view();
                    topk_attention(in.q.view(), in.k.view(), in.v.view(), out.view(), so);
                    so.indices_out = rix.view();
                    reference::topk_attention(qd.view(), kd.view(), vd.view(), rout.view(), so);
                    CHECK(bitwise_equal(ix, rix));
                }
                seed += 3;
            }
}

TEST_CASE("topk_attention: top_k >= the keys is dense attention; sinks; ties keep the lower index") {
    const shape s{1, 50, 70, 4, 2, 16, 16};
    const qkv in = make(s, 3);
    std::vector<float> sinks = {0.5f, -1.0f, 2.0f, 0.0f};
    for (bool causal : {false, true}) {
        topk_options o;
        o.top_k = 70;
        o.causal = causal;
        o.sinks = sinks.data();
        attention_options d;
        d.causal = causal;
        d.sinks = sinks.data();
        tensor<float, 4> o1({1, 50, 4, 16}), o2({1, 50, 4, 16});
        topk_attention(in.q.view(), in.k.view(), in.v.view(), o1.view(), o);
        softmax_attention(in.q.view(), in.k.view(), in.v.view(), o2.view(), d);
        CHECK(max_rel_error(o1, o2) < 2e-6);
    }
    // Every key scores the same: the first top_k keys are chosen.
    tensor<float, 4> q({1, 3, 1, 4}, 1.0f), k({1, 40, 1, 4}, 1.0f);
    auto v = random_tensor<float, 4>({1, 40, 1, 4}, 5);
    tensor<std::int32_t, 4> ix({1, 3, 1, 6});
    tensor<float, 4> out({1, 3, 1, 4});
    topk_options o;
    o.top_k = 6;
    o.indices_out = ix.view();
    topk_attention(q.view(), k.view(), v.view(), out.view(), o);
    for (index_t i = 0; i < 3; ++i)
        for (index_t t = 0; t < 6; ++t) REQUIRE(ix(0, i, 0, t) == t);
}

TEST_CASE("topk_attention given indices: -1 entries, any order, paged == contiguous, threads, varlen") {
    const index_t B = 3, Nq = 9, Nk = 300, Hq = 4, Hkv = 2, D = 32, K = 20;
    const shape s{B, Nq, Nk, Hq, Hkv, D, D};
    const qkv in = make(s, 40);
    const std::int32_t lens[] = {300, 11, 0};
    tensor<std::int32_t, 4> ix({B, Nq, Hkv, K});
    std::mt19937 gen(4);
    for (index_t b = 0; b < B; ++b)
        for (index_t i = 0; i < Nq; ++i)
            for (index_t h = 0; h < Hkv; ++h) {
                std::vector<std::int32_t> keys(static_cast<std::size_t>(lens[b]));
                for (std::int32_t j = 0; j < lens[b]; ++j) keys[std::size_t(j)] = j;
                std::shuffle(keys.begin(), keys.end(), gen);
                for (index_t t = 0; t < K; ++t)
                    ix(b, i, h, t) = (t % 7 == 3 || t >= index_t(keys.size())) ? -1 : keys[std::size_t(t)];
            }
    topk_options o;
    o.indices = ix.view();
    o.seqlens_k = lens;
    o.num_threads = 1;
    const auto f = vs_reference<float>(s, o, in, topk_fast, topk_ref);
    CHECK(f.first < 2e-6);
    CHECK(f.second < 2e-6);
    tensor<float, 4> o1({B, Nq, Hq, D}), o2({B, Nq, Hq, D});
    tensor<float, 3> l1({B, Hq, Nq}), l2({B, Hq, Nq});
    topk_attention(in.q.view(), in.k.view(), in.v.view(), o1.view(), o, l1.view());
    for (index_t bsz : {index_t(1), index_t(16)}) {
        const paged_copy pc = page(in.k, in.v, bsz, 9);
        topk_options po = o;
        po.block_table = pc.table.data();
        po.max_blocks_per_seq = pc.max_blocks;
        po.num_threads = int(bsz % 3) + 2;
        topk_attention(in.q.view(), pc.k.view(), pc.v.view(), o2.view(), po, l2.view());
        CHECK(bitwise_equal(o1, o2));
        CHECK(bitwise_equal(l1, l2));
    }
    // Selecting form: threads and a sequence alone or in a varlen batch do not change the bits.
    const std::vector<index_t> lq = {5, 0, 70, 1}, lk = {9, 3, 170, 300};
    std::vector<std::int32_t> cq{0}, ck{0};
    for (std::size_t i = 0; i < lq.size(); ++i) {
        cq.push_back(cq.back() + std::int32_t(lq[i]));
        ck.push_back(ck.back() + std::int32_t(lk[i]));
    }
    auto q = integers<float, 4>({1, cq.back(), Hq, D}, 50);
    auto k = integers<float, 4>({1, ck.back(), Hkv, D}, 51);
    auto v = random_tensor<float, 4>({1, ck.back(), Hkv, D}, 52);
    for (int threads : {1, 2, 3, 5}) {
        topk_options vo;
        vo.top_k = 16;
        vo.causal = true;
        vo.cu_seqlens_q = cq.data();
        vo.cu_seqlens_k = ck.data();
        vo.num_seqs = int(lq.size());
        vo.num_threads = threads;
        tensor<float, 4> out({1, cq.back(), Hq, D});
        topk_attention(q.view(), k.view(), v.view(), out.view(), vo);
        for (std::size_t i = 0; i < lq.size(); ++i) {
            if (lq[i] == 0) continue;
            tensor<float, 4> solo({1, lq[i], Hq, D});
            topk_options so;
            so.top_k = 16;
            so.causal = true;
            topk_attention(slice(q.view(), 1, cq[i], lq[i]), slice(k.view(), 1, ck[i], lk[i]),
                           slice(v.view(), 1, ck[i], lk[i]), solo.view(), so);
            CHECK(bitwise_equal(slice(out.view(), 1, cq[i], lq[i]), solo.view()));
        }
    }
}

TEST_CASE("block_sparse_attention matches the double reference: MoBA selection, local and first blocks, causal, GQA") {
    unsigned seed = 300;
    struct blocks {
        int size, top, local;
        bool first;
    };
    for (const auto& s : shapes)
        for (const blocks bl : {blocks{16, 2, 1, false}, blocks{7, 3, 2, true}, blocks{64, 8, 1, false},
                                blocks{32, 0, 1, true}, blocks{5, 1, 0, false}})
            for (bool causal : {false, true}) {
                INFO("B" << s.B << " Nq" << s.Nq << " Nk" << s.Nk << " Hq" << s.Hq << " Hkv" << s.Hkv << " block "
                         << bl.size << " top " << bl.top << " local " << bl.local << " first " << bl.first << " causal "
                         << causal);
                const qkv in = make(s, seed);
                block_sparse_options o;
                o.block_size = bl.size;
                o.top_blocks = bl.top;
                o.local_blocks = bl.local;
                o.keep_first = bl.first;
                o.causal = causal;
                o.scale = 0.125;
                const auto f = vs_reference<float>(s, o, in, block_fast, block_ref);
                CHECK(f.first < 2e-6);
                CHECK(f.second < 2e-6);
                const auto d = vs_reference<double>(s, o, in, block_fast, block_ref);
                CHECK(d.first < 1e-13);
                CHECK(d.second < 1e-13);
                seed += 3;
            }
}

TEST_CASE("block_sparse_attention: all blocks is dense; given lists; paged, threads and varlen keep the bits") {
    const shape s{2, 200, 200, 4, 2, 32, 32};
    const qkv in = make(s, 7);
    for (bool causal : {false, true}) {
        block_sparse_options o;
        o.block_size = 32;
        o.top_blocks = 100;
        o.causal = causal;
        attention_options d;
        d.causal = causal;
        tensor<float, 4> o1({2, 200, 4, 32}), o2({2, 200, 4, 32});
        block_sparse_attention(in.q.view(), in.k.view(), in.v.view(), o1.view(), o);
        softmax_attention(in.q.view(), in.k.view(), in.v.view(), o2.view(), d);
        CHECK(max_rel_error(o1, o2) < 2e-6);
    }
    // Given lists (any order, -1 ends them) against the reference, then paged and threads.
    const index_t nqb = 7;  // 200 keys in blocks of 32
    tensor<std::int32_t, 4> bi({2, 2, nqb, 4}, -1);
    for (index_t b = 0; b < 2; ++b)
        for (index_t h = 0; h < 2; ++h)
            for (index_t qb = 0; qb < nqb; ++qb) {
                bi(b, h, qb, 0) = std::int32_t(qb);
                if (qb >= 2) bi(b, h, qb, 1) = std::int32_t((qb * 5 + h + b) % qb);
                if (qb == 6 && h == 1) bi(b, h, qb, 2) = 6 - 3;  // an explicit third block
                if (bi(b, h, qb, 2) == bi(b, h, qb, 1)) bi(b, h, qb, 2) = -1;
            }
    for (bool causal : {false, true}) {
        block_sparse_options o;
        o.block_size = 32;
        o.block_indices = bi.view();
        o.causal = causal;
        o.num_threads = 1;
        const auto f = vs_reference<float>(s, o, in, block_fast, block_ref);
        CHECK(f.first < 2e-6);
        CHECK(f.second < 2e-6);
    }
    const std::int32_t lens[] = {200, 77};
    for (int threads : {1, 2, 3, 5}) {
        block_sparse_options o;
        o.block_size = 16;
        o.top_blocks = 3;
        o.causal = true;
        o.seqlens_k = lens;
        o.num_threads = 1;
        const auto q1 = slice(in.q.view(), 1, 199, 1);  // decode: one query each
        tensor<float, 4> o1({2, 1, 4, 32}), o2({2, 1, 4, 32});
        block_sparse_attention(q1, in.k.view(), in.v.view(), o1.view(), o);
        const paged_copy pc = page(in.k, in.v, 16, 3);
        o.block_table = pc.table.data();
        o.max_blocks_per_seq = pc.max_blocks;
        o.num_threads = threads;
        block_sparse_attention(q1, pc.k.view(), pc.v.view(), o2.view(), o);
        CHECK(bitwise_equal(o1, o2));
        tensor<float, 4> solo({1, 1, 4, 32});
        block_sparse_options so;
        so.block_size = 16;
        so.top_blocks = 3;
        so.causal = true;
        block_sparse_attention(slice(q1, 0, 1, 1), slice(slice(in.k.view(), 0, 1, 1), 1, 0, 77),
                               slice(slice(in.v.view(), 0, 1, 1), 1, 0, 77), solo.view(), so);
        CHECK(bitwise_equal(slice(o1.view(), 0, 1, 1), solo.view()));
    }
}

TEST_CASE("sparse attention: bad inputs give seqmix::error and leave out untouched") {
    auto q = random_tensor<float, 4>({1, 8, 4, 16}, 1);
    auto k = random_tensor<float, 4>({1, 10, 2, 16}, 2);
    tensor<float, 4> out({1, 8, 4, 16}, 42.0f);
    auto untouched = [&] {
        for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 42.0f);
    };
    topk_options t;
    t.top_k = 0;
    expect_error([&] { topk_attention(q.view(), k.view(), k.view(), out.view(), t); }, "'top_k': expected >= 1");
    untouched();
    tensor<std::int32_t, 4> ix({1, 8, 2, 3}, -1);
    ix(0, 5, 1, 2) = 10;
    t.top_k = 3;
    t.indices = ix.view();
    expect_error([&] { topk_attention(q.view(), k.view(), k.view(), out.view(), t); },
                 "'indices': expected -1 or an index in [0, 10)");
    untouched();
    ix(0, 5, 1, 2) = 4;
    ix(0, 5, 1, 0) = 4;
    expect_error([&] { topk_attention(q.view(), k.view(), k.view(), out.view(), t); }, "no index twice");
    untouched();
    tensor<std::int32_t, 4> wrong({1, 8, 4, 3});
    t.indices = wrong.view();
    expect_error([&] { topk_attention(q.view(), k.view(), k.view(), out.view(), t); },
                 "argument 'indices': expected shape");
    untouched();
    t.indices = {};
    tensor<std::int32_t, 4> io({1, 8, 4, 2});
    t.indices_out = io.view();
    expect_error([&] { topk_attention(q.view(), k.view(), k.view(), out.view(), t); }, "'indices_out'");
    untouched();
    block_sparse_options b;
    b.block_size = 0;
    expect_error([&] { block_sparse_attention(q.view(), k.view(), k.view(), out.view(), b); }, "'block_size'");
    untouched();
    b.block_size = 4;  // 10 keys: 3 blocks
    tensor<std::int32_t, 4> bi({1, 2, 3, 2}, -1);
    bi(0, 1, 2, 0) = 3;
    b.block_indices = bi.view();
    expect_error([&] { block_sparse_attention(q.view(), k.view(), k.view(), out.view(), b); },
                 "expected -1 or an index in [0, 3)");
    untouched();
    bi(0, 1, 2, 0) = 1;
    bi(0, 1, 2, 1) = 1;
    expect_error([&] { block_sparse_attention(q.view(), k.view(), k.view(), out.view(), b); }, "no index twice");
    untouched();
    tensor<std::int32_t, 4> few({1, 2, 2, 2}, -1);
    b.block_indices = few.view();
    expect_error([&] { block_sparse_attention(q.view(), k.view(), k.view(), out.view(), b); },
                 "at least 3 query blocks");
    untouched();
    CHECK_THROWS_AS(reference::block_sparse_attention(q.view(), k.view(), k.view(), out.view(), b), seqmix::error);
}

TEST_CASE("block_sparse_attention: the caller's lists equal to MoBA's choice give its bits; threads do not matter") {
    // Hq == Hkv: one list per head. The lists are chosen here as the contract says (sums of
    // the blocks, scores (sum q . sum k) / (|qb| |kb|), local and first blocks forced, the
    // best top_blocks of the rest, ties to the lower block), then passed as block_indices.
    const index_t B = 2, N = 300, H = 3, D = 16, bs = 32, blocks = (N + bs - 1) / bs;
    const shape s{B, N, N, H, H, D, D};
    const qkv in = make(s, 77);
    const int top = 3;
    tensor<std::int32_t, 4> lists({B, H, blocks, top + 2}, -1);
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h) {
            std::vector<double> qs(std::size_t(blocks * D), 0.0), ks(std::size_t(blocks * D), 0.0);
            std::vector<double> qn(std::size_t(blocks), 0.0), kn(std::size_t(blocks), 0.0);
            for (index_t i = 0; i < N; ++i) {
                qn[std::size_t(i / bs)] += 1;
                kn[std::size_t(i / bs)] += 1;
                for (index_t d = 0; d < D; ++d) {
                    qs[std::size_t(i / bs * D + d)] += in.q(b, i, h, d);
                    ks[std::size_t(i / bs * D + d)] += in.k(b, i, h, d);
                }
            }
            for (index_t qb = 0; qb < blocks; ++qb) {
                std::vector<std::pair<double, index_t>> cand;
                for (index_t kb = 1; kb < qb; ++kb) {  // 0 (first) and qb (local) are forced
                    double dot = 0;
                    for (index_t d = 0; d < D; ++d) dot += qs[std::size_t(qb * D + d)] * ks[std::size_t(kb * D + d)];
                    cand.push_back({-dot / (qn[std::size_t(qb)] * kn[std::size_t(kb)]), kb});
                }
                std::sort(cand.begin(), cand.end());
                std::vector<std::int32_t> l = {0};
                if (qb > 0) l.push_back(std::int32_t(qb));
                for (std::size_t t = 0; t < cand.size() && t < std::size_t(top); ++t)
                    l.push_back(std::int32_t(cand[t].second));
                std::sort(l.begin(), l.end());
                for (std::size_t t = 0; t < l.size(); ++t) lists(b, h, qb, index_t(t)) = l[t];
            }
        }
    block_sparse_options moba;
    moba.block_size = int(bs);
    moba.top_blocks = top;
    moba.local_blocks = 1;
    moba.keep_first = true;
    moba.causal = true;
    moba.num_threads = 1;
    tensor<float, 4> o1({B, N, H, D}), o2({B, N, H, D});
    tensor<float, 3> l1({B, H, N}), l2({B, H, N});
    block_sparse_attention(in.q.view(), in.k.view(), in.v.view(), o1.view(), moba, l1.view());
    block_sparse_options given;
    given.block_size = int(bs);
    given.causal = true;
    given.block_indices = lists.view();
    block_sparse_attention(in.q.view(), in.k.view(), in.v.view(), o2.view(), given, l2.view());
    CHECK(bitwise_equal(o1, o2));
    CHECK(bitwise_equal(l1, l2));
    for (int threads : {2, 3, 5}) {
        moba.num_threads = threads;
        tensor<float, 4> o3({B, N, H, D});
        block_sparse_attention(in.q.view(), in.k.view(), in.v.view(), o3.view(), moba);
        CHECK(bitwise_equal(o1, o3));
    }
}

TEST_CASE("sparse attention over bf16 / fp8 storage: the float operator's bits on the same values") {
    const index_t B = 2, Nq = 40, Nk = 260, Hq = 4, Hkv = 2, D = 32;
    // Integer-valued queries and keys (exact in bf16 and fp8): the top-k ties are exact too.
    auto ints = [](tensor<float, 4> t) {
        for (index_t i = 0; i < t.size(); ++i) t.data()[i] = std::round(t.data()[i]);
        return t;
    };
    const auto q = convert<bf16>(ints(random_tensor<float, 4>({B, Nq, Hq, D}, 71, -3, 3)));
    const auto k = convert<fp8_e4m3>(ints(random_tensor<float, 4>({B, Nk, Hkv, D}, 72, -3, 3)));
    const auto v = convert<bf16>(random_tensor<float, 4>({B, Nk, Hkv, D}, 73));
    const auto qf = convert<float>(q);
    const auto kf = convert<float>(k);
    const auto vf = convert<float>(v);
    {
        topk_options o;
        o.top_k = 24;
        o.causal = true;
        tensor<std::int32_t, 4> ixf({B, Nq, Hq, 24}), ixs({B, Nq, Hq, 24});
        tensor<float, 4> of({B, Nq, Hq, D});
        o.indices_out = ixf.view();
        topk_attention(qf.view(), kf.view(), vf.view(), of.view(), o);
        tensor<bf16, 4> os({B, Nq, Hq, D});
        o.indices_out = ixs.view();
        o.num_threads = 3;
        topk_attention(q.view(), k.view(), v.view(), os.view(), o);
        CHECK(bitwise_equal(ixf, ixs));
        CHECK(stores_rounded(os, of));
    }
    {
        block_sparse_options o;
        o.block_size = 32;
        o.top_blocks = 2;
        o.causal = true;
        tensor<float, 4> of({B, Nq, Hq, D});
        block_sparse_attention(qf.view(), kf.view(), vf.view(), of.view(), o);
        tensor<float, 4> os({B, Nq, Hq, D});
        o.num_threads = 2;
        block_sparse_attention(q.view(), k.view(), v.view(), os.view(), o);
        CHECK(bitwise_equal(of, os));
    }
}
