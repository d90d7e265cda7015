#pragma once
// gated_linear_attention: S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, o_t = scale S_t^T q_t,
// with a per-channel gate g [B,N,H,Dk] (GLA) or a scalar gate g [B,N,H] (simple GLA,
// RetNet with data-dependent decay, the Mamba-2 form). Chunkwise-parallel: the scalar gate
// makes the intra-chunk decay an outer difference exp(b_t - b_s) (the faster path); the
// vector gate uses the GLA secondary chunking in kernels/chunkwise.hpp, stable for any gates.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/abi.hpp"
#include "../contract/gated_linear_attention.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../kernels/chunk_pipeline.hpp"
#include "../kernels/pack.hpp"
#include "../kernels/state_step.hpp"
#include "../simd/blas1.hpp"
#include "../simd/exp.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN

namespace detail {

// Rows of gated linear attention for the chunk pipeline: q, k, v and the cumulative gates
// (per key channel, or one per token) as compensated sums.
template <class T>
struct gla_rows {
    const gla_args<T>& a;
    index_t chunk;
    T scale;

    // q and k rows straight from the user's tensors when they allow it.
    bool in_place_qk(index_t u, index_t t0, const T*& q, index_t& ldq, const T*& k, index_t& ldk) const {
        return a.qk_rows(u, t0, index_t(simd::width<T>), q, ldq, k, ldk);
    }
    void pack(index_t u, index_t t0, const kernels::chunk_tile<T>& c, T* q_buf, T* k_buf, bool with_q) const {
        const auto& p = a.problem;
        const auto sq = p.sequence(u / p.hv);
        const index_t h = u % p.hv, hk = h / p.group;
        for (index_t t = 0; t < c.len; ++t) {
            const index_t n = sq.begin + t0 + t;
            if (t0 + t + chunk < sq.len) {  // rows of the next chunk: one head's rows are strided
                const index_t nn = n + chunk;
                if (with_q) kernels::prefetch_row(a.q.ptr(sq.batch, nn, hk), a.q.stride(3), p.dk);
                kernels::prefetch_row(a.k.ptr(sq.batch, nn, hk), a.k.stride(3), p.dk);
                kernels::prefetch_row(a.v.ptr(sq.batch, nn, h), a.v.stride(3), p.dv);
                if (a.vector_gate) kernels::prefetch_row(a.g4.ptr(sq.batch, nn, h), a.g4.stride(3), p.dk);
            }
            if (with_q && q_buf) kernels::pack_row(a.q.ptr(sq.batch, n, hk), a.q.stride(3), p.dk, q_buf + t * c.ldk, c.ldk);
            if (k_buf) kernels::pack_row(a.k.ptr(sq.batch, n, hk), a.k.stride(3), p.dk, k_buf + t * c.ldk, c.ldk);
            kernels::pack_row(a.v.ptr(sq.batch, n, h), a.v.stride(3), p.dv, c.v + t * c.ldv, c.ldv);
            if (a.vector_gate) {
                T* hi = c.b + t * c.ldk;
                T* lo = c.b_lo + t * c.ldk;
                kernels::pack_row(a.g4.ptr(sq.batch, n, h), a.g4.stride(3), p.dk, hi, c.ldk);
                kernels::cumulative_gate_row(static_cast<const T*>(hi), t > 0 ? hi - c.ldk : nullptr,
                                             t > 0 ? lo - c.ldk : nullptr, hi, lo, c.ldk);
            } else {
                kernels::cumulative_gate(a.g3(sq.batch, n, h), t, c.b, c.b_lo);
            }
        }
    }
    void emit(index_t u, index_t t0, index_t len, const T* O, index_t ldv, index_t c0, index_t c1) const {
        const auto& p = a.problem;
        const auto sq = p.sequence(u / p.hv);
        const index_t h = u % p.hv;
        if (c0 >= c1) return;
        for (index_t t = 0; t < len; ++t)
            kernels::emit_row(O + t * ldv + c0, scale, a.out.ptr(sq.batch, sq.begin + t0 + t, h, c0), a.out.stride(3),
                              c1 - c0);
    }
    void load_state(index_t u, T* S, index_t ldv) const {
        kernels::load_state_rows(a.initial_state, u / a.problem.hv, u % a.problem.hv, a.problem.dk, a.problem.dv, S, ldv);
    }
    void store_state(index_t u, const T* S, index_t ldv) const {
        kernels::store_state_rows(S, ldv, a.problem.dk, a.problem.dv, a.final_state, u / a.problem.hv, u % a.problem.hv);
    }
};

}  // namespace detail

template <class QV, class KV, class VV, class GV, class OV>
void gated_linear_attention(const QV& q, const KV& k, const VV& v, const GV& g, const OV& out,
                            const gla_options& opt = {},
                            tensor_view<const typename OV::value_type, 4> initial_state = {},
                            tensor_view<typename OV::value_type, 4> final_state = {}) {
    using T = typename OV::value_type;
    const auto a = detail::prepare_gla(q, k, v, g, out, opt, initial_state, final_state, "gated_linear_attention");
    const auto& p = a.problem;
    const index_t chunk = opt.chunk_size > 0 ? opt.chunk_size : kernels::default_chunk_size(p.dk);
    const detail::gla_rows<T> rows{a, chunk, T(p.scale)};
    const kernels::gated_chunk_policy<T, detail::gla_rows<T>> policy(
        rows, p.dk, p.dv, chunk, a.vector_gate ? kernels::gate_kind::vector : kernels::gate_kind::scalar, true, true);
    kernels::chunk_pipeline(policy, kernels::chunk_units::per_head(p), opt.num_threads);
}

// One token per batch row: q, k [B,Hk,Dk], v and out [B,Hv,Dv], g [B,Hv,Dk] or [B,Hv];
// state [slots,Hv,Dk,Dv] updated in place (row b uses slot state_indices[b], or b).
template <class QV, class KV, class VV, class GV, class OV>
void gated_linear_attention_step(const QV& q, const KV& k, const VV& v, const GV& g, const OV& out,
                                 tensor_view<typename OV::value_type, 4> state, const gla_step_options& opt = {}) {
    using T = typename OV::value_type;
    const char* op = "gated_linear_attention_step";
    constexpr std::size_t RG = GV::rank;
    const auto s = detail::prepare_gla_step(q, k, v, g, out, state, opt, op);
    const auto& gv = s.g;
    const T scale = T(s.scale);
    kernels::step_rows(
        state, opt.state_indices, s.batch, opt.num_threads,
        [&](index_t b, index_t h, kernels::step_vectors<T>& r) {
            const index_t hk = h / (s.hv / s.hk);
            kernels::pack_row(s.q.ptr(b, hk), s.q.stride(2), s.dk, r.q, s.dk);
            kernels::pack_row(s.k.ptr(b, hk), s.k.stride(2), s.dk, r.k, s.dk);
            kernels::pack_row(s.v.ptr(b, h), s.v.stride(2), s.dv, r.v, s.dv);
            if constexpr (RG == 3) {
                kernels::pack_row(gv.ptr(b, h), gv.stride(2), s.dk, r.decay, s.dk);
                simd::exp_inplace(r.decay, std::size_t(s.dk));  // one vector exp per W channels
                r.decay_stride = 1;
            } else {
                r.decay[0] = std::exp(gv(b, h));
            }
        },
        [&](index_t b, index_t h, const kernels::step_vectors<T>& r) {
            kernels::emit_row(r.o, scale, s.out.ptr(b, h), s.out.stride(2), s.dv);
        });
}

SEQMIX_ABI_END
}  // namespace seqmix
