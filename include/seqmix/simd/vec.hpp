#pragma once
// The SIMD layer: every xsimd call in seqmix lives under include/seqmix/simd/, so a
// newer xsimd (or another backend) changes these files only. The architecture comes
// from the compiler flags (xsimd::default_arch): SSE2, AVX2 or AVX-512 from one source.
#include "../core/abi.hpp"
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace simd {

template <class T, class Arch = xsimd::default_arch>
using vec = xsimd::batch<T, Arch>;

template <class T>
constexpr std::size_t width = vec<T>::size;

// Vector registers of the target: sizes the register-blocked micro-kernels.
#if defined(__AVX512F__)
constexpr int register_count = 32;
#else
constexpr int register_count = 16;
#endif

template <class T>
inline vec<T> broadcast(T x) {
    return vec<T>(x);
}

// Keeps a loaded vector in a register: without it GCC folds the load into every FMA that
// uses it (a memory operand per use), which turns a kernel that reuses a vector across
// rows into one bound by loads.
template <class T>
inline void keep_in_register(vec<T>& v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    typename vec<T>::register_type r = v;
    __asm__("" : "+v"(r));
    v = vec<T>(r);
#else
    (void)v;
#endif
}
template <class T>
inline vec<T> load(const T* p) {
    return vec<T>::load_unaligned(p);
}
template <class T>
inline vec<T> load_aligned(const T* p) {
    return vec<T>::load_aligned(p);
}
template <class T>
inline void store(T* p, const vec<T>& v) {
    v.store_unaligned(p);
}
template <class T>
inline void store_aligned(T* p, const vec<T>& v) {
    v.store_aligned(p);
}
// a * b + c with one rounding, always. xsimd 8.1 has no AVX-512 fma: its generic a * b + c
// is fused or not at the compiler's discretion (-ffp-contract), which can differ between
// two instantiations of one kernel, and so between two splits of the same columns.
template <class T>
inline vec<T> fma(const vec<T>& a, const vec<T>& b, const vec<T>& c) {
#if defined(__AVX512F__)
    if constexpr (vec<T>::size * sizeof(T) == 64) {
        if constexpr (std::is_same_v<T, float>) return vec<T>(_mm512_fmadd_ps(a, b, c));
        else if constexpr (std::is_same_v<T, double>) return vec<T>(_mm512_fmadd_pd(a, b, c));
        else return xsimd::fma(a, b, c);
    } else {
        return xsimd::fma(a, b, c);
    }
#else
    return xsimd::fma(a, b, c);
#endif
}
// The same operation on one value, rounded as a lane of the vector fma above is: fused where
// the target has FMA instructions (x86 FMA3 / AVX-512, every AArch64 core: xsimd's NEON fma is
// vfmaq), a multiply and an add where it has not (SSE2).
template <class T, class = std::enable_if_t<std::is_floating_point_v<T>>>
inline T fma(T a, T b, T c) {
#if defined(__FMA__) || defined(__AVX512F__) || defined(__ARM_FEATURE_FMA)
    return std::fma(a, b, c);
#else
    return a * b + c;
#endif
}
template <class T>
inline vec<T> max(const vec<T>& a, const vec<T>& b) {
    return xsimd::max(a, b);
}
template <class T>
inline vec<T> abs(const vec<T>& a) {
    return xsimd::abs(a);
}
template <class T>
inline vec<T> tanh(const vec<T>& a) {
    return xsimd::tanh(a);
}
template <class T, class B>
inline vec<T> select(const B& mask, const vec<T>& a, const vec<T>& b) {
    return xsimd::select(mask, a, b);
}

template <class B>
inline bool any(const B& mask) {
    return xsimd::any(mask);
}
// Lanes S .. S + width - 1 of the concatenation (a, b): a vector of consecutive elements
// starting S past an aligned one, made from two aligned loads (an unaligned 64-byte load
// crosses a cache line and takes two load slots).
template <int S, class T>
inline vec<T> shift_lanes(const vec<T>& a, const vec<T>& b) {
    static_assert(S >= 0 && S < int(width<T>), "shift_lanes: 0 <= S < width");
    if constexpr (S == 0) {
        return a;
    } else {
#if defined(__AVX512F__)
        if constexpr (sizeof(vec<T>) == 64) {
            if constexpr (std::is_same_v<T, float>)
                return vec<T>(
                    _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(b), _mm512_castps_si512(a), S)));
            else
                return vec<T>(
                    _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(b), _mm512_castpd_si512(a), S)));
        }
