#pragma once
// The rows of the gated recurrences (GLA, the delta rule) for the chunk policies: q and k
// (read in place when they allow it, else packed, optionally l2-normalized per head), v,
// and the cumulative log gates as compensated sums (per key channel, one per token, or
// none); outputs emitted with the scale; states in the [seqs, H, dk, dv] layout.
//
// Args: recurrent_args plus g4 ([B,N,H,Dk] gate), g3 ([B,N,H] gate) and vector_gate. Every
// view may be stored as bf16 / fp16 (T float): rows convert as they pack, outputs and states
// round once as they are written.
#include <algorithm>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"
#include "chunkwise.hpp"
#include "pack.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

template <class T, class Args>
struct gated_rows {
    const Args& a;
    index_t chunk = 0;
    T scale;
    gate_kind gate{};        // the gate of a: vector (g4), scalar (g3) or none
    double l2norm_eps = -1;  // >= 0: q and k divided by sqrt(sum x^2 + l2norm_eps)
    bool cumulative = true;  // false: each token's own log gate in b (b_lo unused)

    bool normalizes() const { return l2norm_eps >= 0; }

    // q and k rows straight from the user's tensors when they allow it.
    bool in_place_qk(index_t u, index_t t0, const T*& q, index_t& ldq, const T*& k, index_t& ldk) const {
        return !normalizes() && a.qk_rows(u, t0, index_t(simd::width<T>), q, ldq, k, ldk);
    }
    void pack(index_t u, index_t t0, const chunk_tile<T>& c, T* q_buf, T* k_buf, bool with_q) const {
        const auto& p = a.problem;
        const auto sq = p.sequence(u / p.hv);
        const index_t h = u % p.hv, hk = h / p.group;
        for (index_t t = 0; t < c.len; ++t) {
            const index_t n = sq.begin + t0 + t;
            if (t0 + t + chunk < sq.len) {  // rows of the next chunk: one head's rows are strided
                const index_t nn = n + chunk;
                if (with_q) prefetch_row(a.q.ptr(sq.batch, nn, hk), a.q.stride(3), p.dk);
                prefetch_row(a.k.ptr(sq.batch, nn, hk), a.k.stride(3), p.dk);
                prefetch_row(a.v.ptr(sq.batch, nn, h), a.v.stride(3), p.dv);
                if (gate == gate_kind::vector) prefetch_row(a.g4.ptr(sq.batch, nn, h), a.g4.stride(3), p.dk);
            }
            if (with_q && q_buf) {
                pack_row(a.q.ptr(sq.batch, n, hk), a.q.stride(3), p.dk, q_buf + t * c.ldk, c.ldk);
                if (normalizes()) l2_normalize(q_buf + t * c.ldk, p.dk, l2norm_eps);
            }
            if (k_buf) {
                pack_row(a.k.ptr(sq.batch, n, hk), a.k.stride(3), p.dk, k_buf + t * c.ldk, c.ldk);
                if (normalizes()) l2_normalize(k_buf + t * c.ldk, p.dk, l2norm_eps);
            }
            pack_row(a.v.ptr(sq.batch, n, h), a.v.stride(3), p.dv, c.v + t * c.ldv, c.ldv);
            if (gate == gate_kind::vector) {
                T* hi = c.b + t * c.ldk;
                T* lo = c.b_lo + t * c.ldk;
                pack_row(a.g4.ptr(sq.batch, n, h), a.g4.stride(3), p.dk, hi, c.ldk);
                if (cumulative)
                    cumulative_gate_row(static_cast<const T*>(hi), t > 0 ? hi - c.ldk : nullptr,
                                        t > 0 ? lo - c.ldk : nullptr, hi, lo, c.ldk);
            } else if (gate == gate_kind::scalar) {
                const T g = a.project(T(a.g3(sq.batch, n, h)), h);  // the log gate (projected with A_log)
                if (cumulative) cumulative_gate(g, t, c.b, c.b_lo);
                else c.b[t] = g;
            }
        }
    }
    void emit(index_t u, index_t t0, index_t len, const T* O, index_t ldv, index_t c0, index_t c1) const {
        const auto& p = a.problem;
        const auto sq = p.sequence(u / p.hv);
        const index_t h = u % p.hv;
        if (c0 >= c1) return;
        for (index_t t = 0; t < len; ++t)
            emit_row(O + t * ldv + c0, scale, a.out.ptr(sq.batch, sq.begin + t0 + t, h, c0), a.out.stride(3), c1 - c0);
    }
    void load_state(index_t u, T* S, index_t ldv) const {
        const auto& p = a.problem;
        const index_t s = u / p.hv;
        load_state_rows(seqmix::detail::initial_of(a, p, s), p.state_slot(s), u % p.hv, p.dk, p.dv, S, ldv);
    }
    void store_state(index_t u, const T* S, index_t ldv) const {
        const auto& p = a.problem;
        const index_t s = u / p.hv;
        store_state_rows(S, ldv, p.dk, 0, p.dv, seqmix::detail::final_of(a, p, s), p.state_slot(s), u % p.hv);
    }
    void store_snapshot(index_t u, index_t k, const T* S, index_t ldv, index_t c0, index_t c1) const {
        const auto& p = a.problem;
        const index_t slot = p.snapshot_slot(u / p.hv, k);
        if (slot >= 0) store_state_rows(S, ldv, p.dk, c0, std::min(c1, p.dv), a.final_state, slot, u % p.hv, true);
    }
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
