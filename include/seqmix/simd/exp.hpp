#pragma once
// Vector exp. float: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6
// polynomial for e^r (Cephes' expf coefficients), then the scale by 2^n — one vscalefps
// on AVX-512, two exponent-bit multiplies elsewhere (2^128 is not a float).
// Inputs below -87 (and -inf) give exactly 0, the case softmax relies on, and no result is
// subnormal: Intel cores take a microcode assist for every instruction whose result
// underflows, and a masked score (-inf) made each vector exp 23x slower on a Sapphire Rapids
// Xeon (74 ns against 3.2). e^-87 is 1.6e-38, below anything a sum of probabilities or a
// decay keeps. NaN gives NaN.
// double: xsimd's exp (tests and references, accuracy over speed).
#include <cstdint>
#include <type_traits>

#include "../core/abi.hpp"
#include "vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace simd {

// p * 2^n for integer-valued n in [-252, 254]: one vscalefps on AVX-512, two exponent-bit
// multiplies elsewhere (2^n = 2^half * 2^(n - half), both factors normal numbers).
__attribute__((always_inline)) inline vec<float> times_pow2(const vec<float>& p, const vec<float>& n) {
    using V = vec<float>;
#if defined(__AVX512F__)
    if constexpr (sizeof(V) == 64) return V(_mm512_scalef_ps(p, n));
#endif
    using I = vec<std::int32_t>;
    const I ni = xsimd::batch_cast<std::int32_t>(n);
    const I half = ni >> 1;
    const V s1 = xsimd::bitwise_cast<V>((half + I(127)) << 23);
    const V s2 = xsimd::bitwise_cast<V>((ni - half + I(127)) << 23);
    return p * s1 * s2;
}

// c0 x^n + c1 x^(n-1) + ... + cn by Horner's rule, one fused multiply-add per coefficient.
template <class... C>
__attribute__((always_inline)) inline vec<float> horner(const vec<float>& x, float c0, C... c) {
    vec<float> p(c0);
    ((p = xsimd::fma(p, x, vec<float>(c))), ...);
    return p;
}

// Always inlined: a call would pass the vectors through memory, in loops that do little else.
__attribute__((always_inline)) inline vec<float> exp(const vec<float>& x_in) {
    using V = vec<float>;
    // maxps/minps return their second operand when either is NaN: with x_in second, NaN
    // passes through the clamp (and the polynomial) instead of turning into exp(-104) = 0.
    const V x = xsimd::min(V(88.7228f), xsimd::max(V(-87.0f), x_in));
    const auto flushed = x_in < V(-87.0f);  // false for NaN
    const V n = xsimd::nearbyint(x * V(1.44269504088896341f));
    V r = xsimd::fma(n, V(-0.693359375f), x);
    r = xsimd::fma(n, V(2.12194440e-4f), r);
    const V p = xsimd::fma(horner(r, 1.9875691500E-4f, 1.3981999507E-3f, 8.3334519073E-3f, 4.1665795894E-2f,
                                  1.6666665459E-1f, 5.0000001201E-1f),
                           r * r, r + V(1.0f));
    return xsimd::select(flushed, V(0.0f), times_pow2(p, n));
}

// e^x for x <= 0 or NaN: a score minus its row's running max (the online softmax). A base-2
// reduction (t = x log2 e, n = round(t), 2^(t - n) by Cephes' exp2f polynomial) takes 12
// vector operations where exp takes 18; on cores that issue every 512-bit operation on the
// FMA ports (Intel), those are FMA slots. x log2 e rounds with a relative error of 2^-24, so
// e^x keeps a relative error below 1e-6 for x >= -14 and loses accuracy only where e^x is
// below 1e-6 of the row's largest term. -inf and x < -138 give exactly 0 (2^-200); NaN gives
// NaN.
__attribute__((always_inline)) inline vec<float> exp_nonpositive(const vec<float>& x) {
    using V = vec<float>;
    // maxps returns its second operand when either is NaN: NaN passes through.
    const V t = xsimd::max(V(-200.0f), x * V(1.44269504088896341f));
    const V n = xsimd::nearbyint(t);
    const V f = t - n;  // [-0.5, 0.5]
    const V p = horner(f, 1.535336188319500e-4f, 1.339887440266574e-3f, 9.618437357674640e-3f, 5.550332471162809e-2f,
                       2.402264791363012e-1f, 6.931472028550421e-1f, 1.0f);  // 2^f
    return times_pow2(p, n);
}
inline vec<double> exp(const vec<double>& x) {
    using V = vec<double>;
    // xsimd's exp converts the argument's exponent to an integer, undefined for Inf and NaN
    // (UBSan's float-cast-overflow): it gets x clamped to [-746, 710], whose ends give 0 and
    // Inf as -inf and +inf do; NaN is put back at the end.
    const auto nan = xsimd::isnan(x);
    const V y = xsimd::exp(xsimd::select(nan, V(0.0), xsimd::min(xsimd::max(x, V(-746.0)), V(710.0))));
    return xsimd::select(nan, x, xsimd::select(x == V(-std::numeric_limits<double>::infinity()), V(0.0), y));
}
inline vec<double> exp_nonpositive(const vec<double>& x) { return exp(x); }

// x[i] = exp(x[i]) over any length (masked tail).
template <class T>
inline void exp_inplace(T* x, std::size_t n) {
    constexpr std::size_t W = width<T>;
    std::size_t i = 0;
    for (; i + W <= n; i += W) store(x + i, exp(load(x + i)));
    if (i < n) store_partial(x + i, exp(load_partial(x + i, n - i)), n - i);
}

}  // namespace simd
SEQMIX_ABI_END
}  // namespace seqmix
