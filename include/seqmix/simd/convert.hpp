#pragma once
// Vectors of floats from and to the storage types (core/storage_types.hpp), bit for bit the
// scalar conversions on every target: bf16 by shifts and integer round-to-nearest-even
// (vcvtneps2bf16 where AVX512-BF16 has it; float subnormals become signed zeros), fp16 with
// the F16C / AVX-512 conversions (round to nearest even, FTZ and DAZ do not apply to them), fp8_e4m3 through fp16 (so
// no float subnormal is ever made for the library's DAZ to zero). Targets without them (SSE2, Arm) go through the
// scalar conversions lane by lane.
//   load_float(p)              width<float> elements at p as floats (float: a plain load)
//   load_float_partial(p, n)   the first n < width<float> of them, the rest 0
//   store_float(p, v)          v rounded into width<float> elements at p
//   store_float_partial(p, v, n)
#include <cstddef>
#include <cstdint>

#include "../core/abi.hpp"
#include "../core/storage_types.hpp"
#include "vec.hpp"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace simd {

namespace detail {
using fvec = vec<float>;
constexpr std::size_t fw = width<float>;

// Lane by lane through the scalar conversions (any target, and partial vectors).
template <class S>
inline fvec load_lanes(const S* p, std::size_t n) {
    alignas(64) float lanes[fw];
    for (std::size_t i = 0; i < fw; ++i) lanes[i] = i < n ? float(p[i]) : 0.0f;
    return fvec::load_aligned(lanes);
}
template <class S>
inline void store_lanes(S* p, const fvec& v, std::size_t n) {
    alignas(64) float lanes[fw];
    v.store_aligned(lanes);
    for (std::size_t i = 0; i < n; ++i) p[i] = S(lanes[i]);
}

#if defined(__AVX512F__)
// float bits -> bf16 bits in the low half of each lane (scalar: storage_detail::bf16_from_float,
// subnormals to signed zeros).
inline __m512i bf16_round(__m512 v) {
    const __m512i x0 = _mm512_castps_si512(v);
    const __m512i x = _mm512_mask_and_epi32(x0, _mm512_testn_epi32_mask(x0, _mm512_set1_epi32(0x7F800000)), x0,
                                            _mm512_set1_epi32(int(0x80000000u)));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    const __m512i rounded =
        _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40));
    const __mmask16 nan =
        _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
    return _mm512_mask_mov_epi32(rounded, nan, quiet);
}
#elif defined(__AVX2__)
inline __m256i bf16_round(__m256 v) {
    const __m256i x0 = _mm256_castps_si256(v);
    const __m256i tiny =
        _mm256_cmpeq_epi32(_mm256_and_si256(x0, _mm256_set1_epi32(0x7F800000)), _mm256_setzero_si256());
    const __m256i x = _mm256_andnot_si256(_mm256_and_si256(tiny, _mm256_set1_epi32(0x7FFFFFFF)), x0);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    // NaN: magnitude above Inf's bits (signed compare is right: both sides are below 2^31).
    const __m256i nan =
        _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7FFFFFFF)), _mm256_set1_epi32(0x7F800000));
    return _mm256_blendv_epi8(rounded, quiet, nan);
}
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__F16C__))
// Up to 16 fp8_e4m3 bytes as the fp16 of each value / 2^8 (scalar: fp8_e4m3_to_float): the
// byte sign-extended to 16 bits and shifted left 7 is S.0EEEE.MMM0000000, an fp16 for normals
// and subnormals alike (fp16 subnormals widen exactly); NaN (S.1111.111) is set apart.
inline __m256i fp8_e4m3_as_fp16(__m128i bytes) {
    const __m256i h =
        _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(bytes), 7), _mm256_set1_epi16(short(0xBF80)));
    const __m256i nan = _mm256_cmpeq_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x3F80)), _mm256_set1_epi16(0x3F80));
    const __m256i quiet =
        _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16(short(0x8000))), _mm256_set1_epi16(0x7E00));
    return _mm256_blendv_epi8(h, quiet, nan);  // the sign kept
}
#endif
}  // namespace detail

inline vec<float> load_float(const float* p) { return load(p); }
inline vec<float> load_float_partial(const float* p, std::size_t n) { return load_partial(p, n); }
inline void store_float(float* p, const vec<float>& v) { store(p, v); }
inline void store_float_partial(float* p, const vec<float>& v, std::size_t n) { store_partial(p, v, n); }

