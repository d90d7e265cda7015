#pragma once
// delta_rule (DeltaNet) and gated_delta_rule (Gated DeltaNet; per key channel: KDA):
//   S_t = (I - beta_t k_t k_t^T) diag(exp(g_t)) S_{t-1} + beta_t k_t v_t^T,  o_t = scale S_t^T q_t
// q, k [B,N,Hk,Dk], v and out [B,N,Hv,Dv], beta [B,N,Hv], g [B,N,Hv] or [B,N,Hv,Dk];
// states [B,Hv,Dk,Dv]. Two forms on the chunk pipeline: the WY / UT chunk products
// (kernels/delta_chunk.hpp) and the recurrence token by token (kernels/delta_recurrent.hpp);
// the decode steps are two passes over the state (S^T k, then the update and S^T q).
#include <cmath>
#include <cstddef>

#include "../contract/delta_rule.hpp"
#include "../core/abi.hpp"
#include "../kernels/chunk_pipeline.hpp"
#include "../kernels/delta_chunk.hpp"
#include "../kernels/delta_recurrent.hpp"
#include "../kernels/gated_rows.hpp"
#include "../kernels/host_tuning.hpp"
#include "../kernels/pack.hpp"
#include "../kernels/state_step.hpp"
#include "../simd/blas1.hpp"
#include "../simd/exp.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN

namespace detail {

// The gated rows (q, k, v, gates) plus each chunk's learning rates.
template <class T, class Args>
struct delta_rows : kernels::gated_rows<T, Args> {
    void beta(index_t u, index_t t0, index_t len, T* dst) const {
        const auto& args = this->a;
        const auto sq = args.problem.sequence(u / args.problem.hv);
        const index_t h = u % args.problem.hv;
        for (index_t t = 0; t < len; ++t) dst[t] = args.rate(T(args.beta(sq.batch, sq.begin + t0 + t, h)));
    }
};

// The sequence through the chunk pipeline, in the form the options ask for: the WY / UT
// chunk products, or the recurrence token by token (the automatic choice depends on the host
// and the state's size: kernels/host_tuning.hpp). The chunk length is the family's default
// (the sweep rows in bench/bench_delta_rule.cpp: within noise for 16-64).
template <class Args>
void delta_rule_run(const Args& a, const delta_options& opt) {
    using T = typename Args::compute_type;
    using rows_type = delta_rows<T, Args>;
    const auto& p = a.problem;
    const index_t chunk = opt.chunk_size > 0 ? opt.chunk_size : kernels::default_chunk_size(p.dk);
    const auto gate = !a.gated        ? kernels::gate_kind::none
                      : a.vector_gate ? kernels::gate_kind::vector
                                      : kernels::gate_kind::scalar;
    const double eps = a.l2norm ? l2norm_eps : -1.0;
    const auto units = kernels::chunk_units::per_head(p);
    // Snapshots closer than a chunk cut every chunk short (draft verification: one per token),
    // and the chunk products of a few tokens lose to the recurrence on every host.
    const bool short_chunks = opt.snapshot_interval > 0 && opt.snapshot_interval < chunk;
    const bool recurrent = opt.form == delta_form::recurrent ||
                           (opt.form == delta_form::automatic &&
                            (short_chunks || kernels::delta_recurrence_pays(std::size_t(p.dk * p.dv) * sizeof(T))));
    if (recurrent) {
        const rows_type rows{{a, chunk, T(p.scale), gate, eps, false}};
        kernels::chunk_pipeline(kernels::delta_recurrent_policy<T, rows_type>(rows, p.dk, p.dv, chunk, gate), units,
                                opt.num_threads);
    } else {
        const rows_type rows{{a, chunk, T(p.scale), gate, eps, true}};
        kernels::chunk_pipeline(kernels::delta_chunk_policy<T, rows_type>(rows, p.dk, p.dv, chunk, gate), units,
                                opt.num_threads);
    }
}

// The decode step: the prediction S'^T k from the decayed state S' = diag(exp(g)) S is
// S^T (exp(g) * k), read in a first pass; the corrected value beta (v - S'^T k) then goes
// through the fused decay + rank-1 update + output pass every matrix-state step uses.
template <class Args, class S>
void delta_rule_steps(const Args& s, const tensor_view<S, 4>& state, const delta_step_options& opt) {
    using T = typename Args::compute_type;
    const T scale = T(s.scale);
    kernels::step_rows<T>(
        state, opt.state_indices, s.batch, opt.num_threads,
        [&](index_t b, index_t h, kernels::step_vectors<T, S>& r) {
            kernels::pack_step_rows(s, b, h, r);
            if (opt.qk_l2norm) {
                kernels::l2_normalize(r.q, s.dk, l2norm_eps);
                kernels::l2_normalize(r.k, s.dk, l2norm_eps);
            }
            if constexpr (!Args::gated) r.decay[0] = T(1);
            else kernels::step_decay(s.g, b, h, s.dk, r, s.project);
            for (index_t d = 0; d < s.dk; ++d) r.work[d] = r.decay[d * r.decay_stride] * r.k[d];
            kernels::state_transpose_times(r.S, r.lds, r.lcs, s.dk, s.dv, static_cast<const T*>(r.work), r.o);
            simd::axpy(T(-1), static_cast<const T*>(r.o), r.v, std::size_t(s.dv));
            simd::scale(s.rate(T(s.beta(b, h))), r.v, std::size_t(s.dv));
        },
        [&](index_t b, index_t h, const kernels::step_vectors<T, S>& r) {
            kernels::emit_row(r.o, scale, s.out.ptr(b, h), s.out.stride(2), s.dv);
        });
}

}  // namespace detail

