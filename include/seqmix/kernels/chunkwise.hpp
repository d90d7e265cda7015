#pragma once
// Chunkwise pieces of the linear-attention family (Lightning attention, GLA): for a chunk
// of L tokens with cumulative log gates b (relative to the chunk start, b <= 0, falling),
//   scores  A[t][s] = sum_d q_td k_sd exp(b_td - b_sd)   (s <= t; scalar gate: one b_t)
//   output  O[t]    = (q_t * exp(b_t))^T S_prev + sum_{s<=t} A[t][s] v_s
//   state   S_new   = exp(b_L) * S_prev + sum_s (k_s * exp(b_L - b_s)) v_s^T   (in place)
// All of it is small dense products on packed, padded tiles (gemm_tile, key_block).
//
// Gates at the extremes. Each log gate is first raised to gate_floor<T> (exp of it, and of
// anything below it, is exactly 0 in T, so this changes no result and removes -inf). The
// cumulative gates are then kept as an unevaluated sum b = hi + lo (Knuth's two-sum): a
// difference b_t - b_s is (hi_t - hi_s) + (lo_t - lo_s), exact to rounding of the
// difference itself. A plain float running sum would round every mild gate that follows a
// strong one to the ulp of the large total (g = -1e4 then -1e-2 lost 3e-3 that way).
#include <algorithm>
#include <cmath>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"
#include "../simd/exp.hpp"
#include "../simd/vec.hpp"
#include "gemm_tile.hpp"
#include "key_block.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

enum class gate_kind { none, scalar, vector };

// Log gates below this are raised to it: exp(gate_floor) and exp of anything below it is
// exactly 0 in T (float: the vector exp flushes below -104; double: below -745).
template <class T>
constexpr T gate_floor = sizeof(T) == 4 ? T(-128) : T(-800);

// One packed chunk of one (sequence, head): rows padded with zeros to ldk / ldv.
template <class T>
struct chunk_tile {
    index_t len = 0;            // tokens in this chunk
    index_t dk = 0, dv = 0;     // key (feature) dim, value dim (with a normalizer column if any)
    index_t ldk = 0, ldv = 0;   // padded widths of the packed tiles, multiples of the vector width
    const T* q = nullptr;       // [len] rows of dk, row stride ldq: the packed tile, or the user's rows
    const T* k = nullptr;       //   read in place (identity map, unit stride, dk a whole number of
    index_t ldq = 0, ldkr = 0;  //   vectors: then dk == ldk and there are no padding lanes to read)
    T* v = nullptr;             // [len][ldv]
    T* b = nullptr;             // cumulative log gates, high part: [len] (scalar) or [len][ldk] (vector)
    T* b_lo = nullptr;          // their low part, same layout
    gate_kind gate{};
};

// Rows per sub-chunk of the intra-chunk products (and of the GLA secondary chunking).
constexpr index_t sub_chunk = 16;
// Largest decay (in nats) inside one sub-chunk for which the factored form
// exp(b_t - b_r) * exp(b_r - b_s) is used on the diagonal block: factors stay within
// e^±60, far from float overflow, and the products are exact up to rounding.
constexpr double max_factored_range = 60.0;

// Cumulative gates of token t from those of token t-1 (prev_hi / prev_lo null at the chunk
// start): hi + lo = prev_hi + prev_lo + max(g, gate_floor), n lanes (a multiple of W).
template <class T>
inline void cumulative_gate_row(const T* g, const T* prev_hi, const T* prev_lo, T* hi, T* lo, index_t n) {
    constexpr index_t W = index_t(simd::width<T>);
    const simd::vec<T> floor(gate_floor<T>);
    for (index_t e = 0; e < n; e += W) {
        const auto x = simd::max(floor, simd::load_aligned(g + e));
        if (!prev_hi) {
            simd::store_aligned(hi + e, x);
            simd::store_aligned(lo + e, simd::vec<T>(T(0)));
            continue;
        }
        const auto a = simd::load_aligned(prev_hi + e);
        const auto s = a + x;
        const auto bb = s - a;
        const auto err = (a - (s - bb)) + (x - bb);  // two-sum: a + x == s + err exactly
        simd::store_aligned(hi + e, s);
        simd::store_aligned(lo + e, simd::load_aligned(prev_lo + e) + err);
    }
}

