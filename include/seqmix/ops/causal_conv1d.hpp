#pragma once
// causal_conv1d: depthwise causal convolution over the sequence,
//   y_t[c] = bias[c] + sum_w weight[c][w] x_{t-W+1+w}[c],  then silu when asked,
// any width W >= 1. Channels go in SIMD lanes; tokens in tiles whose packed rows are
// preceded by the W-1 inputs before them (from x, the state, or zeros), so every output
// reads its window from one buffer. Memory bound: x is read once and y written once.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

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

// The packed path's work item: 128 channels x 32 tokens (plus the window's history) in L1.
constexpr index_t conv_block_channels = 128;
constexpr index_t conv_tile_tokens = 32;

// Inputs j in [j0, j0 + count) of sequence s, channels [c0, c0 + cols), into rows of dst
// [count][ld]: from x for j >= 0, before the start from the initial state (column K + j of
// its [C][K] rows, oldest first) or zeros.
template <class Args, class T>
void pack_conv_inputs(const Args& a, index_t s, const recurrent_sequence& sq, index_t j0, index_t count, index_t c0,
                      index_t cols, T* dst, index_t ld) {
    const index_t K = a.width - 1;
    index_t i = 0;
    const auto init = initial_of(a, a, s);
    for (; i < count && j0 + i < 0; ++i) {
        if (init.empty()) std::fill(dst + i * ld, dst + (i + 1) * ld, T(0));
        else
            kernels::pack_block(init.ptr(a.state_slot(s), c0, K + j0 + i), 0, init.stride(1), 1, cols, dst + i * ld,
                                ld);
    }
    if (i < count)
        kernels::pack_block(a.x.ptr(sq.batch, sq.begin + j0 + i, c0), a.x.stride(1), a.x.stride(2), count - i, cols,
                            dst + i * ld, ld);
}

// The outputs at one vector of lanes: bias + sum_w weight(w) input(w) in this order, then
// the activation. Every path below computes exactly this, so layouts never change the bits.
template <class T, class Weight, class Input>
inline simd::vec<T> conv_lanes(simd::vec<T> acc, index_t W, Weight&& weight, Input&& input, activation act) {
    for (index_t w = 0; w < W; ++w) acc = simd::fma(weight(w), input(w), acc);
    return act == activation::silu ? simd::silu(acc) : acc;
}

// f(width) with the width as a compile-time constant for Mamba's widths 2 to 4 (the window
// loop unrolled), as a plain index_t otherwise.
template <class F>
void with_width(index_t W, F&& f) {
    switch (W) {
        case 2: return f(std::integral_constant<index_t, 2>{});
        case 3: return f(std::integral_constant<index_t, 3>{});
        case 4: return f(std::integral_constant<index_t, 4>{});
        default: return f(W);
    }
}

// One decode step of n channels with contiguous weights [n][W], states [n][W-1] and x:
// y = bias + sum of the window (oldest first), then the window slides by one.
template <class T, index_t W>
void conv_step_channels(const T* w, const T* x, T* st, const float* bias, T* y, index_t n) {
    constexpr index_t K = W - 1;
    for (index_t i = 0; i < n; ++i, w += W, st += K) {
        T acc = bias ? T(bias[i]) : T(0);
        for (index_t k = 0; k < K; ++k) acc = simd::fma(w[k], st[k], acc);
        y[i] = simd::fma(w[K], x[i], acc);
        for (index_t k = 0; k + 1 < K; ++k) st[k] = st[k + 1];
        st[K - 1] = x[i];
    }
}

// Widths up to this run on the streaming paths (their window's row pointers on the stack).
constexpr index_t conv_max_streaming_width = 32;

// The weights as [W][ld] and the bias as [ld] (channels padded with zeros to whole
// vectors), packed once per call into the calling thread's scratch.
template <class T>
struct packed_conv_weights {
    index_t ld;
    thread_scratch<T> storage;
    T *w, *bias;
    template <class Args>
    explicit packed_conv_weights(const Args& a)
        : ld((a.channels + index_t(simd::width<T>) - 1) / index_t(simd::width<T>) * index_t(simd::width<T>)),
          storage(1, scratch_carver<T>::size_of(a.width * ld, ld)) {
        scratch_carver<T> cv(storage.get(0));
        w = cv.take(std::size_t(a.width * ld));
        bias = cv.take(std::size_t(ld));
        kernels::pack_block(a.weight.ptr(0), a.weight.stride(1), a.weight.stride(0), a.width, a.channels, w, ld);
        for (index_t c = 0; c < ld; ++c) bias[c] = a.bias && c < a.channels ? T(a.bias[c]) : T(0);
    }
};