#endif
        alignas(64) T both[2 * width<T>];
        a.store_aligned(both);
        b.store_aligned(both + width<T>);
        return vec<T>::load_unaligned(both + S);
    }
}

// Lane i of the result is lane idx[i] of the concatenation (a, b) (idx[i] < 2 width<T>).
template <class T>
inline vec<T> permute2(const vec<T>& a, const vec<T>& b, const std::int32_t* idx) {
#if defined(__AVX512F__)
    if constexpr (sizeof(vec<T>) == 64) {
        if constexpr (std::is_same_v<T, float>)
            return vec<T>(_mm512_permutex2var_ps(a, _mm512_loadu_si512(static_cast<const void*>(idx)), b));
        else
            return vec<T>(_mm512_permutex2var_pd(
                a, _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx))), b));
    }
#endif
    alignas(64) T both[2 * width<T>], out[width<T>];
    a.store_aligned(both);
    b.store_aligned(both + width<T>);
    for (std::size_t i = 0; i < width<T>; ++i) out[i] = both[idx[i]];
    return vec<T>::load_aligned(out);
}

template <class T>
inline auto isnan(const vec<T>& a) {
    return xsimd::isnan(a);
}
// The lanes of a comparison as bits (lane i: bit i); AVX-512 keeps them in a mask register.
template <class T>
inline unsigned mask_bits(const xsimd::batch_bool<T, xsimd::default_arch>& m) {
#if defined(__AVX512F__)
    if constexpr (sizeof(vec<T>) == 64)
        return unsigned(typename xsimd::batch_bool<T, xsimd::default_arch>::register_type(m));
#endif
    alignas(64) T lanes[width<T>];
    xsimd::select(m, vec<T>(T(1)), vec<T>(T(0))).store_aligned(lanes);
    unsigned bits = 0;
    for (std::size_t i = 0; i < width<T>; ++i) bits |= unsigned(lanes[i] != T(0)) << i;
    return bits;
}

// Horizontal reductions (xsimd 8.1 has hadd only; later releases call it reduce_add).
template <class T>
inline T hsum(const vec<T>& v) {
    return xsimd::hadd(v);
}
// Lane i of the result is the sum of rows[i] (rows holds width<T> vectors).
template <class T>
inline vec<T> hsum_rows(const vec<T>* rows) {
    const vec<T> sums = xsimd::haddp(rows);
#if defined(__AVX512F__)
    // xsimd 8.1's AVX-512 float haddp returns the sums in lane order
    // 0 1 4 5 2 3 6 7 8 9 12 13 10 11 14 15; this permutation is its own inverse.
    if constexpr (std::is_same_v<T, float> && sizeof(vec<T>) == 64)
        return vec<T>(
            _mm512_permutexvar_ps(_mm512_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15), sums));
#endif
    return sums;
}
template <class T>
inline T hmax(const vec<T>& v) {
#if defined(__AVX512F__)
    if constexpr (sizeof(vec<T>) == 64) {
        if constexpr (std::is_same_v<T, float>) return _mm512_reduce_max_ps(v);
        else return _mm512_reduce_max_pd(v);
    }
#endif
    alignas(64) T lanes[width<T>];
    v.store_aligned(lanes);
    T m = lanes[0];
    for (std::size_t i = 1; i < width<T>; ++i) m = std::max(m, lanes[i]);
    return m;
}

