#pragma once
// Unit-lower triangular solves of chunk size, vectorized across the right-hand sides: the
// UT transform of the delta rule, (I + strictly_lower(diag(beta) K K^T))^-1 applied to
// beta V and beta K, is one of these per right-hand-side panel.
#include <algorithm>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/vec.hpp"
#include "gemm_tile.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

namespace detail {
// acc[R] += sum_{j<R} A[R][j] acc[j] for R = 1 .. MR-1: the triangle of a register block,
// one row per instantiation so every loop has a compile-time trip count (fully unrolled:
// the block never leaves the registers).
template <class T, int MR, int NV, int R = 1>
inline void lower_triangle(simd::vec<T> (&acc)[MR][NV], const T* A, index_t lda) {
    if constexpr (R < MR) {
        for (int j = 0; j < R; ++j) {
            const simd::vec<T> a(A[R * lda + j]);
            for (int v = 0; v < NV; ++v) acc[R][v] = simd::fma(a, acc[j][v], acc[R][v]);
        }
        lower_triangle<T, MR, NV, R + 1>(acc, A, lda);
    }
}

// Rows [t0, t0 + MR) of NV vectors of lanes, solved in registers: first their dependence on
// every earlier row (final already), then the triangle among themselves. MR and NV are
// compile-time, so the block stays in registers (a runtime row count would spill it).
template <class T, int MR, int NV>
inline void lower_solve_block(index_t t0, const T* A, index_t lda, T* X, index_t ldx) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    V acc[MR][NV];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = simd::load_aligned(X + (t0 + r) * ldx + v * W);
    for (index_t s = 0; s < t0; ++s) {
        V xs[NV];
        for (int v = 0; v < NV; ++v) xs[v] = simd::load_aligned(X + s * ldx + v * W);
        for (int r = 0; r < MR; ++r) {
            const V a(A[(t0 + r) * lda + s]);
            for (int v = 0; v < NV; ++v) acc[r][v] = simd::fma(a, xs[v], acc[r][v]);
        }
    }
    lower_triangle<T, MR, NV>(acc, A + t0 * lda + t0, lda);
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) simd::store_aligned(X + (t0 + r) * ldx + v * W, acc[r][v]);
}

// Rows [t0, L) in blocks of MR, the tail in halving blocks.
template <class T, int MR, int NV>
inline void lower_solve_panel(index_t t0, index_t L, const T* A, index_t lda, T* X, index_t ldx) {
    for (; t0 + MR <= L; t0 += MR) lower_solve_block<T, MR, NV>(t0, A, lda, X, ldx);
    if constexpr (MR > 1) {
        if (t0 < L) lower_solve_panel<T, MR / 2, NV>(t0, L, A, lda, X, ldx);
    }
}
}  // namespace detail

// X <- (I - strictly_lower(A))^-1 X, in place, by forward substitution over the rows:
//   X_t += sum_{s<t} A[t][s] X_s
// X is [L][ldx] with `lanes` lanes (a multiple of the vector width, X 64-byte aligned);
// only A's entries below the diagonal are read. Lanes go in panels of NV vectors, rows in
// blocks of the micro-tile height, each block held in registers through its dependence on
// the earlier rows and its own triangle (no store-to-load chains between rows).
template <class T>
void unit_lower_solve(index_t L, const T* A, index_t lda, T* X, index_t ldx, index_t lanes) {
    constexpr index_t W = index_t(simd::width<T>);
    constexpr int MR = panel_blocking<T>::mr, NV = panel_blocking<T>::nv;
    index_t l = 0;
    for (; l + NV * W <= lanes; l += NV * W) detail::lower_solve_panel<T, MR, NV>(0, L, A, lda, X + l, ldx);
    for (; l < lanes; l += W) detail::lower_solve_panel<T, MR, 1>(0, L, A, lda, X + l, ldx);
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
