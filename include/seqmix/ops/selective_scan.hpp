#pragma once
// selective_scan (Mamba-1, S6): per channel c and state j,
//   h_t = exp(d_t A_cj) h_{t-1} + d_t u_t B_tj,  y_t = sum_j C_tj h_tj + D_c u_t,  y *= silu(z_t)
// with d_t = softplus(delta_t + delta_bias) (or without softplus). Channels go in SIMD lanes
// with the state of a block of them in registers (kernels/selective_scan.hpp); threads take
// (sequence, channel block) items, which share nothing, so any thread count gives the same
// bits. Mamba's channel-major [B, Din, L] tensors are the same operator through permuted
// views: their tiles are packed through 16 x 16 transposes.
#include <algorithm>
#include <cmath>

#include "../contract/state_space.hpp"
#include "../core/abi.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../kernels/pack.hpp"
#include "../kernels/selective_scan.hpp"
#include "../kernels/state_step.hpp"
#include "../simd/activation.hpp"
#include "../simd/blas1.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// Tokens per tile: the packed rows of a tile stay in L1 for S = 16 (B and C: 4 KB each).
constexpr index_t scan_tile_tokens = 64;

// opt arrays (float) as one vector of the element type over lanes [c0, c0 + lanes).
template <class T>
simd::vec<T> param_lanes(const float* p, index_t c0, index_t lanes, T fill) {
    alignas(64) T v[simd::width<T>];
    for (index_t l = 0; l < index_t(simd::width<T>); ++l) v[l] = p && l < lanes ? T(p[c0 + l]) : fill;
    return simd::load_aligned(v);
}

// The discretization step of every lane of a tile: d = delta + bias, then softplus.
template <class T>
simd::vec<T> step_of(const simd::vec<T>& raw, const simd::vec<T>& bias, bool softplus) {
    const simd::vec<T> d = raw + bias;
    return softplus ? simd::softplus(d) : d;
}

