#pragma once
// The Mamba-1 selective scan over one block of channels (one vector of them) and a tile of
// tokens: channels in SIMD lanes, a block of states held in registers across the tile,
// per (token, state) one vector exp(d A), one multiply and two FMAs:
//   h_j = exp(d A_j) h_j + (d u) B_j,   y += C_j h_j.
// The operator packs the tile (steps after bias and softplus, d u, the B and C rows) so
// this loop only ever reads aligned scratch or unit-stride rows.
#include <algorithm>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/exp.hpp"
#include "../simd/vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// One token tile of one channel block. d, du, y: [len][W] (lane = channel); B, C: [len]
// rows of S values (row strides ldb, ldc); At: [S][W] the block's A transposed; h: [S][W]
// the state, read and written. y is overwritten with C . h.
template <class T>
struct scan_tile {
    const T *d = nullptr, *du = nullptr, *B = nullptr, *C = nullptr, *At = nullptr;
    index_t ldb = 0, ldc = 0, len = 0, S = 0;
    T *h = nullptr, *y = nullptr;
};

// States [s0, s0 + SB) of the tile, in registers.
template <int SB, class T>
inline void scan_states(const scan_tile<T>& x, index_t s0) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    V h[SB];
    for (int j = 0; j < SB; ++j) h[j] = simd::load_aligned(x.h + (s0 + j) * W);
    const T* At = x.At + s0 * W;
    for (index_t t = 0; t < x.len; ++t) {
        const V d = simd::load_aligned(x.d + t * W), du = simd::load_aligned(x.du + t * W);
        const T* b = x.B + t * x.ldb + s0;
        const T* c = x.C + t * x.ldc + s0;
        V y = s0 == 0 ? V(T(0)) : simd::load_aligned(x.y + t * W);
        for (int j = 0; j < SB; ++j) {
            const V decay = simd::exp(d * simd::load_aligned(At + j * W));
            h[j] = simd::fma(decay, h[j], du * V(b[j]));
            y = simd::fma(h[j], V(c[j]), y);
        }
        simd::store_aligned(x.y + t * W, y);
    }
    for (int j = 0; j < SB; ++j) simd::store_aligned(x.h + (s0 + j) * W, h[j]);
}

// The whole tile: states in blocks of 16 (the registers a block's state and its exps
// leave free), the rest in 8, 4, 2, 1. y accumulates over the blocks in state order.
template <class T>
void scan_tile_run(const scan_tile<T>& x) {
    index_t s0 = 0;
    for (; s0 + 16 <= x.S; s0 += 16) scan_states<16>(x, s0);
    if (x.S - s0 >= 8) scan_states<8>(x, s0), s0 += 8;
    if (x.S - s0 >= 4) scan_states<4>(x, s0), s0 += 4;
    if (x.S - s0 >= 2) scan_states<2>(x, s0), s0 += 2;
    if (x.S - s0 >= 1) scan_states<1>(x, s0);
}

// One decode step of one channel, its S states in lanes: h_j = exp(d A_j) h_j + du B_j;
// returns the lanes of sum_j C_j h_j (reduced by the caller, W channels at a time).
// h, A, B, C: S unit-stride values; h and A may be stored as bf16 / fp16 (h rounded on store,
// the sum taken on the unrounded values).
template <class T, class St, class Aw>
__attribute__((always_inline)) inline simd::vec<T> scan_step_channel(St* h, const Aw* A, T d, T du, const T* B,
                                                                     const T* C, index_t S) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    const V dv(d), duv(du);
    V acc(T(0));
    index_t j = 0;
    for (; j + W <= S; j += W) {
        const V hv =
            simd::fma(simd::exp(dv * simd::load_as<T>(A + j)), simd::load_as<T>(h + j), duv * simd::load(B + j));
        simd::store_as(h + j, hv);
        acc = simd::fma(hv, simd::load(C + j), acc);
    }
    if (j < S) {
        const std::size_t r = std::size_t(S - j);
        const V hv = simd::fma(simd::exp(dv * simd::load_as_partial<T>(A + j, r)), simd::load_as_partial<T>(h + j, r),
                               duv * simd::load_partial(B + j, r));
        simd::store_as_partial(h + j, hv, r);
        acc = simd::fma(hv, simd::load_partial(C + j, r), acc);
    }
    return acc;
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
