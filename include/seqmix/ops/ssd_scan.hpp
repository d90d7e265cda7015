#pragma once
// ssd_scan (Mamba-2, state-space duality): per head h,
//   H_t = exp(d_t A_h) H_{t-1} + d_t x_t B_t^T,  y_t = H_t C_t + D_h x_t,  y *= silu(z_t)
// with d_t = softplus(dt_t + dt_bias) (or without softplus). This is scalar-gated linear
// attention with q = C, k = B, v = d x and log gate d A: it runs on the chunk pipeline as
// GLA's policy (kernels/chunk_pipeline.hpp) with its own rows, which discretize while
// packing, and emit the skip and the output gate. The pipeline's state is [S][P], the
// transpose of the API's [P][S]: the rows pack and store it transposed.
#include <algorithm>
#include <cmath>

#include "../contract/state_space.hpp"
#include "../core/abi.hpp"
#include "../core/scratch.hpp"
#include "../kernels/chunk_pipeline.hpp"
#include "../kernels/pack.hpp"
#include "../kernels/state_step.hpp"
#include "../simd/activation.hpp"
#include "../simd/blas1.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// d = softplus(raw + bias) (or raw + bias), in T: one per token and head.
template <class T>
T ssd_step_size(T raw, const float* bias, index_t h, bool softplus) {
    const T d = raw + (bias ? T(bias[h]) : T(0));
    return softplus ? (d > T(20) ? d : std::log1p(std::exp(d))) : d;
}

// dst = (y + D x) * silu(z) over n values (D and z optional; z may be null). x, z and dst
// may be stored as bf16 / fp16. Unit-stride rows take one vector pass; other strides go
// through `work` (n values).
template <class T, class X, class Z, class O>
void skip_and_gate(const T* y, index_t n, const X* x, index_t xs, T D, bool has_D, const Z* z, index_t zs, O* dst,
                   index_t ds, T* work) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    if (xs != 1 || (z && zs != 1) || ds != 1) {
        simd::copy(y, work, std::size_t(n));
        for (index_t i = 0; i < n; ++i) {
            if (has_D) work[i] += D * T(x[i * xs]);
            if (z) work[i] *= T(z[i * zs]) / (T(1) + std::exp(-T(z[i * zs])));
        }
        kernels::emit_row(static_cast<const T*>(work), T(1), dst, ds, n);
        return;
    }
    auto lanes = [&](index_t i, std::size_t r) {
        auto ld = [&](const auto* p) {
            return r == std::size_t(W) ? simd::load_as<T>(p + i) : simd::load_as_partial<T>(p + i, r);
        };
        V v = ld(y);
        if (has_D) v = simd::fma(V(D), ld(x), v);
        if (z) v = v * simd::silu(ld(z));
        if (r == std::size_t(W)) simd::store_as(dst + i, v);
        else simd::store_as_partial(dst + i, v, r);
    };
    index_t i = 0;
    for (; i + W <= n; i += W) lanes(i, std::size_t(W));
    if (i < n) lanes(i, std::size_t(n - i));
}

// The rows of SSD for gated_chunk_policy: C and B as q and k (in place when unit-stride),
// v = d x, the cumulative log gates d A; outputs with the skip and the gate.
template <class T, class Args>
struct ssd_rows {
    const Args& a;
    index_t chunk;

