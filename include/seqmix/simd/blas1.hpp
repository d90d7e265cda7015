#pragma once
// Level-1 vector kernels over contiguous arrays of any length (masked tails). The arrays
// they only read may be stored as S (bf16, fp16, fp8_e4m3): widened to T as they load.
#include <cstddef>
#include <type_traits>

#include "../core/abi.hpp"
#include "convert.hpp"
#include "vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace simd {

// sum_i a[i] * b[i], accumulated in T with four independent vector accumulators.
template <class T>
inline T dot(const T* a, const T* b, std::size_t n) {
    constexpr std::size_t W = width<T>;
    vec<T> acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
    std::size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        acc0 = fma(load(a + i), load(b + i), acc0);
        acc1 = fma(load(a + i + W), load(b + i + W), acc1);
        acc2 = fma(load(a + i + 2 * W), load(b + i + 2 * W), acc2);
        acc3 = fma(load(a + i + 3 * W), load(b + i + 3 * W), acc3);
    }
    for (; i + W <= n; i += W) acc0 = fma(load(a + i), load(b + i), acc0);
    if (i < n) acc1 = fma(load_partial(a + i, n - i), load_partial(b + i, n - i), acc1);
    return hsum((acc0 + acc1) + (acc2 + acc3));
}

// y[i] += alpha * x[i]
template <class T, class S>
inline void axpy(T alpha, const S* x, T* y, std::size_t n) {
    constexpr std::size_t W = width<T>;
    const vec<T> a(alpha);
    std::size_t i = 0;
    for (; i + W <= n; i += W) store(y + i, fma(a, load_as<T>(x + i), load(y + i)));
    if (i < n) store_partial(y + i, fma(a, load_as_partial<T>(x + i, n - i), load_partial(y + i, n - i)), n - i);
}

// y[i] *= alpha
template <class T>
inline void scale(T alpha, T* y, std::size_t n) {
    constexpr std::size_t W = width<T>;
    const vec<T> a(alpha);
    std::size_t i = 0;
    for (; i + W <= n; i += W) store(y + i, a * load(y + i));
    if (i < n) store_partial(y + i, a * load_partial(y + i, n - i), n - i);
}

// y[i] = x[i] (short rows: inline vector moves instead of a memmove call)
template <class S, class T>
inline void copy(const S* x, T* y, std::size_t n) {
    constexpr std::size_t W = width<T>;
    std::size_t i = 0;
    for (; i + W <= n; i += W) store(y + i, load_as<T>(x + i));
    if (i < n) store_partial(y + i, load_as_partial<T>(x + i, n - i), n - i);
}

// y[i] = alpha * x[i], rounded once into y's storage type D (bf16, ...) when it is one.
template <class T, class D>
inline void scaled_copy(T alpha, const T* x, D* y, std::size_t n) {
    constexpr std::size_t W = width<T>;
    const vec<T> a(alpha);
    std::size_t i = 0;
    for (; i + W <= n; i += W) store_as(y + i, a * load(x + i));
    if (i < n) store_as_partial(y + i, a * load_partial(x + i, n - i), n - i);
}

// false if any x[i] is Inf or NaN (x * 0 is exactly 0 for every finite x).
template <class S>
inline bool all_finite(const S* x, std::size_t n) {
    using T = compute_type_of<S>;
    constexpr std::size_t W = width<T>;
    vec<T> acc(T(0));
    const vec<T> zero(T(0));
    std::size_t i = 0;
    for (; i + W <= n; i += W) acc = fma(load_as<T>(x + i), zero, acc);
    if (i < n) acc = fma(load_as_partial<T>(x + i, n - i), zero, acc);
    return hsum(acc) == T(0);
}

}  // namespace simd
SEQMIX_ABI_END
}  // namespace seqmix
