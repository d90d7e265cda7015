#pragma once
// softmax_attention: FlashAttention-2 on CPU cores. This header is one variant of the
// attention run (kernels/attention_run.hpp): a problem per sequence, each query row seeing
// the band of the causal and window masks, softcap and ALiBi as its logits transform. The
// run plans the work units, picks the tile engine, splits the keys of problems too small to
// occupy a machine, and merges the splits; see there for determinism and batch invariance.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../contract/attention.hpp"
#include "../core/abi.hpp"
#include "../kernels/attention_policies.hpp"
#include "../kernels/attention_run.hpp"
#include "../kernels/kv_rows.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// The key storage of KV head hk of a sequence: rows at the views' strides, or the blocks of a
// paged cache. Shared by every attention operator over these caches.
template <class T, class Q, class K, class V, class O>
kernels::kv_rows<K, V> kv_of(const attention_args<T, Q, K, V, O>& a, const attention_sequence& sq, index_t hk) {
    kernels::kv_rows<K, V> kv{};
    kv.k_row = a.k.stride(1);
    kv.v_row = a.v.stride(1);
    kv.k_elem = a.k.stride(3);
    kv.v_elem = a.v.stride(3);
    kv.k_head = a.k.stride(2);
    kv.v_head = a.v.stride(2);
    kv.count = sq.k_len;
    if (sq.pages) {
        kv.k = a.k.ptr(0, 0, hk);
        kv.v = a.v.ptr(0, 0, hk);
        kv.pages = sq.pages;
        kv.page_size = a.problem.page_size;
        kv.k_page = a.k.stride(0);
        kv.v_page = a.v.stride(0);
    } else {
        kv.k = a.k.ptr(sq.batch, sq.k_begin, hk);
        kv.v = a.v.ptr(sq.batch, sq.k_begin, hk);
    }
    return kv;
}

// Whether a token's KV heads sit side by side in the cache (token-major [B,N,H,D], paged):
// then decode units may take several heads and read the cache in address order.
template <class A>
bool kv_heads_interleaved(const A& a) {
    return std::abs(a.k.stride(2)) < std::abs(a.k.stride(1));
}

// T: the compute type; A: the arguments (attention_args, with the storage types).
template <class T, class A = attention_args<T>>
struct softmax_variant;

// A band problem: the queries i_first + i * step of a sequence and its keys r + t * step
// (step > 1: one residue of a dilated window; i_first > 0 with step 1: a block of queries),
// each query seeing the band of the variant's mask around its diagonal, counted in steps.
template <class T, class A = attention_args<T>>
struct band_problem {
    using Row = kernels::attention_row<T, typename A::query_type, typename A::output_type>;
    const softmax_variant<T, A>& var;
    attention_sequence sq;
    index_t step = 1, r = 0, i_first = 0;
    index_t q_len = 0, k_len = 0;

    kernels::problem_extent extent() const { return {q_len, k_len}; }
    Row row(index_t h, index_t i) const {
        const auto& a = var.a;
        const attention_options& o = var.opt();
        const index_t at = i_first + i * step;  // the query in its sequence
        const index_t diag = (at + sq.k_len - sq.q_len - r) / step;
        const index_t hk = h / a.problem.group;
        return {a.q.ptr(sq.batch, sq.q_begin + at, h),
                a.out.ptr(sq.batch, sq.q_begin + at, h),
                a.lse.empty() ? nullptr : a.lse.ptr(sq.batch, h, sq.q_begin + at),
                var.mask.keys_of(diag, k_len),
                diag,
                o.alibi_slopes ? T(o.alibi_slopes[h]) : T(0),
                o.sinks ? T(o.sinks[h]) : -std::numeric_limits<T>::infinity(),
                o.k_scale ? T(o.k_scale[hk]) : T(1),
                o.v_scale ? T(o.v_scale[hk]) : T(1)};
    }
    kernels::kv_rows<typename A::key_type, typename A::value_type> keys(index_t hk) const {
        auto kv = kv_of(var.a, sq, hk);
        if (step == 1) return kv;
        kv.count = k_len;
        if (kv.pages) {
            kv.first = r;
        } else {
            kv.k += r * kv.k_row;
            kv.v += r * kv.v_row;
        }
        kv.step = step;
        kv.k_row *= step;
        kv.v_row *= step;
        return kv;
    }
    kernels::interval_schedule schedule(const kernels::unit_span& u) const {
        return {u.kmin, u.kmax + 1, u.max_lo, u.min_hi, u.lo, u.hi};
    }
};

