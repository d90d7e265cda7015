#pragma once
// The chunk-pipeline policy of the delta rule (DeltaNet, Gated DeltaNet, the per-channel
// gate of KDA). With cumulative log gates b_t inside a chunk of L tokens (none, one per
// token, or one per key channel) and the state S entering the chunk, the recurrence
//   S_t = S' + beta_t k_t (v_t - S'^T k_t)^T,  S' = diag(exp(g_t)) S_{t-1}
// unrolls to (WY / UT form, Yang et al. 2024):
//   M[t][s] = k_t^T diag(exp(b_t - b_s)) k_s          (s < t: gated K K^T)
//   T       = (I + diag(beta) strictly_lower(M))^-1 diag(beta)
//   U = T V,  W = T (exp(b) * K)                      state independent: in prepare
//   X = U - W S                                       the corrected values
//   O = (exp(b) * Q) S + mask(P) X,  P[t][s] = q_t^T diag(exp(b_t - b_s)) k_s (s <= t)
//   S <- diag(exp(b_L)) S + (exp(b_L - b) * K)^T X
// O and the advance are GLA's chunk products with X in place of V (chunkwise.hpp), and M
// is GLA's gate-stable score with k in place of q; only X = U - W S and the solve are new.
// X is column-local in S, so the value split applies as it is.
#include <algorithm>
#include <new>

#include "../core/abi.hpp"
#include "../core/scratch.hpp"
#include "chunk_pipeline.hpp"
#include "chunkwise.hpp"
#include "key_block.hpp"
#include "triangular.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// `Rows` is the operator's source of rows, as for gated_chunk_policy, plus
//   beta(unit, t0, len, T* dst)   the chunk's learning rates
template <class T, class Rows>
struct delta_chunk_policy : chunk_policy_base<T, Rows> {
    using base = chunk_policy_base<T, Rows>;
    using base::chunk, base::dk, base::gate, base::ldk, base::lda, base::ldv, base::rows;
    // A state-only pass (prepare without P, then X and the advance: two of the three state
    // products) is about half of a full one.
    double prefix_cost = 0.5;

    delta_chunk_policy(const Rows& r, index_t dk_, index_t dv_, index_t chunk_, gate_kind g)
        : base(r, dk_, dv_, chunk_, g) {}

    // What prepare leaves at the head of a chunk's buffer: the tile (its v is U, turned
    // into X = U - W S in place by the first state product), P, the gate factors and -W.
    struct header {
        chunk_tile<T> tile;
        const T* P = nullptr;
        chunk_factors<T> factors;
        const T* w_neg = nullptr;
        bool x_in_output = false;  // prepared with outputs: output forms X (else advance does)
    };
    static constexpr std::size_t header_size = base::template header_elements<header>();
    static const header& read_header(const chunk_ref<T>& r) { return base::template header_of<header>(r); }

    std::size_t prepared_size() const {
        return this->prepared_with(scratch_carver<T>::size_of(header_size, chunk * lda, chunk * lda, chunk * ldk,
                                                              chunk * ldk, chunk * ldk, lda, ldk, lda));
    }

    void prepare(const chunk_ref<T>& r, bool outputs) const {
        scratch_carver<T> cv(r.prepared);
        header h;
        h.tile = this->pack_rows(cv, r, header_size, outputs);
        chunk_tile<T>& c = h.tile;
        const index_t L = r.len;
        T* U = c.v;  // beta V, then U = T V, then X = U - W S
        T* P = cv.take(std::size_t(chunk * lda));
        T* M = cv.take(std::size_t(chunk * lda));
        T* qg = cv.take(std::size_t(chunk * ldk));
        T* kg = cv.take(std::size_t(chunk * ldk));
        T* w_neg = cv.take(std::size_t(chunk * ldk));
        T* row_scale = cv.take(std::size_t(lda));
        T* decay = cv.take(std::size_t(ldk));
        T* beta = cv.take(std::size_t(lda));
        rows.beta(r.unit, r.t0, L, beta);

        // Scores (qg / kg are their scratch): P = gated Q K^T, M = gated K K^T.
        if (outputs) chunk_scores(c, P, lda, qg, kg);
        chunk_tile<T> kk = c;
        kk.q = c.k;
        kk.ldq = c.ldkr;
        chunk_scores(kk, M, lda, qg, kg);
        for (index_t t = 1; t < L; ++t) simd::scale(-beta[t], M + t * lda, std::size_t(t));  // -beta_t M[t][s<t]
        h.P = P;
        h.factors = chunk_gate_factors(c, outputs, qg, kg, row_scale, decay);

        // Right-hand sides beta V (in place) and -beta exp(b) K, then the UT transform.
        for (index_t t = 0; t < L; ++t) {
            simd::scale(beta[t], U + t * ldv, std::size_t(ldv));
            T* w = w_neg + t * ldk;
            const T* kt = c.k + t * c.ldkr;
            if (gate == gate_kind::vector) {
                detail::scale_row_exp(w, kt, c.b + t * ldk, c.b_lo + t * ldk, static_cast<const T*>(nullptr),
                                      static_cast<const T*>(nullptr), ldk);
                simd::scale(-beta[t], w, std::size_t(ldk));
            } else {
                const T up = gate == gate_kind::scalar ? h.factors.row_scale[t] : T(1);
                simd::scaled_copy(-beta[t] * up, kt, w, std::size_t(ldk));
            }
        }
        unit_lower_solve(L, static_cast<const T*>(M), lda, U, ldv, ldv);
        unit_lower_solve(L, static_cast<const T*>(M), lda, w_neg, ldk, ldk);
        h.w_neg = w_neg;
        h.x_in_output = outputs;
        new (static_cast<void*>(r.prepared)) header(h);
    }

    // X[:, c0:c1) = U - W S: in place over U, once per chunk and column range.
    void correct_values(const header& h, const T* S, index_t c0, index_t c1) const {
        panel_gemm<tile_update::accumulate>(h.tile.len, dk, c1 - c0, h.w_neg, ldk, 1, S + c0, ldv, h.tile.v + c0, ldv);
    }
    void output(const chunk_ref<T>& r, const T* S, T* O, index_t c0, index_t c1) const {
        const header& h = read_header(r);
        correct_values(h, S, c0, c1);
        chunk_factors<T> f = h.factors;
        // Zeros above P's diagonal times a non-finite X would leak NaN into earlier tokens.
        f.finite_v = rows_finite(static_cast<const T*>(h.tile.v + c0), h.tile.len, ldv, c1 - c0, index_t(1));
        chunk_output(h.tile, f, h.P, lda, S, O, c0, c1, true);
    }
    void advance(const chunk_ref<T>& r, T* S, index_t c0, index_t c1) const {
        const header& h = read_header(r);
        if (!h.x_in_output) correct_values(h, S, c0, c1);
        chunk_advance(h.tile, h.factors, S, c0, c1);
    }
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
