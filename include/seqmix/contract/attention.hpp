#pragma once
// The contract of softmax_attention: its options, and the argument validation shared by
// the fast kernel and seqmix::reference (both reject exactly the same inputs, with the
// same messages, before writing anything).
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/executor.hpp"
#include "../core/storage_types.hpp"
#include "../core/tensor_view.hpp"
#include "../core/validate.hpp"

namespace seqmix {

// Where the rows of an attention call are, and how many threads run it: shared by every
// attention operator's options.
struct attention_inputs {
    const std::int32_t* cu_seqlens_q = nullptr;  // [num_seqs + 1], packed varlen queries
    const std::int32_t* cu_seqlens_k = nullptr;  // [num_seqs + 1], packed varlen keys
    const std::int32_t* seqlens_k = nullptr;     // [B or num_seqs]: valid KV length (KV cache)
    // Paged KV cache (vLLM / flash_attn_with_kvcache): k and v are [num_blocks, block_size,
    // Hkv, D]; key j of sequence b is row j % block_size of block
    // block_table[b * max_blocks_per_seq + j / block_size]. Needs seqlens_k. The queries are
    // [B, Nq, Hq, D], or packed by cu_seqlens_q (no cu_seqlens_k: a mixed batch of prefills
    // and decodes, as vLLM's flash_attn_varlen_func with a block table).
    const std::int32_t* block_table = nullptr;  // [B, max_blocks_per_seq], row-major
    int max_blocks_per_seq = 0;
    // fp8_e4m3 caches (vLLM's scheme): key = stored key * k_scale[kv head], value = stored
    // value * v_scale[kv head]; nullptr = 1. Only with keys (values) stored as fp8_e4m3.
    const float* k_scale = nullptr;        // [Hkv]
    const float* v_scale = nullptr;        // [Hkv]
    int num_seqs = 0;                      // seqmix extension: entries in cu_seqlens minus one (varlen)
    int num_threads = 0;                   // 0 = OpenMP default
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

// How prefill multiplies q, k and v stored as bf16 where the target has AVX512-BF16 (a seqmix
// extension; elsewhere, and for every other storage, float FMAs on the widened values):
//   automatic  bf16 dot products on hosts that run them at twice the FMA's rate (AMD Zen 4 /
//              Zen 5), float FMAs elsewhere (an Intel Xeon runs vdpbf16ps at half the FMA's rate),
//   bf16_dot   vdpbf16ps: S = Q K^T exact on the bf16 inputs, P V with P in two bf16 terms,
//   widened    float FMAs on the values widened to float: the float call's bits.
enum class bf16_products { automatic, bf16_dot, widened };

struct attention_options : attention_inputs {
    double scale = 0;                     // 0 = 1/sqrt(Dk)
    bool causal = false;                  // bottom-right aligned when Nq != Nk (FlashAttention >= 2.1)
    int window_left = -1;                 // -1 = unbounded
    int window_right = -1;                // -1 = unbounded
    double softcap = 0;                   // 0 = off; s = softcap * tanh(s / softcap)
    const float* alibi_slopes = nullptr;  // [Hq]; bias -slope * |i + Nk - Nq - j|
    const float* sinks = nullptr;         // [Hq]; a logit joining every row's denominator
    // q, k and v stored as bf16 on an AVX512-BF16 target: how prefill multiplies them.
    bf16_products products = bf16_products::automatic;
    // With bf16 dot products: P V takes the probabilities rounded to bf16, as GPU FlashAttention
    // and oneDNN do (about 1.4x faster prefill; each probability off by up to 2^-9 relatively).
    // By default they stay float accurate; float FMAs on widened values never round them.
    bool round_probabilities = false;
};

SEQMIX_ABI_BEGIN
namespace detail {

// One sequence of the problem: where its queries and keys are.
struct attention_sequence {
    index_t batch = 0;    // batch index into q and out (and k, v unless paged)
    index_t q_begin = 0;  // first query row on the seq axis
    index_t q_len = 0;
    index_t k_begin = 0;                  // first key row on the seq axis (0 when paged)
    index_t k_len = 0;                    // valid keys (seqlens_k applied)
    const std::int32_t* pages = nullptr;  // paged cache: this sequence's row of block_table
};

// Where key j of a sequence lives in k and v: indices on their axes 0 and 1.
struct key_location {
    index_t block, row;
};

struct attention_problem {
    index_t num_seqs = 0, hq = 0, hkv = 0, group = 0, dk = 0, dv = 0;
    double scale = 0;
    const attention_options* opt = nullptr;