    bool in_place_qk(index_t u, index_t t0, const T*& q, index_t& ldq, const T*& k, index_t& ldk) const {
        return a.qk_rows(u, t0, index_t(simd::width<T>), q, ldq, k, ldk);
    }
    void pack(index_t u, index_t t0, const kernels::chunk_tile<T>& c, T* q_buf, T* k_buf, bool with_q) const {
        const auto& p = a.problem;
        const auto sq = p.sequence(u / p.hv);
        const index_t h = u % p.hv, g = h / p.group;
        const T A = T(a.A(h));
        // The chunk's steps in vectors (one softplus per token and head).
        alignas(64) T steps[1024];
        for (index_t t = 0; t < c.len; ++t)
            steps[t] = T(a.dt(sq.batch, sq.begin + t0 + t, h)) + (a.dt_bias ? T(a.dt_bias[h]) : T(0));
        if (a.softplus) {
            constexpr index_t W = index_t(simd::width<T>);
            for (index_t t = 0; t < c.len; t += W) {
                const std::size_t r = std::size_t(std::min(W, c.len - t));
                simd::store_partial(steps + t, simd::softplus(simd::load_partial(steps + t, r)), r);
            }
        }
        for (index_t t = 0; t < c.len; ++t) {
            const index_t n = sq.begin + t0 + t;
            if (t0 + t + chunk < sq.len) {
                const index_t nn = n + chunk;
                if (with_q) kernels::prefetch_row(a.q.ptr(sq.batch, nn, g), a.q.stride(3), p.dk);
                kernels::prefetch_row(a.k.ptr(sq.batch, nn, g), a.k.stride(3), p.dk);
                kernels::prefetch_row(a.v.ptr(sq.batch, nn, h), a.v.stride(3), p.dv);
            }
            if (with_q && q_buf)
                kernels::pack_row(a.q.ptr(sq.batch, n, g), a.q.stride(3), p.dk, q_buf + t * c.ldk, c.ldk);
            if (k_buf) kernels::pack_row(a.k.ptr(sq.batch, n, g), a.k.stride(3), p.dk, k_buf + t * c.ldk, c.ldk);
            const T d = steps[t];
            T* vr = c.v + t * c.ldv;
            kernels::pack_row(a.v.ptr(sq.batch, n, h), a.v.stride(3), p.dv, vr, c.ldv);
            simd::scale(d, vr, std::size_t(p.dv));
            kernels::cumulative_gate(d * A, t, c.b, c.b_lo);
        }
    }
    void emit(index_t u, index_t t0, index_t len, const T* O, index_t ldv, index_t c0, index_t c1) const {
        const auto& p = a.problem;
        const auto sq = p.sequence(u / p.hv);
        const index_t h = u % p.hv;
        if (c0 >= c1) return;
        const bool plain = !a.D && a.z.empty();
        alignas(64) T work[1024];  // strided rows: head dims above 1024 go in pieces
        for (index_t t = 0; t < len; ++t) {
            const index_t n = sq.begin + t0 + t;
            // The next chunk's gate and output rows, one head's rows a token apart: a walk the
            // hardware prefetchers do not follow (it stalled the gate's loads on a Xeon).
            if (!plain && t0 + t + chunk < sq.len) {
                if (!a.z.empty()) kernels::prefetch_row(a.z.ptr(sq.batch, n + chunk, h, c0), a.z.stride(3), c1 - c0);
                kernels::prefetch_row(a.out.ptr(sq.batch, n + chunk, h, c0), a.out.stride(3), c1 - c0);
            }
            if (plain) {
                kernels::emit_row(O + t * ldv + c0, T(1), a.out.ptr(sq.batch, n, h, c0), a.out.stride(3), c1 - c0);
                continue;
            }
            for (index_t e0 = c0; e0 < c1; e0 += 1024) {
                const index_t m = std::min<index_t>(1024, c1 - e0);
                skip_and_gate(O + t * ldv + e0, m, a.v.ptr(sq.batch, n, h, e0), a.v.stride(3), a.D ? T(a.D[h]) : T(0),
                              a.D != nullptr, a.z.empty() ? nullptr : a.z.ptr(sq.batch, n, h, e0),
                              a.z.empty() ? 0 : a.z.stride(3), a.out.ptr(sq.batch, n, h, e0), a.out.stride(3), work);
            }
        }
    }
    // The API's state is [P][S]; the pipeline's [S][P]: packed and stored transposed.
    void load_state(index_t u, T* S, index_t ldv) const {
        const auto& p = a.problem;
        const index_t s = u / p.hv;
        kernels::load_state_columns(initial_of(a, p, s), p.state_slot(s), u % p.hv, p.dv, p.dk, S, ldv);
    }
    void store_state(index_t u, const T* S, index_t ldv) const {
        const auto& p = a.problem;
        const index_t s = u / p.hv;
        kernels::store_state_columns(S, ldv, 0, p.dv, p.dk, final_of(a, p, s), p.state_slot(s), u % p.hv);
    }
    void store_snapshot(index_t u, index_t k, const T* S, index_t ldv, index_t c0, index_t c1) const {
        const auto& p = a.problem;
        const index_t slot = p.snapshot_slot(u / p.hv, k);
        if (slot >= 0)
            kernels::store_state_columns(S, ldv, c0, std::min(c1, p.dv), p.dk, a.final_state, slot, u % p.hv);
    }
};

}  // namespace detail