// The scalar form: one gate per token.
template <class T>
inline void cumulative_gate(T g, index_t t, T* hi, T* lo) {
    const T x = std::max(gate_floor<T>, g);  // NaN never gets here: gates are validated
    if (t == 0) {
        hi[0] = x;
        lo[0] = T(0);
        return;
    }
    const T a = hi[t - 1], s = a + x, bb = s - a;
    hi[t] = s;
    lo[t] = lo[t - 1] + ((a - (s - bb)) + (x - bb));
}

namespace detail {
// (hi_a + lo_a) - (hi_b + lo_b), either side may be absent (= 0).
template <class V, class T>
inline V gate_difference(const T* hi_a, const T* lo_a, const T* hi_b, const T* lo_b, index_t e) {
    V d = hi_a ? simd::load_aligned(hi_a + e) : V(T(0));
    if (hi_b) d = d - simd::load_aligned(hi_b + e);
    V l = lo_a ? simd::load_aligned(lo_a + e) : V(T(0));
    if (lo_b) l = l - simd::load_aligned(lo_b + e);
    return d + l;
}

// dst = src * exp(b_a - b_b) over n lanes; each b is (hi, lo) or absent (= 0).
template <class T>
inline void scale_row_exp(T* dst, const T* src, const T* hi_a, const T* lo_a, const T* hi_b, const T* lo_b, index_t n) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    for (index_t e = 0; e < n; e += W)
        simd::store_aligned(dst + e,
                            simd::load_aligned(src + e) * simd::exp(gate_difference<V>(hi_a, lo_a, hi_b, lo_b, e)));
}

template <class T>
inline T gate_at(const T* hi, const T* lo, index_t i) {
    return hi[i] + lo[i];
}
}  // namespace detail