// softmax_attention as a variant of the attention run: a band problem per sequence, the
// contract's masks as the band, softcap and ALiBi as the logits transform.
template <class T, class A>
struct softmax_variant : kernels::attention_variant_base {
    using value_type = T;
    const A& a;
    kernels::band_mask mask;
    index_t band = -1;  // keys a row sees at most (-1: unbounded)
    kernels::logits_transform<T> transform;

    softmax_variant(const A& args, const attention_options& opt) : a(args) {
        set_mask({opt.causal, opt.window_left, opt.window_right});
        transform.softcap = T(opt.softcap);
        transform.alibi = opt.alibi_slopes != nullptr;
    }
    void set_mask(const kernels::band_mask& m) {
        mask = m;
        const index_t right = m.causal ? 0 : m.window_right;  // keys after the diagonal
        band = m.window_left >= 0 && right >= 0 ? m.window_left + right + 1 : -1;
    }
    const attention_options& opt() const { return *a.problem.opt; }
    kernels::attention_heads heads() const { return {a.problem.hkv, a.problem.group, a.problem.dk, a.problem.dv}; }
    index_t problems() const { return a.problem.num_seqs; }
    band_problem<T, A> problem(index_t s) const {
        const attention_sequence sq = a.problem.sequence(s);
        return {*this, sq, 1, 0, 0, sq.q_len, sq.k_len};
    }
    bool banded() const { return mask.any(); }
    // A unit of q queries per head spans about q + band keys: short bands take short query
    // blocks so the span stays near the band. Measured on a Xeon (H 8, D 64, N 8192, causal):
    // window 512 ran 88 GFLOP/s on the band with 4 vectors of rows (76 with 8, 85 with 2),
    // window 128 ran 57 with 2 vectors (50 with 4).
    index_t query_block(index_t, index_t suggested) const {
        constexpr index_t W = index_t(simd::width<T>);
        if (band < 0 || band >= 64 * W) return suggested;  // 8 blocks of 8 vectors
        const index_t vectors = band <= 16 * W ? 2 : 4;
        return std::min(suggested, std::max<index_t>(vectors * W / a.problem.group, 1));
    }
    bool kv_heads_interleaved() const { return detail::kv_heads_interleaved(a); }
    bool round_probabilities() const { return opt().round_probabilities; }
    bool bf16_dot_products() const {
        const bf16_products p = opt().products;
        return p == bf16_products::bf16_dot || (p == bf16_products::automatic && kernels::bf16_dot_products_pay());
    }
    double scale() const { return a.problem.scale; }
    index_t q_elem() const { return a.q.stride(3); }
    index_t out_elem() const { return a.out.stride(3); }
    const kernels::logits_transform<T>& logits() const { return transform; }
};

}  // namespace detail

// out[b,i,h,:] = softmax_j(score(i, j)) V[b,j,h/(Hq/Hkv),:] with the contract's score,
// masks and options; lse (optional, [B,Hq,Nq]) receives each row's log-sum-exp.
// q, k, v and out may be stored as bf16 or fp16 (k and v also fp8_e4m3, with opt.k_scale and
// opt.v_scale) with float arithmetic: docs/api.md, "Reduced-precision storage".
template <class QV, class KV, class VV, class OV>
void softmax_attention(const QV& q, const KV& k, const VV& v, const OV& out, const attention_options& opt = {},
                       tensor_view<compute_type_of<typename OV::value_type>, 3> lse = {}) {
    const executor_scope threads_of_call(opt.executor);
    using T = compute_type_of<typename OV::value_type>;
    const auto a = detail::prepare_attention(q, k, v, out, lse, opt, "softmax_attention");
    kernels::attention_run(detail::softmax_variant<T, std::decay_t<decltype(a)>>(a, opt), opt.num_threads);
}

SEQMIX_ABI_END
}  // namespace seqmix