// x, out [Bt,N,H,P]; dt [Bt,N,H]; A [H] (<= 0); B, C [Bt,N,G,S]; states [Bt,H,P,S] (or
// [num_seqs,H,P,S] with cu_seqlens); final_state may be the view of initial_state.
template <class XV, class TV, class AV, class BV, class CV, class OV,
          class Z = compute_type_of<typename OV::value_type>,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void ssd_scan(const XV& x, const TV& dt, const AV& A, const BV& B, const CV& C, const OV& out,
              const ssd_options<Z>& opt = {}, const SIV& initial_state = {}, const SOV& final_state = {}) {
    const executor_scope threads_of_call(opt.executor);
    const auto a = detail::prepare_ssd(x, dt, A, B, C, out, opt, initial_state, final_state, "ssd_scan");
    using Args = std::remove_const_t<decltype(a)>;
    using T = typename Args::compute_type;
    using rows_type = detail::ssd_rows<T, Args>;
    const auto& p = a.problem;
    const index_t chunk = opt.chunk_size > 0 ? opt.chunk_size : kernels::default_chunk_size(p.dk);
    const rows_type rows{a, chunk};
    const kernels::gated_chunk_policy<T, rows_type> policy(rows, p.dk, p.dv, chunk, kernels::gate_kind::scalar, true,
                                                           true);
    kernels::chunk_pipeline(policy, kernels::chunk_units::per_head(p), opt.num_threads);
}

// One token per batch row: x, out [B,H,P]; dt [B,H]; B, C [B,G,S]; state [slots,H,P,S]
// updated in place (row b uses slot state_indices[b], or b): one pass over the state rows.
template <class XV, class TV, class AV, class BV, class CV, class OV, class St,
          class Z = compute_type_of<typename OV::value_type>>
void ssd_step(const XV& x, const TV& dt, const AV& A, const BV& B, const CV& C, const OV& out,
              const tensor_view<St, 4>& state, const ssd_step_options<Z>& opt = {}) {
    const executor_scope threads_of_call(opt.executor);
    using T = compute_type_of<typename OV::value_type>;
    const auto a = detail::prepare_ssd_step(x, dt, A, B, C, out, state, opt, "ssd_step");
    const index_t P = a.dhead, S = a.dstate;
    kernels::for_each_slot<T>(
        opt.state_indices, a.batch, a.heads, opt.num_threads, scratch_carver<T>::size_of(S, S, P, P, P),
        [&](index_t b, index_t h, index_t slot, T* scratch) {
            scratch_carver<T> cv(scratch);
            T* bv = cv.take(std::size_t(S));
            T* cvec = cv.take(std::size_t(S));
            T* xd = cv.take(std::size_t(P));
            T* y = cv.take(std::size_t(P));
            T* work = cv.take(std::size_t(P));
            const index_t g = h / (a.heads / a.groups);
            const T d = detail::ssd_step_size(T(a.dt(b, h)), a.dt_bias, h, a.softplus);
            kernels::pack_row(a.B.ptr(b, g), a.B.stride(2), S, bv, S);
            kernels::pack_row(a.C.ptr(b, g), a.C.stride(2), S, cvec, S);
            kernels::pack_row(a.x.ptr(b, h), a.x.stride(2), P, xd, P);
            simd::scale(d, xd, std::size_t(P));
            const auto st = a.state;
            kernels::state_step_dot(st.ptr(slot, h), st.stride(2), st.stride(3), P, S, T(std::exp(d * T(a.A(h)))),
                                    static_cast<const T*>(xd), static_cast<const T*>(bv), static_cast<const T*>(cvec),
                                    y);
            detail::skip_and_gate(static_cast<const T*>(y), P, a.x.ptr(b, h), a.x.stride(2), a.D ? T(a.D[h]) : T(0),
                                  a.D != nullptr, a.z.empty() ? nullptr : a.z.ptr(b, h),
                                  a.z.empty() ? 0 : a.z.stride(2), a.out.ptr(b, h), a.out.stride(2), work);
        });
}

SEQMIX_ABI_END
}  // namespace seqmix