    attention_sequence sequence(index_t s) const {
        if (opt->cu_seqlens_q && opt->block_table)  // packed queries over a paged cache
            return {0, opt->cu_seqlens_q[s], opt->cu_seqlens_q[s + 1] - opt->cu_seqlens_q[s],
                    0, opt->seqlens_k[s],    opt->block_table + s * opt->max_blocks_per_seq};
        if (opt->cu_seqlens_q) {
            const auto* cq = opt->cu_seqlens_q;
            const auto* ck = opt->cu_seqlens_k;
            index_t kl = ck[s + 1] - ck[s];
            if (opt->seqlens_k) kl = std::min<index_t>(kl, opt->seqlens_k[s]);
            return {0, cq[s], cq[s + 1] - cq[s], ck[s], kl};
        }
        const std::int32_t* pages = opt->block_table ? opt->block_table + s * opt->max_blocks_per_seq : nullptr;
        return {s, 0, nq_padded, 0, opt->seqlens_k ? opt->seqlens_k[s] : nk_padded, pages};
    }
    key_location key_at(const attention_sequence& sq, index_t j) const {
        if (sq.pages) return {sq.pages[j / page_size], j % page_size};
        return {sq.batch, sq.k_begin + j};
    }
    index_t nq_padded = 0, nk_padded = 0;  // seq extents of the views
    index_t page_size = 0;                 // keys per block of a paged cache (0: not paged)
};

// A paged cache: k and v are [num_blocks, block_size, Hkv, D]; every sequence needs
// enough blocks for its seqlens_k, and the blocks it uses must exist.
inline void check_block_table(const attention_options& opt, index_t batch, index_t num_blocks, index_t block_size,
                              const char* op) {
    check(opt.seqlens_k != nullptr, op, "seqlens_k", "the valid length of each cached sequence with block_table",
          "nullptr");
    check(opt.max_blocks_per_seq >= 1, op, "max_blocks_per_seq", ">= 1 with block_table", opt.max_blocks_per_seq);
    check(block_size >= 1, op, "k", "a block size (extent 1) >= 1 for a paged cache", block_size);
    for (index_t b = 0; b < batch; ++b) {
        const index_t len = opt.seqlens_k[b], cap = index_t(opt.max_blocks_per_seq) * block_size;
        if (len < 0 || len > cap)
            raise(detail::concat(op, ": argument 'seqlens_k': expected 0 <= seqlens_k[", b, "] <= ", cap,
                                 " (max_blocks_per_seq * block_size), given ", len));
        for (index_t j = 0; j < (len + block_size - 1) / block_size; ++j) {
            const index_t id = opt.block_table[b * opt.max_blocks_per_seq + j];
            if (id < 0 || id >= num_blocks)
                raise(detail::concat(op, ": argument 'block_table': expected block ids in [0, ", num_blocks,
                                     ") (k's extent 0), given block_table[", b, ", ", j, "] = ", id));
        }
    }
}

// Head dims >= 1 and Hq a multiple of Hkv (grouped-query attention): every attention operator.
inline void check_heads(index_t dk, index_t dv, index_t hq, index_t hkv, const char* op) {
    check(dk >= 1, op, "q", "a head dim >= 1", dk);
    check(dv >= 1, op, "v", "a head dim >= 1", dv);
    if (!(hkv >= 1 && hq % hkv == 0))
        fail(op, "k", detail::concat("a head count dividing q's ", hq, " (grouped-query attention)"), hkv);
}

// One finite sink logit per query head, in the element type E (nullptr: no sinks).
template <class E>
void check_sinks(const float* sinks, index_t hq, const char* op) {
    if (!sinks) return;
    for (index_t h = 0; h < hq; ++h)
        if (!fits_finite<E>(sinks[h]))
            raise(detail::concat(op, ": argument 'sinks': expected finite logits, given sinks[", h, "] = ", sinks[h]));
}

// The scales of an fp8 cache: one finite positive value per KV head, and only for fp8.
template <class S>
void check_cache_scales(const float* scale, index_t hkv, const char* op, const char* arg) {
    if (!scale) return;
    check(std::is_same_v<S, fp8_e4m3>, op, arg, "nullptr unless the cache is stored as fp8_e4m3",
          "a scale for a cache stored in another type");
    for (index_t h = 0; h < hkv; ++h)
        if (!(std::isfinite(scale[h]) && scale[h] > 0))
            raise(detail::concat(op, ": argument '", arg, "': expected finite scales > 0, given ", arg, "[", h,
                                 "] = ", scale[h]));
}

// E: the compute type (float for 16- and 8-bit storage).
template <class E, class Q, class K, class V, class O>
attention_problem validate_attention(const tensor_view<const Q, 4>& q, const tensor_view<const K, 4>& k,
                                     const tensor_view<const V, 4>& v, const tensor_view<O, 4>& out,
                                     const tensor_view<E, 3>& lse, const attention_options& opt, const char* op) {
    check_given(q, op, "q");
    check_given(k, op, "k");
    check_given(v, op, "v");
    check_given(out, op, "out");
    check_view(lse, op, "lse");
    check_output_layout(lse, op, "lse");
    const index_t B = q.extent(0), Nq = q.extent(1), Hq = q.extent(2), Dk = q.extent(3);
    const index_t Nk = k.extent(1), Hkv = k.extent(2), Dv = v.extent(3);
    const bool paged = opt.block_table != nullptr;
    if (paged) {
        check_extent(v, 0, k.extent(0), op, "v", "blocks like k (paged cache)");
    } else {
        check_extent(k, 0, B, op, "k", "batch like q");
        check_extent(v, 0, B, op, "v", "batch like q");
    }
    check_extent(k, 3, Dk, op, "k", "head dim like q");
    check_extent(v, 1, Nk, op, "v", "sequence length like k");
    check_extent(v, 2, Hkv, op, "v", "heads like k");
    check_heads(Dk, Dv, Hq, Hkv, op);
    check_shape(out, {B, Nq, Hq, Dv}, op, "out");
    if (!lse.empty()) check_shape(lse, {B, Hq, Nq}, op, "lse");
    check_disjoint(op, {memory_of("out", out), memory_of("lse", lse)},
                   {memory_of("q", q), memory_of("k", k), memory_of("v", v)});
    check_cache_scales<K>(opt.k_scale, Hkv, op, "k_scale");
    check_cache_scales<V>(opt.v_scale, Hkv, op, "v_scale");
    check_finite_as<E>(opt.scale, op, "scale");
    check_finite_as<E>(opt.softcap, op, "softcap");
    check(opt.softcap >= 0, op, "softcap", ">= 0 (0 = off)", opt.softcap);
    if (opt.softcap > 0) check_finite_as<E>(1.0 / opt.softcap, op, "softcap (its inverse)");
    check(opt.window_left >= -1, op, "window_left", ">= -1 (-1 = unbounded)", opt.window_left);
    check(opt.window_right >= -1, op, "window_right", ">= -1 (-1 = unbounded)", opt.window_right);
    if (opt.alibi_slopes) {
        // Read before any output is written; slope * distance must stay finite in E.
        const double max_distance = double(Nq) + double(Nk);
        for (index_t h = 0; h < Hq; ++h) {
            const double slope = opt.alibi_slopes[h];
            if (!fits_finite<E>(slope) || !fits_finite<E>(slope * max_distance))
                raise(detail::concat(op, ": argument 'alibi_slopes': expected finite slopes (also times the largest ",
                                     "distance ", max_distance, "), given alibi_slopes[", h, "] = ", slope));
        }
    }
    check_sinks<E>(opt.sinks, Hq, op);
    check_threads(opt.num_threads, op);
    index_t num_seqs = B;
    if (paged)
        check(!opt.cu_seqlens_k, op, "block_table",
              "no cu_seqlens_k (a paged cache: seqlens_k gives each sequence's keys)", "cu_seqlens_k as well");
    if (opt.cu_seqlens_q || opt.cu_seqlens_k) {
        if (!paged)
            check(opt.cu_seqlens_q && opt.cu_seqlens_k, op, opt.cu_seqlens_q ? "cu_seqlens_k" : "cu_seqlens_q",
                  "both cu_seqlens_q and cu_seqlens_k for packed variable-length input", "only one");
        check(B == 1, op, "q", "batch 1 with cu_seqlens (packed sequences)", B);
        num_seqs = opt.num_seqs;
        check_cu_seqlens(opt.cu_seqlens_q, num_seqs, Nq, op, "cu_seqlens_q");
        if (!paged) check_cu_seqlens(opt.cu_seqlens_k, num_seqs, Nk, op, "cu_seqlens_k");
    }
    if (paged) {
        check_block_table(opt, num_seqs, k.extent(0), Nk, op);
    } else if (opt.seqlens_k) {
        for (index_t s = 0; s < num_seqs; ++s) {
            const index_t cap = opt.cu_seqlens_k ? opt.cu_seqlens_k[s + 1] - opt.cu_seqlens_k[s] : Nk;
            // The caller's array holds num_seqs entries (the contract); the analyzer may see a
            // shorter one in an example.
            // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
            if (opt.seqlens_k[s] < 0 || opt.seqlens_k[s] > cap)
                raise(detail::concat(op, ": argument 'seqlens_k': expected 0 <= seqlens_k[", s, "] <= ", cap,
                                     ", given ", opt.seqlens_k[s]));
        }
    }
    attention_problem p{};
    p.num_seqs = num_seqs;
    p.hq = Hq;
    p.hkv = Hkv;
    p.group = Hq / Hkv;
    p.dk = Dk;
    p.dv = Dv;
    p.scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(Dk));
    p.opt = &opt;
    p.nq_padded = Nq;
    p.nk_padded = Nk;
    p.page_size = paged ? Nk : 0;
    return p;
}

// Arguments after rank normalization and validation: what both implementations run on. T is
// the compute type; q, k, v and out may be stored as other types (bf16, fp16, fp8_e4m3).
template <class T, class Q = T, class K = T, class V = T, class O = T>
struct attention_args {
    using compute_type = T;
    using query_type = Q;
    using key_type = K;
    using value_type = V;
    using output_type = O;
    tensor_view<const Q, 4> q;
    tensor_view<const K, 4> k;
    tensor_view<const V, 4> v;
    tensor_view<O, 4> out;
    tensor_view<T, 3> lse;
    attention_problem problem;
};

// The element types attention takes: q, k, v and out in one type (float, double), or, with
// float arithmetic, q and out in float, bf16 or fp16 and k and v also in fp8_e4m3.
template <class T, class Q, class K, class V, class O>
constexpr void check_attention_types() {
    static_assert(std::is_same_v<T, compute_type_of<O>>,
                  "seqmix: attention computes in the output's type (float for bf16 / fp16)");
    constexpr bool uniform =
        std::is_same_v<Q, T> && std::is_same_v<K, T> && std::is_same_v<V, T> && std::is_same_v<O, T>;
    constexpr bool reduced = std::is_same_v<T, float> && !std::is_same_v<Q, fp8_e4m3> && !std::is_same_v<O, fp8_e4m3> &&
                             std::is_same_v<compute_type_of<Q>, float> && std::is_same_v<compute_type_of<K>, float> &&
                             std::is_same_v<compute_type_of<V>, float>;
    static_assert(uniform || reduced,
                  "seqmix: attention takes q, k, v, out of one type (float or double), or float arithmetic with q and "
                  "out in float, bf16 or fp16 and k, v in float, bf16, fp16 or fp8_e4m3");
}

template <class QV, class KV, class VV, class OV, class T>
auto prepare_attention(const QV& q, const KV& k, const VV& v, const OV& out, const tensor_view<T, 3>& lse,
                       const attention_options& opt, const char* op) {
    const auto views = as_batched_qkvo<4>(q, k, v, out, op, "[B,N,H,D]");
    using Q = typename QV::value_type;
    using K = typename KV::value_type;
    using V = typename VV::value_type;
    using O = typename OV::value_type;
    check_attention_types<T, Q, K, V, O>();
    attention_args<T, Q, K, V, O> a;
    a.q = views.q;
    a.k = views.k;
    a.v = views.v;
    a.out = views.out;
    a.lse = lse;
    a.problem = validate_attention(a.q, a.k, a.v, a.out, a.lse, opt, op);
    return a;
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