namespace detail {
// The diagonal block [t0, t1) of a sub-chunk under strong vector gates (a decay range above
// max_factored_range), exact, and mostly as dot products of factored rows. Pairs s <= t of
// [lo, hi) whose whole range fits take one reference, the gate before lo. Otherwise the block
// is halved: each half recursively, and the cross block (t in the upper half, s in the lower)
// factored at the halves' boundary when each half fits, else pair by pair in log space.
// Gates in [-8, 0] have ranges near 64 over 16 tokens: one halving makes every block fit,
// where the pair-by-pair form took an exp per pair and lane (1.5x the chunk's time).
// wq: [sub_chunk][ldk], wk: [sub_chunk][ldk], free to overwrite.
template <class T>
void strong_diagonal_scores(const chunk_tile<T>& c, T* A, index_t lda, T* wq, T* wk, index_t t0, index_t t1) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    alignas(64) T tmp[sub_chunk * W];
    auto hi_at = [&](index_t i) { return i < 0 ? nullptr : c.b + i * c.ldk; };
    auto lo_at = [&](index_t i) { return i < 0 ? nullptr : c.b_lo + i * c.ldk; };
    auto fits = [&](index_t from, index_t to) {  // decay from gate `from` (-1: the chunk start) to gate `to`
        T range = 0;
        const T* bt = hi_at(to);
        for (index_t d = 0; d < c.dk; ++d) range = std::max(range, (from < 0 ? T(0) : c.b[from * c.ldk + d]) - bt[d]);
        return double(range) <= max_factored_range;
    };
    auto factored = [&](index_t ref, index_t ta, index_t tb, index_t sa, index_t sb) {
        for (index_t t = ta; t < tb; ++t)
            scale_row_exp(wq + (t - ta) * c.ldk, c.q + t * c.ldq, hi_at(t), lo_at(t), hi_at(ref), lo_at(ref), c.ldk);
        for (index_t s = sa; s < sb; ++s)
            scale_row_exp(wk + (s - sa) * c.ldk, c.k + s * c.ldkr, hi_at(ref), lo_at(ref), hi_at(s), lo_at(s), c.ldk);
        for (index_t s0 = sa; s0 < sb; s0 += W) {
            const index_t n = std::min(W, sb - s0);
            dot_key_rows(static_cast<const T*>(wq), c.ldk, tb - ta, wk + (s0 - sa) * c.ldk, c.ldk, n, c.dk, tmp, W);
            for (index_t t = ta; t < tb; ++t)
                for (index_t j = 0; j < n && s0 + j <= t; ++j) A[t * lda + s0 + j] = tmp[(t - ta) * W + j];
        }
    };
    auto direct = [&](index_t ta, index_t tb, index_t sa, index_t sb) {
        for (index_t t = ta; t < tb; ++t)
            for (index_t s = sa; s < sb && s <= t; ++s) {
                const T *qt = c.q + t * c.ldq, *ks = c.k + s * c.ldkr;
                V acc(T(0));
                for (index_t d = 0; d < c.ldk; d += W)
                    acc = simd::fma(simd::load_aligned(qt + d) * simd::load_aligned(ks + d),
                                    simd::exp(gate_difference<V>(hi_at(t), lo_at(t), hi_at(s), lo_at(s), d)), acc);
                A[t * lda + s] = simd::hsum(acc);
            }
    };
    auto triangle = [&](auto&& self, index_t lo, index_t hi) -> void {
        if (fits(lo - 1, hi - 1)) return factored(lo - 1, lo, hi, lo, hi);
        if (hi - lo <= 2) return direct(lo, hi, lo, hi);
        const index_t mid = (lo + hi) / 2;
        self(self, lo, mid);
        self(self, mid, hi);
        if (fits(lo - 1, mid - 1) && fits(mid - 1, hi - 1)) factored(mid - 1, mid, hi, lo, mid);
        else direct(mid, hi, lo, mid);
    };
    triangle(triangle, t0, t1);
}
}  // namespace detail

// A[t][s] for s <= t < len, zero above the diagonal up to the end of t's sub-chunk; A needs
// lda >= len + W (whole vectors are stored). work_q: [sub_chunk][ldk], work_k: [len][ldk].
template <class T>
void chunk_scores(const chunk_tile<T>& c, T* A, index_t lda, T* work_q, T* work_k) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    const index_t L = c.len;
    for (index_t t0 = 0; t0 < L; t0 += sub_chunk) {
        const index_t t1 = std::min(L, t0 + sub_chunk), rows = t1 - t0;
        const T* qs = c.q + t0 * c.ldq;
        const T* ks = c.k;
        index_t ldqs = c.ldq, ldks = c.ldkr;
        bool direct_diagonal = false;
        if (c.gate == gate_kind::vector) {
            // GLA secondary chunking: rows of this sub-chunk are taken relative to the gate
            // just before it (b_r), keys relative to the same point, so every factor is
            // exp(non-positive) except keys inside the sub-chunk (bounded by its range).
            const T* ref_hi = t0 > 0 ? c.b + (t0 - 1) * c.ldk : nullptr;
            const T* ref_lo = t0 > 0 ? c.b_lo + (t0 - 1) * c.ldk : nullptr;
            for (index_t t = t0; t < t1; ++t)
                detail::scale_row_exp(work_q + (t - t0) * c.ldk, c.q + t * c.ldq, c.b + t * c.ldk, c.b_lo + t * c.ldk,
                                      ref_hi, ref_lo, c.ldk);
            for (index_t s = 0; s < t1; ++s)
                detail::scale_row_exp(work_k + s * c.ldk, c.k + s * c.ldkr, ref_hi, ref_lo, c.b + s * c.ldk,
                                      c.b_lo + s * c.ldk, c.ldk);
            T range = 0;
            const T* b_last = c.b + (t1 - 1) * c.ldk;
            for (index_t d = 0; d < c.dk; ++d) range = std::max(range, (ref_hi ? ref_hi[d] : T(0)) - b_last[d]);
            direct_diagonal = !(double(range) <= max_factored_range);
            qs = work_q;
            ks = work_k;
            ldqs = ldks = c.ldk;
        }
        for (index_t s0 = 0; s0 < t1; s0 += W)
            dot_key_rows(qs, ldqs, rows, ks + s0 * ldks, ldks, std::min(W, t1 - s0), c.dk, A + t0 * lda + s0, lda);
        for (index_t t = t0; t < t1; ++t) {
            T* a = A + t * lda;
            if (c.gate == gate_kind::scalar) {  // decay matrix exp(b_t - b_s): an outer difference
                const V bt(c.b[t]), lt(c.b_lo[t]);
                for (index_t s = 0; s <= t; s += W) {
                    const V d = (bt - simd::load(c.b + s)) + (lt - simd::load(c.b_lo + s));
                    simd::store(a + s, simd::load(a + s) * simd::exp(d));
                }
            }
            for (index_t s = t + 1; s < t1; ++s) a[s] = T(0);  // causal mask inside the sub-chunk
        }
        // Strong gates inside this sub-chunk: the diagonal block exactly (its entries from the
        // product above may be overflowed factors).
        if (direct_diagonal) detail::strong_diagonal_scores(c, A, lda, work_q, work_k, t0, t1);
    }
}

