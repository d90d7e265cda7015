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
#include "../kernels/gated_rows.hpp"
#include "../kernels/pack.hpp"
#include "../kernels/state_step.hpp"
#include "../simd/blas1.hpp"
#include "../simd/exp.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN

template <class QV, class KV, class VV, class GV, class OV,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void gated_linear_attention(const QV& q, const KV& k, const VV& v, const GV& g, const OV& out,
                            const gla_options& opt = {}, const SIV& initial_state = {}, const SOV& final_state = {}) {
    const executor_scope threads_of_call(opt.executor);
    const auto a = detail::prepare_gla(q, k, v, g, out, opt, initial_state, final_state, "gated_linear_attention");
    using Args = std::remove_const_t<decltype(a)>;
    using T = typename Args::compute_type;
    const auto& p = a.problem;
    const index_t chunk = opt.chunk_size > 0 ? opt.chunk_size : kernels::default_chunk_size(p.dk);
    const auto gate = a.vector_gate ? kernels::gate_kind::vector : kernels::gate_kind::scalar;
    using rows_type = kernels::gated_rows<T, Args>;
    const rows_type rows{a, chunk, T(p.scale), gate};
    const kernels::gated_chunk_policy<T, rows_type> policy(rows, p.dk, p.dv, chunk, gate, true, true);
    kernels::chunk_pipeline(policy, kernels::chunk_units::per_head(p), opt.num_threads);
}

// One token per batch row: q, k [B,Hk,Dk], v and out [B,Hv,Dv], g [B,Hv,Dk] or [B,Hv];
// state [slots,Hv,Dk,Dv] updated in place (row b uses slot state_indices[b], or b).
template <class QV, class KV, class VV, class GV, class OV, class S>
void gated_linear_attention_step(const QV& q, const KV& k, const VV& v, const GV& g, const OV& out,
                                 const tensor_view<S, 4>& state, const gla_step_options& opt = {}) {
    const executor_scope threads_of_call(opt.executor);
    const char* op = "gated_linear_attention_step";
    const auto s = detail::prepare_gla_step(q, k, v, g, out, state, opt, op);
    using T = typename std::remove_const_t<decltype(s)>::compute_type;
    const T scale = T(s.scale);
    kernels::step_rows<T>(
        state, opt.state_indices, s.batch, opt.num_threads,
        [&](index_t b, index_t h, kernels::step_vectors<T, S>& r) {
            kernels::pack_step_rows(s, b, h, r);
            kernels::step_decay(s.g, b, h, s.dk, r, s.project);
        },
        [&](index_t b, index_t h, const kernels::step_vectors<T, S>& r) {
            kernels::emit_row(r.o, scale, s.out.ptr(b, h), s.out.stride(2), s.dv);
        });
}

SEQMIX_ABI_END
}  // namespace seqmix