template <class Args>
void selective_scan_run(const Args& a, int num_threads) {
    using T = typename Args::compute_type;
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    const index_t S = a.dstate, per_group = a.din / a.groups, blocks = (per_group + W - 1) / W;
    const index_t Tb = scan_tile_tokens;
    const index_t items = a.num_seqs * a.groups * blocks;
    const int threads = resolve_threads(num_threads, items);
    thread_scratch<T> scratch(
        threads, scratch_carver<T>::size_of(Tb * W, Tb * W, Tb * W, Tb * W, Tb * W, Tb * S, Tb * S, S * W, S * W));
    parallel_for(items, threads, [&](index_t item, int t) {
        const index_t s = item / (a.groups * blocks), g = item / blocks % a.groups, cb = item % blocks;
        const index_t c0 = g * per_group + cb * W, lanes = std::min(W, per_group - cb * W);
        const auto sq = a.sequence(s);
        scratch_carver<T> cv(scratch.get(t));
        T* ub = cv.take(std::size_t(Tb * W));
        T* db = cv.take(std::size_t(Tb * W));
        T* dub = cv.take(std::size_t(Tb * W));
        T* yb = cv.take(std::size_t(Tb * W));
        T* zb = cv.take(std::size_t(Tb * W));
        T* Bb = cv.take(std::size_t(Tb * S));
        T* Cb = cv.take(std::size_t(Tb * S));
        T* At = cv.take(std::size_t(S * W));
        T* h = cv.take(std::size_t(S * W));
        if (!a.writes_state(s)) return;  // a pad_slot sequence: nothing to do
        kernels::pack_block(a.A.ptr(c0), a.A.stride(1), a.A.stride(0), S, lanes, At, W);
        const auto init = initial_of(a, a, s);
        const index_t slot = a.state_slot(s);
        if (init.empty()) std::fill(h, h + S * W, T(0));
        else kernels::pack_block(init.ptr(slot, c0), init.stride(2), init.stride(1), S, lanes, h, W);
        const V bias = param_lanes<T>(a.delta_bias, c0, lanes, T(0)), skip = param_lanes<T>(a.D, c0, lanes, T(0));
        // The state in h after token `end`, rounded into pool slot `to` (< 0: none).
        auto store = [&](index_t to) {
            if (to >= 0)
                kernels::unpack_block(static_cast<const T*>(h), W, S, lanes, a.final_state.ptr(to, c0),
                                      a.final_state.stride(2), a.final_state.stride(1));
        };
        const index_t every = a.snapshot_interval;
        for (index_t t0 = 0, len = 0; t0 < sq.len; t0 += len) {
            len = std::min(Tb, sq.len - t0);
            if (every > 0) len = std::min(len, (t0 / every + 1) * every - t0);  // tiles end at snapshots
            const index_t n0 = sq.begin + t0;
            auto tile_of = [&](const auto& x, T* dst) {
                kernels::pack_block(x.ptr(sq.batch, n0, c0), x.stride(1), x.stride(2), len, lanes, dst, W);
            };
            tile_of(a.u, ub);
            tile_of(a.delta, db);
            for (index_t i = 0; i < len; ++i) {
                const V d = step_of(simd::load_aligned(db + i * W), bias, a.softplus);
                simd::store_aligned(db + i * W, d);
                simd::store_aligned(dub + i * W, d * simd::load_aligned(ub + i * W));
            }
            kernels::scan_tile<T> x;
            x.d = db;
            x.du = dub;
            x.At = At;
            x.h = h;
            x.y = yb;
            x.len = len;
            x.S = S;
            // B and C rows read in place when unit-stride in T, else packed (channel-major or
            // 16-bit B, C).
            auto rows_of = [&](const auto& src, T* buf, const T*& rows, index_t& ld) {
                using E = typename std::remove_reference_t<decltype(src)>::value_type;
                if constexpr (std::is_same_v<E, T>) {
                    if (src.stride(3) == 1) {
                        rows = src.ptr(sq.batch, n0, g), ld = src.stride(1);
                        return;
                    }
                }
                kernels::pack_block(src.ptr(sq.batch, n0, g), src.stride(1), src.stride(3), len, S, buf, S);
                rows = buf, ld = S;
            };
            rows_of(a.B, Bb, x.B, x.ldb);
            rows_of(a.C, Cb, x.C, x.ldc);
            kernels::scan_tile_run(x);
            if (!a.z.empty()) tile_of(a.z, zb);
            for (index_t i = 0; i < len; ++i) {
                V y = simd::load_aligned(yb + i * W);
                if (a.D) y = simd::fma(skip, simd::load_aligned(ub + i * W), y);
                if (!a.z.empty()) y = y * simd::silu(simd::load_aligned(zb + i * W));
                simd::store_aligned(yb + i * W, y);
            }
            kernels::unpack_block(static_cast<const T*>(yb), W, len, lanes, a.out.ptr(sq.batch, n0, c0),
                                  a.out.stride(1), a.out.stride(2));
            if (every > 0 && (t0 + len) % every == 0) store(a.snapshot_slot(s, (t0 + len) / every - 1));
        }
        if (!final_of(a, a, s).empty()) store(slot);
    });
}

}  // namespace detail

// u, delta, out [Bt,N,Din]; A [Din,S]; B, C [Bt,N,G,S]; states [Bt,Din,S] (or [num_seqs,Din,S]
// with cu_seqlens); final_state may be the view of initial_state (updated in place).
template <class UV, class DV, class AV, class BV, class CV, class OV,
          class Z = compute_type_of<typename OV::value_type>,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 3>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 3>>
void selective_scan(const UV& u, const DV& delta, const AV& A, const BV& B, const CV& C, const OV& out,
                    const selective_scan_options<Z>& opt = {}, const SIV& initial_state = {},
                    const SOV& final_state = {}) {
    const executor_scope threads_of_call(opt.executor);
    detail::selective_scan_run(
        detail::prepare_selective_scan(u, delta, A, B, C, out, opt, initial_state, final_state, "selective_scan"),
        opt.num_threads);
}

// One token per batch row: u, delta, out [B,Din]; B, C [B,G,S]; state [slots,Din,S] updated
// in place (row b uses slot state_indices[b], or b). Per channel the S states go in lanes
// (kernels::scan_step_channel); the steps, the skip and the gate go in vectors of channels.
template <class UV, class DV, class AV, class BV, class CV, class OV, class St,
          class Z = compute_type_of<typename OV::value_type>>