// The state-independent gate factors of a chunk (computed once, shared by every column
// block of the state):
//   qg        q_t * exp(b_t)            vector gate; null otherwise (q is used, rows scaled by row_scale)
//   row_scale exp(b_t)                  scalar gate; null otherwise
//   kg        k_s * exp(b_L - b_s)      any gate; null without gates (k is used)
//   decay     exp(b_L) per state row    [dk] (vector gate) or [1] (scalar); null without gates
//   finite_v  every value is finite (else the intra-chunk triangle is taken exactly)
template <class T>
struct chunk_factors {
    const T* qg = nullptr;
    const T* row_scale = nullptr;
    const T* kg = nullptr;
    const T* decay = nullptr;
    index_t decay_stride = 0;
    bool finite_v = true;
};

// Fills qg [len][ldk] (vector gate, when `outputs`), kg [len][ldk], row_scale [len] and
// decay [dk] from the chunk's cumulative gates.
template <class T>
chunk_factors<T> chunk_gate_factors(const chunk_tile<T>& c, bool outputs, T* qg, T* kg, T* row_scale, T* decay) {
    const index_t L = c.len;
    chunk_factors<T> f;
    f.finite_v = rows_finite(static_cast<const T*>(c.v), L, c.ldv, c.ldv, index_t(1));
    if (c.gate == gate_kind::vector) {
        const T* last_hi = c.b + (L - 1) * c.ldk;
        const T* last_lo = c.b_lo + (L - 1) * c.ldk;
        if (outputs) {
            for (index_t t = 0; t < L; ++t)
                detail::scale_row_exp(qg + t * c.ldk, c.q + t * c.ldq, c.b + t * c.ldk, c.b_lo + t * c.ldk,
                                      static_cast<const T*>(nullptr), static_cast<const T*>(nullptr), c.ldk);
            f.qg = qg;
        }
        for (index_t s = 0; s < L; ++s)
            detail::scale_row_exp(kg + s * c.ldk, c.k + s * c.ldkr, last_hi, last_lo, c.b + s * c.ldk,
                                  c.b_lo + s * c.ldk, c.ldk);
        for (index_t d = 0; d < c.dk; ++d) decay[d] = last_hi[d] + last_lo[d];
        simd::exp_inplace(decay, std::size_t(c.dk));
        f.kg = kg;
        f.decay = decay;
        f.decay_stride = 1;
    } else if (c.gate == gate_kind::scalar) {
        for (index_t t = 0; t < L; ++t) row_scale[t] = detail::gate_at(c.b, c.b_lo, t);
        simd::exp_inplace(row_scale, std::size_t(L));
        for (index_t s = 0; s < L; ++s)
            simd::scaled_copy(std::exp((c.b[L - 1] - c.b[s]) + (c.b_lo[L - 1] - c.b_lo[s])), c.k + s * c.ldkr,
                              kg + s * c.ldk, std::size_t(c.ldk));
        decay[0] = row_scale[L - 1];
        f.row_scale = row_scale;
        f.kg = kg;
        f.decay = decay;
        f.decay_stride = 0;
    }
    return f;
}