// Loads and stores of the first n < width lanes; the other lanes read as `fill`.
// AVX-512 uses mask registers; other targets go through a small stack buffer.
template <class T>
inline vec<T> load_partial(const T* p, std::size_t n, T fill = T(0)) {
#if defined(__AVX512F__)
    if constexpr (sizeof(vec<T>) == 64) {
        if constexpr (std::is_same_v<T, float>) {
            const __mmask16 m = __mmask16((1u << n) - 1u);
            return vec<T>(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), m, p));
        } else {
            const __mmask8 m = __mmask8((1u << n) - 1u);
            return vec<T>(_mm512_mask_loadu_pd(_mm512_set1_pd(fill), m, p));
        }
    }
#endif
    alignas(64) T lanes[width<T>];
    for (std::size_t i = 0; i < width<T>; ++i) lanes[i] = i < n ? p[i] : fill;
    return vec<T>::load_aligned(lanes);
}

template <class T>
inline void store_partial(T* p, const vec<T>& v, std::size_t n) {
#if defined(__AVX512F__)
    if constexpr (sizeof(vec<T>) == 64) {
        if constexpr (std::is_same_v<T, float>) {
            _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1u), v);
        } else {
            _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1u), v);
        }
        return;
    }
#endif
    alignas(64) T lanes[width<T>];
    v.store_aligned(lanes);
    for (std::size_t i = 0; i < n; ++i) p[i] = lanes[i];
}

}  // namespace simd
SEQMIX_ABI_END
}  // namespace seqmix

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace simd {
// Prefetch the cache line holding p (to L1: it is read soon).
template <class T>
inline void prefetch_line(const T* p) {
    __builtin_prefetch(p, 0, 3);
}
// Prefetch (to L2) the cache lines holding n elements from p.
template <class T>
inline void prefetch(const T* p, std::size_t n) {
    const char* c = reinterpret_cast<const char*>(p);
    for (std::size_t b = 0; b < n * sizeof(T); b += 64) __builtin_prefetch(c + b, 0, 2);
}

// Copies n elements from x to y with stores that bypass the caches (the whole vectors at
// aligned addresses; the ends plainly): for data written once and not read soon, as state
// snapshots, it saves each line's read for ownership and leaves the caches to the working
// set. Streamed stores are weakly ordered: stream_fence() after the last copy.
template <class T>
inline void copy_streaming(const T* x, T* y, std::size_t n) {
#if defined(__SSE2__)
    constexpr std::size_t W = width<T>;
    constexpr std::size_t bytes = W * sizeof(T);
    std::size_t i = 0;
    while (i < n && reinterpret_cast<std::uintptr_t>(y + i) % bytes != 0) y[i] = x[i], ++i;
    if (reinterpret_cast<std::uintptr_t>(y + i) % bytes == 0) {
        for (; i + W <= n; i += W) {
            const typename vec<T>::register_type r = load(x + i);
            if constexpr (std::is_same_v<T, float> && bytes == 64) _mm512_stream_ps(y + i, r);
            else if constexpr (std::is_same_v<T, double> && bytes == 64) _mm512_stream_pd(y + i, r);
            else if constexpr (std::is_same_v<T, float> && bytes == 32) _mm256_stream_ps(y + i, r);
            else if constexpr (std::is_same_v<T, double> && bytes == 32) _mm256_stream_pd(y + i, r);
            else if constexpr (std::is_same_v<T, float>) _mm_stream_ps(y + i, r);
            else _mm_stream_pd(y + i, r);
        }
    }
    for (; i < n; ++i) y[i] = x[i];
#else
    std::copy(x, x + n, y);
#endif
}

// Orders every streamed store before the stores that follow (and so before a barrier).
inline void stream_fence() {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}
}  // namespace simd
SEQMIX_ABI_END
}  // namespace seqmix