// The token tiles of every sequence, numbered sequence by sequence (the work items of the
// prefill paths: tiles need nothing from each other but the inputs before them).
struct token_tiles {
    index_t tile_tokens;
    std::vector<index_t> first;  // first[s]: the number of the first tile of sequence s
    template <class Sequences>
    token_tiles(const Sequences& q, index_t tb) : tile_tokens(tb), first(std::size_t(q.num_seqs) + 1, 0) {
        for (index_t s = 0; s < q.num_seqs; ++s)
            first[std::size_t(s) + 1] = first[std::size_t(s)] + (q.sequence(s).len + tb - 1) / tb;
    }
    index_t count() const { return first.back(); }
    // The sequence of tile `tile` and the tile's first token in it.
    std::pair<index_t, index_t> locate(index_t tile) const {
        const index_t s = index_t(std::upper_bound(first.begin(), first.end(), tile) - first.begin()) - 1;
        return {s, (tile - first[std::size_t(s)]) * tile_tokens};
    }
};

// NV vectors of channels through `rows` rows, the window's last W - 1 input vectors, the
// weights and the bias held in registers: per row one load of the new input, W FMAs and
// one store per vector. head: the W - 1 rows before row 0 (oldest first).
template <class T, index_t W, index_t NV>
void conv_window_block(const T* const* head, index_t c, const T* x, index_t xs, T* y, index_t ys, index_t rows,
                       const T* wt, index_t ldw, const T* bias, activation act) {
    using V = simd::vec<T>;
    constexpr index_t L = index_t(simd::width<T>), K = W - 1;
    V wv[W][NV], bv[NV], win[K][NV];
    for (index_t j = 0; j < NV; ++j) {
        for (index_t w = 0; w < W; ++w) wv[w][j] = simd::load_aligned(wt + w * ldw + c + j * L);
        bv[j] = simd::load_aligned(bias + c + j * L);
        for (index_t k = 0; k < K; ++k) win[k][j] = simd::load(head[k] + c + j * L);
    }
    for (index_t i = 0; i < rows; ++i) {
        for (index_t j = 0; j < NV; ++j) {
            const V cur = simd::load(x + i * xs + c + j * L);
            V acc = bv[j];
            for (index_t w = 0; w < K; ++w) acc = simd::fma(wv[w][j], win[w][j], acc);
            acc = simd::fma(wv[K][j], cur, acc);
            simd::store(y + i * ys + c + j * L, act == activation::silu ? simd::silu(acc) : acc);
            for (index_t k = 0; k + 1 < K; ++k) win[k][j] = win[k + 1][j];
            win[K - 1][j] = cur;
        }
    }
}