// Columns [c0, c1) of O = gated q times S_prev (S_prev null: zero state) plus, when
// `intra`, the causal intra-chunk part A V. O and S_prev are [len][ldv] / [dk][ldv]; c0, c1
// are multiples of the vector width (columns never mix: any split gives the same bits).
template <class T>
void chunk_output(const chunk_tile<T>& c, const chunk_factors<T>& f, const T* A, index_t lda, const T* S_prev, T* O,
                  index_t c0, index_t c1, bool intra) {
    const index_t L = c.len, lanes = c1 - c0;
    if (S_prev) {
        const T* qg = f.qg ? f.qg : c.q;
        panel_gemm<tile_update::overwrite>(L, c.dk, lanes, qg, f.qg ? c.ldk : c.ldq, 1, S_prev + c0, c.ldv, O + c0,
                                           c.ldv);
        if (f.row_scale)
            for (index_t t = 0; t < L; ++t) simd::scale(f.row_scale[t], O + t * c.ldv + c0, std::size_t(lanes));
    } else {
        for (index_t t = 0; t < L; ++t) std::fill(O + t * c.ldv + c0, O + t * c.ldv + c1, T(0));
    }
    if (!intra) return;
    // A holds exact zeros above the diagonal; times an Inf or NaN value they would make NaN
    // in earlier tokens. Chunks whose values are not all finite take the triangle exactly.
    for (index_t t0 = 0; t0 < L; t0 += sub_chunk) {
        const index_t t1 = std::min(L, t0 + sub_chunk);
        if (f.finite_v) {
            panel_gemm<tile_update::accumulate>(t1 - t0, t1, lanes, A + t0 * lda, lda, 1, c.v + c0, c.ldv,
                                                O + t0 * c.ldv + c0, c.ldv);
            continue;
        }
        if (t0 > 0)
            panel_gemm<tile_update::accumulate>(t1 - t0, t0, lanes, A + t0 * lda, lda, 1, c.v + c0, c.ldv,
                                                O + t0 * c.ldv + c0, c.ldv);
        for (index_t t = t0; t < t1; ++t)
            for (index_t s = t0; s <= t; ++s)
                simd::axpy(A[t * lda + s], c.v + s * c.ldv + c0, O + t * c.ldv + c0, std::size_t(lanes));
    }
}

// Columns [c0, c1) of S = exp(b_L) * S + sum_s (k_s * exp(b_L - b_s)) v_s^T, in place: the
// decay scales the rows of S, then one accumulating product adds the chunk.
template <class T>
void chunk_advance(const chunk_tile<T>& c, const chunk_factors<T>& f, T* S, index_t c0, index_t c1) {
    const index_t lanes = c1 - c0;
    if (f.decay)
        for (index_t d = 0; d < c.dk; ++d)
            simd::scale(f.decay[d * f.decay_stride], S + d * c.ldv + c0, std::size_t(lanes));
    const T* kw = f.kg ? f.kg : c.k;
    panel_gemm<tile_update::accumulate>(c.dk, c.len, lanes, kw, 1, f.kg ? c.ldk : c.ldkr, c.v + c0, c.ldv, S + c0,
                                        c.ldv);
}

// S = S + dS, row by row (S and dS are [dk][ldv]): the bidirectional partial sums.
template <class T>
void state_add(T* S, const T* dS, index_t dk, index_t ldv) {
    constexpr index_t W = index_t(simd::width<T>);
    for (index_t i = 0; i < dk * ldv; i += W)
        simd::store_aligned(S + i, simd::load_aligned(S + i) + simd::load_aligned(dS + i));
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
