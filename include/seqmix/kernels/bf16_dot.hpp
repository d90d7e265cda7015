#pragma once
// bf16 dot products with float accumulation (AVX512-BF16 `vdpbf16ps`: 16 lanes x 2 products
// per instruction, twice the FMA's work) on the lane panels of kernels/gemm_tile.hpp:
//   C[m][0..L) (+)= sum_k A(m, k) * B[k][0..L)
// with k taken in pairs: B is packed as [k / 2][L][2] (each lane's two consecutive k side
// by side) and A's pair (A(m, 2 i), A(m, 2 i + 1)) is two adjacent bf16 in memory, broadcast
// as one 32-bit word. A bf16 times a bf16 is exact in float, so products of bf16 inputs lose
// nothing; a float operand is split into two bf16 terms (hi + lo, 16 significant bits) where
// it must keep float accuracy (the softmax probabilities of P V). Denormal bf16 inputs count as
// zero, as the library's flush-to-zero mode has them anyway.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/abi.hpp"
#include "../core/storage_types.hpp"
#include "../core/tensor_view.hpp"
#include "gemm_tile.hpp"

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>
#define SEQMIX_HAS_BF16_DOT 1
#else
#define SEQMIX_HAS_BF16_DOT 0
#endif

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

#if SEQMIX_HAS_BF16_DOT
namespace bf16_dot {

constexpr index_t lanes = 16;  // floats per vector

// Word i of the result is word idx[i] of x: a pair interleave of two 16-word halves.
inline __m512i interleave_halves(__m512i x) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                         5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, x);
}

// Float rows src[k * ld + l] (k < k_count, l < L, L a multiple of 16) as bf16 pairs
// [k / 2][L][2]: hi = bf16(x) (round to nearest even), and, when lo is given, lo = bf16(x - hi).
// A missing last row of an odd k_count reads as zeros.
inline void pack_pairs(const float* src, index_t ld, index_t k_count, index_t L, std::uint16_t* hi, std::uint16_t* lo) {
    for (index_t k = 0; k < k_count; k += 2) {
        const float* r0 = src + k * ld;
        const float* r1 = k + 1 < k_count ? r0 + ld : nullptr;
        std::uint16_t* h = hi + k * L;  // pair row k / 2: 2 L words
        std::uint16_t* w = lo ? lo + k * L : nullptr;
        for (index_t l = 0; l < L; l += lanes) {
            const __m512 a = _mm512_loadu_ps(r0 + l), b = r1 ? _mm512_loadu_ps(r1 + l) : _mm512_setzero_ps();
            // [a0..a15 | b0..b15] as bf16, then interleaved into pairs (a_l, b_l).
            const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(b, a);
            _mm512_storeu_si512(h + 2 * l, interleave_halves(both));
            if (w) {
                // Residuals: x minus its bf16 (exact in float), rounded again.
                const __m512i bits = both;
                const __m512 a_hi =
                    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(bits)), 16));
                const __m512 b_hi = _mm512_castsi512_ps(
                    _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(bits, 1)), 16));
                const __m512i rest = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(b, b_hi), _mm512_sub_ps(a, a_hi));
                _mm512_storeu_si512(w + 2 * l, interleave_halves(rest));
            }
        }
    }
}

// Two bf16 rows r0, r1 (r1 nullptr: zeros) of n elements as one pair row [n_pad][2], n_pad = n
// rounded up to 16 (zeros past n).
inline void pack_pair_rows(const bf16* r0, const bf16* r1, index_t n, index_t n_pad, std::uint16_t* to) {
    for (index_t e = 0; e < n_pad; e += lanes) {
        const __mmask16 m = e + lanes <= n ? __mmask16(0xFFFF) : e < n ? __mmask16((1u << (n - e)) - 1) : __mmask16(0);
        const __m256i a = _mm256_maskz_loadu_epi16(m, r0 + e);
        const __m256i b = r1 ? _mm256_maskz_loadu_epi16(m, r1 + e) : _mm256_setzero_si256();
        _mm512_storeu_si512(to + 2 * e, interleave_halves(_mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1)));
    }
}