inline vec<float> load_float(const bf16* p) {
#if defined(__AVX512F__)
    if constexpr (detail::fw == 16)
        return vec<float>(_mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16)));
#elif defined(__AVX2__)
    if constexpr (detail::fw == 8)
        return vec<float>(_mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16)));
#endif
    return detail::load_lanes(p, detail::fw);
}
inline void store_float(bf16* p, const vec<float>& v) {
#if defined(__AVX512F__)
    if constexpr (detail::fw == 16) {
#if defined(__AVX512BF16__)
        // One instruction for the ten of the integer rounding, the same bits.
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), (__m256i)_mm512_cvtneps_pbh(v));
        return;
#endif
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(detail::bf16_round(v)));
        return;
    }
#elif defined(__AVX2__)
    if constexpr (detail::fw == 8) {
        const __m256i h = detail::bf16_round(v);  // values < 2^16: the unsigned-saturating pack keeps them
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(h, h), 0xD8);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
        return;
    }
#endif
    detail::store_lanes(p, v, detail::fw);
}

inline vec<float> load_float(const fp16* p) {
#if defined(__AVX512F__)
    if constexpr (detail::fw == 16)
        return vec<float>(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#elif defined(__F16C__)
    if constexpr (detail::fw == 8)
        return vec<float>(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#endif
    return detail::load_lanes(p, detail::fw);
}
inline void store_float(fp16* p, const vec<float>& v) {
#if defined(__AVX512F__)
    if constexpr (detail::fw == 16) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                            _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        return;
    }
#elif defined(__F16C__)
    if constexpr (detail::fw == 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        return;
    }
#endif
    detail::store_lanes(p, v, detail::fw);
}

inline vec<float> load_float(const fp8_e4m3* p) {
    // Through fp16: 4 instructions fewer than building float bits.
#if defined(__AVX512F__)
    if constexpr (detail::fw == 16) {
        const __m256i h = detail::fp8_e4m3_as_fp16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return vec<float>(_mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f)));
    }
#elif defined(__AVX2__) && defined(__F16C__)
    if constexpr (detail::fw == 8) {
        const __m256i h = detail::fp8_e4m3_as_fp16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
        return vec<float>(_mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_set1_ps(256.0f)));
    }
#endif
    return detail::load_lanes(p, detail::fw);
}
// fp8 caches are written by the engine that quantizes them; lane by lane is enough here.
inline void store_float(fp8_e4m3* p, const vec<float>& v) { detail::store_lanes(p, v, detail::fw); }

// Partial vectors: lane by lane (the tails of rows).
template <class S, class = std::enable_if_t<is_storage_type<S>>>
inline vec<float> load_float_partial(const S* p, std::size_t n) {
    return detail::load_lanes(p, n);
}
template <class S, class = std::enable_if_t<is_storage_type<S>>>
inline void store_float_partial(S* p, const vec<float>& v, std::size_t n) {
    detail::store_lanes(p, v, n);
}

// Vectors of the compute type T from elements stored as S, and back (S == T: plain loads
// and stores; a storage type widens to float).
template <class T, class S>
inline vec<T> load_as(const S* p) {
    if constexpr (std::is_same_v<S, T>) {
        return load(p);
    } else {
        static_assert(std::is_same_v<T, float>, "seqmix: storage types widen to float");
        return load_float(p);
    }
}
template <class T, class S>
inline vec<T> load_as_partial(const S* p, std::size_t n) {
    if constexpr (std::is_same_v<S, T>) {
        return load_partial(p, n);
    } else {
        static_assert(std::is_same_v<T, float>, "seqmix: storage types widen to float");
        return load_float_partial(p, n);
    }
}
template <class S, class T>
inline void store_as(S* p, const vec<T>& v) {
    if constexpr (std::is_same_v<S, T>) store(p, v);
    else store_float(p, v);
}
template <class S, class T>
inline void store_as_partial(S* p, const vec<T>& v, std::size_t n) {
    if constexpr (std::is_same_v<S, T>) store_partial(p, v, n);
    else store_float_partial(p, v, n);
}

}  // namespace simd
SEQMIX_ABI_END
}  // namespace seqmix