// DeltaNet. beta [B,N,Hv] in [0, 2].
template <class QV, class KV, class VV, class BV, class OV,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void delta_rule(const QV& q, const KV& k, const VV& v, const BV& beta, const OV& out, const delta_options& opt = {},
                const SIV& initial_state = {}, const SOV& final_state = {}) {
    const executor_scope threads_of_call(opt.executor);
    detail::delta_rule_run(
        detail::prepare_delta(q, k, v, nullptr, beta, out, opt, initial_state, final_state, "delta_rule"), opt);
}

// Gated DeltaNet: g [B,N,Hv] log decays (one per head), or [B,N,Hv,Dk] (per key channel, KDA).
template <class QV, class KV, class VV, class GV, class BV, class OV,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void gated_delta_rule(const QV& q, const KV& k, const VV& v, const GV& g, const BV& beta, const OV& out,
                      const delta_options& opt = {}, const SIV& initial_state = {}, const SOV& final_state = {}) {
    const executor_scope threads_of_call(opt.executor);
    detail::delta_rule_run(
        detail::prepare_delta(q, k, v, g, beta, out, opt, initial_state, final_state, "gated_delta_rule"), opt);
}

// One token per batch row: q, k [B,Hk,Dk], v and out [B,Hv,Dv], beta [B,Hv]; state
// [slots,Hv,Dk,Dv] updated in place (row b uses slot state_indices[b], or b).
template <class QV, class KV, class VV, class BV, class OV, class S>
void delta_rule_step(const QV& q, const KV& k, const VV& v, const BV& beta, const OV& out,
                     const tensor_view<S, 4>& state, const delta_step_options& opt = {}) {
    const executor_scope threads_of_call(opt.executor);
    detail::delta_rule_steps(detail::prepare_delta_step(q, k, v, nullptr, beta, out, state, opt, "delta_rule_step"),
                             state, opt);
}

// g [B,Hv] (Gated DeltaNet) or [B,Hv,Dk] (KDA).
template <class QV, class KV, class VV, class GV, class BV, class OV, class S>
void gated_delta_rule_step(const QV& q, const KV& k, const VV& v, const GV& g, const BV& beta, const OV& out,
                           const tensor_view<S, 4>& state, const delta_step_options& opt = {}) {
    const executor_scope threads_of_call(opt.executor);
    detail::delta_rule_steps(detail::prepare_delta_step(q, k, v, g, beta, out, state, opt, "gated_delta_rule_step"),
                             state, opt);
}

SEQMIX_ABI_END
}  // namespace seqmix
