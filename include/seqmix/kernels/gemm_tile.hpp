#pragma once
// Small GEMM tiles on "lane panels": C[m][0..L) (+)= sum_k A(m, k) * B[k][0..L).
// B and C are packed with the L lanes contiguous (row stride ldb / ldc, multiples of the
// vector width); A is read one scalar at a time through any two strides and broadcast.
// With lanes = query rows this computes S^T = K Q^T straight from K's natural layout and
// O^T += V^T P^T straight from V's: no transposition of K or V is ever needed.
#include <cstddef>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

enum class tile_update {
    overwrite,         // C = A B
    accumulate,        // C = C + A B
    scale_accumulate,  // C = C * diag(alpha) + A B   (alpha per lane: online-softmax rescale)
};

// Register-blocked micro-kernel: MR rows of C by NV vectors of lanes stay in registers
// while k streams; each step is NV vector loads of B, MR broadcasts of A, MR*NV FMAs.
template <class T, int MR, int NV, tile_update Mode>
inline void micro_tile(index_t kc, const T* a, index_t a_sm, index_t a_sk, const T* b, index_t ldb, T* c, index_t ldc,
                       const T* alpha) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    V acc[MR][NV];
    if constexpr (Mode == tile_update::overwrite) {
        for (int m = 0; m < MR; ++m)
            for (int v = 0; v < NV; ++v) acc[m][v] = V(T(0));
    } else if constexpr (Mode == tile_update::accumulate) {
        for (int m = 0; m < MR; ++m)
            for (int v = 0; v < NV; ++v) acc[m][v] = simd::load_aligned(c + m * ldc + v * W);
    } else {
        V scale[NV];
        for (int v = 0; v < NV; ++v) scale[v] = simd::load_aligned(alpha + v * W);
        for (int m = 0; m < MR; ++m)
            for (int v = 0; v < NV; ++v) acc[m][v] = simd::load_aligned(c + m * ldc + v * W) * scale[v];
    }
    for (index_t k = 0; k < kc; ++k) {
        V bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = simd::load_aligned(b + k * ldb + v * W);
        const T* ak = a + k * a_sk;
        for (int m = 0; m < MR; ++m) {
            const V av(ak[m * a_sm]);
            for (int v = 0; v < NV; ++v) acc[m][v] = simd::fma(av, bv[v], acc[m][v]);
        }
    }
    for (int m = 0; m < MR; ++m)
        for (int v = 0; v < NV; ++v) simd::store_aligned(c + m * ldc + v * W, acc[m][v]);
}

// Register blocking of the target: 32 vector registers hold 8x2 accumulators, 16 hold 4x2.
template <class T>
struct panel_blocking {
    // 8x2 measured best on AVX-512 against 12x2, 6x4 and 4x4.
    static constexpr int mr = simd::register_count >= 32 ? 8 : 4;
    static constexpr int nv = 2;
};

namespace detail {
template <class T, int NV, tile_update Mode, int MR = panel_blocking<T>::mr>
inline void panel_rows(index_t m_count, index_t kc, const T* a, index_t a_sm, index_t a_sk, const T* b, index_t ldb,
                       T* c, index_t ldc, const T* alpha) {
    index_t m = 0;
    for (; m + MR <= m_count; m += MR)
        micro_tile<T, MR, NV, Mode>(kc, a + m * a_sm, a_sm, a_sk, b, ldb, c + m * ldc, ldc, alpha);
    if constexpr (MR > 1) {
        if (m < m_count)
            panel_rows<T, NV, Mode, MR / 2>(m_count - m, kc, a + m * a_sm, a_sm, a_sk, b, ldb, c + m * ldc, ldc, alpha);
    }
}
}  // namespace detail

// The whole panel: M rows of C, `lanes` lanes (a multiple of the vector width).
// Lane blocks are outermost so the B panel of one block stays in L1 across all of M.
template <tile_update Mode, class T>
inline void panel_gemm(index_t M, index_t K, index_t lanes, const T* a, index_t a_sm, index_t a_sk, const T* b,
                       index_t ldb, T* c, index_t ldc, const T* alpha = nullptr) {
    constexpr index_t W = index_t(simd::width<T>);
    constexpr int NV = panel_blocking<T>::nv;
    index_t l = 0;
    for (; l + NV * W <= lanes; l += NV * W)
        detail::panel_rows<T, NV, Mode>(M, K, a, a_sm, a_sk, b + l, ldb, c + l, ldc, alpha ? alpha + l : nullptr);
    for (; l < lanes; l += W)
        detail::panel_rows<T, 1, Mode>(M, K, a, a_sm, a_sk, b + l, ldb, c + l, ldc, alpha ? alpha + l : nullptr);
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
