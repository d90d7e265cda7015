#pragma once
// linear_attention: S_t = exp(log_decay) S_{t-1} + phi(k_t) v_t^T, o_t = scale S_t^T phi(q_t)
// (or normalized by z_t . phi(q_t) + eps), computed chunkwise as in Lightning attention:
// exact masked attention inside a chunk, the state passed between chunks. The normalizer
// rides along as one more value column of ones, so it needs no separate machinery; states
// then have Dv + 1 columns, the last one being z.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/abi.hpp"
#include "../contract/linear_attention.hpp"
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

// phi(x) for one row of d inputs (stride sx, stored as S) into out (feature_dim values), in T.
template <class S, class T>
void feature_row(seqmix::feature_map f, const S* x_in, index_t sx, index_t d, T* out) {
    const T* x = out;
    if constexpr (std::is_same_v<S, T>)
        if (sx == 1) x = x_in;
    if (x == out) kernels::pack_row(x_in, sx, d, out, d);  // gather (convert) once; the maps run on contiguous floats
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    auto map = [&](auto fn) {
        index_t i = 0;
        for (; i + W <= d; i += W) simd::store(out + i, fn(simd::load(x + i)));
        if (i < d) simd::store_partial(out + i, fn(simd::load_partial(x + i, std::size_t(d - i))), std::size_t(d - i));
    };
    switch (f) {
        case seqmix::feature_map::identity:
            if (x != out) kernels::pack_row(x, 1, d, out, d);
            break;
        case seqmix::feature_map::relu: map([](V v) { return simd::max(v, V(T(0))); }); break;
        case seqmix::feature_map::elu_plus_one:
            map([](V v) { return simd::select(v > V(T(0)), v + V(T(1)), simd::exp(v)); });
            break;
        case seqmix::feature_map::taylor2: {
            // Based: [1, x, x (x) x / sqrt 2], so phi(q) . phi(k) = 1 + q.k + (q.k)^2 / 2.
            // Written back to front so that x may alias out.
            const T r = T(1) / std::sqrt(T(2));
            for (index_t i = d; i-- > 0;) simd::scaled_copy(x[i] * r, x, out + 1 + d + i * d, std::size_t(d));
            for (index_t i = d; i-- > 0;) out[1 + i] = x[i];
            out[0] = T(1);
            break;
        }
    }
}

}  // namespace detail

namespace detail {

// Rows of linear attention for the chunk pipeline: phi(q), phi(k), v (plus a column of
// ones for the normalizer) and the constant per-head decay as a cumulative gate.
template <class T, class Args>
struct linear_attention_rows {
    const Args& a;
    const linear_attention_options& opt;
    index_t chunk, dv_state;
    T scale, eps;

    // q and k rows straight from the user's tensors: the identity map only (others compute
    // phi into the packed tile).
    bool in_place_qk(index_t u, index_t t0, const T*& q, index_t& ldq, const T*& k, index_t& ldk) const {
        return opt.feature_map == feature_map::identity && a.qk_rows(u, t0, index_t(simd::width<T>), q, ldq, k, ldk);
    }
    void pack(index_t u, index_t t0, const kernels::chunk_tile<T>& c, T* q_buf, T* k_buf, bool with_q) const {
        const auto& p = a.problem;
        const auto sq = p.sequence(u / p.hv);
        const index_t h = u % p.hv, hk = h / p.group;
        const T lambda = opt.log_decay ? T(opt.log_decay[h]) : T(0);
        for (index_t t = 0; t < c.len; ++t) {
            const index_t n = sq.begin + t0 + t;
            if (t0 + t + chunk < sq.len) {  // rows of the next chunk: one head's rows are strided
                const index_t nn = n + chunk;
                if (with_q) kernels::prefetch_row(a.q.ptr(sq.batch, nn, hk), a.q.stride(3), p.dk_in);
                kernels::prefetch_row(a.k.ptr(sq.batch, nn, hk), a.k.stride(3), p.dk_in);
                kernels::prefetch_row(a.v.ptr(sq.batch, nn, h), a.v.stride(3), p.dv);
            }
            if (with_q && q_buf) {
                T* qr = q_buf + t * c.ldk;
                feature_row(opt.feature_map, a.q.ptr(sq.batch, n, hk), a.q.stride(3), p.dk_in, qr);
                std::fill(qr + p.dk, qr + c.ldk, T(0));
            }
            if (k_buf) {
                T* kr = k_buf + t * c.ldk;
                feature_row(opt.feature_map, a.k.ptr(sq.batch, n, hk), a.k.stride(3), p.dk_in, kr);
                std::fill(kr + p.dk, kr + c.ldk, T(0));
            }
            T* vr = c.v + t * c.ldv;
            kernels::pack_row(a.v.ptr(sq.batch, n, h), a.v.stride(3), p.dv, vr, c.ldv);
            if (opt.normalize) vr[p.dv] = T(1);
            if (opt.log_decay) kernels::cumulative_gate(lambda, t, c.b, c.b_lo);  // constant decay, as a gate
        }
    }
    void emit(index_t u, index_t t0, index_t len, const T* O, index_t ldv, index_t c0, index_t c1) const {
        const auto& p = a.problem;
        const auto sq = p.sequence(u / p.hv);
        const index_t h = u % p.hv;
        const index_t e1 = std::min(c1, p.dv);  // the normalizer column is not an output
        if (c0 >= e1) return;
        for (index_t t = 0; t < len; ++t) {
            const T* row = O + t * ldv;
            const T mul = opt.normalize ? T(1) / (row[p.dv] + eps) : scale;
            kernels::emit_row(row + c0, mul, a.out.ptr(sq.batch, sq.begin + t0 + t, h, c0), a.out.stride(3), e1 - c0);
        }
    }
    void load_state(index_t u, T* S, index_t ldv) const {
        const auto& p = a.problem;
        const index_t s = u / p.hv;
        kernels::load_state_rows(initial_of(a, p, s), p.state_slot(s), u % p.hv, p.dk, dv_state, S, ldv);
    }
    void store_state(index_t u, const T* S, index_t ldv) const {
        const auto& p = a.problem;
        const index_t s = u / p.hv;
        kernels::store_state_rows(S, ldv, p.dk, 0, dv_state, final_of(a, p, s), p.state_slot(s), u % p.hv);
    }
    void store_snapshot(index_t u, index_t k, const T* S, index_t ldv, index_t c0, index_t c1) const {
        const auto& p = a.problem;
        const index_t slot = p.snapshot_slot(u / p.hv, k);
        if (slot >= 0)
            kernels::store_state_rows(S, ldv, p.dk, c0, std::min(c1, dv_state), a.final_state, slot, u % p.hv, true);
    }
};

}  // namespace detail

