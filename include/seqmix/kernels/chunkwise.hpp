#pragma once
// Chunkwise pieces of the linear-attention family (Lightning attention, GLA): for a chunk
// of L tokens with cumulative log gates b (relative to the chunk start, b <= 0, falling),
//   scores  A[t][s] = sum_d q_td k_sd exp(b_td - b_sd)   (s <= t; scalar gate: one b_t)
//   output  O[t]    = (q_t * exp(b_t))^T S_prev + sum_{s<=t} A[t][s] v_s
//   state   S_new   = exp(b_L) * S_prev + sum_s (k_s * exp(b_L - b_s)) v_s^T   (in place)
// All of it is small dense products on packed, padded tiles (gemm_tile, key_block).
#include <algorithm>
#include <cmath>

#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"
#include "../simd/exp.hpp"
#include "../simd/vec.hpp"
#include "gemm_tile.hpp"
#include "key_block.hpp"

namespace seqmix::kernels {

enum class gate_kind { none, scalar, vector };

// One packed chunk of one (sequence, head): rows padded with zeros to ldk / ldv.
template <class T>
struct chunk_tile {
    index_t len;       // tokens in this chunk
    index_t dk, dv;    // key (feature) dim, value dim (with a normalizer column if any)
    index_t ldk, ldv;  // row strides, multiples of the vector width
    T* q;              // [len][ldk]
    T* k;              // [len][ldk]
    T* v;              // [len][ldv]
    T* b;              // cumulative log gates: [len] (scalar) or [len][ldk] (vector)
    gate_kind gate;
};

// Rows per sub-chunk of the intra-chunk products (and of the GLA secondary chunking).
constexpr index_t sub_chunk = 16;
// Largest decay (in nats) inside one sub-chunk for which the factored form
// exp(b_t - b_r) * exp(b_r - b_s) is used on the diagonal block: factors stay within
// e^±60, far from float overflow, and the products are exact up to rounding.
constexpr double max_factored_range = 60.0;

namespace detail {
template <class T>
inline void scale_row_exp(T* dst, const T* src, const T* b, const T* b_ref, index_t n, bool negate) {
    // dst = src * exp(b - b_ref)  (or exp(b_ref - b) when negate); b_ref may be null (= 0).
    constexpr index_t W = index_t(simd::width<T>);
    for (index_t e = 0; e < n; e += W) {
        auto x = simd::load_aligned(b + e);
        if (b_ref) x = x - simd::load_aligned(b_ref + e);
        if (negate) x = -x;
        simd::store_aligned(dst + e, simd::load_aligned(src + e) * simd::exp(x));
    }
}
}  // namespace detail

// A[t][s] for s <= t < len, zero above the diagonal up to the end of t's sub-chunk; A needs
// lda >= len + W (whole vectors are stored). work_q: [sub_chunk][ldk], work_k: [len][ldk].
template <class T>
void chunk_scores(const chunk_tile<T>& c, T* A, index_t lda, T* work_q, T* work_k) {
    constexpr index_t W = index_t(simd::width<T>);
    const index_t L = c.len;
    for (index_t t0 = 0; t0 < L; t0 += sub_chunk) {
        const index_t t1 = std::min(L, t0 + sub_chunk), rows = t1 - t0;
        const T* qs = c.q + t0 * c.ldk;
        const T* ks = c.k;
        bool direct_diagonal = false;
        if (c.gate == gate_kind::vector) {
            // GLA secondary chunking: rows of this sub-chunk are taken relative to the gate
            // just before it (b_r), keys relative to the same point, so every factor is
            // exp(non-positive) except keys inside the sub-chunk (bounded by its range).
            const T* b_ref = t0 > 0 ? c.b + (t0 - 1) * c.ldk : nullptr;
            for (index_t t = t0; t < t1; ++t)
                detail::scale_row_exp(work_q + (t - t0) * c.ldk, c.q + t * c.ldk, c.b + t * c.ldk, b_ref, c.ldk, false);
            for (index_t s = 0; s < t1; ++s)
                detail::scale_row_exp(work_k + s * c.ldk, c.k + s * c.ldk, c.b + s * c.ldk, b_ref, c.ldk, true);
            T range = 0;
            const T* b_last = c.b + (t1 - 1) * c.ldk;
            for (index_t d = 0; d < c.dk; ++d) range = std::max(range, (b_ref ? b_ref[d] : T(0)) - b_last[d]);
            direct_diagonal = !(double(range) <= max_factored_range);
            qs = work_q;
            ks = work_k;
        }
        for (index_t s0 = 0; s0 < t1; s0 += W)
            dot_key_rows(qs, c.ldk, rows, ks + s0 * c.ldk, c.ldk, std::min(W, t1 - s0), c.dk, A + t0 * lda + s0, lda);
        for (index_t t = t0; t < t1; ++t) {
            T* a = A + t * lda;
            if (c.gate == gate_kind::scalar) {  // decay matrix exp(b_t - b_s): an outer difference
                const simd::vec<T> bt(c.b[t]);
                for (index_t s = 0; s <= t; s += W)
                    simd::store(a + s, simd::load(a + s) * simd::exp(bt - simd::load(c.b + s)));
            } else if (direct_diagonal) {
                // Strong gates inside this sub-chunk: the diagonal block straight in log space.
                for (index_t s = t0; s <= t; ++s) {
                    const T *qt = c.q + t * c.ldk, *ks_ = c.k + s * c.ldk, *bt = c.b + t * c.ldk, *bs = c.b + s * c.ldk;
                    simd::vec<T> acc(T(0));
                    for (index_t d = 0; d < c.ldk; d += W)
                        acc = simd::fma(simd::load_aligned(qt + d) * simd::load_aligned(ks_ + d),
                                        simd::exp(simd::load_aligned(bt + d) - simd::load_aligned(bs + d)), acc);
                    a[s] = simd::hsum(acc);
                }
            }
            for (index_t s = t + 1; s < t1; ++s) a[s] = T(0);  // causal mask inside the sub-chunk
        }
    }
}

// O = gated q times S_prev (S_prev may be null: zero state) plus the causal intra-chunk part
// A V; O is [len][ldv]. work: [len][ldk].
template <class T>
void chunk_output(const chunk_tile<T>& c, const T* A, index_t lda, const T* S_prev, T* O, T* work, bool intra = true) {
    const index_t L = c.len;
    if (S_prev) {
        const T* qg = c.q;
        if (c.gate == gate_kind::vector) {
            for (index_t t = 0; t < L; ++t)
                detail::scale_row_exp(work + t * c.ldk, c.q + t * c.ldk, c.b + t * c.ldk, static_cast<const T*>(nullptr), c.ldk, false);
            qg = work;
        }
        panel_gemm<tile_update::overwrite>(L, c.dk, c.ldv, qg, c.ldk, 1, S_prev, c.ldv, O, c.ldv);
        if (c.gate == gate_kind::scalar)
            for (index_t t = 0; t < L; ++t) simd::scale(std::exp(c.b[t]), O + t * c.ldv, std::size_t(c.ldv));
    } else {
        std::fill(O, O + L * c.ldv, T(0));
    }
    if (!intra) return;
    for (index_t t0 = 0; t0 < L; t0 += sub_chunk) {
        const index_t t1 = std::min(L, t0 + sub_chunk);
        panel_gemm<tile_update::accumulate>(t1 - t0, t1, c.ldv, A + t0 * lda, lda, 1, c.v, c.ldv, O + t0 * c.ldv, c.ldv);
    }
}

// S = exp(b_L) * S + sum_s (k_s * exp(b_L - b_s)) v_s^T in place: the decay scales the
// rows of S, then one accumulating product adds the chunk (S is [dk][ldv]). work: [len][ldk].
template <class T>
void chunk_state_update(const chunk_tile<T>& c, T* S, T* work) {
    const index_t L = c.len;
    const T* kw = c.k;
    if (c.gate == gate_kind::vector) {
        const T* b_last = c.b + (L - 1) * c.ldk;
        for (index_t d = 0; d < c.dk; ++d) simd::scale(std::exp(b_last[d]), S + d * c.ldv, std::size_t(c.ldv));
        for (index_t s = 0; s < L; ++s)
            detail::scale_row_exp(work + s * c.ldk, c.k + s * c.ldk, b_last, c.b + s * c.ldk, c.ldk, false);
        kw = work;
    } else if (c.gate == gate_kind::scalar) {
        simd::scale(std::exp(c.b[L - 1]), S, std::size_t(c.dk * c.ldv));
        for (index_t s = 0; s < L; ++s)
            simd::scaled_copy(std::exp(c.b[L - 1] - c.b[s]), c.k + s * c.ldk, work + s * c.ldk, std::size_t(c.ldk));
        kw = work;
    }
    panel_gemm<tile_update::accumulate>(c.dk, L, c.ldv, kw, 1, c.ldk, c.v, c.ldv, S, c.ldv);
}

// S = exp(log_decay) * S + dS, row by row (S and dS are [dk][ldv]).
template <class T>
void state_advance(T* S, const T* dS, const T* log_decay, gate_kind gate, index_t dk, index_t ldv) {
    constexpr index_t W = index_t(simd::width<T>);
    for (index_t d = 0; d < dk; ++d) {
        const T decay = gate == gate_kind::none ? T(1) : std::exp(log_decay[gate == gate_kind::vector ? d : 0]);
        const simd::vec<T> dv(decay);
        for (index_t e = 0; e < ldv; e += W)
            simd::store_aligned(S + d * ldv + e,
                                simd::fma(dv, simd::load_aligned(S + d * ldv + e), simd::load_aligned(dS + d * ldv + e)));
    }
}

}  // namespace seqmix::kernels