void selective_scan_step(const UV& u, const DV& delta, const AV& A, const BV& B, const CV& C, const OV& out,
                         const tensor_view<St, 3>& state, const selective_scan_step_options<Z>& opt = {}) {
    const executor_scope threads_of_call(opt.executor);
    using T = compute_type_of<typename OV::value_type>;
    using V = simd::vec<T>;
    constexpr index_t L = index_t(simd::width<T>);
    const auto a = detail::prepare_selective_scan_step(u, delta, A, B, C, out, state, opt, "selective_scan_step");

    const index_t S = a.dstate, per_group = a.din / a.groups;
    constexpr index_t block = 256;  // channels per work item
    const index_t blocks = (a.din + block - 1) / block;
    const auto st = a.state;
    kernels::for_each_slot<T>(
        opt.state_indices, a.batch, blocks, opt.num_threads,
        scratch_carver<T>::size_of(block, block, block, block, S, S, S, S),
        [&](index_t b, index_t cb, index_t slot, T* scratch) {
            scratch_carver<T> cv(scratch);
            T* d = cv.take(std::size_t(block));
            T* x = cv.take(std::size_t(block));
            T* y = cv.take(std::size_t(block));
            T* zrow = cv.take(std::size_t(block));
            T* Bv = cv.take(std::size_t(S));
            T* Cv = cv.take(std::size_t(S));
            T* arow = cv.take(std::size_t(S));
            T* hrow = cv.take(std::size_t(S));
            const index_t c0 = cb * block, n = std::min(block, a.din - c0);
            kernels::pack_row(a.delta.ptr(b, c0), a.delta.stride(1), n, d, block);
            kernels::pack_row(a.u.ptr(b, c0), a.u.stride(1), n, x, block);
            if (!a.z.empty()) kernels::pack_row(a.z.ptr(b, c0), a.z.stride(1), n, zrow, block);
            for (index_t i = 0; i < n; i += L) {
                const V raw =
                    simd::load_aligned(d + i) + detail::param_lanes<T>(a.delta_bias, c0 + i, std::min(L, n - i), T(0));
                simd::store_aligned(d + i, a.softplus ? simd::softplus(raw) : raw);
            }
            // Per channel: its A row and state row by pointer steps, its group by boundary
            // crossings (no divisions in the loop).
            index_t g = c0 / per_group, group_end = (g + 1) * per_group;
            auto load_group = [&] {
                kernels::pack_row(a.B.ptr(b, g), a.B.stride(2), S, Bv, S);
                kernels::pack_row(a.C.ptr(b, g), a.C.stride(2), S, Cv, S);
            };
            load_group();
            const bool strided = a.A.stride(1) != 1 || st.stride(2) != 1;
            const auto* Arow = a.A.ptr(c0);
            St* h = st.ptr(slot, c0);
            for (index_t i0 = 0; i0 < n; i0 += L) {  // W channels, then one transposing reduction
                V acc[simd::width<T>];
                for (index_t l = 0; l < L; ++l) {
                    const index_t i = i0 + l;
                    acc[l] = V(T(0));
                    if (i >= n) continue;
                    if (c0 + i == group_end) {
                        ++g;
                        group_end += per_group;
                        load_group();
                    }
                    if (!strided) {
                        acc[l] = kernels::scan_step_channel(h, Arow, d[i], d[i] * x[i], static_cast<const T*>(Bv),
                                                            static_cast<const T*>(Cv), S);
                    } else {  // any strides: through packed rows
                        kernels::pack_row(Arow, a.A.stride(1), S, arow, S);
                        kernels::pack_row(static_cast<const St*>(h), st.stride(2), S, hrow, S);
                        acc[l] = kernels::scan_step_channel(hrow, static_cast<const T*>(arow), d[i], d[i] * x[i],
                                                            static_cast<const T*>(Bv), static_cast<const T*>(Cv), S);
                        kernels::emit_row(static_cast<const T*>(hrow), T(1), h, st.stride(2), S);
                    }
                    Arow += a.A.stride(0);
                    h += st.stride(1);
                }
                simd::store_aligned(y + i0, simd::hsum_rows(acc));
            }
            for (index_t i = 0; i < n; i += L) {
                const std::size_t r = std::size_t(std::min(L, n - i));
                V v = simd::load_aligned(y + i);
                if (a.D)
                    v = simd::fma(detail::param_lanes<T>(a.D, c0 + i, index_t(r), T(0)), simd::load_aligned(x + i), v);
                if (!a.z.empty()) v = v * simd::silu(simd::load_aligned(zrow + i));
                simd::store_aligned(y + i, v);
            }
            kernels::emit_row(static_cast<const T*>(y), T(1), a.out.ptr(b, c0), a.out.stride(1), n);
        });
}

SEQMIX_ABI_END
}  // namespace seqmix