// MR rows of C by NV vectors of lanes, over k2 pairs of k. a: A(m, 2 i) at a + m a_sm + i a_sk2
// (bf16 elements; the pair's second element right after it); b: pair rows of ldb words; b2
// (or nullptr): a second B added in the same pass (the low terms of a split float operand).
template <int MR, int NV, tile_update Mode, bool Two>
inline void micro_tile(index_t k2, const bf16* a, index_t a_sm, index_t a_sk2, const std::uint16_t* b,
                       const std::uint16_t* b2, index_t ldb, float* c, index_t ldc, const float* alpha) {
    __m512 acc[MR][NV];
    if constexpr (Mode == tile_update::overwrite) {
        for (int m = 0; m < MR; ++m)
            for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_setzero_ps();
    } else {
        for (int m = 0; m < MR; ++m)
            for (int v = 0; v < NV; ++v) {
                acc[m][v] = _mm512_load_ps(c + m * ldc + v * lanes);
                if constexpr (Mode == tile_update::scale_accumulate)
                    acc[m][v] = _mm512_mul_ps(acc[m][v], _mm512_load_ps(alpha + v * lanes));
            }
    }
    for (index_t i = 0; i < k2; ++i) {
        __m512bh bv[NV], bw[NV];
        for (int v = 0; v < NV; ++v) {
            bv[v] = (__m512bh)_mm512_loadu_si512(b + i * ldb + index_t(v) * 2 * lanes);
            if constexpr (Two) bw[v] = (__m512bh)_mm512_loadu_si512(b2 + i * ldb + index_t(v) * 2 * lanes);
        }
        const bf16* ai = a + i * a_sk2;
        for (int m = 0; m < MR; ++m) {
            std::int32_t pair = 0;
            std::memcpy(&pair, ai + m * a_sm, sizeof pair);
            const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
            for (int v = 0; v < NV; ++v) {
                acc[m][v] = _mm512_dpbf16_ps(acc[m][v], av, bv[v]);
                if constexpr (Two) acc[m][v] = _mm512_dpbf16_ps(acc[m][v], av, bw[v]);
            }
        }
    }
    for (int m = 0; m < MR; ++m)
        for (int v = 0; v < NV; ++v) _mm512_store_ps(c + m * ldc + v * lanes, acc[m][v]);
}

template <int NV, tile_update Mode, bool Two, int MR = 8>
inline void panel_rows(index_t m_count, index_t k2, const bf16* a, index_t a_sm, index_t a_sk2, const std::uint16_t* b,
                       const std::uint16_t* b2, index_t ldb, float* c, index_t ldc, const float* alpha) {
    index_t m = 0;
    for (; m + MR <= m_count; m += MR)
        micro_tile<MR, NV, Mode, Two>(k2, a + m * a_sm, a_sm, a_sk2, b, b2, ldb, c + m * ldc, ldc, alpha);
    if constexpr (MR > 1)
        if (m < m_count)
            panel_rows<NV, Mode, Two, MR / 2>(m_count - m, k2, a + m * a_sm, a_sm, a_sk2, b, b2, ldb, c + m * ldc, ldc,
                                              alpha);
}

// The whole panel: M rows of C (row stride ldc floats), L lanes (a multiple of 16), k2 pairs;
// B (and B2, nullptr: none) pair rows of 2 L words.
template <tile_update Mode>
inline void panel_gemm(index_t M, index_t k2, index_t L, const bf16* a, index_t a_sm, index_t a_sk2,
                       const std::uint16_t* b, const std::uint16_t* b2, float* c, index_t ldc,
                       const float* alpha = nullptr) {
    const index_t ldb = 2 * L;
    auto run = [&](auto two) {
        constexpr bool Two = decltype(two)::value;
        index_t l = 0;
        for (; l + 2 * lanes <= L; l += 2 * lanes)
            panel_rows<2, Mode, Two>(M, k2, a, a_sm, a_sk2, b + 2 * l, Two ? b2 + 2 * l : nullptr, ldb, c + l, ldc,
                                     alpha ? alpha + l : nullptr);
        for (; l < L; l += lanes)
            panel_rows<1, Mode, Two>(M, k2, a, a_sm, a_sk2, b + 2 * l, Two ? b2 + 2 * l : nullptr, ldb, c + l, ldc,
                                     alpha ? alpha + l : nullptr);
    };
    if (b2) run(std::true_type{});
    else run(std::false_type{});
}

}  // namespace bf16_dot
#endif

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
