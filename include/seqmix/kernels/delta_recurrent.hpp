#pragma once
// The delta rule token by token, as a chunk-pipeline policy with a fused pass. For small
// head dims the state of one head stays in L1/L2, and the recurrence itself costs three
// FMAs per state element and token (update, output, the next token's prediction) against
// the WY / UT form's chunk products, which do about twice the recurrent FLOPs plus the
// scores and the solve. Each state row is loaded and stored once per token:
//   for each row d:  s = S[d] * exp(g_td) + k_td u_t        (u_t = beta_t (v_t - p_t))
//                    o_t += q_td s,   p_{t+1} += exp(g_{t+1,d}) k_{t+1,d} s
// Columns of S never mix, so the pipeline's value split applies as it is, and the bits do
// not depend on how the columns are split.
#include <algorithm>
#include <new>

#include "../core/abi.hpp"
#include "../core/scratch.hpp"
#include "../simd/exp.hpp"
#include "../simd/vec.hpp"
#include "chunk_pipeline.hpp"
#include "chunkwise.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

namespace detail {
// NV vectors of columns through the chunk's tokens. Rows: q, k (row strides ldq, ldkr);
// kd the decayed keys exp(g_t) k_t (row stride ldkd); v [L][ldv]; decay [L][ldk] (vector
// gate), [L] (scalar) or none.
template <class T, int NV, gate_kind G>
inline void delta_token_loop(index_t L, index_t dk, index_t ldk, index_t ldv, const T* q, index_t ldq, const T* k,
                             index_t ldkr, const T* kd, index_t ldkd, const T* v, const T* beta, const T* decay, T* S,
                             T* O, bool outputs) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    V p[NV];
    for (int j = 0; j < NV; ++j) p[j] = V(T(0));
    for (index_t d = 0; d < dk; ++d) {
        const V kd0(kd[d]);
        for (int j = 0; j < NV; ++j) p[j] = simd::fma(kd0, simd::load_aligned(S + d * ldv + j * W), p[j]);
    }
    for (index_t t = 0; t < L; ++t) {
        V u[NV], o[NV], next[NV];
        const V b(beta[t]);
        for (int j = 0; j < NV; ++j) {
            u[j] = b * (simd::load_aligned(v + t * ldv + j * W) - p[j]);
            o[j] = V(T(0));
            next[j] = V(T(0));
        }
        const T* qt = q + t * ldq;
        const T* kt = k + t * ldkr;
        const T* kn = kd + (t + 1 < L ? t + 1 : t) * ldkd;  // the last token's is not used
        for (index_t d = 0; d < dk; ++d) {
            T* row = S + d * ldv;
            const V kk(kt[d]), qq(qt[d]), nn(kn[d]);
            V dec(T(1));
            if constexpr (G == gate_kind::vector) dec = V(decay[t * ldk + d]);
            if constexpr (G == gate_kind::scalar) dec = V(decay[t]);
            for (int j = 0; j < NV; ++j) {
                V s = simd::load_aligned(row + j * W);
                if constexpr (G != gate_kind::none) s = s * dec;
                s = simd::fma(kk, u[j], s);
                simd::store_aligned(row + j * W, s);
                if (outputs) o[j] = simd::fma(qq, s, o[j]);
                next[j] = simd::fma(nn, s, next[j]);
            }
        }
        for (int j = 0; j < NV; ++j) {
            if (outputs) simd::store_aligned(O + t * ldv + j * W, o[j]);
            p[j] = next[j];
        }
    }
}
}  // namespace detail

// Rows: as for delta_chunk_policy (gated_rows plus beta), with each token's own gate in b
// (gated_rows::cumulative = false).
template <class T, class Rows>
struct delta_recurrent_policy : chunk_policy_base<T, Rows> {
    using base = chunk_policy_base<T, Rows>;
    using base::chunk, base::dk, base::gate, base::ldk, base::lda, base::ldv, base::rows;
    double prefix_cost = 0.7;  // a state-only pass skips only the output FMAs

    delta_recurrent_policy(const Rows& r, index_t dk_, index_t dv_, index_t chunk_, gate_kind g)
        : base(r, dk_, dv_, chunk_, g) {}

