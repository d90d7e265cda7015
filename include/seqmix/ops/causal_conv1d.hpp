#pragma once
// causal_conv1d: depthwise causal convolution over the sequence,
//   y_t[c] = bias[c] + sum_w weight[c][w] x_{t-W+1+w}[c],  then silu when asked,
// any width W >= 1. Channels go in SIMD lanes, a block of them per work item; tokens in
// tiles whose packed rows are preceded by the W-1 inputs before them (the state, zeros,
// or the previous tile's last rows), so every output reads its window from one buffer.
// Memory bound: x is read once and y written once.
#include <algorithm>
#include <cmath>

#include "../contract/state_space.hpp"
#include "../core/abi.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../kernels/pack.hpp"
#include "../kernels/state_step.hpp"
#include "../simd/activation.hpp"
#include "../simd/vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// Channels per work item and tokens per tile: a tile's rows (64 channels x 64 tokens, plus
// the window's history) stay in L1.
constexpr index_t conv_block_channels = 64;
constexpr index_t conv_tile_tokens = 64;

// Rows [0, len) of y from rows of xt: y[t] = bias + sum_w wt[w] xt[t + w] (xt holds the
// W - 1 inputs before the tile first), then the activation; all [.][ld], ld a whole number
// of vectors.
template <class T>
void conv_tile(const T* xt, const T* wt, const T* bias, index_t W, index_t len, index_t ld, activation act, T* y) {
    using V = simd::vec<T>;
    constexpr index_t L = index_t(simd::width<T>);
    for (index_t j = 0; j < ld; j += L) {
        const V b = simd::load_aligned(bias + j);
        for (index_t t = 0; t < len; ++t) {
            V acc = b;
            for (index_t w = 0; w < W; ++w)
                acc = simd::fma(simd::load_aligned(wt + w * ld + j), simd::load_aligned(xt + (t + w) * ld + j), acc);
            if (act == activation::silu) acc = simd::silu(acc);
            simd::store_aligned(y + t * ld + j, acc);
        }
    }
}

template <class T>
void causal_conv1d_run(const conv1d_args<T>& a, int num_threads) {
    constexpr index_t L = index_t(simd::width<T>);
    const index_t W = a.width, K = W - 1, CB = conv_block_channels, Tb = conv_tile_tokens;
    const index_t ld = (std::min(CB, a.channels) + L - 1) / L * L;
    const index_t blocks = (a.channels + CB - 1) / CB, items = a.num_seqs * blocks;
    const int threads = resolve_threads(num_threads, items);
    thread_scratch<T> scratch(threads, scratch_carver<T>::size_of((K + Tb) * ld, Tb * ld, W * ld, ld));
    parallel_for(items, threads, [&](index_t item, int t) {
        const index_t s = item / blocks, c0 = item % blocks * CB, cols = std::min(CB, a.channels - c0);
        const auto sq = a.sequence(s);
        scratch_carver<T> cv(scratch.get(t));
        T* xt = cv.take(std::size_t((K + Tb) * ld));
        T* y = cv.take(std::size_t(Tb * ld));
        T* wt = cv.take(std::size_t(W * ld));
        T* bias = cv.take(std::size_t(ld));
        kernels::pack_block(a.weight.ptr(c0), a.weight.stride(1), a.weight.stride(0), W, cols, wt, ld);
        for (index_t c = 0; c < ld; ++c) bias[c] = a.bias && c < cols ? T(a.bias[c0 + c]) : T(0);
        if (a.initial_state.empty() || K == 0) std::fill(xt, xt + K * ld, T(0));
        else kernels::pack_block(a.initial_state.ptr(s, c0), a.initial_state.stride(2), a.initial_state.stride(1), K,
                                 cols, xt, ld);
        for (index_t t0 = 0; t0 < sq.len; t0 += Tb) {
            const index_t len = std::min(Tb, sq.len - t0), n0 = sq.begin + t0;
            kernels::pack_block(a.x.ptr(sq.batch, n0, c0), a.x.stride(1), a.x.stride(2), len, cols, xt + K * ld, ld);
            conv_tile(static_cast<const T*>(xt), static_cast<const T*>(wt), static_cast<const T*>(bias), W, len, ld,
                      a.act, y);
            kernels::unpack_block(static_cast<const T*>(y), ld, len, cols, a.out.ptr(sq.batch, n0, c0), a.out.stride(1),
                                  a.out.stride(2));
            // The window's history for the next tile (or the final state): the last K inputs.
            std::copy(xt + len * ld, xt + (len + K) * ld, xt);
        }
        if (!a.final_state.empty() && K > 0)
            kernels::unpack_block(static_cast<const T*>(xt), ld, K, cols, a.final_state.ptr(s, c0),
                                  a.final_state.stride(2), a.final_state.stride(1));
    });
}

}  // namespace detail

// x, out [Bt,N,C]; weight [C,W] (weight[c][W-1] on the current token); states [Bt,C,W-1]
// (or [num_seqs,C,W-1] with cu_seqlens), oldest first; final_state may be the view of
// initial_state.
template <class XV, class WV, class OV>
void causal_conv1d(const XV& x, const WV& weight, const OV& out, const conv1d_options& opt = {},
                   tensor_view<const typename OV::value_type, 3> initial_state = {},
                   tensor_view<typename OV::value_type, 3> final_state = {}) {
    detail::causal_conv1d_run(detail::prepare_conv1d(x, weight, out, opt, initial_state, final_state, "causal_conv1d"),
                              opt.num_threads);
}

// One token per batch row: x, out [B,C]; state [slots,C,W-1] updated in place (row b uses
// slot state_indices[b], or b): the window slides by one.
template <class XV, class WV, class OV>
void causal_conv1d_step(const XV& x, const WV& weight, const OV& out, tensor_view<typename OV::value_type, 3> state,
                        const conv1d_step_options& opt = {}) {
    using T = typename OV::value_type;
    const auto a = detail::prepare_conv1d_step(x, weight, out, state, opt, "causal_conv1d_step");
    const index_t K = a.width - 1, CB = detail::conv_block_channels;
    const index_t blocks = (a.channels + CB - 1) / CB;
    kernels::for_each_slot<T>(opt.state_indices, a.batch, blocks, opt.num_threads, 0,
                              [&](index_t b, index_t cb, index_t slot, T*) {
        for (index_t c = cb * CB; c < std::min(a.channels, (cb + 1) * CB); ++c) {
            T* st = K > 0 ? a.state.ptr(slot, c) : nullptr;
            const index_t ss = K > 0 ? a.state.stride(2) : 0;
            const T xc = a.x(b, c);
            T y = a.bias ? T(a.bias[c]) : T(0);
            for (index_t w = 0; w < K; ++w) y += a.weight(c, w) * st[w * ss];
            y += a.weight(c, K) * xc;
            for (index_t w = 0; w + 1 < K; ++w) st[w * ss] = st[(w + 1) * ss];
            if (K > 0) st[(K - 1) * ss] = xc;
            if (a.act == activation::silu) y = y / (T(1) + std::exp(-y));
            a.out(b, c) = y;
        }
    });
}

SEQMIX_ABI_END
}  // namespace seqmix