// Token-major x and out with unit-stride channels: an item is a tile of tokens over every
// channel; widths 2 to 4 keep the window in registers (conv_window_block), other widths
// read it back from cache. The weights are packed once per call.
template <class Args>
void conv_token_major(const Args& a, int num_threads) {
    using T = typename Args::compute_type;
    using V = simd::vec<T>;
    constexpr index_t L = index_t(simd::width<T>);
    constexpr index_t NV = simd::register_count >= 32 ? 2 : 1;
    const index_t W = a.width, K = W - 1, C = a.channels;
    const packed_conv_weights<T> pw(a);
    const index_t ld = pw.ld;
    const T* wt = pw.w;
    const T* bias = pw.bias;
    const token_tiles tiles(a, conv_tile_tokens);
    const int threads = resolve_threads(num_threads, tiles.count());
    thread_scratch<T> scratch(threads, std::size_t(std::max<index_t>(K, 1) * ld));
    parallel_for(tiles.count(), threads, [&](index_t tile, int t) {
        // (named pairs, not structured bindings: the lambdas below use t0, which clang 14 refuses)
        const auto tile_at = tiles.locate(tile);
        const index_t s = tile_at.first, t0 = tile_at.second;
        const auto sq = a.sequence(s);
        const index_t t1 = std::min(sq.len, t0 + conv_tile_tokens);
        T* history = scratch.get(t);  // the inputs before the sequence, when this tile reaches back to them
        if (t0 < K) pack_conv_inputs(a, s, sq, -K, K, 0, C, history, ld);
        auto row = [&](index_t j) -> const T* {
            return j >= 0 ? a.x.ptr(sq.batch, sq.begin + j) : history + (K + j) * ld;
        };
        const index_t xs = a.x.stride(1), ys = a.out.stride(1);
        const T* x0 = a.x.ptr(sq.batch, sq.begin + t0);
        T* y0 = a.out.ptr(sq.batch, sq.begin + t0);
        index_t done = 0;  // channels through the register path
        with_width(W, [&](auto width) {
            if constexpr (!std::is_same_v<decltype(width), index_t>) {
                constexpr index_t Wc = decltype(width)::value;
                const T* head[Wc - 1];
                for (index_t k = 0; k < Wc - 1; ++k) head[k] = row(t0 - K + k);
                for (; done + NV * L <= C; done += NV * L)
                    conv_window_block<T, Wc, NV>(head, done, x0, xs, y0, ys, t1 - t0, wt, ld, bias, a.act);
                for (; done + L <= C; done += L)
                    conv_window_block<T, Wc, 1>(head, done, x0, xs, y0, ys, t1 - t0, wt, ld, bias, a.act);
            }
        });
        // The remaining channels (any width; the tail vector): the window read back from cache.
        const T* rows[conv_max_streaming_width];
        for (index_t i = t0; i < t1 && done < C; ++i) {
            for (index_t w = 0; w < W; ++w) rows[w] = row(i - K + w);
            T* y = a.out.ptr(sq.batch, sq.begin + i);
            for (index_t c = done; c < C; c += L) {
                const std::size_t r = std::size_t(std::min(L, C - c));
                const V v = conv_lanes<T>(
                    simd::load_aligned(bias + c), W, [&](index_t w) { return simd::load_aligned(wt + w * ld + c); },
                    [&](index_t w) {
                        return r == std::size_t(L) ? simd::load(rows[w] + c) : simd::load_partial(rows[w] + c, r);
                    },
                    a.act);
                if (r == std::size_t(L)) simd::store(y + c, v);
                else simd::store_partial(y + c, v, r);
            }
        }
    });
}

// Channel-major x and out (causal-conv1d's [B, C, L]) with unit-stride tokens: one channel
// at a time, tokens in lanes; the first window reads a small buffer holding the state.
template <class Args>
void conv_channel_major(const Args& a, int num_threads) {
    using T = typename Args::compute_type;
    using V = simd::vec<T>;
    constexpr index_t L = index_t(simd::width<T>);
    const index_t W = a.width, K = W - 1;
    const index_t items = a.num_seqs * a.channels;
    const int threads = resolve_threads(num_threads, items);
    thread_scratch<T> scratch(threads, std::size_t(K + L));
    parallel_for(items, threads, [&](index_t item, int t) {
        const index_t s = item / a.channels, c = item % a.channels;
        const auto sq = a.sequence(s);
        const T* x = a.x.ptr(sq.batch, sq.begin, c);
        T* y = a.out.ptr(sq.batch, sq.begin, c);
        T wts[conv_max_streaming_width];
        for (index_t w = 0; w < W; ++w) wts[w] = T(a.weight(c, w));
        const V bias(a.bias ? T(a.bias[c]) : T(0));
        // Inputs j in [-K, L) of the first vector of outputs, from the state (or zeros) and x.
        T* head = scratch.get(t);
        const auto init = initial_of(a, a, s);
        for (index_t j = -K; j < L; ++j)
            head[K + j] = j < 0 ? (init.empty() ? T(0) : T(init(a.state_slot(s), c, K + j))) : j < sq.len ? x[j] : T(0);
        for (index_t i = 0; i < sq.len; i += L) {
            const std::size_t r = std::size_t(std::min(L, sq.len - i));
            const T* in = i == 0 ? head : x + i - K;  // in[w + l]: input i - K + w + l
            const V v = conv_lanes<T>(
                bias, W, [&](index_t w) { return V(wts[w]); },
                [&](index_t w) { return r == std::size_t(L) ? simd::load(in + w) : simd::load_partial(in + w, r); },
                a.act);
            if (r == std::size_t(L)) simd::store(y + i, v);
            else simd::store_partial(y + i, v, r);
        }
    });
}