    struct header {
        chunk_tile<T> tile;
        const T *kd = nullptr, *beta = nullptr;  // decayed keys (the keys themselves without a gate), rates
        index_t ldkd = 0;
    };
    static constexpr std::size_t header_size = base::template header_elements<header>();
    static const header& read_header(const chunk_ref<T>& r) { return base::template header_of<header>(r); }

    std::size_t prepared_size() const {
        return this->prepared_with(scratch_carver<T>::size_of(header_size, chunk * ldk, lda));
    }

    void prepare(const chunk_ref<T>& r, bool outputs) const {
        scratch_carver<T> cv(r.prepared);
        header h;
        h.tile = this->pack_rows(cv, r, header_size, outputs);
        chunk_tile<T>& c = h.tile;
        const index_t L = r.len;
        T* kd = cv.take(std::size_t(chunk * ldk));
        T* beta = cv.take(std::size_t(lda));
        rows.beta(r.unit, r.t0, L, beta);
        // The rows give each token's own gate in b (Rows::cumulative is false for this
        // policy): exp'd there in place into the decays, then the decayed keys exp(g_t) k_t
        // of the predictions. Without a gate the keys are the decayed keys.
        constexpr index_t W = index_t(simd::width<T>);
        h.kd = kd;
        h.ldkd = ldk;
        if (gate == gate_kind::vector) {
            simd::exp_inplace(c.b, std::size_t(L * ldk));
            for (index_t t = 0; t < L; ++t)
                for (index_t d = 0; d < ldk; d += W)
                    simd::store_aligned(kd + t * ldk + d,
                                        simd::load_aligned(c.b + t * ldk + d) * simd::load(c.k + t * c.ldkr + d));
        } else if (gate == gate_kind::scalar) {
            simd::exp_inplace(c.b, std::size_t(L));
            for (index_t t = 0; t < L; ++t) simd::scaled_copy(c.b[t], c.k + t * c.ldkr, kd + t * ldk, std::size_t(ldk));
        } else {
            h.kd = c.k;
            h.ldkd = c.ldkr;
        }
        h.beta = beta;
        new (static_cast<void*>(r.prepared)) header(h);
    }

    // Column panels of four vectors, then two, then one (a value-split block may be narrow):
    // the widest that fits keeps the most state in flight per broadcast row scalar. Every
    // lane computes the same operations in any panel, so the split never changes the bits.
    template <gate_kind G, int NV>
    index_t run_panels(const header& h, T* S, T* O, index_t e, index_t c1, bool outputs) const {
        constexpr index_t W = index_t(simd::width<T>);
        const chunk_tile<T>& c = h.tile;
        for (; e + NV * W <= c1; e += NV * W)
            detail::delta_token_loop<T, NV, G>(c.len, dk, ldk, ldv, c.q, c.ldq, c.k, c.ldkr, h.kd, h.ldkd, c.v + e,
                                               h.beta, c.b, S + e, O + e, outputs);
        return e;
    }
    template <gate_kind G>
    void run(const header& h, T* S, T* O, index_t c0, index_t c1, bool outputs) const {
        index_t e = c0;
        if constexpr (simd::register_count >= 32) e = run_panels<G, 4>(h, S, O, e, c1, outputs);
        e = run_panels<G, 2>(h, S, O, e, c1, outputs);
        run_panels<G, 1>(h, S, O, e, c1, outputs);
    }
    void pass(const chunk_ref<T>& r, T* S, T* O, index_t c0, index_t c1, bool outputs) const {
        const header& h = read_header(r);
        if (gate == gate_kind::vector) run<gate_kind::vector>(h, S, O, c0, c1, outputs);
        else if (gate == gate_kind::scalar) run<gate_kind::scalar>(h, S, O, c0, c1, outputs);
        else run<gate_kind::none>(h, S, O, c0, c1, outputs);
    }
    void fused_pass(const chunk_ref<T>& r, T* S, T* O, index_t c0, index_t c1) const {
        pass(r, S, O, c0, c1, true);
        this->emit(r, O, c0, c1);
    }
    void advance(const chunk_ref<T>& r, T* S, index_t c0, index_t c1) const { pass(r, S, nullptr, c0, c1, false); }
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