template <class QV, class KV, class VV, class OV,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void linear_attention(const QV& q, const KV& k, const VV& v, const OV& out, const linear_attention_options& opt = {},
                      const SIV& initial_state = {}, const SOV& final_state = {}) {
    const executor_scope threads_of_call(opt.executor);
    const auto a = detail::prepare_linear_attention(q, k, v, out, opt, initial_state, final_state, "linear_attention");
    using Args = std::remove_const_t<decltype(a)>;
    using T = typename Args::compute_type;
    using rows_type = detail::linear_attention_rows<T, Args>;
    const auto& p = a.problem;
    const index_t chunk = opt.chunk_size > 0 ? opt.chunk_size : kernels::default_chunk_size(p.dk);
    const index_t dv_state = p.dv + (opt.normalize ? 1 : 0);
    const rows_type rows{a, opt, chunk, dv_state, T(p.scale), T(opt.eps)};
    // With a normalizer every output column needs the normalizer column: no value split.
    const kernels::gated_chunk_policy<T, rows_type> policy(
        rows, p.dk, dv_state, chunk, opt.log_decay ? kernels::gate_kind::scalar : kernels::gate_kind::none, opt.causal,
        !opt.normalize);
    kernels::chunk_pipeline(policy, kernels::chunk_units::per_head(p), opt.num_threads);
}

// One token per batch row: q, k [B,Hk,Dk], v and out [B,Hv,Dv]; state [slots,Hv,Dphi,Dv(+1)]
// updated in place (row b uses slot state_indices[b], or b).
template <class QV, class KV, class VV, class OV, class S>
void linear_attention_step(const QV& q, const KV& k, const VV& v, const OV& out, const tensor_view<S, 4>& state,
                           const linear_attention_step_options& opt = {}) {
    const executor_scope threads_of_call(opt.executor);
    const char* op = "linear_attention_step";
    const auto s = detail::prepare_linear_attention_step(q, k, v, out, state, opt, op);
    using T = typename std::remove_const_t<decltype(s)>::compute_type;
    const T scale = T(s.scale);
    kernels::step_rows<T>(
        state, opt.state_indices, s.batch, opt.num_threads,
        [&](index_t b, index_t h, kernels::step_vectors<T, S>& r) {
            const index_t hk = h / (s.hv / s.hk);
            detail::feature_row(opt.feature_map, s.q.ptr(b, hk), s.q.stride(2), s.dk_in, r.q);
            detail::feature_row(opt.feature_map, s.k.ptr(b, hk), s.k.stride(2), s.dk_in, r.k);
            kernels::pack_row(s.v.ptr(b, h), s.v.stride(2), s.dv, r.v, s.dv);
            if (opt.normalize) r.v[s.dv] = T(1);  // the normalizer column
            r.decay[0] = opt.log_decay ? std::exp(T(opt.log_decay[h])) : T(1);
        },
        [&](index_t b, index_t h, const kernels::step_vectors<T, S>& r) {
            const T mul = opt.normalize ? T(1) / (r.o[s.dv] + T(opt.eps)) : scale;
            kernels::emit_row(r.o, mul, s.out.ptr(b, h), s.out.stride(2), s.dv);
        });
}

SEQMIX_ABI_END
}  // namespace seqmix