// Any other strides, and x or out in 16 bits: (sequence, token tile, channel block) items on
// packed tiles.
template <class Args>
void conv_packed(const Args& a, int num_threads) {
    using T = typename Args::compute_type;
    constexpr index_t L = index_t(simd::width<T>);
    const index_t W = a.width, K = W - 1, CB = conv_block_channels, Tb = conv_tile_tokens;
    const index_t ld = (std::min(CB, a.channels) + L - 1) / L * L;
    const index_t cblocks = (a.channels + CB - 1) / CB;
    const packed_conv_weights<T> pw(a);
    const token_tiles tiles(a, Tb);
    const index_t items = tiles.count() * cblocks;
    const int threads = resolve_threads(num_threads, items);
    thread_scratch<T> scratch(threads, scratch_carver<T>::size_of((K + Tb) * ld, Tb * ld));
    parallel_for(items, threads, [&](index_t item, int t) {
        const index_t c0 = item % cblocks * CB, cols = std::min(CB, a.channels - c0);
        const auto tile_at = tiles.locate(item / cblocks);
        const index_t s = tile_at.first, t0 = tile_at.second;
        const auto sq = a.sequence(s);
        const index_t len = std::min(Tb, sq.len - t0);
        scratch_carver<T> cv(scratch.get(t));
        T* xt = cv.take(std::size_t((K + Tb) * ld));
        T* y = cv.take(std::size_t(Tb * ld));
        const T* wt = pw.w + c0;
        const T* bias = pw.bias + c0;
        pack_conv_inputs(a, s, sq, t0 - K, K + len, c0, cols, xt, ld);
        for (index_t j = 0; j < ld; j += L)
            for (index_t i = 0; i < len; ++i)
                simd::store_aligned(y + i * ld + j,
                                    conv_lanes<T>(
                                        simd::load_aligned(bias + j), W,
                                        [&](index_t w) { return simd::load_aligned(wt + w * pw.ld + j); },
                                        [&](index_t w) { return simd::load_aligned(xt + (i + w) * ld + j); }, a.act));
        kernels::unpack_block(static_cast<const T*>(y), ld, len, cols, a.out.ptr(sq.batch, sq.begin + t0, c0),
                              a.out.stride(1), a.out.stride(2));
    });
}

// Outputs by the path the layout allows; then the snapshots and final states, written after
// every output has read the initial ones (they may be the same memory): the K inputs up to
// each snapshot's token, then the last K inputs of each sequence.
template <class Args>
void causal_conv1d_run(const Args& a, int num_threads) {
    using T = typename Args::compute_type;
    const bool streaming = a.width <= conv_max_streaming_width;
    bool done = false;
    if constexpr (Args::in_place) {
        if (streaming && a.x.stride(2) == 1 && a.out.stride(2) == 1) conv_token_major(a, num_threads), done = true;
        else if (streaming && a.x.stride(1) == 1 && a.out.stride(1) == 1)
            conv_channel_major(a, num_threads), done = true;
    }
    if (!done) conv_packed(a, num_threads);
    const index_t K = a.width - 1, CB = conv_block_channels, cblocks = (a.channels + CB - 1) / CB;
    if (a.final_state.empty() || K == 0) return;
    constexpr index_t L = index_t(simd::width<T>);
    const index_t ld = (std::min(CB, a.channels) + L - 1) / L * L;
    const int threads = resolve_threads(num_threads, a.num_seqs * cblocks);
    thread_scratch<T> scratch(threads, std::size_t(K * ld));
    parallel_for(a.num_seqs * cblocks, threads, [&](index_t item, int t) {
        const index_t s = item / cblocks, c0 = item % cblocks * CB, cols = std::min(CB, a.channels - c0);
        const auto fin = final_of(a, a, s);
        if (fin.empty()) return;  // a pad_slot sequence
        T* last = scratch.get(t);
        const auto sq = a.sequence(s);
        auto store = [&](index_t end, index_t to) {  // the K inputs before token `end` into slot `to`
            pack_conv_inputs(a, s, sq, end - K, K, c0, cols, last, ld);
            kernels::unpack_block(static_cast<const T*>(last), ld, K, cols, fin.ptr(to, c0), fin.stride(2),
                                  fin.stride(1));
        };
        // Snapshots first: their slots are nobody's initial state, and this sequence's own
        // slot, which the early ones may read, is written last.
        for (index_t k = 0; k < a.snapshot_count(s); ++k)
            if (a.snapshot_slot(s, k) >= 0) store((k + 1) * a.snapshot_interval, a.snapshot_slot(s, k));
        store(sq.len, a.state_slot(s));
    });
}

}  // namespace detail

// x, out [Bt,N,C]; weight [C,W] (weight[c][W-1] on the current token); states [Bt,C,W-1]
// (or [num_seqs,C,W-1] with cu_seqlens), oldest first; final_state may be the view of
// initial_state.
template <class XV, class WV, class OV, class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 3>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 3>>
void causal_conv1d(const XV& x, const WV& weight, const OV& out, const conv1d_options& opt = {},
                   const SIV& initial_state = {}, const SOV& final_state = {}) {
    const executor_scope threads_of_call(opt.executor);
    detail::causal_conv1d_run(detail::prepare_conv1d(x, weight, out, opt, initial_state, final_state, "causal_conv1d"),
                              opt.num_threads);
}

// One token per batch row: x, out [B,C]; state [slots,C,W-1] updated in place (row b uses
// slot state_indices[b], or b): the window slides by one.
template <class XV, class WV, class OV, class S>
void causal_conv1d_step(const XV& x, const WV& weight, const OV& out, const tensor_view<S, 3>& state,
                        const conv1d_step_options& opt = {}) {
    const executor_scope threads_of_call(opt.executor);
    const auto a = detail::prepare_conv1d_step(x, weight, out, state, opt, "causal_conv1d_step");
    using Args = std::remove_const_t<decltype(a)>;
    using T = typename Args::compute_type;
    constexpr index_t L = index_t(simd::width<T>);
    const index_t W = a.width, K = W - 1, C = a.channels, CB = detail::conv_block_channels;
    const index_t blocks = (C + CB - 1) / CB;
    kernels::for_each_slot<T>(
        opt.state_indices, a.batch, blocks, opt.num_threads, std::size_t(CB),
        [&](index_t b, index_t cb, index_t slot, T* y) {
            const index_t c0 = cb * CB, n = std::min(CB, C - c0);
            const index_t ws = a.weight.stride(0), wk = a.weight.stride(1), xs = a.x.stride(1);
            const index_t cs = K > 0 ? a.state.stride(1) : 0, ss = K > 0 ? a.state.stride(2) : 0;
            const auto* wrow = a.weight.ptr(c0);
            const auto* xp = a.x.ptr(b, c0);
            S* st = K > 0 ? a.state.ptr(slot, c0) : nullptr;
            // Per channel the window slides by one: the full operator's sum, oldest input first
            // (simd::fma: rounded as its vector lanes are, so a step gives its bits). A 16-bit
            // state holds the inputs rounded into it.
            const float* bias = a.bias ? a.bias + c0 : nullptr;
            const bool packed = wk == 1 && ws == W && ss == 1 && cs == K && xs == 1;
            detail::with_width(W, [&](auto width) {
                if constexpr (!std::is_same_v<decltype(width), index_t> && Args::in_place) {
                    if (packed) {  // contiguous weights, states and x: the window unrolled
                        detail::conv_step_channels<T, decltype(width)::value>(wrow, xp, st, bias, y, n);
                        return;
                    }
                }
                for (index_t i = 0; i < n; ++i, wrow += ws, xp += xs, st += cs) {
                    const T xc = T(*xp);
                    T acc = bias ? T(bias[i]) : T(0);
                    for (index_t w = 0; w < K; ++w) acc = simd::fma(T(wrow[w * wk]), T(st[w * ss]), acc);
                    for (index_t w = 0; w + 1 < K; ++w) st[w * ss] = st[(w + 1) * ss];
                    y[i] = simd::fma(T(wrow[K * wk]), xc, acc);
                    if (K > 0) st[(K - 1) * ss] = storage_cast<S>(xc);
                }
            });
            if (a.act == activation::silu)  // in vectors: one vector exp per L channels
                for (index_t i = 0; i < n; i += L) {
                    const std::size_t r = std::size_t(std::min(L, n - i));
                    simd::store_partial(y + i, simd::silu(simd::load_partial(y + i, r)), r);
                }
            kernels::emit_row(static_cast<const T*>(y), T(1), a.out.ptr(b, c0), a.out.stride(1), n);
        });
}

SEQMIX_ABI_END
}  // namespace seqmix
